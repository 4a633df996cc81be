//! `failover`: SIGKILL the leader of a 3-member cluster of real `raftkv serve` processes, 20
//! times, and time how long until the survivors elect a new leader and until a write through
//! a survivor is acknowledged (see `bench::failover` for exactly what each clock measures).
//!
//! Owns: the flags, the table and the JSON. Must never: measure anything itself.
//!
//! ```text
//! cargo build --release -p cli -p bench
//! target/release/failover [--kills 20] [--heartbeat 50] [--election 300] [--json]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use bench::failover::{self, Plan};
use bench::procs::{self, Procs, Sample, ServeOptions};
use clap::Parser;

/// The failover goal: median kill → first acknowledged write.
const GOAL_MS: f64 = 500.0;

#[derive(Parser, Debug)]
#[command(about = "Failover time of a 3-member raftkv cluster after SIGKILL of the leader")]
struct Args {
    /// Leader kills to measure.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Members of the cluster.
    #[arg(long, default_value_t = 3)]
    members: usize,
    /// `--heartbeat-interval` of every member, ms (raftkv's and `raftkv dev`'s default).
    #[arg(long, default_value_t = 50)]
    heartbeat: u64,
    /// `--election-timeout` of every member, ms (raftkv's and `raftkv dev`'s default).
    #[arg(long, default_value_t = 300)]
    election: u64,
    /// `--snapshot-count` of every member.
    #[arg(long, default_value_t = 10_000)]
    snapshot_count: u64,
    /// Background writers (the client library, closed loop, 3 endpoints).
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Per-attempt timeout of the probe's raw puts, ms.
    #[arg(long, default_value_t = 200)]
    probe_attempt_ms: u64,
    /// Pause after the restarted member caught up before the next kill, ms (plus up to one
    /// heartbeat of random jitter).
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    /// Bytes of every value written.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Client port of member 1 (member i uses base + 10·i and the next port).
    #[arg(long, default_value_t = 47379)]
    base_port: u16,
    /// The `raftkv` binary. [default: next to this one]
    #[arg(long)]
    raftkv: Option<PathBuf>,
    /// Work directory (deleted first). [default: <target>/failover]
    #[arg(long)]
    dir: Option<PathBuf>,
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
            eprintln!("failover: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| procs::default_work_dir("failover"));
    procs::remove_dir(&dir)?;
    let opts = ServeOptions {
        bin: procs::raftkv_bin(args.raftkv.clone())?,
        dir: dir.clone(),
        members: args.members,
        base_port: args.base_port,
        heartbeat_ms: args.heartbeat,
        election_ms: args.election,
        snapshot_count: args.snapshot_count,
        log_filter: args.log.clone(),
        token: "raftkv-failover-bench".into(),
    };
    let plan = Plan {
        kills: args.kills,
        writers: args.writers,
        probe_attempt: Duration::from_millis(args.probe_attempt_ms),
        settle: Duration::from_millis(args.settle_ms),
        value_bytes: args.value_bytes,
        give_up: Duration::from_secs(20),
    };
    let machine_before = procs::machine();
    let mut procs = Procs::new(opts)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let report = rt.block_on(failover::run(&mut procs, &plan));
    procs.kill_all();
    let report = report.map_err(|e| format!("{e} (member logs in {})", dir.display()))?;
    let load_after = procs::load_average();

    let rows = [
        ("kill -> new leader elected", report.elected()),
        ("elected -> first write", report.elected_to_write()),
        ("kill -> first write (raw probe)", report.probe_write()),
        (
            "kill -> first write (client library)",
            report.library_write(),
        ),
        ("restart -> caught up", report.caught_up()),
    ];
    let median = report.probe_write().median_ms();
    if args.json {
        let summary: serde_json::Map<String, serde_json::Value> = [
            ("elected", report.elected()),
            ("elected_to_write", report.elected_to_write()),
            ("probe_write", report.probe_write()),
            ("library_write", report.library_write()),
            ("caught_up", report.caught_up()),
        ]
        .into_iter()
        .map(|(k, s)| (k.to_string(), s.json()))
        .collect();
        let out = serde_json::json!({
            "machine": machine_before,
            "load_after": load_after,
            "settings": {
                "members": args.members,
                "heartbeat_ms": args.heartbeat,
                "election_ms": args.election,
                "writers": args.writers,
                "probe_attempt_ms": args.probe_attempt_ms,
                "value_bytes": args.value_bytes,
            },
            "kills": report.kills.iter().map(|k| k.json()).collect::<Vec<_>>(),
            "summary": summary,
            "background_writes": {
                "acked": report.writes_acked,
                "failed": report.writes_failed,
                "per_second": procs::round2(
                    report.writes_acked as f64 / report.elapsed.as_secs_f64()),
            },
            "goal_median_ms": GOAL_MS,
            "goal_met": median <= GOAL_MS,
        });
        println!("{out:#}");
        return Ok(());
    }
    println!(
        "failover: {} kills of the leader, {} members, heartbeat {} ms, election {} ms",
        report.kills.len(),
        args.members,
        args.heartbeat,
        args.election
    );
    println!("machine: {machine_before}; load after: {load_after}");
    println!(
        "background: {} client-library writers, {} writes acknowledged ({:.0}/s), {} failed",
        args.writers,
        report.writes_acked,
        report.writes_acked as f64 / report.elapsed.as_secs_f64(),
        report.writes_failed
    );
    println!();
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>9}",
        "ms", "min", "median", "p90", "max"
    );
    for (name, s) in rows {
        print_row(name, &s);
    }
    println!();
    println!(
        "goal: median kill -> first write <= {GOAL_MS} ms: {:.1} ms, {}",
        median,
        if median <= GOAL_MS { "met" } else { "not met" }
    );
    Ok(())
}

fn print_row(name: &str, s: &Sample) {
    println!(
        "{:<40} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
        name,
        s.min_ms(),
        s.median_ms(),
        s.quantile_ms(0.9),
        s.max_ms()
    );
}
