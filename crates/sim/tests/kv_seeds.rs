//! Seeded random KV runs (`sim::kvrandom`): `RAFTKV_KV_SEEDS` seeds (default
//! [`KV_SEEDS_DEFAULT`]) starting at `RAFTKV_KV_SEED_START` (default 0), split across threads.
//! Each derives the cluster, the client mix and a fault schedule from its seed, and checks
//! exactly-once appends, trimmed logs and a linearizable history. A failure prints the one
//! command that replays each failing seed.
//!
//! Threads live only here, in the runner: each seed runs on one thread from start to end,
//! so its trace depends on the seed alone.

use sim::{kv_repro_command, run_kv_random, KvRunReport};
use std::sync::Mutex;

mod seedrun;
use seedrun::env_u64;

/// Seeds CI runs.
const KV_SEEDS_DEFAULT: u64 = 200;

#[derive(Default)]
struct Totals {
    seeds: u64,
    ops: u64,
    pending: u64,
    ops_max: (usize, u64),
    faults: u64,
    crashes: u64,
    power_cuts: u64,
    partitions: u64,
    sim_ms: u64,
}

impl Totals {
    fn add(&mut self, r: &KvRunReport) {
        self.seeds += 1;
        self.ops += r.ops as u64;
        self.pending += r.pending as u64;
        self.ops_max = self.ops_max.max((r.ops, r.seed));
        self.faults += r.faults;
        self.crashes += r.crashes;
        self.power_cuts += r.power_cuts;
        self.partitions += r.partitions;
        self.sim_ms += r.sim_ms;
    }
}

/// Many seeds of random faults under clerks: every history linearizable, every append
/// exactly once and in order, every clerk finished once healed.
#[test]
fn random_kv_seeds() {
    let seeds = env_u64("RAFTKV_KV_SEEDS", KV_SEEDS_DEFAULT);
    let start = env_u64("RAFTKV_KV_SEED_START", 0);
    let totals = Mutex::new(Totals::default());
    let failures = seedrun::run_all(start, seeds, run_kv_random, |report| {
        totals.lock().unwrap().add(&report)
    });

    let t = totals.into_inner().unwrap();
    println!(
        "{} KV seeds passed ({} simulated s): {} operations ({} pending; most: {} for seed {}), \
         {} faults, {} crashes ({} power cuts mid-write), {} partitions",
        t.seeds,
        t.sim_ms / 1000,
        t.ops,
        t.pending,
        t.ops_max.0,
        t.ops_max.1,
        t.faults,
        t.crashes,
        t.power_cuts,
        t.partitions
    );
    for (seed, why) in &failures {
        eprintln!(
            "\nKV seed {seed} FAILED: {why}\n  reproduce: {}",
            kv_repro_command(*seed)
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {seeds} KV seeds failed (see above)",
        failures.len()
    );
}

/// Same seed ⇒ identical run (report and trace); different seeds ⇒ different traces.
#[test]
fn same_kv_seed_same_run() {
    for seed in [3, 77] {
        let a = run_kv_random(seed);
        assert_eq!(
            a,
            run_kv_random(seed),
            "KV seed {seed} replayed differently"
        );
        assert_ne!(a.trace_hash, run_kv_random(seed + 1).trace_hash);
    }
}
