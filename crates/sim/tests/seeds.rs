//! Seeded random-fault runs: `RAFTKV_SIM_SEEDS` seeds (default 500), each one simulated
//! minute (`RAFTKV_SIM_MINUTES`), starting at `RAFTKV_SIM_SEED_START` (default 0), split
//! across threads. A failure prints the one command that replays each failing seed.
//!
//! Threads live only here, in the runner: each seed runs on one thread from start to end,
//! so its trace depends on the seed alone.

use sim::{repro_command, run_random, RunReport};
use std::cell::RefCell;
use std::panic;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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
    events: u64,
    events_max: (u64, u64),
    elections: u64,
    commits: u64,
    crashes: u64,
    partitions: u64,
    sim_ms: u64,
}

impl Totals {
    fn add(&mut self, r: &RunReport) {
        self.seeds += 1;
        self.events += r.events;
        self.events_max = self.events_max.max((r.events, r.seed));
        self.elections += r.elections as u64;
        self.commits += r.commits;
        self.crashes += r.crashes;
        self.partitions += r.partitions;
        self.sim_ms += r.sim_ms;
    }
}

#[test]
fn random_fault_seeds() {
    let seeds = env_u64("RAFTKV_SIM_SEEDS", 500);
    let start = env_u64("RAFTKV_SIM_SEED_START", 0);
    let minutes = env_u64("RAFTKV_SIM_MINUTES", 1);
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
                match panic::catch_unwind(|| run_random(seed, minutes)) {
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
        "{} seeds passed ({} simulated s): {} events (most: {} for seed {}), {} elections, \
         {} commits, {} crashes, {} partitions",
        t.seeds,
        t.sim_ms / 1000,
        t.events,
        t.events_max.0,
        t.events_max.1,
        t.elections,
        t.commits,
        t.crashes,
        t.partitions
    );
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    for (seed, why) in &failures {
        eprintln!(
            "\nseed {seed} FAILED: {why}\n  reproduce: {}",
            repro_command(*seed, minutes)
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed (see above)",
        failures.len()
    );
}

/// Same seed ⇒ identical event trace (and report); different seeds ⇒ different traces.
#[test]
fn same_seed_same_trace() {
    for seed in [0, 7, 123_456_789] {
        let a = run_random(seed, 1);
        let b = run_random(seed, 1);
        assert_eq!(a, b, "seed {seed} replayed differently");
        let other = run_random(seed + 1, 1);
        assert_ne!(
            a.trace_hash,
            other.trace_hash,
            "seeds {seed} and {} collide",
            seed + 1
        );
    }
}
