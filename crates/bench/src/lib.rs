//! raftkv benchmarks: our consensus core against tikv's raft-rs on the same workload.
//!
//! Owns: the in-process cluster driver shared by both implementations ([`driver`]), the
//! workload parameters and the toy state machine ([`workload`]), a counting global allocator
//! ([`alloc`]), the Vec-backed store our core persists into ([`memlog`]), one adapter per
//! implementation ([`ours`], [`raftrs`]) and the report ([`report`]). Must never: change how either core behaves (only public APIs are used), or
//! give one implementation work the other does not do.
//!
//! The binary `core_throughput` runs both halves in one process and prints the ratio.
//!
//! [`wal`] benchmarks the durable write-ahead log on the real disk (binary `wal_bench`):
//! group-commit throughput next to a raw `write`+`fdatasync` loop, and recovery time and
//! peak RSS of a large log.
//!
//! [`procs`] starts real `raftkv serve` children on loopback for the process benchmarks:
//! [`failover`] (binary `failover`: SIGKILL the leader, time the new election and the first
//! acknowledged write) and [`restart`] (binary `restart`: start a member whose WAL holds 1M
//! entries, time it until it serves).

pub mod alloc;
pub mod driver;
pub mod failover;
pub mod memlog;
pub mod ours;
pub mod procs;
pub mod raftrs;
pub mod report;
pub mod restart;
pub mod wal;
pub mod workload;
