//! `sim`: replay one seeded random-fault run.
//!
//! `cargo run -p sim --release -- --seed N [--minutes M]` prints the run's report and trace
//! hash (`--membership`: with random membership changes mixed in, as the
//! `random_membership_seeds` test runs them); `--kv --seed N` replays a seeded KV run
//! (clerks, faults, linearizability check) instead. A failing seed panics with what broke.

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: sim [--membership] --seed N [--minutes M] | sim --kv --seed N");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut seed = None;
    let mut minutes = 1u64;
    let mut kv = false;
    let mut membership = false;
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
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), value) {
            ("--seed", Some(v)) => seed = Some(v),
            ("--minutes", Some(v)) => minutes = v,
            _ => return usage(),
        }
    }
    let Some(seed) = seed else { return usage() };
    if kv {
        println!("{}", sim::run_kv_random(seed));
        return ExitCode::SUCCESS;
    }
    let opts = sim::RandomOptions { membership };
    let report = sim::run_random_with(seed, minutes, opts);
    println!("{report}");
    println!("trace hash: {:016x}", report.trace_hash);
    ExitCode::SUCCESS
}
