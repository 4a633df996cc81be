//! InstallSnapshot (§7, Figure 13), chunked.
//!
//! Owns: sending the leader's latest snapshot chunk by chunk (one chunk in flight, resent on
//! the heartbeat), reassembling chunks on the follower and installing the result. Must never:
//! install a snapshot that would roll back committed state, or accept chunks out of order.

use crate::message::{MessageBody, SnapshotChunk, SnapshotResponse};
use crate::node::Raft;
use crate::progress::ProgressState;
use crate::types::{NodeId, Snapshot};
use crate::Error;

impl Raft {
    /// Send (or resend) the current chunk of the snapshot to a follower in snapshot state.
    pub(crate) fn send_snapshot_chunk(&mut self, to: NodeId) {
        let snap = self
            .log
            .snapshot()
            .expect("a compacted log has a snapshot")
            .clone();
        let pr = self.progress.get_mut(&to).expect("peer");
        let ProgressState::Snapshot { index, offset } = pr.state else {
            return;
        };
        let offset = if index == snap.meta.last.index {
            offset
        } else {
            // We took a newer snapshot meanwhile: start over with it.
            pr.state = ProgressState::Snapshot {
                index: snap.meta.last.index,
                offset: 0,
            };
            0
        };
        let total = snap.data.len() as u64;
        let start = offset.min(total) as usize;
        let end = (start + self.cfg.snapshot_chunk_bytes).min(snap.data.len());
        let chunk = SnapshotChunk {
            meta: snap.meta.clone(),
            offset: start as u64,
            total_bytes: total,
            data: snap.data.slice(start..end),
            read_seq: self.read_only.current_seq(),
        };
        self.send(to, MessageBody::Snapshot(chunk));
    }

    /// Follower: one chunk from the leader of our term.
    pub(crate) fn handle_snapshot_chunk(
        &mut self,
        from: NodeId,
        c: SnapshotChunk,
    ) -> Result<(), Error> {
        if c.offset + c.data.len() as u64 > c.total_bytes {
            return Err(Error::InvalidMessage {
                from,
                why: "snapshot chunk beyond its total size",
            });
        }
        let index = c.meta.last.index;
        let read_seq = c.read_seq;
        let respond = |raft: &mut Raft, next_offset: u64, installed: bool| {
            let resp = SnapshotResponse {
                snapshot_index: index,
                next_offset,
                installed,
                read_seq,
            };
            raft.send(from, MessageBody::SnapshotResponse(resp));
        };
        if index <= self.log.committed {
            // We already hold everything it covers.
            self.snapshot_recv = None;
            respond(self, c.total_bytes, true);
            return Ok(());
        }
        let same = self
            .snapshot_recv
            .as_ref()
            .is_some_and(|(m, _)| m.last == c.meta.last);
        if c.offset == 0 && !same {
            self.snapshot_recv = Some((c.meta.clone(), Vec::with_capacity(c.total_bytes as usize)));
        }
        let Some((_, buf)) = self
            .snapshot_recv
            .as_mut()
            .filter(|(m, _)| m.last == c.meta.last)
        else {
            respond(self, 0, false);
            return Ok(());
        };
        if c.offset == buf.len() as u64 {
            buf.extend_from_slice(&c.data);
        }
        let have = buf.len() as u64;
        if have < c.total_bytes {
            respond(self, have, false);
            return Ok(());
        }
        let (meta, buf) = self.snapshot_recv.take().expect("receiving");
        let snapshot = Snapshot {
            meta,
            data: buf.into(),
        };
        self.install_snapshot(snapshot);
        respond(self, c.total_bytes, true);
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) {
        if self.log.install(snapshot) {
            self.refresh_conf();
        }
    }

    /// Leader: a follower answered a chunk.
    pub(crate) fn handle_snapshot_response(&mut self, from: NodeId, resp: SnapshotResponse) {
        if !self.progress.contains_key(&from) {
            return;
        }
        self.read_only_ack(from, resp.read_seq);
        let pr = self.progress.get_mut(&from).expect("peer");
        if resp.installed {
            if resp.snapshot_index <= self.log.last_index() {
                pr.ack(resp.snapshot_index);
            }
            if matches!(pr.state, ProgressState::Snapshot { .. }) {
                pr.become_probe();
            }
            self.maybe_commit();
            self.send_append(from, true);
            return;
        }
        if let ProgressState::Snapshot { index, offset } = pr.state {
            if index == resp.snapshot_index && resp.next_offset != offset {
                pr.state = ProgressState::Snapshot {
                    index,
                    offset: resp.next_offset,
                };
                self.send_snapshot_chunk(from);
            }
        }
    }
}
