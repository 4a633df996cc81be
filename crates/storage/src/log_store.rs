//! The storage seam: what a node needs from its disk.
//!
//! Owns: the [`LogStore`] contract and its error enum. Must never: depend on a concrete medium
//! (files, memory) — that is each implementation's business.

use raft::{Entry, HardState, InitialState, LogIndex, Snapshot, Term};
use std::path::PathBuf;
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
    /// A file's bytes at `offset` failed validation (bad checksum, impossible record) with
    /// valid data after them: the store refuses to start rather than drop committed data.
    #[error("corrupt {file} at offset {offset}: {reason}")]
    CorruptFile {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The data directory was written by a different cluster or node.
    #[error("{file} belongs to cluster {found_cluster:#x} node {found_node}, not cluster {expected_cluster:#x} node {expected_node}: wrong --data-dir?")]
    WrongCluster {
        file: PathBuf,
        expected_cluster: u64,
        expected_node: u64,
        found_cluster: u64,
        found_node: u64,
    },
    /// The data directory was written in a format this build does not read.
    #[error("{file} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        file: PathBuf,
        found: u32,
        supported: u32,
    },
    /// An entry is larger than a record may be.
    #[error("entry {index:?} of {bytes} bytes exceeds the record limit of {max} bytes")]
    TooLarge {
        index: LogIndex,
        bytes: usize,
        max: usize,
    },
    /// Entries `lo .. hi` were asked for but the store holds only `first ..= last`.
    #[error("entries {lo:?}..{hi:?} requested; the store holds {first:?}..={last:?}")]
    OutOfRange {
        lo: LogIndex,
        hi: LogIndex,
        first: LogIndex,
        last: LogIndex,
    },
    /// The medium itself failed (disk full, I/O error). After a failed write or sync the
    /// store refuses further writes: the node must restart and recover from what is durable.
    #[error("i/o error: {0}")]
    Io(String),
}

/// What [`LogStore::begin_sync`] achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Every write so far is durable.
    Durable,
    /// A sync covering every write so far is under way; the store will report this ticket.
    Pending(crate::syncer::SyncTicket),
}

/// Makes a snapshot's file durable on any thread, apart from the store (see
/// [`LogStore::snapshot_writer`]); returns the file's size in bytes.
pub type SnapshotWriter =
    std::sync::Arc<dyn Fn(&Snapshot) -> Result<usize, StorageError> + Send + Sync>;

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

    /// A writer that does the slow half of [`LogStore::save_snapshot`] — encoding the file
    /// and making it durable — without the store, so another thread can run it while the
    /// store keeps logging; [`LogStore::save_written_snapshot`] then adopts the file. The
    /// default writes nothing: a store that keeps its snapshot in memory does everything in
    /// `save_written_snapshot`.
    fn snapshot_writer(&self) -> SnapshotWriter {
        std::sync::Arc::new(|_| Ok(0))
    }

    /// [`LogStore::save_snapshot`] for a snapshot whose file this store's
    /// [`LogStore::snapshot_writer`] already made durable (`file_bytes` long). The default
    /// is `save_snapshot`.
    fn save_written_snapshot(
        &mut self,
        snapshot: &Snapshot,
        file_bytes: usize,
    ) -> Result<(), StorageError> {
        let _ = file_bytes;
        self.save_snapshot(snapshot)
    }

    /// Make every write so far durable.
    fn sync(&mut self) -> Result<(), StorageError>;

    /// Begin making every write so far durable. A store with a background sync thread
    /// returns [`SyncState::Pending`] at once and later reports the ticket through its own
    /// channel; the default syncs before returning.
    fn begin_sync(&mut self) -> Result<SyncState, StorageError> {
        self.sync()?;
        Ok(SyncState::Durable)
    }

    /// Index of the first entry after the snapshot (snapshot index + 1).
    fn first_index(&self) -> LogIndex;

    /// Index of the last entry written (the snapshot index when there is none after it).
    fn last_index(&self) -> LogIndex;

    /// Term of the entry at `index`, or of the snapshot when `index` is its last index;
    /// `None` outside `snapshot index ..= last_index`.
    fn term(&self, index: LogIndex) -> Option<Term>;

    /// Entries `lo .. hi` (half-open) as written; an error if the range is not stored.
    fn entries(&self, lo: LogIndex, hi: LogIndex) -> Result<Vec<Entry>, StorageError>;

    /// Bytes of Raft state (hard state + log entries) as written.
    fn log_bytes(&self) -> usize;

    /// Bytes of the stored snapshot as written (0 without one).
    fn snapshot_bytes(&self) -> usize;
}

/// The check every [`LogStore::entries`] makes: `lo .. hi` must lie within `first ..= last`.
pub(crate) fn check_range(
    lo: LogIndex,
    hi: LogIndex,
    first: LogIndex,
    last: LogIndex,
) -> Result<(), StorageError> {
    if lo > hi || lo < first || hi > last.next() {
        return Err(StorageError::OutOfRange {
            lo,
            hi,
            first,
            last,
        });
    }
    Ok(())
}

/// The check every [`LogStore::append`] makes: `entries` are contiguous, start above the
/// snapshot at `snapshot` and at most one past `last`.
pub(crate) fn check_append(
    entries: &[Entry],
    snapshot: LogIndex,
    last: LogIndex,
) -> Result<(), StorageError> {
    let Some(head) = entries.first() else {
        return Ok(());
    };
    if head.index <= snapshot {
        return Err(StorageError::Compacted {
            first: head.index,
            snapshot,
        });
    }
    if head.index > last.next() {
        return Err(StorageError::Gap {
            first: head.index,
            last,
        });
    }
    for pair in entries.windows(2) {
        if pair[1].index != pair[0].index.next() {
            return Err(StorageError::NotContiguous { at: pair[1].index });
        }
    }
    Ok(())
}
