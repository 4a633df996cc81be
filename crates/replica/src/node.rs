//! [`Replica`]: one node — the consensus core, its store and its state machine — and the
//! `Ready` loop that connects them.
//!
//! Owns: the order of side effects (persist → sync if required → send → restore/apply →
//! reply → advance), the snapshot policy, and the applied index of the state machine.
//! Must never: send a `persisted_messages` entry before the batch is synced, apply an entry
//! that is not exactly `applied + 1`, compact above what the state machine applied, or keep
//! going after a storage error (the caller must stop the node: its disk and memory may
//! disagree).

use crate::completion::Completion;
use crate::traits::{StateMachine, Transport};
use crate::waiters::Waiters;
use bytes::Bytes;
use raft::{
    CompactError, ConfChange, ConfChangeError, Config, EntryId, HardState, LogIndex, Message,
    ProposeError, Raft, ReadError, Ready, Snapshot, SnapshotMeta, TransferError,
};
use std::collections::VecDeque;
use storage::{LogStore, SnapshotWriter, StorageError, SyncState, SyncTicket};
use thiserror::Error;

/// When the node snapshots its state machine and compacts its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SnapshotPolicy {
    /// Snapshot once this many entries were applied since the last snapshot (`None`: never).
    pub every_applied_entries: Option<u64>,
    /// Serialize and write snapshots off the node's thread: the node hands out a
    /// [`SnapshotJob`] ([`Replica::take_snapshot_job`]) and compacts when the caller reports
    /// it done ([`Replica::on_snapshot_written`]). Otherwise the snapshot is taken, written
    /// and the log compacted inside [`Replica::handle_ready`].
    pub background: bool,
    /// Also wait until the log holds at least as many bytes as the last snapshot: a large
    /// state is then rewritten at most once per its own size of log (the disk writes at most
    /// twice what the log does), a small one as often as `every_applied_entries` says. A
    /// restart replays at most about a snapshot's worth of log.
    pub size_aware: bool,
}

impl SnapshotPolicy {
    /// Never snapshot (the log grows without bound).
    pub fn never() -> Self {
        SnapshotPolicy {
            every_applied_entries: None,
            background: false,
            size_aware: false,
        }
    }
    /// Snapshot every `n` applied entries (`n` ≥ 1).
    pub fn every(n: u64) -> Self {
        assert!(n > 0, "snapshot interval must be at least one entry");
        SnapshotPolicy {
            every_applied_entries: Some(n),
            background: false,
            size_aware: false,
        }
    }
    /// The same policy with snapshots serialized and written off the node's thread.
    pub fn in_background(self) -> Self {
        SnapshotPolicy {
            background: true,
            ..self
        }
    }
    /// The same policy, waiting also for the log to reach the last snapshot's size.
    pub fn size_aware(self) -> Self {
        SnapshotPolicy {
            size_aware: true,
            ..self
        }
    }
}

/// A snapshot of the state machine at some applied index, to be serialized and written to
/// the store's snapshot file off the node's thread (slow: the whole state). Run it once and
/// hand the result to [`Replica::on_snapshot_written`].
pub struct SnapshotJob {
    meta: SnapshotMeta,
    encode: Box<dyn FnOnce() -> Bytes + Send>,
    writer: SnapshotWriter,
}

impl SnapshotJob {
    /// The index the snapshot covers.
    pub fn index(&self) -> LogIndex {
        self.meta.last.index
    }

    /// Serialize the state and make the snapshot's file durable.
    pub fn run(self) -> WrittenSnapshot {
        let snapshot = Snapshot {
            meta: self.meta,
            data: (self.encode)(),
        };
        let file_bytes = (self.writer)(&snapshot);
        WrittenSnapshot {
            snapshot,
            file_bytes,
        }
    }
}

impl std::fmt::Debug for SnapshotJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotJob")
            .field("meta", &self.meta)
            .finish()
    }
}

/// What a [`SnapshotJob`] produced.
pub struct WrittenSnapshot {
    snapshot: Snapshot,
    /// The file's size, or why writing it failed.
    file_bytes: Result<usize, StorageError>,
}

/// What can stop a node. Any of these means the node must be shut down and restarted from
/// its store.
#[derive(Debug, Error)]
pub enum ReplicaError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("consensus core: {0}")]
    Raft(#[from] raft::Error),
    #[error("compaction: {0}")]
    Compact(#[from] CompactError),
}

/// One node's logic over a store `S` and a state machine `M`.
pub struct Replica<S: LogStore, M: StateMachine> {
    raft: Raft,
    store: S,
    sm: M,
    policy: SnapshotPolicy,
    /// Last index the state machine has applied (or restored from a snapshot).
    applied: LogIndex,
    /// Index of the latest snapshot, taken here or received.
    snapshot_index: LogIndex,
    /// The hard state as last written to the store.
    written_hard_state: HardState,
    waiters: Waiters,
    /// Written batches awaiting their sync, oldest first (tickets increase).
    unsynced: VecDeque<Unsynced>,
    /// A background snapshot due, not yet handed out.
    snapshot_job: Option<SnapshotJob>,
    /// A background snapshot was handed out and its result is not back yet (one at a time).
    snapshot_running: bool,
    /// Batches synced on the caller's thread so far ([`Replica::handle_ready_syncing_here`]).
    synced_here: u64,
}

/// A batch written to the store whose sync is still running.
struct Unsynced {
    ticket: SyncTicket,
    /// Messages that may go only once the batch is durable.
    messages: Vec<Message>,
    /// The batch's last written entry or snapshot, reported to the core when durable.
    written: Option<EntryId>,
}

impl<S: LogStore, M: StateMachine> Replica<S, M> {
    /// Start a node from what `store` holds: the state machine (which must be fresh) is
    /// restored from the stored snapshot, the core from the hard state and log.
    pub fn new(
        config: Config,
        store: S,
        mut sm: M,
        policy: SnapshotPolicy,
    ) -> Result<Self, ReplicaError> {
        let initial = store.initial_state()?;
        let snapshot_index = initial
            .snapshot
            .as_ref()
            .map_or(LogIndex(0), |s| s.meta.last.index);
        if let Some(snap) = &initial.snapshot {
            sm.restore(&snap.data);
        }
        let written_hard_state = initial.hard_state;
        let raft = Raft::new(config, initial)?;
        assert_eq!(
            raft.applied_index(),
            snapshot_index,
            "a restarted core starts applied at its snapshot"
        );
        Ok(Replica {
            raft,
            store,
            sm,
            policy,
            applied: snapshot_index,
            snapshot_index,
            written_hard_state,
            waiters: Waiters::default(),
            unsynced: VecDeque::new(),
            snapshot_job: None,
            snapshot_running: false,
            synced_here: 0,
        })
    }

    /// Advance logical time by one tick.
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Feed a message from a peer.
    pub fn receive(&mut self, msg: Message) -> Result<(), raft::Error> {
        self.raft.step(msg)
    }

    /// Propose `data` (leader only); `token` comes back in the [`Completion`] for it.
    pub fn propose(&mut self, data: Bytes, token: u64) -> Result<EntryId, ProposeError> {
        let id = self.raft.propose(data)?;
        self.waiters.add_proposal(id, token);
        Ok(id)
    }

    /// Propose a membership change (leader only); `token` comes back in the [`Completion`]
    /// once the configuration entry applied (its result is empty).
    pub fn propose_conf_change(
        &mut self,
        change: ConfChange,
        token: u64,
    ) -> Result<EntryId, ConfChangeError> {
        let id = self.raft.propose_conf_change(change)?;
        self.waiters.add_proposal(id, token);
        Ok(id)
    }

    /// Start a linearizable read; `token` comes back in a `ReadReady` or `ReadFailed`.
    /// Tokens of reads in flight at the same time must differ.
    pub fn read(&mut self, token: u64) -> Result<(), ReadError> {
        self.raft.read_index(token)
    }

    /// Hand leadership to `to` (leader only).
    pub fn transfer_leader(&mut self, to: raft::NodeId) -> Result<(), TransferError> {
        self.raft.transfer_leader(to)
    }

    /// Start an election now.
    pub fn campaign(&mut self) {
        self.raft.campaign();
    }

    /// Do everything the core asks, batch after batch, until it has nothing more; returns
    /// the answers for waiting clients.
    ///
    /// With a store that syncs in the background ([`LogStore::begin_sync`] returns
    /// `Pending`), a batch's writes are handed to the store and the loop goes on — the
    /// leader keeps replicating and applying while its own sync runs. Messages that may go
    /// only after persisting wait, with the batch's last written entry, until the store
    /// reports the ticket to [`Replica::on_synced`].
    pub fn handle_ready(
        &mut self,
        transport: &mut impl Transport,
    ) -> Result<Vec<Completion>, ReplicaError> {
        self.handle_ready_syncing_here(transport, false)
    }

    /// [`Replica::handle_ready`], except that with `sync_here` a batch that must be durable
    /// before its messages go, and finds no earlier batch still syncing, is synced on the
    /// calling thread ([`LogStore::sync`]) instead of being handed to the store's sync thread
    /// ([`LogStore::begin_sync`]): its messages go at once. For a node with nothing else to
    /// do meanwhile, this saves the two thread wake-ups of a background sync; for a busy one
    /// it costs the overlap of its next batch with the sync. The caller decides which it is.
    pub fn handle_ready_syncing_here(
        &mut self,
        transport: &mut impl Transport,
        sync_here: bool,
    ) -> Result<Vec<Completion>, ReplicaError> {
        let mut done = Vec::new();
        while self.raft.has_ready() {
            let mut rd = self.raft.ready();
            for msg in std::mem::take(&mut rd.messages) {
                transport.send(msg);
            }
            self.persist(&rd)?;
            let sync = if rd.must_sync && sync_here && self.unsynced.is_empty() {
                // Nothing earlier is still syncing, so this sync makes every write durable.
                self.store.sync()?;
                self.synced_here += 1;
                SyncState::Durable
            } else if rd.must_sync {
                self.store.begin_sync()?
            } else {
                SyncState::Durable
            };
            let written = rd.last_written();
            let held = std::mem::take(&mut rd.persisted_messages);
            match (sync, self.unsynced.back_mut()) {
                (SyncState::Pending(ticket), last) => {
                    debug_assert!(
                        last.is_none_or(|l| l.ticket < ticket),
                        "sync tickets of waiting batches increase"
                    );
                    self.unsynced.push_back(Unsynced {
                        ticket,
                        messages: held,
                        written,
                    })
                }
                // Nothing new to sync, but earlier writes still are: these messages may
                // promise them, so they wait for the same ticket.
                (SyncState::Durable, Some(last)) if !rd.must_sync => {
                    last.messages.extend(held);
                    debug_assert!(
                        written.is_none(),
                        "a batch without must_sync writes no entries"
                    );
                }
                (SyncState::Durable, _) => {
                    // Durable now, and so is everything before it (syncs are ordered).
                    self.release_unsynced(u64::MAX, transport);
                    for msg in held {
                        transport.send(msg);
                    }
                }
            }
            self.apply(&rd, &mut done);
            if matches!(sync, SyncState::Pending(_)) {
                self.raft.advance_written(rd);
            } else {
                self.raft.advance(rd);
            }
            self.check_indexes();
            self.maybe_compact()?;
        }
        Ok(done)
    }

    /// The store reports every write up to `ticket` durable: send the messages that waited
    /// for it, let the core count the entries as persisted, and handle what that unblocks.
    pub fn on_synced(
        &mut self,
        ticket: SyncTicket,
        transport: &mut impl Transport,
    ) -> Result<Vec<Completion>, ReplicaError> {
        self.release_unsynced(ticket, transport);
        self.handle_ready(transport)
    }

    /// Sync the store now and release every batch that waited for a sync: for a driver
    /// whose store answers [`LogStore::begin_sync`] with `Pending` but runs no sync thread,
    /// and completes the syncs itself, later (the simulator). A sync makes every write
    /// before it durable, so every waiting batch goes.
    pub fn complete_syncs(
        &mut self,
        transport: &mut impl Transport,
    ) -> Result<Vec<Completion>, ReplicaError> {
        self.store.sync()?;
        self.release_unsynced(SyncTicket::MAX, transport);
        self.handle_ready(transport)
    }

    /// How many batches were synced on the calling thread
    /// ([`Replica::handle_ready_syncing_here`]).
    pub fn synced_here(&self) -> u64 {
        self.synced_here
    }

    /// Batches written but not yet known durable.
    pub fn unsynced_batches(&self) -> usize {
        self.unsynced.len()
    }

    fn release_unsynced(&mut self, ticket: SyncTicket, transport: &mut impl Transport) {
        while self.unsynced.front().is_some_and(|u| u.ticket <= ticket) {
            let u = self.unsynced.pop_front().expect("non-empty");
            for msg in u.messages {
                transport.send(msg);
            }
            if let Some(id) = u.written {
                self.raft.on_persisted(id);
            }
        }
    }

    /// Step 1: persist the batch so that every prefix of its writes is a valid state (a
    /// write-ahead log may lose its tail): a new term/vote first (with the old commit), then
    /// the snapshot, then the entries, then the hard state whose commit may point into them.
    /// The caller syncs.
    fn persist(&mut self, rd: &Ready) -> Result<(), ReplicaError> {
        if let Some(hs) = rd.hard_state {
            let written = self.written_hard_state;
            if (hs.term, hs.vote) != (written.term, written.vote) {
                let first = HardState {
                    commit: written.commit,
                    ..hs
                };
                self.store.set_hard_state(first)?;
                self.written_hard_state = first;
            }
        }
        if let Some(snap) = &rd.snapshot {
            self.store.save_snapshot(snap)?;
        }
        self.store.append(&rd.entries)?;
        if let Some(hs) = rd.hard_state {
            if hs != self.written_hard_state {
                self.store.set_hard_state(hs)?;
                self.written_hard_state = hs;
            }
        }
        Ok(())
    }

    /// Step 3: restore a received snapshot, apply committed entries, answer clients.
    fn apply(&mut self, rd: &Ready, done: &mut Vec<Completion>) {
        if let Some(snap) = &rd.snapshot {
            let last = snap.meta.last;
            assert!(
                last.index >= self.applied,
                "snapshot at {:?} would roll the state machine back from {:?}",
                last.index,
                self.applied
            );
            self.sm.restore(&snap.data);
            self.applied = last.index;
            self.snapshot_index = last.index;
            self.waiters.snapshot_installed(last, done);
        }
        for entry in &rd.committed_entries {
            assert_eq!(
                entry.index,
                self.applied.next(),
                "committed entries must apply contiguously from applied + 1"
            );
            if self.waiters.waits_for(entry.index) {
                let result = self.sm.apply_entry(entry);
                self.applied = entry.index;
                self.waiters.applied(entry.id(), &result, done);
            } else {
                self.sm.apply_entry_unobserved(entry);
                self.applied = entry.index;
            }
        }
        for rs in &rd.read_states {
            self.waiters
                .read_confirmed(rs.ctx, rs.index, self.applied, done);
        }
        self.waiters.reads_ready(self.applied, done);
        for rf in &rd.read_failures {
            done.push(Completion::ReadFailed { token: rf.ctx });
        }
    }

    /// Paired with the core's own checks: what this driver applied is what the core believes.
    fn check_indexes(&self) {
        assert_eq!(
            self.raft.applied_index(),
            self.applied,
            "core and state machine disagree"
        );
        let commit = self.raft.commit_index();
        assert!(
            self.applied <= commit,
            "applied {:?} > commit {commit:?}",
            self.applied
        );
        assert!(
            commit <= self.raft.last_index(),
            "commit {commit:?} beyond the last index"
        );
    }

    /// The snapshot policy: every N applied entries, snapshot the state machine and compact.
    fn maybe_compact(&mut self) -> Result<(), ReplicaError> {
        let Some(every) = self.policy.every_applied_entries else {
            return Ok(());
        };
        if self.applied.0 < self.snapshot_index.0 + every {
            return Ok(());
        }
        if self.policy.size_aware && self.store.log_bytes() < self.store.snapshot_bytes() {
            return Ok(());
        }
        if self.policy.background {
            if !self.snapshot_running {
                self.snapshot_job = Some(SnapshotJob {
                    meta: self.raft.snapshot_meta(self.applied)?,
                    encode: self.sm.snapshot_later(),
                    writer: self.store.snapshot_writer(),
                });
                self.snapshot_running = true;
            }
            return Ok(());
        }
        let snap = self.raft.compact(self.applied, self.sm.snapshot())?;
        assert_eq!(
            snap.meta.last.index, self.applied,
            "compacted at the applied index"
        );
        self.store.save_snapshot(&snap)?;
        self.snapshot_index = self.applied;
        Ok(())
    }

    /// The background snapshot that is due, if any (see [`SnapshotPolicy::background`]).
    /// No other is handed out until this one's result came back.
    pub fn take_snapshot_job(&mut self) -> Option<SnapshotJob> {
        self.snapshot_job.take()
    }

    /// A [`SnapshotJob`] finished: compact the log up to it and make it the store's snapshot;
    /// the next job may be due at once ([`Replica::take_snapshot_job`]). One a snapshot
    /// received meanwhile superseded is dropped (its file is an orphan, which the store's
    /// next clean-up or recovery removes). A failed write stops the node.
    pub fn on_snapshot_written(&mut self, written: WrittenSnapshot) -> Result<(), ReplicaError> {
        debug_assert!(self.snapshot_running, "a snapshot result nobody asked for");
        self.snapshot_running = false;
        let file_bytes = written.file_bytes?;
        let index = written.snapshot.meta.last.index;
        if index <= self.snapshot_index {
            return Ok(());
        }
        let snap = self.raft.compact(index, written.snapshot.data)?;
        debug_assert_eq!(
            snap.meta, written.snapshot.meta,
            "a snapshot's metadata cannot change once its entries applied"
        );
        self.store.save_written_snapshot(&snap, file_bytes)?;
        self.snapshot_index = index;
        // Entries applied while this one was written may make the next one due already.
        self.maybe_compact()
    }

    /// The consensus core (read-only).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The state machine.
    pub fn state_machine(&self) -> &M {
        &self.sm
    }

    /// Last index applied to (or restored into) the state machine.
    pub fn applied_index(&self) -> LogIndex {
        self.applied
    }

    /// Index of the latest snapshot this node took or installed.
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    /// Proposals still waiting for their index to apply.
    pub fn pending_proposals(&self) -> usize {
        self.waiters.pending_proposals()
    }

    /// Stop the node and hand back its store and state machine (e.g. to crash the store).
    pub fn into_parts(self) -> (S, M) {
        (self.store, self.sm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{Configuration, NodeId};
    use storage::MemStore;

    /// Keeps every applied command; its snapshot is the list.
    #[derive(Default)]
    struct ListSm(Vec<Bytes>);

    impl StateMachine for ListSm {
        fn apply(&mut self, _index: LogIndex, data: &[u8]) -> Bytes {
            self.0.push(Bytes::copy_from_slice(data));
            Bytes::from(self.0.len().to_string())
        }
        fn snapshot(&self) -> Bytes {
            let mut v = Vec::new();
            for b in &self.0 {
                v.extend_from_slice(&(b.len() as u32).to_le_bytes());
                v.extend_from_slice(b);
            }
            v.into()
        }
        fn restore(&mut self, mut data: &[u8]) {
            self.0.clear();
            while !data.is_empty() {
                let n = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
                self.0.push(Bytes::copy_from_slice(&data[4..4 + n]));
                data = &data[4 + n..];
            }
        }
    }

    fn single(store: MemStore, policy: SnapshotPolicy) -> Replica<MemStore, ListSm> {
        Replica::new(Config::new(NodeId(1)), store, ListSm::default(), policy).unwrap()
    }

    /// Propose `i` (as text, token `i`) for each `i` of `range`, one `Ready` each.
    fn propose_each(r: &mut Replica<MemStore, ListSm>, range: std::ops::Range<u64>) {
        for i in range {
            r.propose(Bytes::from(i.to_string()), i).unwrap();
            r.handle_ready(&mut Vec::new()).unwrap();
        }
    }

    fn leader(policy: SnapshotPolicy) -> Replica<MemStore, ListSm> {
        let mut r = single(MemStore::new(Configuration::new([NodeId(1)])), policy);
        r.campaign();
        let mut out: Vec<Message> = Vec::new();
        r.handle_ready(&mut out).unwrap();
        assert!(r.raft().is_leader());
        assert!(out.is_empty(), "a one-node cluster sends nothing");
        r
    }

    #[test]
    fn a_membership_change_is_answered_when_its_entry_applies_and_survives_restart() {
        let mut r = leader(SnapshotPolicy::never());
        r.handle_ready(&mut Vec::new()).unwrap();
        let id = r
            .propose_conf_change(raft::ConfChange::AddLearner(NodeId(2)), 9)
            .unwrap();
        let mut out: Vec<Message> = Vec::new();
        let done = r.handle_ready(&mut out).unwrap();
        assert!(
            done.iter()
                .any(|c| matches!(c, Completion::Applied { token: 9, .. })),
            "{done:?}"
        );
        assert!(r.raft().commit_index() >= id.index);
        assert!(r.raft().configuration().is_learner(NodeId(2)));
        // The configuration entry is in the store: a restart derives the same configuration.
        let (store, _) = r.into_parts();
        let fresh = ListSm::default();
        let r2 = Replica::new(
            Config::new(NodeId(1)),
            store,
            fresh,
            SnapshotPolicy::never(),
        )
        .unwrap();
        assert!(r2.raft().configuration().is_learner(NodeId(2)));
    }

    #[test]
    fn single_node_applies_proposals_and_answers_tokens() {
        let mut r = leader(SnapshotPolicy::never());
        let a = r.propose("a".into(), 10).unwrap();
        let b = r.propose("b".into(), 11).unwrap();
        let done = r.handle_ready(&mut Vec::new()).unwrap();
        assert_eq!(
            done,
            vec![
                Completion::Applied {
                    token: 10,
                    id: a,
                    result: "1".into()
                },
                Completion::Applied {
                    token: 11,
                    id: b,
                    result: "2".into()
                },
            ]
        );
        assert_eq!(r.applied_index(), b.index);
        assert_eq!(
            r.state_machine().0,
            vec![Bytes::from("a"), Bytes::from("b")]
        );
        assert_eq!(r.pending_proposals(), 0);
    }

    #[test]
    fn single_node_read_index_completes_after_apply() {
        let mut r = leader(SnapshotPolicy::never());
        r.propose("a".into(), 1).unwrap();
        r.read(2).unwrap();
        let done = r.handle_ready(&mut Vec::new()).unwrap();
        let read = done.iter().find(|c| c.token() == 2).expect("read answered");
        assert!(matches!(read, Completion::ReadReady { index, .. } if *index <= r.applied_index()));
    }

    #[test]
    fn snapshot_policy_compacts_and_restart_restores() {
        let mut r = leader(SnapshotPolicy::every(3));
        propose_each(&mut r, 0..10);
        assert!(r.snapshot_index() >= LogIndex(3));
        assert!(r.store().snapshot().is_some());
        assert!(r.raft().snapshot().is_some());
        let applied = r.applied_index();
        let (mut store, _) = r.into_parts();
        store.crash();
        let mut r = single(store, SnapshotPolicy::every(3));
        r.campaign();
        for _ in 0..100 {
            r.handle_ready(&mut Vec::new()).unwrap();
            if r.applied_index() >= applied {
                break;
            }
            r.tick();
        }
        assert!(
            r.applied_index() >= applied,
            "the restarted node re-applied its log"
        );
        let sm: Vec<String> = r
            .state_machine()
            .0
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect();
        assert_eq!(sm, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn a_background_snapshot_compacts_only_when_its_result_comes_back() {
        let mut r = leader(SnapshotPolicy::every(3).in_background());
        propose_each(&mut r, 0..4);
        let job = r.take_snapshot_job().expect("a snapshot is due");
        let at = job.index();
        assert!(at >= LogIndex(3));
        assert!(r.take_snapshot_job().is_none(), "one job at a time");
        // The node goes on while the job runs; nothing is compacted yet.
        propose_each(&mut r, 4..10);
        assert!(r.take_snapshot_job().is_none(), "still one job at a time");
        assert_eq!(r.snapshot_index(), LogIndex(0));
        assert!(r.raft().snapshot().is_none());
        r.on_snapshot_written(job.run()).unwrap();
        assert_eq!(r.snapshot_index(), at);
        let snap = r.store().snapshot().expect("the store holds it");
        assert_eq!(snap.meta.last.index, at);
        // The snapshot holds the state as it was when the job was handed out: every command
        // up to its index (the first entry is the leader's no-op).
        let mut sm = ListSm::default();
        sm.restore(&snap.data);
        assert_eq!(sm.0.len() as u64, at.0 - 1);
        // Six entries applied since: the next one is due at once.
        let next = r.take_snapshot_job().expect("the next snapshot is due");
        assert!(next.index() > at);
    }

    #[test]
    fn a_size_aware_policy_waits_for_the_log_to_reach_the_snapshot() {
        let mut r = leader(SnapshotPolicy::every(2).size_aware());
        // A big command makes a big state, hence a big first snapshot.
        r.propose(Bytes::from(vec![7u8; 4096]), 0).unwrap();
        r.handle_ready(&mut Vec::new()).unwrap();
        let first = r.snapshot_index();
        assert!(
            first > LogIndex(0),
            "the first snapshot is due after 2 entries"
        );
        let snap_bytes = r.store().snapshot_bytes();
        assert!(snap_bytes > 4096);
        // Small commands: due by count long before the log reaches the snapshot's size.
        let mut n = 0;
        let before = loop {
            let before = r.store().log_bytes();
            n += 1;
            r.propose(Bytes::from(format!("small {n}")), n).unwrap();
            r.handle_ready(&mut Vec::new()).unwrap();
            if r.snapshot_index() != first {
                break before;
            }
        };
        assert!(n > 50, "snapshotted after {n} small entries");
        assert!(
            before + 64 >= snap_bytes,
            "not before the log reached {snap_bytes} B (it held {before} B)"
        );
    }

    #[test]
    fn a_background_snapshot_superseded_meanwhile_is_dropped() {
        let mut r = leader(SnapshotPolicy::every(2).in_background());
        propose_each(&mut r, 0..3);
        let job = r.take_snapshot_job().expect("due");
        // Compact past the job inline (as a snapshot received from the leader would), then
        // let the job's stale result arrive: it must change nothing.
        propose_each(&mut r, 3..6);
        let applied = r.applied_index();
        assert!(applied > job.index());
        let snap = r.raft.compact(applied, r.sm.snapshot()).unwrap();
        r.store.save_snapshot(&snap).unwrap();
        r.snapshot_index = applied;
        r.on_snapshot_written(job.run()).unwrap();
        assert_eq!(r.snapshot_index(), applied);
        assert_eq!(r.store().snapshot().unwrap().meta.last.index, applied);
        assert_eq!(r.raft().snapshot().unwrap().meta.last.index, applied);
    }

    #[test]
    fn crash_before_sync_loses_nothing_acknowledged() {
        let mut r = leader(SnapshotPolicy::never());
        let id = r.propose("kept".into(), 1).unwrap();
        let done = r.handle_ready(&mut Vec::new()).unwrap();
        assert!(matches!(done[0], Completion::Applied { .. }));
        let (mut store, _) = r.into_parts();
        store.crash();
        assert_eq!(
            store.entry(id.index).map(|e| e.data.clone()),
            Some(Bytes::from("kept"))
        );
    }
}
