//! `sim`: replay one seeded random-fault run.
//!
//! `cargo run -p sim --profile checked -- --seed N [--minutes M]` prints the run's report and trace
//! hash (`--membership`: with random membership changes mixed in, as the
//! `random_membership_seeds` test runs them); `--kv --seed N` replays a seeded KV run
//! (clerks, faults, linearizability check) instead. A failing seed panics with what broke.
//! `--trace FILE` also writes the run's events for the dashboard's replay (as `raftkv sim
//! --trace`, which can serve the page too); a failing seed then writes its trace up to the
//! failure and exits with 1.

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: sim [--membership] --seed N [--minutes M] [--trace FILE] | \
         sim --kv --seed N [--trace FILE]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut seed = None;
    let mut minutes = 1u64;
    let mut kv = false;
    let mut membership = false;
    let mut trace = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--kv" {
            kv = true;
            continue;
        }
        if a == "--membership" {
            membership = true;
            continue;
        }
        if a == "--trace" {
            trace = args.next();
            if trace.is_none() {
                return usage();
            }
            continue;
        }
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), value) {
            ("--seed", Some(v)) => seed = Some(v),
            ("--minutes", Some(v)) => minutes = v,
            _ => return usage(),
        }
    }
    let Some(seed) = seed else { return usage() };
    let opts = sim::RandomOptions { membership };
    if let Some(path) = trace {
        return record(seed, minutes, kv, opts, &path);
    }
    if kv {
        println!("{}", sim::run_kv_random(seed));
        return ExitCode::SUCCESS;
    }
    let report = sim::run_random_with(seed, minutes, opts);
    println!("{report}");
    println!("trace hash: {:016x}", report.trace_hash);
    ExitCode::SUCCESS
}

/// The run with its trace written to `path`.
fn record(seed: u64, minutes: u64, kv: bool, opts: sim::RandomOptions, path: &str) -> ExitCode {
    let max = sim::trace::TRACE_EVENTS_MAX_DEFAULT;
    let (outcome, trace) = sim::trace::record_seed(seed, minutes, kv, opts, max);
    let mut out = Vec::new();
    let written = trace
        .write_json(&mut out)
        .and_then(|()| std::fs::write(path, &out));
    if let Err(e) = written {
        eprintln!("sim: writing {path}: {e}");
        return ExitCode::FAILURE;
    }
    let code = match outcome {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("seed {seed} FAILED: {why}");
            ExitCode::FAILURE
        }
    };
    println!(
        "trace: {} events ({} left out) in {path}; replay it on the dashboard (\"open trace\") \
         or with `raftkv sim{} --seed {seed} --serve`",
        trace.events.len(),
        trace.left_out,
        if kv {
            " --kv"
        } else if opts.membership {
            " --membership"
        } else {
            ""
        }
    );
    code
}
