//! `wal_bench`: the durable WAL on this machine's disk — group-commit throughput and latency
//! at several appender counts next to a raw `write`+`fdatasync` loop (the physical bound),
//! and the recovery time and peak RSS of a large log.
//!
//! Owns: argument parsing, the order of the cases and the table. Must never: measure anything
//! itself (the `bench::wal` modules do).
//!
//! ```text
//! cargo run -p bench --release --bin wal_bench -- [--dir PATH] [--seconds S]
//!     [--appenders 1,16,256] [--entry-bytes B] [--recovery-entries N]
//!     [--segment-bytes B] [--repeat R] [--cold] [--keep] [--only throughput,recovery]
//! ```
//!
//! With `--repeat R` the throughput cases run R times interleaved (raw, then each appender
//! count, R rounds) so that drift on the machine hits every case alike; each row is the case's
//! median run by appends/s, with the min–max range, and the ratio divides medians.
//!
//! The data directory defaults to `wal_bench` inside the cargo target directory (the disk the
//! repository is on). `--cold` also times recovery after dropping the page cache (root only).
//! `--keep` leaves the recovery log in place, to profile the child by hand:
//! `wal_bench __recover DIR SEGMENT_BYTES ENTRIES` (e.g. under `perf record` or callgrind).

use bench::wal::recovery::{self, RecoveryStats, WriteStats, CHILD_SUBCOMMAND};
use bench::wal::{group_commit, raw, Throughput};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const USAGE: &str = "usage: wal_bench [--dir PATH] [--seconds S] [--appenders 1,16,256] \
[--entry-bytes B] [--recovery-entries N] [--segment-bytes B] [--repeat R] [--cold] \
[--keep] [--only throughput,recovery]";

/// Recovery's goal for a 1M-entry log.
const RECOVERY_GOAL: Duration = Duration::from_secs(1);

struct Args {
    dir: PathBuf,
    run_for: Duration,
    appenders: Vec<usize>,
    entry_bytes: usize,
    recovery_entries: u64,
    segment_bytes: u64,
    repeat: usize,
    cold: bool,
    keep: bool,
    throughput: bool,
    recovery: bool,
}

/// `<cargo target dir>/wal_bench`, found from this binary's path (`target/release/wal_bench`).
fn default_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("wal_bench")))
        .unwrap_or_else(|| std::env::temp_dir().join("wal_bench"))
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        dir: default_dir(),
        run_for: Duration::from_secs(3),
        appenders: vec![1, 16, 256],
        entry_bytes: 256,
        recovery_entries: 1_000_000,
        segment_bytes: 64 << 20,
        repeat: 1,
        cold: false,
        keep: false,
        throughput: true,
        recovery: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| -> Result<u64, String> {
            v.replace('_', "")
                .parse()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(value()?),
            "--seconds" => {
                let v = value()?;
                let s: f64 = v
                    .parse()
                    .map_err(|_| format!("--seconds: not a number: {v}"))?;
                a.run_for =
                    Duration::try_from_secs_f64(s).map_err(|e| format!("--seconds: {e}"))?;
            }
            "--appenders" => {
                a.appenders = value()?
                    .split(',')
                    .map(|n| number(n.to_string()).map(|n| n.max(1) as usize))
                    .collect::<Result<_, _>>()?;
            }
            "--entry-bytes" => a.entry_bytes = number(value()?)? as usize,
            "--recovery-entries" => a.recovery_entries = number(value()?)?,
            "--segment-bytes" => a.segment_bytes = number(value()?)?.max(4096),
            "--repeat" => a.repeat = number(value()?)?.max(1) as usize,
            "--cold" => a.cold = true,
            "--keep" => a.keep = true,
            "--only" => {
                let v = value()?;
                a.throughput = v.split(',').any(|p| p == "throughput");
                a.recovery = v.split(',').any(|p| p == "recovery");
                if !a.throughput && !a.recovery {
                    return Err(format!(
                        "--only: expected throughput and/or recovery, got {v}"
                    ));
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// The hidden child mode: `wal_bench __recover DIR SEGMENT_BYTES EXPECT`.
fn child(args: &[String]) -> ! {
    let [dir, segment_bytes, expect] = args else {
        eprintln!("usage: wal_bench {CHILD_SUBCOMMAND} DIR SEGMENT_BYTES EXPECTED_ENTRIES");
        std::process::exit(2);
    };
    let parse = |s: &str| s.parse::<u64>().expect("a number");
    let stats = recovery::recover_here(Path::new(dir), parse(segment_bytes), parse(expect));
    println!("{}", stats.to_line());
    std::process::exit(0);
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(CHILD_SUBCOMMAND) {
        child(&argv[2..]);
    }
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
    std::fs::create_dir_all(&args.dir)
        .unwrap_or_else(|e| panic!("creating {}: {e}", args.dir.display()));
    println!(
        "data dir {} on {}",
        args.dir.display(),
        device_of(&args.dir)
    );
    if args.throughput {
        throughput(&args);
    }
    if args.recovery && args.recovery_entries > 0 {
        recover(&args);
    }
}

fn throughput(args: &Args) {
    println!(
        "\ngroup commit: {} B entries, {:.1} s per case, {} round(s)",
        args.entry_bytes,
        args.run_for.as_secs_f64(),
        args.repeat
    );
    // runs[0]: raw; runs[1 + i]: group commit with args.appenders[i].
    let mut runs: Vec<Vec<Throughput>> = vec![Vec::new(); args.appenders.len() + 1];
    for _ in 0..args.repeat {
        runs[0].push(raw::run(&args.dir, args.entry_bytes, args.run_for));
        for (i, &n) in args.appenders.iter().enumerate() {
            runs[i + 1].push(group_commit::run(
                &args.dir,
                n,
                args.entry_bytes,
                args.run_for,
            ));
        }
    }
    println!(
        "{:<20} {:>9} {:>11} {:>17} {:>8} {:>12} {:>8} {:>8} {:>8}",
        "case",
        "appenders",
        "appends/s",
        "range",
        "MB/s",
        "appends/sync",
        "p50 us",
        "p99 us",
        "ours/raw"
    );
    let mut medians = runs.into_iter().map(median);
    let mut base = medians.next().expect("the raw case");
    row(&mut base, None);
    for mut m in medians {
        row(&mut m, Some(base.0.appends_per_sec()));
    }
}

/// The run with the median appends/s, and the min–max range over all runs of the case.
fn median(mut all: Vec<Throughput>) -> (Throughput, (f64, f64)) {
    all.sort_by(|a, b| a.appends_per_sec().total_cmp(&b.appends_per_sec()));
    let range = (
        all[0].appends_per_sec(),
        all[all.len() - 1].appends_per_sec(),
    );
    (all.swap_remove(all.len() / 2), range)
}

fn row((t, range): &mut (Throughput, (f64, f64)), raw_per_sec: Option<f64>) {
    let ratio = raw_per_sec.map_or("-".to_string(), |r| {
        format!("{:.2}", t.appends_per_sec() / r)
    });
    println!(
        "{:<20} {:>9} {:>11.0} {:>17} {:>8.2} {:>12.1} {:>8.0} {:>8.0} {:>8}",
        t.name,
        t.appenders,
        t.appends_per_sec(),
        format!("{:.0}-{:.0}", range.0, range.1),
        t.mb_per_sec(),
        t.appends_per_sync(),
        t.latencies.quantile(0.50).as_secs_f64() * 1e6,
        t.latencies.quantile(0.99).as_secs_f64() * 1e6,
        ratio
    );
}

fn recover(args: &Args) {
    let w = recovery::write_log(
        &args.dir,
        args.recovery_entries,
        args.entry_bytes,
        args.segment_bytes,
    );
    print_write(&w, args);
    let warm = measure(args, "warm page cache");
    if args.cold {
        match recovery::drop_page_cache() {
            Ok(()) => {
                measure(args, "cold page cache");
            }
            Err(e) => println!("cold run skipped: {e}"),
        }
    }
    if !args.keep {
        let _ = std::fs::remove_dir_all(recovery::log_dir(&args.dir));
    }
    if args.recovery_entries >= 1_000_000 {
        let verdict = if warm.total() <= RECOVERY_GOAL {
            "met"
        } else {
            "MISSED"
        };
        println!("goal: recovery of 1M entries <= 1 s: {verdict}");
    }
}

fn print_write(w: &WriteStats, args: &Args) {
    println!(
        "\nrecovery: {} entries x {} B, {} MiB segments: wrote {:.1} MB in {} segments in {:.2} s",
        w.entries,
        args.entry_bytes,
        args.segment_bytes >> 20,
        w.file_bytes as f64 / 1e6,
        w.segments,
        w.elapsed.as_secs_f64()
    );
}

fn measure(args: &Args, label: &str) -> RecoveryStats {
    let r = recovery::measure_in_child(&args.dir, args.segment_bytes, args.recovery_entries)
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "recovery ({label}): open {:.3} s + initial_state {:.3} s = {:.3} s, peak RSS {:.1} MiB ({} entries)",
        r.open.as_secs_f64(),
        r.initial_state.as_secs_f64(),
        r.total().as_secs_f64(),
        r.peak_rss_kib as f64 / 1024.0,
        r.entries
    );
    r
}

/// The device `dir` is on, from `df` (best effort).
fn device_of(dir: &Path) -> String {
    Command::new("df")
        .arg("--output=source,fstype")
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.lines()
                .nth(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "an unknown device".into())
}
