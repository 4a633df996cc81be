//! Seeded random KV runs (`sim::kvrandom`): `RAFTKV_KV_SEEDS` seeds (default
//! [`KV_SEEDS_DEFAULT`]) starting at `RAFTKV_KV_SEED_START` (default 0), split across threads.
//! Each derives the cluster, the client mix and a fault schedule from its seed, and checks
//! exactly-once appends, trimmed logs and a linearizable history. A failure prints the one
//! command that replays each failing seed.
//!
//! Threads live only here, in the runner: each seed runs on one thread from start to end,
//! so its trace depends on the seed alone.

use sim::{kv_repro_command, run_kv_random, KvRunReport};
use std::cell::RefCell;
use std::panic;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Seeds CI runs.
const KV_SEEDS_DEFAULT: u64 = 200;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

thread_local! {
    /// The last panic message (with its location) on this thread.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

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
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;

    let next = AtomicU64::new(start);
    let totals = Mutex::new(Totals::default());
    let failures: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
    }));
    std::thread::scope(|s| {
        for _ in 0..threads.min(seeds.max(1)) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= start + seeds {
                    break;
                }
                match panic::catch_unwind(|| run_kv_random(seed)) {
                    Ok(report) => totals.lock().unwrap().add(&report),
                    Err(_) => {
                        let why = LAST_PANIC
                            .with(|p| p.borrow_mut().take())
                            .unwrap_or_default();
                        failures.lock().unwrap().push((seed, why));
                    }
                }
            });
        }
    });
    panic::set_hook(default_hook);

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
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
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
