//! The physical bound of durable appends on a disk: one writer appending `entry_bytes` to a
//! plain file and calling `fdatasync` after each write, as fast as the disk allows.
//!
//! Owns: that loop and nothing else. Must never: batch writes (it is the one-entry-per-sync
//! baseline the group-commit numbers are divided by).

use super::{Latencies, Throughput};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// `write` + `fdatasync` of `entry_bytes` in a loop for `run_for`, in a file under `dir`
/// (removed afterwards).
pub fn run(dir: &Path, entry_bytes: usize, run_for: Duration) -> Throughput {
    let path = dir.join("raw-fdatasync.dat");
    let _ = std::fs::remove_file(&path);
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    let buf = vec![0xA5u8; entry_bytes];
    let mut latencies = Latencies::default();
    let started = Instant::now();
    let mut appends = 0u64;
    while started.elapsed() < run_for {
        let t = Instant::now();
        file.write_all(&buf).expect("write");
        file.sync_data().expect("fdatasync");
        latencies.record(t.elapsed());
        appends += 1;
    }
    let elapsed = started.elapsed();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Throughput {
        name: "raw write+fdatasync",
        appenders: 1,
        entry_bytes,
        appends,
        syncs: appends,
        elapsed,
        latencies,
    }
}
