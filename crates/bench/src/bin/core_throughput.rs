//! `core_throughput`: a 3-node in-memory cluster of raftkv's core and of raft-rs 0.7 commit the
//! same proposals in one process; prints entries/s, allocation per entry and the ratio.
//!
//! Owns: argument parsing, installing the counting allocator, running the halves in order.
//! Must never: time anything itself (the driver measures).
//!
//! ```text
//! cargo run -p bench --release --bin core_throughput -- [--proposals N] [--entry-bytes B]
//!     [--batch K] [--window W] [--compact-every C] [--tick-every R] [--repeat R]
//!     [--only raftkv,raftrs,raftrs-batch] [--json]
//! ```
//!
//! Runs raft-rs (one `propose` per proposal), raft-rs-batch (one `MsgPropose` per round) and
//! raftkv, in that order, each `--repeat` times (default 1), and reports each one's median run
//! by throughput.

use bench::alloc::{self, CountingAlloc};
use bench::driver::BenchNode;
use bench::driver::{run, RunStats};
use bench::ours::OurNode;
use bench::raftrs::{RaftRsBatchNode, RaftRsNode};
use bench::report;
use bench::workload::Params;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const USAGE: &str = "usage: core_throughput [--proposals N] [--entry-bytes B] [--batch K] \
[--window W] [--compact-every C] [--tick-every R] [--repeat R] \
[--only raftkv,raftrs,raftrs-batch] [--json]";

const IMPLS: [&str; 3] = ["raftrs", "raftrs-batch", "raftkv"];

struct Args {
    params: Params,
    only: Option<Vec<String>>,
    repeat: u64,
    json: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        params: Params::default(),
        only: None,
        repeat: 1,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let mut number = || -> Result<u64, String> {
            let v = value()?;
            v.replace('_', "")
                .parse()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--proposals" => a.params.proposals = number()?,
            "--entry-bytes" => a.params.entry_bytes = number()? as usize,
            "--batch" => a.params.batch = number()?.max(1),
            "--window" => a.params.window = number()?.max(1),
            "--compact-every" => a.params.compact_every = number()?.max(1),
            "--tick-every" => a.params.tick_every_rounds = number()?,
            "--repeat" => a.repeat = number()?.max(1),
            "--only" => {
                let list: Vec<String> = value()?.split(',').map(str::to_string).collect();
                if let Some(bad) = list.iter().find(|v| !IMPLS.contains(&v.as_str())) {
                    return Err(format!("--only: unknown implementation {bad}"));
                }
                a.only = Some(list);
            }
            "--json" => a.json = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    assert!(
        alloc::is_counting(),
        "the counting allocator is not installed"
    );
    let want = |name: &str| {
        args.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|v| v == name))
    };
    let mut runs: Vec<RunStats> = Vec::new();
    if want("raftrs") {
        runs.push(median::<RaftRsNode>(&args));
    }
    if want("raftrs-batch") {
        runs.push(median::<RaftRsBatchNode>(&args));
    }
    if want("raftkv") {
        runs.push(median::<OurNode>(&args));
    }
    if args.json {
        println!("{}", report::json(&runs));
    } else {
        print!("{}", report::table(&runs));
    }
}

/// Run `N` `args.repeat` times; the run with the median throughput.
fn median<N: BenchNode>(args: &Args) -> RunStats {
    let mut all: Vec<RunStats> = (0..args.repeat).map(|_| run::<N>(&args.params)).collect();
    all.sort_by(|a, b| a.entries_per_sec().total_cmp(&b.entries_per_sec()));
    all.swap_remove(all.len() / 2)
}
