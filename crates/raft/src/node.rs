//! STUB: public API only; implementation in progress.
#![allow(unused)]
use crate::*;
use bytes::Bytes;

/// What a node starts from: its durable state.
#[derive(Clone, Debug, Default)]
pub struct InitialState {
    pub hard_state: HardState,
    /// The latest durable snapshot, if any; the state machine is restored from it and
    /// `applied` starts at its last index.
    pub snapshot: Option<Snapshot>,
    /// Durable log entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
    /// Membership when there is no snapshot and no configuration entry (bootstrap).
    pub config: Configuration,
}

impl InitialState {
    /// A brand-new node of a brand-new cluster.
    pub fn bootstrap(config: Configuration) -> Self {
        InitialState { config, ..Default::default() }
    }
}

/// A summary of one node's state, for checks, metrics and the dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub vote: NodeId,
    pub leader: NodeId,
    pub commit: LogIndex,
    pub applied: LogIndex,
    pub first_index: LogIndex,
    pub last: EntryId,
    pub snapshot: EntryId,
}

/// One node's Raft state machine.
pub struct Raft {}

impl Raft {
    pub fn new(config: Config, initial: InitialState) -> Result<Self, Error> { todo!() }
    /// Advance logical time by one tick.
    pub fn tick(&mut self) { todo!() }
    /// Feed a message from a peer.
    pub fn step(&mut self, msg: Message) -> Result<(), Error> { todo!() }
    /// Append a command (leader only). Returns the id the entry will have if it commits.
    pub fn propose(&mut self, data: Bytes) -> Result<EntryId, ProposeError> { todo!() }
    /// Start a linearizable read; the answer comes back as a `ReadState` (or `ReadFailure`)
    /// with this `ctx` in a later `Ready`. Works on followers (forwarded to the leader).
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadError> { todo!() }
    /// Hand leadership to `to` (leader only).
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> { todo!() }
    /// Start an election now (as if the election timer fired).
    pub fn campaign(&mut self) { todo!() }
    pub fn has_ready(&self) -> bool { todo!() }
    pub fn ready(&mut self) -> Ready { todo!() }
    pub fn advance(&mut self, ready: Ready) { todo!() }
    /// The application took a snapshot of its state at `index` (≤ applied): keep it (for
    /// lagging followers), discard log entries ≤ index, and return it for the driver to persist.
    pub fn compact(&mut self, index: LogIndex, data: Bytes) -> Result<Snapshot, CompactError> { todo!() }

    pub fn id(&self) -> NodeId { todo!() }
    pub fn term(&self) -> Term { todo!() }
    pub fn role(&self) -> Role { todo!() }
    pub fn is_leader(&self) -> bool { todo!() }
    /// The leader this node currently follows (or is).
    pub fn leader(&self) -> Option<NodeId> { todo!() }
    pub fn commit_index(&self) -> LogIndex { todo!() }
    pub fn applied_index(&self) -> LogIndex { todo!() }
    pub fn last_index(&self) -> LogIndex { todo!() }
    pub fn configuration(&self) -> &Configuration { todo!() }
    pub fn snapshot(&self) -> Option<&Snapshot> { todo!() }
    /// The entry at `index`, if it is in the in-memory log (not compacted).
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> { todo!() }
    /// Term of the entry at `index` (including the snapshot's last entry and index 0).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> { todo!() }
    /// Entries from `lo` (inclusive) to the last index.
    pub fn entries_from(&self, lo: LogIndex) -> &[Entry] { todo!() }
    pub fn status(&self) -> Status { todo!() }
}
