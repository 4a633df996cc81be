//! The KV scenarios' (4A/4B) shared helpers over `sim::KvSim` and `sim::generic`.
//!
//! Owns: how many seeds a KV scenario runs, running a GenericTest row per seed, and the
//! measurements printed with `RAFTKV_SCENARIO_VERBOSE=1`.
//! Must never: sleep on a real clock or use an unseeded RNG.

use super::{run_seeds, Scenario, VERBOSE_ENV};
use sim::generic::{run_generic, GenericParams, GenericReport, SpeedReport};

/// Seeds a KV scenario runs by default (`RAFTKV_SCENARIO_SEEDS=N` for more).
pub const KV_SEEDS: u64 = 3;

/// Seeds of the GenericTest rows on a reliable network: with no loss, clerks append
/// thousands of times per key per run (histories of 2,000–60,000 operations, values of
/// several KB), and the linearizability check, whose cost grows with value length, takes
/// seconds. The random KV seeds (`kv_seeds`) add the breadth.
pub const KV_SEEDS_LONG_VALUES: u64 = 1;

/// One 6.824 GenericTest row: [`KV_SEEDS_LONG_VALUES`] seeds on a reliable network, else
/// [`KV_SEEDS`].
pub fn generic(sc: Scenario, p: GenericParams) {
    let seeds = if p.unreliable {
        KV_SEEDS
    } else {
        KV_SEEDS_LONG_VALUES
    };
    run_seeds(sc, seeds, |seed| {
        let r = run_generic(&p, seed, &sc.repro(seed));
        note(sc, &r);
    });
}

/// Prints a run's measurements when `RAFTKV_SCENARIO_VERBOSE` is set.
pub fn note(sc: Scenario, r: &GenericReport) {
    if std::env::var_os(VERBOSE_ENV).is_some() {
        eprintln!(
            "[{} seed={}] {} simulated ms, {} events, {} ops ({} pending, most on one key {}), \
             {} partitions, {} crashes, log <= {} B, snapshot <= {} B, {} check steps, {:?}",
            sc.name,
            r.seed,
            r.sim_ms,
            r.events,
            r.ops,
            r.pending,
            r.ops_on_one_key_max,
            r.partitions,
            r.crashes,
            r.log_bytes_max,
            r.snapshot_bytes_max,
            r.check_steps,
            r.stats
        );
    }
}

/// Prints a speed test's measurements when `RAFTKV_SCENARIO_VERBOSE` is set.
pub fn note_speed(sc: Scenario, r: &SpeedReport) {
    note(sc, &r.generic);
    if std::env::var_os(VERBOSE_ENV).is_some() {
        eprintln!(
            "[{} seed={}] {} sequential appends in {} simulated ms: {:.2} ms/op \
             (bound: heartbeat {} ms / 3 = {:.2} ms/op)",
            sc.name,
            r.generic.seed,
            r.ops,
            r.appends_ms,
            r.appends_ms as f64 / r.ops as f64,
            r.heartbeat_ms,
            r.heartbeat_ms as f64 / 3.0
        );
    }
}
