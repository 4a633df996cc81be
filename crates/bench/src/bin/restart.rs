//! `restart`: time from spawning `raftkv serve` on a data directory whose WAL holds 1M
//! entries until it serves a linearizable read and a write (see `bench::restart` for how the
//! directory is generated and what each clock measures).
//!
//! Owns: the flags, the order of the runs, the table and the JSON. Must never: measure
//! anything itself.
//!
//! ```text
//! cargo build --release -p cli -p bench
//! target/release/restart [--entries 1000000] [--snapshot-count 0] [--members 1] [--runs 5]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use bench::procs::{self, Procs, Sample, ServeOptions};
use bench::restart::{self, Generate, Restart};
use clap::Parser;

/// The restart goal for a 1M-entry WAL: spawn → serving.
const GOAL_MS: f64 = 1000.0;

#[derive(Parser, Debug)]
#[command(about = "Start-to-serving time of a raftkv member whose WAL holds many entries")]
struct Args {
    /// Puts written into the log before the restarts.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Bytes of every value.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Distinct keys, written round-robin.
    #[arg(long, default_value_t = 100_000)]
    key_space: u64,
    /// Concurrent writers while generating.
    #[arg(long, default_value_t = 128)]
    clients: usize,
    /// 1: restart the only member; 3: restart a follower while the other two serve (each run
    /// SIGKILLs the member, then starts it again).
    #[arg(long, default_value_t = 1)]
    members: usize,
    /// `--snapshot-count` (0: never snapshot, so the WAL holds every entry).
    #[arg(long, default_value_t = 0)]
    snapshot_count: u64,
    /// Restarts to time.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long, default_value_t = 50)]
    heartbeat: u64,
    #[arg(long, default_value_t = 300)]
    election: u64,
    /// Client port of member 1 (member i uses base + 10·i and the next port).
    #[arg(long, default_value_t = 48379)]
    base_port: u16,
    /// The `raftkv` binary. [default: next to this one]
    #[arg(long)]
    raftkv: Option<PathBuf>,
    /// Work directory, kept for later runs with the same parameters.
    /// [default: <target>/restart-bench/m<members>-s<snapshot count>-e<entries>]
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Generate the data directory again even when a matching one exists.
    #[arg(long)]
    regenerate: bool,
    /// `RAFTKV_LOG` of the members.
    #[arg(long, default_value = "info")]
    log: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("restart: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    if args.members != 1 && args.members != 3 {
        return Err("--members must be 1 or 3".into());
    }
    let dir = args.dir.clone().unwrap_or_else(|| {
        procs::default_work_dir("restart-bench").join(format!(
            "m{}-s{}-e{}",
            args.members, args.snapshot_count, args.entries
        ))
    });
    if args.regenerate {
        procs::remove_dir(&dir)?;
    }
    let opts = ServeOptions {
        bin: procs::raftkv_bin(args.raftkv.clone())?,
        dir: dir.clone(),
        members: args.members,
        base_port: args.base_port,
        heartbeat_ms: args.heartbeat,
        election_ms: args.election,
        snapshot_count: args.snapshot_count,
        log_filter: args.log.clone(),
        token: "raftkv-restart-bench".into(),
    };
    let generate = Generate {
        entries: args.entries,
        value_bytes: args.value_bytes,
        key_space: args.key_space,
        clients: args.clients,
    };
    let mut procs = Procs::new(opts)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let victim = args.members - 1;
    let result = rt.block_on(async {
        let generated = restart::ensure_generated(&mut procs, &generate).await?;
        if let Some(took) = generated {
            eprintln!(
                "generated {} puts in {:.1} s ({:.0}/s)",
                args.entries,
                took.as_secs_f64(),
                args.entries as f64 / took.as_secs_f64()
            );
        }
        restart::start_others(&mut procs, victim).await?;
        let mut runs = Vec::new();
        for r in 0..args.runs {
            if procs.is_running(victim) {
                procs.kill(victim);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let load = procs::load_average();
            let one = restart::restart_once(&mut procs, victim).await?;
            eprintln!(
                "run {}/{}: WAL recovered {} ({} entries, {} segments), member serving {}, \
                 replay {}, first read {:.0} ms, first write {:.0} ms, CPU {}, peak RSS {}  [load {load}]",
                r + 1,
                args.runs,
                ms_opt(one.wal_recovered),
                one.wal_entries.map_or("?".into(), |n| n.to_string()),
                one.wal_segments.map_or("?".into(), |n| n.to_string()),
                ms_opt(one.member_serving),
                ms_opt(one.replay),
                one.first_read.as_secs_f64() * 1e3,
                one.first_write.as_secs_f64() * 1e3,
                ms_opt(one.cpu_to_serving),
                one.peak_rss_bytes
                    .map_or("?".into(), |b| format!("{} MiB", b >> 20)),
            );
            runs.push(one);
        }
        Ok::<_, String>((generated, runs))
    });
    procs.kill_all();
    let (generated, runs) =
        result.map_err(|e| format!("{e} (member logs in {})", dir.display()))?;
    let data_dir = procs.spec(victim).data_dir.clone();
    let wal_bytes = restart::dir_bytes(&data_dir.join("wal"));
    let snap_bytes = restart::dir_bytes(&data_dir.join("snap"));
    report(args, &runs, generated, wal_bytes, snap_bytes);
    Ok(())
}

fn ms_opt(d: Option<Duration>) -> String {
    d.map_or("?".into(), |d| format!("{:.0} ms", d.as_secs_f64() * 1e3))
}

fn report(
    args: &Args,
    runs: &[Restart],
    generated: Option<Duration>,
    wal_bytes: u64,
    snap_bytes: u64,
) {
    let opt = |f: fn(&Restart) -> Option<Duration>| Sample::new(runs.iter().filter_map(f));
    let rows = [
        ("spawn -> WAL recovered (log)", opt(|r| r.wal_recovered)),
        ("spawn -> member serving (log)", opt(|r| r.member_serving)),
        (
            "spawn -> first linearizable read",
            Sample::new(runs.iter().map(|r| r.first_read)),
        ),
        (
            "spawn -> first write",
            Sample::new(runs.iter().map(|r| r.first_write)),
        ),
        (
            "spawn -> serving (read and write)",
            Sample::new(runs.iter().map(Restart::serving)),
        ),
        ("member CPU time until serving", opt(|r| r.cpu_to_serving)),
        ("replay into the state machine (log)", opt(|r| r.replay)),
    ];
    let serving = Sample::new(runs.iter().map(Restart::serving));
    let wal_entries = runs.iter().filter_map(|r| r.wal_entries).max();
    let peak = runs.iter().filter_map(|r| r.peak_rss_bytes).max();
    if args.json {
        let summary: serde_json::Map<String, serde_json::Value> = [
            ("wal_recovered", &rows[0].1),
            ("member_serving", &rows[1].1),
            ("first_read", &rows[2].1),
            ("first_write", &rows[3].1),
            ("serving", &rows[4].1),
            ("cpu_to_serving", &rows[5].1),
            ("replay", &rows[6].1),
        ]
        .into_iter()
        .map(|(k, s)| (k.to_string(), s.json()))
        .collect();
        let out = serde_json::json!({
            "machine": procs::machine(),
            "settings": {
                "entries": args.entries,
                "value_bytes": args.value_bytes,
                "key_space": args.key_space,
                "members": args.members,
                "snapshot_count": args.snapshot_count,
            },
            "generated_s": generated.map(|d| procs::round2(d.as_secs_f64())),
            "wal_bytes": wal_bytes,
            "snap_bytes": snap_bytes,
            "wal_entries": wal_entries,
            "peak_rss_bytes": peak,
            "runs": runs.iter().map(Restart::json).collect::<Vec<_>>(),
            "summary": summary,
            "goal_ms": GOAL_MS,
            "goal_met": serving.median_ms() <= GOAL_MS,
        });
        println!("{out:#}");
        return;
    }
    println!(
        "restart: {} member{}, {} puts of {} B values written, --snapshot-count {}",
        args.members,
        if args.members == 1 {
            ""
        } else {
            "s (a follower restarts)"
        },
        args.entries,
        args.value_bytes,
        args.snapshot_count
    );
    println!(
        "restarted member's data: WAL {:.1} MiB holding {} entries (as recovered), snapshot \
         {:.1} MiB; peak RSS {}",
        wal_bytes as f64 / (1 << 20) as f64,
        wal_entries.map_or("?".into(), |n| n.to_string()),
        snap_bytes as f64 / (1 << 20) as f64,
        peak.map_or("?".into(), |b| format!("{} MiB", b >> 20)),
    );
    println!("machine: {}", procs::machine());
    println!();
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9}",
        "ms", "min", "median", "p90", "max"
    );
    for (name, s) in &rows {
        println!(
            "{:<36} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
            name,
            s.min_ms(),
            s.median_ms(),
            s.quantile_ms(0.9),
            s.max_ms()
        );
    }
    println!();
    println!(
        "goal: spawn -> serving <= {GOAL_MS} ms: median {:.0} ms, {}",
        serving.median_ms(),
        if serving.median_ms() <= GOAL_MS {
            "met"
        } else {
            "not met"
        }
    );
}
