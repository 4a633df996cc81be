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
//! raftkv, in that order, `--repeat` times (default 1) interleaved, and reports each one's
//! median run by throughput with the min–max range.

use bench::alloc::{self, CountingAlloc};
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
    let (rs, rs_batch, ours) = (want("raftrs"), want("raftrs-batch"), want("raftkv"));
    // Interleaved, so that drift on the machine hits every implementation alike.
    let mut per_impl: [Vec<RunStats>; 3] = Default::default();
    for _ in 0..args.repeat {
        if rs {
            per_impl[0].push(run::<RaftRsNode>(&args.params));
        }
        if rs_batch {
            per_impl[1].push(run::<RaftRsBatchNode>(&args.params));
        }
        if ours {
            per_impl[2].push(run::<OurNode>(&args.params));
        }
    }
    let runs: Vec<RunStats> = per_impl
        .into_iter()
        .filter(|v| !v.is_empty())
        .map(median)
        .collect();
    if args.json {
        println!("{}", report::json(&runs));
    } else {
        print!("{}", report::table(&runs));
    }
}

/// The run with the median throughput, carrying the range over all of them.
fn median(mut all: Vec<RunStats>) -> RunStats {
    all.sort_by(|a, b| a.entries_per_sec().total_cmp(&b.entries_per_sec()));
    let range = (
        all[0].entries_per_sec(),
        all[all.len() - 1].entries_per_sec(),
    );
    let mut m = all.swap_remove(all.len() / 2);
    m.entries_per_sec_range = range;
    m
}
