//! The bench adapter for tikv's raft-rs 0.7 (`RawNode` + `MemStorage`), from crates.io.
//!
//! Two ways to offer a round's proposals: [`RaftRsNode`] calls `RawNode::propose` once per
//! proposal (the documented API; raft-rs broadcasts an append for each), and
//! [`RaftRsBatchNode`] steps one `MsgPropose` carrying all of the round's entries (what
//! `propose` builds, with K entries instead of one), which is how raft-rs batches.
//!
//! Owns: one node = `RawNode<MemStorage>` + a [`Counter`] state machine, and the Ready
//! handling the driver calls, as raft-rs documents it for 0.7 (README / `five_mem_node`):
//! send `messages`; apply a snapshot to the store; apply `committed_entries`; append
//! `entries` to `MemStorage`; store the hard state; send `persisted_messages`; `advance`;
//! store the LightReady commit, send its messages, apply its committed entries;
//! `advance_apply`. Compaction calls `MemStorage::compact` at the applied index. Its logger
//! is slog `Discard`. Must never: configure raft-rs differently from our core.

use crate::driver::BenchNode;
use crate::workload::{payload, Counter, Params};
use raft_rs::eraftpb::{ConfState, Entry, EntryType, Message, MessageType};
use raft_rs::storage::{MemStorage, Storage};
use raft_rs::{Config, RawNode, StateRole};

/// raft-rs, one `RawNode::propose` per proposal.
pub type RaftRsNode = RaftRs<false>;
/// raft-rs, one `MsgPropose` with all of a round's proposals.
pub type RaftRsBatchNode = RaftRs<true>;

/// One node of raft-rs under the bench driver; `BATCH_PROPOSE` picks how proposals go in.
pub struct RaftRs<const BATCH_PROPOSE: bool> {
    node: RawNode<MemStorage>,
    store: MemStorage,
    counter: Counter,
}

impl<const BATCH_PROPOSE: bool> RaftRs<BATCH_PROPOSE> {
    /// raft-rs's configuration for `params` (the same settings our core gets).
    pub fn config(id: u64, params: &Params) -> Config {
        Config {
            id,
            election_tick: params.election_ticks as usize,
            heartbeat_tick: params.heartbeat_ticks as usize,
            pre_vote: true,
            check_quorum: true,
            max_inflight_msgs: params.inflight_msgs_max,
            max_size_per_msg: params.msg_bytes_max as u64,
            max_uncommitted_size: params.uncommitted_bytes_max as u64,
            ..Default::default()
        }
    }

    fn apply(counter: &mut Counter, entries: &[Entry]) {
        for e in entries {
            let data: &[u8] = if e.get_entry_type() == EntryType::EntryNormal {
                &e.data
            } else {
                &[]
            };
            counter.apply(e.index, data);
        }
    }
}

impl<const BATCH_PROPOSE: bool> BenchNode for RaftRs<BATCH_PROPOSE> {
    type Msg = Message;
    const NAME: &'static str = if BATCH_PROPOSE {
        "raft-rs-batch"
    } else {
        "raft-rs"
    };

    fn new(id: u64, voters: &[u64], params: &Params) -> Self {
        let cfg = Self::config(id, params);
        cfg.validate()
            .expect("raft-rs rejected the bench configuration");
        let store = MemStorage::new_with_conf_state(ConfState::from((voters.to_vec(), vec![])));
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let node = RawNode::new(&cfg, store.clone(), &logger).expect("raft-rs RawNode::new");
        RaftRs {
            node,
            store,
            counter: Counter::default(),
        }
    }

    fn campaign(&mut self) {
        self.node.campaign().expect("raft-rs campaign");
    }

    fn tick(&mut self) {
        self.node.tick();
    }

    fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    fn propose(&mut self, data: Vec<u8>) -> bool {
        self.node.propose(Vec::new(), data).is_ok()
    }

    fn propose_batch(&mut self, first_seq: u64, count: u64, entry_bytes: usize) -> u64 {
        if !BATCH_PROPOSE {
            return (0..count)
                .position(|i| !self.propose(payload(first_seq + i, entry_bytes)))
                .map_or(count, |i| i as u64);
        }
        let entries: Vec<Entry> = (0..count)
            .map(|i| Entry {
                data: payload(first_seq + i, entry_bytes).into(),
                ..Default::default()
            })
            .collect();
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgPropose);
        m.from = self.node.raft.id;
        m.set_entries(entries.into());
        match self.node.step(m) {
            Ok(()) => count,
            Err(_) => 0,
        }
    }

    fn step(&mut self, msg: Message) {
        self.node.step(msg).expect("raft-rs rejected a message");
    }

    fn recipient(msg: &Message) -> u64 {
        msg.to
    }

    fn is_snapshot(msg: &Message) -> bool {
        msg.get_msg_type() == MessageType::MsgSnapshot
    }

    fn handle_ready(&mut self, out: &mut Vec<Message>) -> bool {
        if !self.node.has_ready() {
            return false;
        }
        let mut rd = self.node.ready();
        out.append(&mut rd.take_messages());
        if !rd.snapshot().is_empty() {
            // MemStorage snapshots carry no application data, so the counter cannot be
            // restored from one; the workload never lags a follower behind compaction.
            panic!("raft-rs: a follower needed a snapshot; the bench does not support that");
        }
        Self::apply(&mut self.counter, &rd.take_committed_entries());
        if !rd.entries().is_empty() {
            self.store
                .wl()
                .append(rd.entries())
                .expect("MemStorage append");
        }
        if let Some(hs) = rd.hs() {
            self.store.wl().set_hardstate(hs.clone());
        }
        out.append(&mut rd.take_persisted_messages());
        let mut light = self.node.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.store.wl().mut_hard_state().set_commit(commit);
        }
        out.append(&mut light.take_messages());
        Self::apply(&mut self.counter, &light.take_committed_entries());
        self.node.advance_apply();
        true
    }

    fn counter(&self) -> &Counter {
        &self.counter
    }

    fn compact(&mut self) {
        self.store
            .wl()
            .compact(self.counter.applied_index)
            .expect("MemStorage compact");
    }

    fn stored_entries(&self) -> usize {
        let first = self.store.first_index().expect("MemStorage first_index");
        let last = self.store.last_index().expect("MemStorage last_index");
        (last + 1 - first) as usize
    }
}
