//! Seeded random-fault runs: `RAFTKV_SIM_SEEDS` seeds (default 500), each one simulated
//! minute (`RAFTKV_SIM_MINUTES`), starting at `RAFTKV_SIM_SEED_START` (default 0), split
//! across threads. A failure prints the one command that replays each failing seed.
//!
//! The same with random membership changes mixed in (`RandomOptions::membership`):
//! `RAFTKV_SIM_MEMBERSHIP_SEEDS` seeds (default 1000), from `RAFTKV_SIM_MEMBERSHIP_SEED_START`
//! (default 0); a failing seed prints `cargo run -p sim --profile checked -- --membership --seed N`.
//!
//! Threads live only here, in the runner: each seed runs on one thread from start to end,
//! so its trace depends on the seed alone.

use sim::{repro_command_with, run_random, run_random_with, RandomOptions, RunReport};
use std::sync::Mutex;

mod seedrun;
use seedrun::env_u64;

#[derive(Default)]
struct Totals {
    seeds: u64,
    events: u64,
    events_max: (u64, u64),
    elections: u64,
    commits: u64,
    crashes: u64,
    /// Seeds whose WAL syncs completed later, as the server's sync thread does.
    deferred_sync_seeds: u64,
    partitions: u64,
    conf_changes: u64,
    nodes_added: u64,
    nodes_retired: u64,
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
        self.deferred_sync_seeds += u64::from(r.syncs_deferred > 0);
        self.partitions += r.partitions;
        self.conf_changes += r.conf_changes;
        self.nodes_added += r.nodes_added;
        self.nodes_retired += r.nodes_retired;
        self.sim_ms += r.sim_ms;
    }
}

#[test]
fn random_fault_seeds() {
    let seeds = env_u64("RAFTKV_SIM_SEEDS", 500);
    let start = env_u64("RAFTKV_SIM_SEED_START", 0);
    run_seeds(seeds, start, RandomOptions::default());
}

/// Random faults and random membership changes (nodes added beyond the initial ids as
/// learners or voters, promotions, removals of followers and leaders, retired processes).
#[test]
fn random_membership_seeds() {
    let seeds = env_u64("RAFTKV_SIM_MEMBERSHIP_SEEDS", 1000);
    let start = env_u64("RAFTKV_SIM_MEMBERSHIP_SEED_START", 0);
    run_seeds(seeds, start, RandomOptions { membership: true });
}

fn run_seeds(seeds: u64, start: u64, opts: RandomOptions) {
    let minutes = env_u64("RAFTKV_SIM_MINUTES", 1);
    let totals = Mutex::new(Totals::default());
    let failures = seedrun::run_all(
        start,
        seeds,
        |seed| run_random_with(seed, minutes, opts),
        |report| totals.lock().unwrap().add(&report),
    );

    let t = totals.into_inner().unwrap();
    println!(
        "{} seeds passed ({} simulated s{}): {} events (most: {} for seed {}), {} elections, \
         {} commits, {} crashes, {} partitions, {} membership changes ({} nodes added, {} \
         retired); {} seeds with deferred syncs",
        t.seeds,
        t.sim_ms / 1000,
        if opts.membership {
            ", membership changes"
        } else {
            ""
        },
        t.events,
        t.events_max.0,
        t.events_max.1,
        t.elections,
        t.commits,
        t.crashes,
        t.partitions,
        t.conf_changes,
        t.nodes_added,
        t.nodes_retired,
        t.deferred_sync_seeds
    );
    // Half the seeds sync as the server's sync thread does; a config change that lost that
    // would silently stop testing the server's durability path.
    assert!(
        t.seeds < 50 || t.deferred_sync_seeds * 4 >= t.seeds,
        "only {} of {} seeds deferred their syncs",
        t.deferred_sync_seeds,
        t.seeds
    );
    for (seed, why) in &failures {
        eprintln!(
            "\nseed {seed} FAILED: {why}\n  reproduce: {}",
            repro_command_with(*seed, minutes, opts)
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
        let m = RandomOptions { membership: true };
        let (a, b) = (run_random_with(seed, 1, m), run_random_with(seed, 1, m));
        assert_eq!(
            a, b,
            "seed {seed} with membership changes replayed differently"
        );
    }
}
