//! Log replication (§5.3) and commitment (§5.4.2), with pipelining and fast backtracking.
//!
//! Owns: the leader's heartbeat/CheckQuorum timers, building AppendEntries within the byte and
//! in-flight limits, the follower's consistency check and answer, the leader's handling of
//! answers, and the commit rule (a quorum holds an entry *of the current term*, Figure 8).
//! Must never: commit an entry of an earlier term by counting replicas, or let the leader
//! count its own entries before they are durable.

use crate::message::{AppendOutcome, AppendRequest, AppendResponse, ConflictHint, MessageBody};
use crate::node::Raft;
use crate::progress::ProgressState;
use crate::types::{EntryId, LogIndex, NodeId};
use crate::Error;

impl Raft {
    pub(crate) fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_ticks {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_recently_active() {
                // CheckQuorum: a leader cut off from its quorum steps down (§6.2).
                let term = self.term;
                self.become_follower(term, NodeId::NONE);
                return;
            }
        }
        if self.transferee.is_some() {
            self.transfer_elapsed += 1;
            if self.transfer_elapsed >= self.cfg.election_ticks {
                self.transferee = NodeId::NONE; // give up; accept proposals again
            }
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    /// Counts voters heard from since the last check (and resets the marks; learners are
    /// marked too but never counted).
    fn quorum_recently_active(&mut self) -> bool {
        let mut active = usize::from(self.is_voter());
        for (id, pr) in self.progress.iter_mut() {
            active += usize::from(pr.recent_active && self.conf.contains(*id));
            pr.recent_active = false;
        }
        active >= self.conf.quorum()
    }

    /// Send new entries to every follower that can take them.
    pub(crate) fn broadcast_append(&mut self) {
        for i in 0..self.progress.len() {
            let peer = self.nth_peer(i);
            while self.send_append(peer, false) {
                if !matches!(self.progress[&peer].state, ProgressState::Replicate) {
                    break;
                }
            }
        }
    }

    /// Heartbeat round: an empty append to streaming followers; a retransmission to probing
    /// ones and to stalled pipelines; the current chunk to snapshot receivers.
    pub(crate) fn broadcast_heartbeat(&mut self) {
        self.read_only.mark_round_sent();
        for i in 0..self.progress.len() {
            let peer = self.nth_peer(i);
            let pr = self
                .progress
                .get_mut(&peer)
                .expect("progress for every peer");
            match pr.state {
                ProgressState::Replicate => {
                    if pr.has_inflight() {
                        pr.stalled_heartbeats += 1;
                        if pr.stalled_heartbeats >= 2 {
                            // Appends or their answers were lost: resend from the match point.
                            pr.become_probe();
                            self.send_append(peer, true);
                            continue;
                        }
                    }
                    let prev = self.progress_match_id(peer);
                    self.send_append_msg(peer, prev, Vec::new());
                }
                ProgressState::Probe => {
                    pr.probe_sent = false;
                    self.send_append(peer, true);
                }
                ProgressState::Snapshot { .. } => self.send_snapshot_chunk(peer),
            }
        }
    }

    fn progress_match_id(&self, peer: NodeId) -> EntryId {
        let m = self.progress[&peer].matched;
        match self.log.term_at(m) {
            Some(t) => EntryId::new(t, m),
            // Match point compacted: the follower holds at least the snapshot's prefix.
            None => self.log.snapshot_last(),
        }
    }

    /// The `i`-th follower (progress is keyed by peer; it never changes during a broadcast).
    fn nth_peer(&self, i: usize) -> NodeId {
        *self.progress.keys().nth(i).expect("peer index in range")
    }

    /// The largest value that a quorum of voters has reached, where `value` gives each
    /// voter's value (the quorum-th largest). Allocation-free for up to 16 voters.
    pub(crate) fn quorum_index(&self, value: impl Fn(&Raft, NodeId) -> u64) -> u64 {
        let mut buf = [0u64; 16];
        let mut heap;
        let vals: &mut [u64] = if self.conf.voters.len() <= buf.len() {
            &mut buf[..self.conf.voters.len()]
        } else {
            heap = vec![0u64; self.conf.voters.len()];
            &mut heap
        };
        for (slot, &v) in vals.iter_mut().zip(&self.conf.voters) {
            *slot = value(self, v);
        }
        vals.sort_unstable_by(|a, b| b.cmp(a));
        vals[self.conf.quorum() - 1]
    }

    /// Send the next append to `to` if its progress allows. Returns true if one was sent.
    pub(crate) fn send_append(&mut self, to: NodeId, allow_empty: bool) -> bool {
        let pr = &self.progress[&to];
        if pr.is_paused() {
            return false;
        }
        let prev_index = pr.next.prev();
        let Some(prev_term) = self.log.term_at(prev_index) else {
            // The entries it needs were compacted: send the snapshot (§7).
            let index = self.log.snapshot_last().index;
            self.progress
                .get_mut(&to)
                .expect("peer")
                .become_snapshot(index);
            self.send_snapshot_chunk(to);
            return false;
        };
        let entries = self.log.slice(pr.next, self.cfg.msg_bytes_max);
        if entries.is_empty() && !allow_empty {
            return false;
        }
        let last = entries.last().map_or(prev_index, |e| e.index);
        self.progress.get_mut(&to).expect("peer").sent_entries(last);
        self.send_append_msg(to, EntryId::new(prev_term, prev_index), entries);
        true
    }

    fn send_append_msg(&mut self, to: NodeId, prev: EntryId, entries: Vec<crate::Entry>) {
        let req = AppendRequest {
            prev,
            entries,
            commit: self.log.committed,
            read_seq: self.read_only.current_seq(),
        };
        self.send(to, MessageBody::Append(req));
    }

    /// AppendEntries receiver (§5.3), as follower of `from` in our term.
    pub(crate) fn handle_append(&mut self, from: NodeId, req: AppendRequest) -> Result<(), Error> {
        if req
            .entries
            .first()
            .is_some_and(|e| e.index != req.prev.index.next())
        {
            return Err(Error::InvalidMessage {
                from,
                why: "entries do not follow prev",
            });
        }
        Raft::check_conf_entries(&req.entries).map_err(|_| Error::InvalidMessage {
            from,
            why: "undecodable configuration entry",
        })?;
        let committed = self.log.committed;
        let outcome = if req.prev.index < committed {
            // Everything up to our commit index matches any leader's log (§5.4).
            let covered = req.entries.iter().position(|e| e.index > committed);
            match covered {
                Some(pos) => {
                    let prev_id = self
                        .log
                        .term_at(committed)
                        .map(|t| EntryId::new(t, committed));
                    let prev = prev_id.expect("commit index is in the log");
                    let mut entries = req.entries;
                    entries.drain(..pos);
                    self.accept_entries(prev, entries, req.commit)
                }
                None => AppendOutcome::Accepted {
                    match_index: committed,
                },
            }
        } else {
            self.accept_entries(req.prev, req.entries, req.commit)
        };
        let resp = AppendResponse {
            outcome,
            commit: self.log.committed,
            read_seq: req.read_seq,
        };
        self.send(from, MessageBody::AppendResponse(resp));
        Ok(())
    }

    fn accept_entries(
        &mut self,
        prev: EntryId,
        entries: Vec<crate::Entry>,
        leader_commit: LogIndex,
    ) -> AppendOutcome {
        // The configuration may change if a configuration entry arrives, or if a suffix that
        // may be truncated holds the current one.
        let conf_may_change = entries.iter().any(|e| e.kind == crate::EntryKind::Config)
            || entries
                .first()
                .is_some_and(|e| e.index <= self.pending_conf_index);
        match self.log.try_append(prev, entries) {
            Some(last_new) => {
                if conf_may_change {
                    self.refresh_conf();
                }
                self.log.commit_to(leader_commit.min(last_new));
                AppendOutcome::Accepted {
                    match_index: last_new,
                }
            }
            None => AppendOutcome::Rejected {
                rejected_prev: prev.index,
                hint: self.log.conflict_hint(prev.index),
            },
        }
    }

    /// The leader handles a follower's answer to an append.
    pub(crate) fn handle_append_response(&mut self, from: NodeId, resp: AppendResponse) {
        if !self.progress.contains_key(&from) {
            return;
        }
        self.read_only_ack(from, resp.read_seq);
        match resp.outcome {
            AppendOutcome::Accepted { match_index } => self.append_accepted(from, match_index),
            AppendOutcome::Rejected {
                rejected_prev,
                hint,
            } => self.append_rejected(from, rejected_prev, hint),
        }
    }

    fn append_accepted(&mut self, from: NodeId, match_index: LogIndex) {
        if match_index > self.log.last_index() {
            return; // cannot match beyond our log: a stale or bogus answer
        }
        let pr = self.progress.get_mut(&from).expect("peer");
        let grew = pr.ack(match_index);
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot { index, .. } if pr.matched >= index => pr.become_replicate(),
            _ => {}
        }
        if grew {
            self.maybe_commit();
        }
        while self.send_append(from, false) {}
        if from == self.transferee && self.progress[&from].matched == self.log.last_index() {
            self.send(from, MessageBody::TimeoutNow);
        }
    }

    fn append_rejected(&mut self, from: NodeId, rejected_prev: LogIndex, hint: ConflictHint) {
        let pr = &self.progress[&from];
        let stale = match pr.state {
            ProgressState::Replicate => rejected_prev <= pr.matched,
            ProgressState::Probe => rejected_prev != pr.next.prev(),
            ProgressState::Snapshot { .. } => true,
        };
        if stale || rejected_prev == LogIndex(0) {
            return;
        }
        // Fast backup (6.824): skip the whole conflicting term in one step.
        let next = match hint.term {
            Some(term) => match self.log.last_index_of_term(term, rejected_prev) {
                Some(i) => i.next(),
                None => hint.index,
            },
            None => hint.index,
        };
        let next = next.min(rejected_prev);
        self.progress.get_mut(&from).expect("peer").probe_from(next);
        self.send_append(from, true);
    }

    /// Commit the highest index a quorum holds, if it is of the current term (§5.4.2).
    pub(crate) fn maybe_commit(&mut self) {
        let candidate = self.quorum_index(|raft, v| match raft.progress.get(&v) {
            Some(pr) => pr.matched.0,
            None if v == raft.id => raft.log.persisted.0,
            None => 0,
        });
        let candidate = LogIndex(candidate);
        if candidate <= self.log.committed || self.log.term_at(candidate) != Some(self.term) {
            return; // Figure 8: never commit an old-term entry by counting replicas
        }
        let old = self.log.committed;
        self.log.commit_to(candidate);
        let freed: usize = self
            .log
            .entries_from(old.next())
            .iter()
            .take_while(|e| e.index <= candidate)
            .map(|e| e.size_bytes())
            .sum();
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(freed);
        self.on_commit_in_term();
        if old < self.pending_conf_index && self.pending_conf_index <= candidate {
            self.release_departed();
        }
    }

    /// One append to `to` from its match point (whatever fits in a message), outside its
    /// progress' window: for a member leaving the configuration, which gets nothing after it.
    pub(crate) fn send_final_append(&mut self, to: NodeId) {
        let prev = self.progress_match_id(to);
        if prev.index != self.progress[&to].matched {
            return; // its match point was compacted: it would need a snapshot
        }
        let entries = self.log.slice(prev.index.next(), self.cfg.msg_bytes_max);
        self.send_append_msg(to, prev, entries);
    }
}
