//! raftkv's deterministic cluster simulator: many [`replica::Replica`] nodes — the same code
//! the server runs — in one process, on virtual time, with one seeded RNG.
//!
//! Module map:
//! - [`config`]: [`SimConfig`], [`NetConfig`] (the 6.824 labrpc fault model and more);
//! - [`cluster`]: [`Cluster`] — event queue, virtual clock, routing, crashes and restarts,
//!   membership (nodes added empty beyond the initial ids, changes proposed, processes
//!   retired);
//! - [`net`]: topology (connected flags, one-way links, partitions) and [`NetStats`];
//! - [`check`]: Figure-3 invariants checked after every event, incrementally, and the
//!   membership ones (one uncommitted change per leader's log, one member per committed
//!   change, leaders are voters);
//! - [`app`]: [`SimStateMachine`], which records every applied entry (and snapshots them, in
//!   full or as a hash-chain digest);
//! - [`machine`]: [`NodeMachine`], what a node applies entries to: the recorder, plus the
//!   real `kv::KvStateMachine` when [`SimConfig::kv`] asks for the KV service;
//! - [`disk`]: [`SimStore`], the real write-ahead log (`storage::DiskStore`) over a
//!   power-cuttable `storage::FaultFs`, with an audit trail for Log Matching;
//! - [`random`]: [`run_random`], seeded random-fault runs with a liveness phase, and
//!   [`run_random_with`] with random membership changes mixed in;
//! - [`kvsim`]: [`KvSim`], the KV service on a cluster with 6.824-style clerks (sessions,
//!   retries, ReadIndex reads) recording a `check::History`;
//! - [`generic`]: [`run_generic`], 6.824's kvraft `GenericTest` (client mix, partitioner,
//!   crash rounds, append-order, size and linearizability checks) on [`KvSim`];
//! - [`kvrandom`]: [`run_kv_random`], seeded random KV runs (client mix and a fault schedule
//!   from one seed) checked the same way;
//! - [`hash`]: deterministic hashing for traces and registries;
//! - [`trace`]: recording a run as the dashboard's events ([`Cluster::record_trace`],
//!   [`TraceSink`]), for `raftkv sim --trace` and the page's replay.
//!
//! The model: each node ticks every `tick_ms` (with a seeded phase); a message is routed when
//! sent (dropped if a partition, a crash or the loss model says so, else scheduled after a
//! random delay, possibly twice) and checked again when delivered (partitions and crashes in
//! between drop it). A crash is a power cut on the node's file system: it keeps what the node
//! synced (sometimes also its completed writes, the one in flight torn), and the restarted
//! node recovers its write-ahead log as a real one would. Same seed and same calls ⇒ the same
//! event trace ([`Cluster::trace_hash`]).
//!
//! Seeded runs: `cargo test -p sim --profile checked --test seeds` runs 500 seeds of one simulated
//! minute each (`RAFTKV_SIM_SEEDS=20000` for more, `RAFTKV_SIM_SEED_START`,
//! `RAFTKV_SIM_MINUTES`); a failing seed prints its replay command,
//! `cargo run -p sim --profile checked -- --seed N [--minutes M]`. The same test runs 1,000 seeds
//! with random membership changes (`RAFTKV_SIM_MEMBERSHIP_SEEDS`,
//! `RAFTKV_SIM_MEMBERSHIP_SEED_START`), replayed with `--membership --seed N`; the scripted
//! membership scenarios are `scenarios_membership`.
//!
//! KV level: the scenario tests `scenarios_4a`/`scenarios_4b` (6.824 kvraft) and
//! `cargo test -p sim --profile checked --test kv_seeds` (seeded random KV runs; `RAFTKV_KV_SEEDS`,
//! `RAFTKV_KV_SEED_START`); a failing KV seed prints
//! `cargo run -p sim --profile checked -- --kv --seed N`.
//!
//! Owns: simulated time, network, disks and faults. Must never: use the wall clock, threads,
//! tokio, or any randomness not derived from the seed.
//!
//! ```
//! use sim::{Cluster, SimConfig};
//! let mut c = Cluster::new(SimConfig::new(3, 42));
//! assert!(c.run_until(5_000, |c| !c.leaders().is_empty()));
//! let (leader, _) = c.leaders()[0];
//! let id = c.propose(leader, "x".into()).unwrap();
//! assert!(c.run_until(2_000, |c| c.n_committed(id.index).0 == 3));
//! ```

pub mod app;
pub mod check;
pub mod cluster;
pub mod config;
pub mod disk;
pub mod generic;
pub mod hash;
pub mod kvrandom;
pub mod kvsim;
pub mod machine;
pub mod net;
pub mod random;
pub mod trace;

pub use app::{AppliedEntry, Recording, SimStateMachine};
pub use cluster::{Cluster, Counters};
pub use config::{LongReorder, NetConfig, SimConfig};
pub use disk::SimStore;
pub use generic::{run_generic, GenericParams, GenericReport};
pub use kvrandom::{kv_repro_command, run_kv_random, run_kv_random_recorded, KvRunReport};
pub use kvsim::{ClerkConfig, ClerkId, KvOp, KvReply, KvSim, Program};
pub use machine::NodeMachine;
pub use net::NetStats;
pub use random::{
    config_for_seed, repro_command, repro_command_with, run_random, run_random_recorded,
    run_random_traced, run_random_with, RandomOptions, RunReport,
};
pub use trace::{Trace, TraceSink};
