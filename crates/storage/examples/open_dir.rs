//! Times recovery of an existing member data directory: `DiskStore::open` (read and replay
//! every segment) and `initial_state` (hand the entries to the core), the way `raftkv serve`
//! starts. For profiling WAL replay on a genuine directory, e.g. the one
//! `target/release/restart` generates:
//!
//! ```text
//! cargo run --release -p storage --example open_dir -- DATA_DIR [RUNS]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use storage::{read_identity, DiskOptions, DiskStore, LogStore, StdFs};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: open_dir DATA_DIR [RUNS]"));
    let runs: usize = args.next().map_or(3, |r| r.parse().expect("RUNS"));
    let identity = read_identity(&StdFs, &dir)
        .expect("reading the identity")
        .expect("the directory holds an identity file");
    for run in 1..=runs {
        let start = Instant::now();
        let store = DiskStore::open(StdFs, &dir, identity.clone(), DiskOptions::default())
            .expect("opening the store");
        let opened = start.elapsed();
        let initial = store.initial_state().expect("initial state");
        let total = start.elapsed();
        println!(
            "run {run}: open {:.1} ms, initial_state {:.1} ms, total {:.1} ms: {} segments, {} \
             entries",
            opened.as_secs_f64() * 1e3,
            (total - opened).as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3,
            store.recovery_report().segments,
            initial.entries.len()
        );
    }
}
