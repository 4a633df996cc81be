//! The checks behind raftkv's fuzz targets, as a library so that they can also be replayed
//! from a plain test or a debugger.
//!
//! - [`decode`]: `storage::codec` decoders on arbitrary bytes (target `wal_record_decode`);
//! - [`recovery`]: a damaged WAL on a `FaultFs`, recovered and compared with a model (target
//!   `wal_recovery`);
//! - [`peer`]: a peer connection's hello, attributes and `server::wire` frames (target
//!   `peer_frame_decode`);
//! - [`command`]: the `kv` state machine's log entries, replies and snapshots (target
//!   `client_command_decode`);
//! - [`grpc`]: etcd and raftkv client requests through the server's strict check, prost,
//!   `server::convert` and the log (target `client_grpc_decode`).
//!
//! `peer`, `command` and `grpc` also give [`seeds`](peer::seeds): valid inputs to mutate,
//! which `tests/smoke.rs` uses to run every check on stable without libFuzzer.
//!
//! Owns: input interpretation and the oracles. Must never: touch the real disk or the
//! network, or call anything but the public API of the crates it checks.

pub mod command;
pub mod decode;
pub mod grpc;
pub mod peer;
pub mod recovery;
