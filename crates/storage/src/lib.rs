//! raftkv storage: the [`LogStore`] seam between a node's logic and its disk, and the durable
//! write-ahead log behind it.
//!
//! Module map:
//! - [`log_store`]: the [`LogStore`] trait every store implements and [`StorageError`];
//! - [`mem`]: [`MemStore`], an in-memory store that models a disk with a write cache;
//! - [`disk`]: [`DiskStore`], the segmented write-ahead log with snapshot files and group
//!   commit; [`recovery`] opens and repairs it; [`syncer`] is its sync thread;
//! - [`codec`]: every byte format the WAL writes (framing, CRC32C, headers);
//! - [`fs`]: the file-system seam ([`StdFs`] is the real disk); [`fault_fs`]: [`FaultFs`], an
//!   in-memory disk that loses unsynced data and tears writes when the power is cut;
//! - [`conformance`]: the behavioural suite every `LogStore` must pass.
//!
//! Owns: durable Raft state — hard state, log entries after the latest snapshot, the snapshot.
//! Must never: interpret entry payloads, talk to the network, or decide what to persist (the
//! core's `Ready` decides; the store only obeys, in order).

pub mod codec;
pub mod conformance;
pub mod disk;
pub mod fault_fs;
pub mod fs;
pub mod log_store;
pub mod mem;
pub mod recovery;
pub mod syncer;

pub use codec::Identity;
pub use disk::{DiskOptions, DiskStore, RecoveryReport};
pub use fault_fs::{FaultFs, Restart};
pub use fs::{Fs, FsFile, StdFs};
pub use log_store::{LogStore, SnapshotWriter, StorageError, SyncState};
pub use mem::MemStore;
pub use recovery::read_identity;
pub use syncer::{SyncDone, SyncListener, SyncTicket};
