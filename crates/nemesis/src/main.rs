//! `nemesis`: run raftkv's real-process fault suite (or, with `--membership`, the
//! membership scenario) from the command line.
//!
//! Owns: flags → [`nemesis::Config`] / [`nemesis::MembershipConfig`], Ctrl-C (the first ends the fault phase and still
//! heals and checks; the second deletes the nftables table and exits, the members dying
//! with the harness), the exit code (0 pass, 1 a finding, 2 the harness could not run).
//! Must never: decide anything the library decides.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Start 5 `raftkv serve` members on 127.0.0.11-15, run concurrent recorded clients, inject
/// SIGKILL/restart, SIGSTOP/SIGCONT of the leader and nftables partitions (isolated leader,
/// 2|3 splits), then check the history for linearizability, lost and duplicated writes.
/// Needs root (nft) and the ports 2379/2380 free on those addresses.
///
/// With --membership: instead of faults, membership changes under the same clients — 3
/// members grow to 5, the leader is removed, a member replaced, the cluster shrinks to 3 —
/// made with the raftkv CLI and etcdctl (if on the PATH); needs no root.
#[derive(Parser, Debug)]
#[command(name = "nemesis", version)]
struct Args {
    /// The raftkv binary. [default: `raftkv` next to this executable]
    #[arg(long, env = "RAFTKV_BIN")]
    raftkv: Option<PathBuf>,
    /// Seeds the fault schedule and the clients' choices. [default: from the clock, printed]
    #[arg(long, env = "NEMESIS_SEED")]
    seed: Option<u64>,
    /// How long to inject faults (e.g. 60s, 10m, 2h); episodes run until it passes.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Stop after this many episodes (whichever of --duration and --episodes comes first).
    #[arg(long)]
    episodes: Option<usize>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Cluster members (3..=9).
    #[arg(long, default_value_t = 5)]
    members: usize,
    /// Keys in use at once (half appended to, half put).
    #[arg(long, default_value_t = 8)]
    keys: usize,
    /// Operations before the key set moves to fresh names (bounds value sizes).
    #[arg(long, default_value_t = 2000)]
    generation_ops: u64,
    /// Members snapshot every this many applied entries.
    #[arg(long, default_value_t = 500)]
    snapshot_count: u64,
    /// Where data and logs go (new or empty directory). [default: a temporary directory,
    /// kept when the run fails]
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the data and logs even when the run passes.
    #[arg(long)]
    keep: bool,
    /// Most time the linearizability checker may take.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    check_timeout: Duration,
    /// Canary: clients read serializably (a member's possibly stale local copy). The checker
    /// should then find violations; a run that passes this way checked too little.
    #[arg(long)]
    serializable_reads: bool,
    /// `RAFTKV_LOG` for the members.
    #[arg(long, default_value = "info")]
    member_log: String,
    /// Run the membership scenario instead of fault episodes (--duration, --episodes and
    /// --members do not apply).
    #[arg(long)]
    membership: bool,
    /// With --membership: how long the clients run undisturbed after each change.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    settle: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let raftkv = match args.raftkv.clone().or_else(sibling_raftkv) {
        Some(path) => path,
        None => {
            eprintln!("nemesis: no raftkv binary: pass --raftkv PATH or set RAFTKV_BIN");
            return ExitCode::from(2);
        }
    };
    let seed = args.seed.unwrap_or_else(clock_seed);
    if args.membership {
        return membership(args, raftkv, seed);
    }
    let mut config = nemesis::Config::new(raftkv, seed);
    config.duration = args.duration;
    config.episodes_max = args.episodes.unwrap_or(usize::MAX);
    config.members = args.members;
    config.workload.clients = args.clients;
    config.workload.hot_keys = args.keys.max(2);
    config.workload.generation_ops = args.generation_ops;
    config.workload.serializable_reads = args.serializable_reads;
    config.serve.snapshot_count = args.snapshot_count;
    config.serve.log_filter = args.member_log;
    config.check_budget = args.check_timeout;
    config.dir = args.dir;
    config.keep_dir = args.keep;
    config.progress = true;
    eprintln!(
        "nemesis: seed {seed}, {} members, {} clients, faults for {} (raftkv: {})",
        config.members,
        config.workload.clients,
        humantime::format_duration(config.duration),
        config.raftkv_bin.display()
    );
    watch_ctrl_c(config.stop.clone());
    match nemesis::run(&config) {
        Ok(report) => {
            print!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("nemesis: {err}");
            ExitCode::from(2)
        }
    }
}

/// The membership scenario with `args`.
fn membership(args: Args, raftkv: PathBuf, seed: u64) -> ExitCode {
    let mut config = nemesis::MembershipConfig::new(raftkv, seed);
    config.workload.clients = args.clients;
    config.workload.hot_keys = args.keys.max(2);
    config.workload.generation_ops = args.generation_ops;
    config.workload.serializable_reads = args.serializable_reads;
    config.serve.snapshot_count = args.snapshot_count;
    config.serve.log_filter = args.member_log;
    config.settle = args.settle;
    config.check_budget = args.check_timeout;
    config.dir = args.dir;
    config.keep_dir = args.keep;
    config.progress = true;
    eprintln!(
        "nemesis: membership scenario, seed {seed}, {} clients (raftkv: {}; etcdctl: {})",
        config.workload.clients,
        config.raftkv_bin.display(),
        config
            .etcdctl
            .as_ref()
            .map_or("not found".into(), |p| p.display().to_string())
    );
    watch_ctrl_c(config.stop.clone());
    match nemesis::membership::run(&config) {
        Ok(report) => {
            print!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("nemesis: {err}");
            ExitCode::from(2)
        }
    }
}

/// `raftkv` in the directory of this executable (cargo puts both in `target/<profile>/`).
fn sibling_raftkv() -> Option<PathBuf> {
    let path = std::env::current_exe().ok()?.parent()?.join("raftkv");
    path.is_file().then_some(path)
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// First Ctrl-C: raise `stop`. Second: delete the nftables table and exit (the members get
/// SIGKILL from their parent-death signal).
fn watch_ctrl_c(stop: nemesis::Stop) {
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(err) => {
                eprintln!("nemesis: no Ctrl-C handling: {err}");
                return;
            }
        };
        rt.block_on(async {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            eprintln!("nemesis: stopping the faults; healing and checking (Ctrl-C again to abort)");
            stop.raise();
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            let _ = nemesis::firewall::remove_table();
            eprintln!("nemesis: aborted");
            std::process::exit(130);
        });
    });
}
