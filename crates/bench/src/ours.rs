//! The bench adapter for raftkv's own core (`crates/raft`).
//!
//! Owns: one node = `raft::Raft` + a [`MemLog`] store + a [`Counter`] state machine, and the
//! Ready handling the driver calls. Must never: reach into the core beyond its public API.
//!
//! Ready handling, in the order `Ready` documents: persist `hard_state`, `snapshot` (also
//! restoring the counter from it) and `entries` (cloned into the store; `Entry::data` is
//! `Bytes`, so a clone shares the payload); move `messages` then `persisted_messages` to the
//! network; apply `committed_entries`; `advance(ready)`. Compaction calls `Raft::compact` at
//! the applied index with the counter's 24-byte snapshot and stores the returned snapshot.

use crate::driver::BenchNode;
use crate::memlog::MemLog;
use crate::workload::{Counter, Params};
use bytes::Bytes;
use raft::{
    Config, Configuration, EntryKind, InitialState, LogIndex, Message, MessageBody, NodeId, Raft,
};

/// One node of our core under the bench driver.
pub struct OurNode {
    raft: Raft,
    store: MemLog,
    counter: Counter,
}

impl OurNode {
    /// The core's configuration for `params` (the same settings raft-rs gets).
    pub fn config(id: u64, params: &Params) -> Config {
        let mut cfg = Config::new(NodeId(id));
        cfg.election_ticks = params.election_ticks;
        cfg.heartbeat_ticks = params.heartbeat_ticks;
        cfg.pre_vote = true;
        cfg.check_quorum = true;
        cfg.inflight_msgs_max = params.inflight_msgs_max;
        cfg.msg_bytes_max = params.msg_bytes_max;
        cfg.uncommitted_bytes_max = params.uncommitted_bytes_max;
        cfg
    }
}

impl BenchNode for OurNode {
    type Msg = Message;
    const NAME: &'static str = "raftkv";

    fn new(id: u64, voters: &[u64], params: &Params) -> Self {
        let voters = Configuration::new(voters.iter().map(|&v| NodeId(v)));
        let raft = Raft::new(Self::config(id, params), InitialState::bootstrap(voters))
            .expect("raftkv core rejected the bench configuration");
        OurNode {
            raft,
            store: MemLog::new(),
            counter: Counter::default(),
        }
    }

    fn campaign(&mut self) {
        self.raft.campaign();
    }

    fn tick(&mut self) {
        self.raft.tick();
    }

    fn is_leader(&self) -> bool {
        self.raft.is_leader()
    }

    fn propose(&mut self, data: Vec<u8>) -> bool {
        self.raft.propose(Bytes::from(data)).is_ok()
    }

    fn step(&mut self, msg: Message) {
        self.raft.step(msg).expect("raftkv core rejected a message");
    }

    fn recipient(msg: &Message) -> u64 {
        msg.to.0
    }

    fn is_snapshot(msg: &Message) -> bool {
        matches!(msg.body, MessageBody::Snapshot(_))
    }

    fn handle_ready(&mut self, out: &mut Vec<Message>) -> bool {
        if !self.raft.has_ready() {
            return false;
        }
        let mut rd = self.raft.ready();
        if let Some(hs) = rd.hard_state {
            self.store.set_hard_state(hs);
        }
        if let Some(snap) = &rd.snapshot {
            self.store.apply_snapshot(snap.clone());
            self.counter = Counter::decode(&snap.data);
        }
        self.store.append(&rd.entries);
        out.append(&mut rd.messages);
        out.append(&mut rd.persisted_messages);
        for e in &rd.committed_entries {
            let data: &[u8] = if e.kind == EntryKind::Normal {
                &e.data
            } else {
                &[]
            };
            self.counter.apply(e.index.0, data);
        }
        self.raft.advance(rd);
        true
    }

    fn counter(&self) -> &Counter {
        &self.counter
    }

    fn compact(&mut self) {
        let index = LogIndex(self.counter.applied_index);
        let data = Bytes::copy_from_slice(&self.counter.encode());
        let snap = self
            .raft
            .compact(index, data)
            .expect("raftkv core refused to compact");
        self.store.apply_snapshot(snap);
    }

    fn stored_entries(&self) -> usize {
        self.store.entries().len()
    }
}
