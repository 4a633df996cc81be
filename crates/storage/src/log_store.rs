//! The storage seam: what a node needs from its disk.
//!
//! Owns: the [`LogStore`] contract and its error enum. Must never: depend on a concrete medium
//! (files, memory) — that is each implementation's business.

use raft::{Entry, HardState, InitialState, LogIndex, Snapshot};
use thiserror::Error;

/// Why a storage operation failed. Each variant carries what the caller needs to report it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// `append` would leave a hole: the log ends at `last` but entries start at `first`.
    #[error("append at {first:?} leaves a gap after the last stored index {last:?}")]
    Gap { first: LogIndex, last: LogIndex },
    /// `append` was given entries whose indexes are not consecutive.
    #[error("entries to append are not contiguous at {at:?}")]
    NotContiguous { at: LogIndex },
    /// `append` reached into the part of the log a snapshot already covers.
    #[error("append at {first:?} is at or below the snapshot index {snapshot:?}")]
    Compacted { first: LogIndex, snapshot: LogIndex },
    /// `save_snapshot` was given a snapshot older than the stored one.
    #[error("snapshot at {index:?} is older than the stored snapshot at {stored:?}")]
    StaleSnapshot { index: LogIndex, stored: LogIndex },
    /// Stored data failed validation while reading it back.
    #[error("corrupt storage: {what}")]
    Corrupt { what: String },
    /// The medium itself failed (disk full, I/O error).
    #[error("i/o error: {0}")]
    Io(String),
}

/// Durable Raft state: hard state, log entries and the latest snapshot.
///
/// Writes may be buffered; only [`LogStore::sync`] promises they survive a crash. Writes are
/// applied in the order they are made, so a crash keeps a prefix of them.
pub trait LogStore {
    /// What a restarting node starts from: hard state, snapshot and the entries after it.
    fn initial_state(&self) -> Result<InitialState, StorageError>;

    /// Append `entries` (contiguous). Stored entries with index ≥ `entries[0].index` are
    /// discarded first (conflict truncation). Empty input is a no-op.
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError>;

    /// Replace the hard state (term, vote, commit).
    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError>;

    /// Store `snapshot` as the latest one and discard the entries it covers. The entries after
    /// it are kept only if the log holds an entry with the snapshot's last `EntryId`;
    /// otherwise the whole log is discarded (the snapshot replaces a divergent log).
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError>;

    /// Make every write so far durable.
    fn sync(&mut self) -> Result<(), StorageError>;

    /// Bytes of Raft state (hard state + log entries) as written.
    fn log_bytes(&self) -> usize;

    /// Bytes of the stored snapshot as written (0 without one).
    fn snapshot_bytes(&self) -> usize;
}
