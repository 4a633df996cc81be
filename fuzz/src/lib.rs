//! The checks behind raftkv's fuzz targets, as a library so that they can also be replayed
//! from a plain test or a debugger.
//!
//! - [`decode`]: `storage::codec` decoders on arbitrary bytes (target `wal_record_decode`);
//! - [`recovery`]: a damaged WAL on a `FaultFs`, recovered and compared with a model (target
//!   `wal_recovery`).
//!
//! Owns: input interpretation and the oracles. Must never: touch the real disk, or call
//! anything but the storage crate's public API.

pub mod decode;
pub mod recovery;
