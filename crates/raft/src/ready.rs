//! The `Ready` batch: everything the driver must do, in order, before calling `advance`.
//!
//! Owns: the shape of the core's output. Ordering lives in the types: `messages` may go at
//! once; `persisted_messages` only after `hard_state`, `snapshot` and `entries` are durable.
//! Must never: be partially handled — hand the whole batch back to `advance`.

use crate::message::Message;
use crate::types::{Entry, EntryId, HardState, LogIndex, NodeId, Snapshot, Term};

/// A node's role.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// Volatile state the driver may want to observe (not persisted).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SoftState {
    pub role: Role,
    pub leader: NodeId,
    pub term: Term,
}

/// A ReadIndex answer: once the state machine has applied `index`, a read for `ctx` may be
/// served linearizably.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReadState {
    pub ctx: u64,
    pub index: LogIndex,
}

/// A ReadIndex request that can no longer be served (leadership lost, or the leader refused).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReadFailure {
    pub ctx: u64,
}

/// One batch of work. Handle in this order: 1. persist `hard_state`, `snapshot`, `entries`
/// (durably if `must_sync`); 2. send `messages` (may also be sent before 1) and then
/// `persisted_messages`; 3. restore `snapshot` into the state machine if present, then apply
/// `committed_entries`; serve `read_states` once applied ≥ their index; 4. `advance(ready)`.
#[derive(Default, Debug)]
pub struct Ready {
    /// Present when role, leader or term changed since the last `Ready`.
    pub soft_state: Option<SoftState>,
    /// Present when term, vote or commit changed.
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader: persist it (discarding log entries it covers)
    /// and restore the state machine from it.
    pub snapshot: Option<Snapshot>,
    /// Entries to append. Any stored entry with index ≥ `entries[0].index` must be
    /// discarded first (conflict truncation).
    pub entries: Vec<Entry>,
    /// Messages that may be sent now, even before persisting.
    pub messages: Vec<Message>,
    /// Messages that may be sent only after this batch is durable.
    pub persisted_messages: Vec<Message>,
    /// Committed entries to apply, in index order, contiguous from applied + 1.
    pub committed_entries: Vec<Entry>,
    /// Confirmed linearizable reads.
    pub read_states: Vec<ReadState>,
    /// Reads that failed and must be retried elsewhere.
    pub read_failures: Vec<ReadFailure>,
    /// True when `hard_state` (term/vote), `entries` or `snapshot` must be fsynced before
    /// `persisted_messages` go out. (A commit-only hard-state change does not need it.)
    pub must_sync: bool,
}

impl Ready {
    /// The last log position this batch writes (its last entry, else its snapshot): what the
    /// driver reports to [`crate::Raft::on_persisted`] once the batch is durable.
    pub fn last_written(&self) -> Option<EntryId> {
        match (self.entries.last(), &self.snapshot) {
            (Some(e), _) => Some(e.id()),
            (None, Some(s)) => Some(s.meta.last),
            (None, None) => None,
        }
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.soft_state.is_none()
            && self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.persisted_messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
            && self.read_failures.is_empty()
    }
}
