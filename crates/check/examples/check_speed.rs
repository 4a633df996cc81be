//! How fast the checker is on big histories: seeded simulated executions of 10,000
//! operations by 10 clients (each with one operation outstanding; 0.5% never return, half of
//! those took effect), over 100 keys with realistic overlap, and over 3 keys and 1 key with
//! heavy overlap (latencies far above think times, so all 10 clients are usually in flight).
//! Puts and Cas write either one of 5 values (reads are ambiguous) or unique values.
//!
//! Each history is checked as generated (linearizable), then with its last read corrupted to
//! a value never written, then to a stale value (what a read of that key saw 20 reads
//! before): both must be found illegal. The stale checks get a budget of
//! `STALE_STEPS_MAX` search steps.
//!
//! `cargo run --release -p check --example check_speed [seed]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use check::{check_with, CheckConfig, CheckResult, Input, Operation, Output};
use support::{execute, random_plan, Workload};

/// How many reads of the key back the stale value comes from.
const STALE_READS_BACK: usize = 20;
/// The search budget of the stale-read checks.
const STALE_STEPS_MAX: u64 = 20_000_000;

fn main() {
    let seed = std::env::args()
        .nth(1)
        .map_or(1, |s| s.parse().expect("seed: a u64"));
    println!("seed {seed}; 10,000 operations, 10 clients, 0.5% never return");
    for values in [5, u32::MAX] {
        let base = Workload {
            ops: 10_000,
            clients: 10,
            keys: 100,
            values,
            think_max: 50,
            latency_max: 200,
            pending_per_mille: 5,
        };
        let heavy = |keys| Workload {
            keys,
            think_max: 5,
            latency_max: 1000,
            ..base.clone()
        };
        let values = if values == 5 {
            "5 values"
        } else {
            "unique values"
        };
        for (name, workload) in [
            ("100 keys, realistic overlap", base.clone()),
            ("3 keys, heavy overlap", heavy(3)),
            ("1 key, heavy overlap", heavy(1)),
        ] {
            println!("{name}, {values}:");
            run(&execute(&random_plan(seed, &workload)));
        }
    }
}

fn run(history: &[Operation]) {
    println!("  as executed:       {}", timed(history, u64::MAX));
    let read = history
        .iter()
        .rposition(|op| matches!(op.input, Input::Get { .. }) && op.ret.is_some())
        .expect("a completed read");
    let mut corrupted = history.to_vec();
    corrupted[read].output = Some(Output::value("never written"));
    println!("  read never written: {}", timed(&corrupted, u64::MAX));
    let key = history[read].input.key();
    let stale = history[..read]
        .iter()
        .rev()
        .filter(|op| op.input.key() == key && matches!(op.input, Input::Get { .. }))
        .filter_map(|op| op.output.clone())
        .filter(|out| Some(out) != history[read].output.as_ref())
        .nth(STALE_READS_BACK)
        .expect("an older read");
    corrupted[read].output = Some(stale);
    println!(
        "  stale read:         {}",
        timed(&corrupted, STALE_STEPS_MAX)
    );
}

fn timed(history: &[Operation], steps_max: u64) -> String {
    let config = CheckConfig {
        steps_max: steps_max.min(CheckConfig::default().steps_max),
        ..CheckConfig::default()
    };
    let start = Instant::now();
    let report = check_with(history, &config, &mut || false);
    let secs = start.elapsed().as_secs_f64();
    let verdict = match &report.result {
        CheckResult::Ok => "linearizable".to_string(),
        CheckResult::Illegal { .. } => "illegal".to_string(),
        CheckResult::Unknown { reason, .. } => format!("unknown ({reason})"),
    };
    format!("{verdict} in {secs:.3} s, {} steps", report.steps)
}
