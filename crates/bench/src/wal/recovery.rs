//! Recovery time and memory of a large log: the parent writes the log once (synced), then a
//! child process — this same binary, re-executed with a hidden subcommand — times
//! `DiskStore::open` + `initial_state()` and reports its peak resident set (`VmHWM` from
//! `/proc/self/status`), so that the number is the recovery's alone and not the writer's.
//!
//! Owns: the log writer, the child's measurement and the one-line protocol between them.
//! Must never: count the writer's memory or time as recovery's, or accept a recovery that
//! did not return every entry written.

use super::bench_identity;
use bytes::Bytes;
use raft::{Entry, EntryKind, HardState, LogIndex, NodeId, Term};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use storage::{DiskOptions, DiskStore, LogStore, StdFs};

/// The hidden subcommand the parent re-executes itself with.
pub const CHILD_SUBCOMMAND: &str = "__recover";

/// Entries per `append` call while writing the log.
const WRITE_BATCH: u64 = 1024;

/// What writing the log took.
#[derive(Clone, Debug)]
pub struct WriteStats {
    pub entries: u64,
    pub elapsed: Duration,
    pub segments: usize,
    pub file_bytes: u64,
}

/// What the child measured.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveryStats {
    pub entries: u64,
    /// `DiskStore::open`: listing, reading and replaying every segment.
    pub open: Duration,
    /// `initial_state()` afterwards (hands out the replayed entries).
    pub initial_state: Duration,
    /// Peak resident set of the child process (VmHWM), KiB.
    pub peak_rss_kib: u64,
}

impl RecoveryStats {
    pub fn total(&self) -> Duration {
        self.open + self.initial_state
    }

    /// The line the child prints.
    pub fn to_line(&self) -> String {
        format!(
            "recovered entries={} open_ns={} initial_state_ns={} peak_rss_kib={}",
            self.entries,
            self.open.as_nanos(),
            self.initial_state.as_nanos(),
            self.peak_rss_kib
        )
    }

    /// Parse [`RecoveryStats::to_line`]'s output.
    pub fn from_line(line: &str) -> Option<RecoveryStats> {
        let rest = line.trim().strip_prefix("recovered ")?;
        let field = |name: &str| -> Option<u64> {
            let kv = rest.split(' ').find(|kv| kv.starts_with(name))?;
            kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok()
        };
        Some(RecoveryStats {
            entries: field("entries")?,
            open: Duration::from_nanos(field("open_ns")?),
            initial_state: Duration::from_nanos(field("initial_state_ns")?),
            peak_rss_kib: field("peak_rss_kib")?,
        })
    }
}

/// The directory the recovery log lives in under `dir`.
pub fn log_dir(dir: &Path) -> PathBuf {
    dir.join("recovery-log")
}

fn options(segment_bytes: u64) -> DiskOptions {
    DiskOptions {
        segment_bytes,
        ..DiskOptions::default()
    }
}

/// Entry `index`: `entry_bytes` of payload starting with the index (so the child can check it).
fn entry(index: u64, entry_bytes: usize) -> Entry {
    let mut data = vec![0x5Au8; entry_bytes.max(8)];
    data[..8].copy_from_slice(&index.to_le_bytes());
    data.truncate(entry_bytes.max(8));
    Entry {
        term: Term(1),
        index: LogIndex(index),
        kind: EntryKind::Normal,
        data: Bytes::from(data),
    }
}

/// Write a fresh log of `entries` entries of `entry_bytes` into [`log_dir`], synced.
pub fn write_log(dir: &Path, entries: u64, entry_bytes: usize, segment_bytes: u64) -> WriteStats {
    let path = log_dir(dir);
    let _ = std::fs::remove_dir_all(&path);
    let started = Instant::now();
    let mut store = DiskStore::open(StdFs, &path, bench_identity(), options(segment_bytes))
        .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    let mut next = 1;
    let mut batch = Vec::with_capacity(WRITE_BATCH as usize);
    while next <= entries {
        let end = (next + WRITE_BATCH).min(entries + 1);
        batch.extend((next..end).map(|i| entry(i, entry_bytes)));
        store.append(&batch).expect("append");
        batch.clear();
        next = end;
    }
    store
        .set_hard_state(HardState {
            term: Term(1),
            vote: NodeId(1),
            commit: LogIndex(entries),
        })
        .expect("hard state");
    store.sync().expect("sync");
    let segments = store.segment_count();
    drop(store);
    WriteStats {
        entries,
        elapsed: started.elapsed(),
        segments,
        file_bytes: dir_bytes(&path.join("wal")),
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// In the child: open the log, take the initial state, check it holds `expect` entries.
pub fn recover_here(dir: &Path, segment_bytes: u64, expect: u64) -> RecoveryStats {
    let path = log_dir(dir);
    let t0 = Instant::now();
    let store = DiskStore::open(StdFs, &path, bench_identity(), options(segment_bytes))
        .unwrap_or_else(|e| panic!("recovering {}: {e}", path.display()));
    let t1 = Instant::now();
    let state = store.initial_state().expect("initial state");
    let t2 = Instant::now();
    let n = state.entries.len() as u64;
    assert_eq!(
        n, expect,
        "recovery returned {n} entries, {expect} were written"
    );
    assert_eq!(state.hard_state.commit, LogIndex(expect));
    for e in [state.entries.first(), state.entries.last()]
        .into_iter()
        .flatten()
    {
        assert_eq!(
            e.data[..8],
            e.index.0.to_le_bytes(),
            "payload of {:?}",
            e.index
        );
    }
    let stats = RecoveryStats {
        entries: n,
        open: t1 - t0,
        initial_state: t2 - t1,
        peak_rss_kib: peak_rss_kib().expect("VmHWM in /proc/self/status"),
    };
    drop((state, store));
    stats
}

/// Peak resident set size of this process (`VmHWM`), KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Re-execute this binary as the recovery child and parse what it reports.
pub fn measure_in_child(
    dir: &Path,
    segment_bytes: u64,
    expect: u64,
) -> Result<RecoveryStats, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let out = Command::new(exe)
        .arg(CHILD_SUBCOMMAND)
        .arg(dir)
        .arg(segment_bytes.to_string())
        .arg(expect.to_string())
        .output()
        .map_err(|e| format!("spawning the recovery child: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "recovery child failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    stdout
        .lines()
        .find_map(RecoveryStats::from_line)
        .ok_or_else(|| format!("no result line from the recovery child: {stdout}"))
}

/// Write back dirty pages and drop the page cache (root only), so the next read is cold.
pub fn drop_page_cache() -> Result<(), String> {
    let status = Command::new("sync")
        .status()
        .map_err(|e| format!("sync: {e}"))?;
    if !status.success() {
        return Err(format!("sync: {status}"));
    }
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .map_err(|e| format!("writing /proc/sys/vm/drop_caches: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_line_roundtrips() {
        let s = RecoveryStats {
            entries: 10,
            open: Duration::from_nanos(123_456),
            initial_state: Duration::from_nanos(7),
            peak_rss_kib: 4096,
        };
        assert_eq!(RecoveryStats::from_line(&s.to_line()), Some(s));
        assert_eq!(RecoveryStats::from_line("something else"), None);
    }

    #[test]
    fn entries_carry_their_index() {
        let e = entry(77, 256);
        assert_eq!(e.data.len(), 256);
        assert_eq!(e.data[..8], 77u64.to_le_bytes());
    }
}
