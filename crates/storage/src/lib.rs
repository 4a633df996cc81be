//! raftkv storage: the [`LogStore`] seam between a node's logic and its disk.
//!
//! Module map:
//! - [`log_store`]: the [`LogStore`] trait every store implements (the in-memory one here, the
//!   on-disk WAL later) and [`StorageError`];
//! - [`mem`]: [`MemStore`], an in-memory store that models a disk: writes are volatile until
//!   `sync`, and a crash keeps only what was synced (optionally plus a prefix of the rest);
//! - [`conformance`]: the behavioural suite every `LogStore` must pass (in-memory and, later,
//!   on-disk alike).
//!
//! Owns: durable Raft state — hard state, log entries after the latest snapshot, the snapshot.
//! Must never: interpret entry payloads, talk to the network, or decide what to persist (the
//! core's `Ready` decides; the store only obeys, in order).

pub mod conformance;
pub mod log_store;
pub mod mem;

pub use log_store::{LogStore, StorageError};
pub use mem::MemStore;
