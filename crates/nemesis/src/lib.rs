//! raftkv's real-process fault suite: five `raftkv serve` processes, concurrent clients
//! recording a history, real faults (SIGKILL and restart, SIGSTOP/SIGCONT of the leader,
//! kernel-level partitions with nftables), and a verdict by the linearizability checker.
//!
//! Module map:
//! - [`cluster`]: the member processes — addresses, data directories, logs, signals;
//! - [`firewall`]: the nftables table that cuts links between member addresses;
//! - [`workload`]: the clients, the key space, and how each outcome enters the history;
//! - [`faults`]: the nemesis — seeded fault episodes and their availability checks;
//! - [`membership`]: the membership scenario — grow 3 → 5, remove the leader, replace a
//!   member, shrink to 3 under load, through the `raftkv` CLI and `etcdctl`;
//! - [`observe`]: leader discovery, availability probes, convergence, replica scans;
//! - [`verify`]: final reads, the checker, the append audit, replica comparison;
//! - [`report`]: the summary and the pass/fail rule;
//! - [`stop`]: the interruptible pause and the Ctrl-C flag.
//!
//! A run ([`run`]): delete a leftover nftables table and create an empty one; start the
//! members on `127.0.0.11`… (client port 2379, peer port 2380); wait until the cluster
//! serves a write; start the clients; run fault episodes until the duration or the episode
//! count is reached; heal everything; wait until the cluster serves; stop the clients; read
//! every key; wait until every member applied the same index and compare their copies; kill
//! the members and delete the table; check the history. Data and logs live in a temporary
//! directory, kept when the run fails.
//!
//! Threads: the calling thread owns the cluster and injects faults (so the children's
//! parent-death signal is tied to it); clients and probes run on a two-thread tokio runtime
//! the run creates.
//!
//! Owns: the real-process test of the README's guarantees. Must never: touch processes,
//! addresses or firewall rules other than its own, leave a member or a rule behind (drop
//! paths clean up on panic too), or pass a run with a violation, a lost or duplicated write,
//! or an undecided check.
//!
//! ```no_run
//! let config = nemesis::Config::new("target/release/raftkv".into(), 42);
//! let report = nemesis::run(&config).expect("the harness ran");
//! println!("{report}");
//! assert!(report.passed());
//! ```

pub mod cluster;
pub mod faults;
pub mod firewall;
pub mod membership;
pub mod observe;
pub mod report;
pub mod stop;
pub mod verify;
pub mod workload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use check::TimedHistory;
use client::{Client, ClientError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::runtime::Runtime;

pub use cluster::ServeSettings;
pub use faults::{FaultKind, FaultTiming};
pub use membership::{MembershipConfig, MembershipReport};
pub use report::Report;
pub use stop::Stop;
pub use workload::WorkloadConfig;

use cluster::Cluster;
use faults::{Nemesis, PROBE_CLIENT_ID};
use firewall::Firewall;
use observe::{probe_write, replica_state, wait_converged};
use workload::{client_config, Workload};

/// Why the harness could not run (as opposed to a run that found a bug: see [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("raftkv binary {path}: {reason}")]
    Binary { path: PathBuf, reason: String },
    #[error("{address} is in use ({reason}): is another nemesis run or raftkv member running?")]
    AddressInUse { address: String, reason: String },
    #[error("cannot {action} member {member}: {source}")]
    Process {
        member: String,
        action: String,
        source: std::io::Error,
    },
    #[error("nftables: cannot {action}: {reason}")]
    Firewall { action: String, reason: String },
    #[error("{what}: the cluster did not serve within {waited:?}; last error: {last}")]
    NotServing {
        what: String,
        waited: Duration,
        last: String,
    },
    #[error("client: {0}")]
    Client(ClientError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `raftkv` binary.
    pub raftkv_bin: PathBuf,
    /// Seeds the fault schedule and the clients' choices (timing is not replayed).
    pub seed: u64,
    /// Cluster size (3..=9; the suite is meant for 5).
    pub members: usize,
    /// Fault episodes run until this much time has passed...
    pub duration: Duration,
    /// ...or this many episodes ran, whichever comes first.
    pub episodes_max: usize,
    pub serve: ServeSettings,
    pub workload: WorkloadConfig,
    pub timing: FaultTiming,
    /// Most time the checker may take before the verdict is "undecided".
    pub check_budget: Duration,
    /// Where data and logs go (must not exist or be empty); a temporary directory if `None`.
    pub dir: Option<PathBuf>,
    /// Keep the directory even when the run passes.
    pub keep_dir: bool,
    /// Print each episode to stderr as it ends.
    pub progress: bool,
    /// Raised (e.g. by Ctrl-C) to end the fault phase early; the run still heals and checks.
    pub stop: Stop,
}

impl Config {
    /// The defaults: 5 members, 5 clients, 8 hot keys, 60 s of faults.
    pub fn new(raftkv_bin: PathBuf, seed: u64) -> Config {
        Config {
            raftkv_bin,
            seed,
            members: 5,
            duration: Duration::from_secs(60),
            episodes_max: usize::MAX,
            serve: ServeSettings::default(),
            workload: WorkloadConfig {
                clients: 5,
                hot_keys: 8,
                generation_ops: 2000,
                request_timeout: Duration::from_millis(1500),
                attempt_timeout: Duration::from_millis(500),
                seed,
                serializable_reads: false,
            },
            timing: FaultTiming::default(),
            check_budget: Duration::from_secs(300),
            dir: None,
            keep_dir: false,
            progress: false,
            stop: Stop::new(),
        }
    }
}

/// How long the cluster may take to serve at start and after the final heal.
pub(crate) const SERVE_DEADLINE: Duration = Duration::from_secs(30);
/// Bound of the admin client's status calls.
pub(crate) const STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the suite (see the crate docs). `Err` means the harness could not do its job (no
/// `nft`, an address in use, a cluster that never served); a run that found a bug returns a
/// [`Report`] that does not pass.
pub fn run(config: &Config) -> Result<Report, Error> {
    check_binary(&config.raftkv_bin)?;
    assert!(
        (3..=9).contains(&config.members),
        "members must be 3..=9, got {}",
        config.members
    );
    let started = Instant::now();
    let work = WorkDir::new(config.dir.as_deref())?;
    let result = run_in(config, work.path(), started);
    let keep = config.keep_dir || !matches!(&result, Ok(report) if report.passed());
    let dir = work.finish(keep);
    match result {
        Ok(mut report) => {
            report.dir = dir;
            report.dir_kept = keep;
            Ok(report)
        }
        Err(err) => {
            eprintln!("nemesis: data and member logs kept in {}", dir.display());
            Err(err)
        }
    }
}

/// The runtime the clients and probes of a run use: two worker threads.
pub(crate) fn runtime() -> Result<Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            what: "starting the tokio runtime".into(),
            source,
        })
}

fn run_in(config: &Config, dir: &Path, started: Instant) -> Result<Report, Error> {
    let rt = runtime()?;
    let mut firewall = Firewall::install()?;
    let mut cluster = Cluster::start(&config.raftkv_bin, dir, config.members, &config.serve)?;
    let urls = cluster.client_urls();
    let admin = rt
        .block_on(Client::connect(client_config(
            &urls,
            STATUS_TIMEOUT,
            STATUS_TIMEOUT,
        )))
        .map_err(Error::Client)?;
    let history = Arc::new(TimedHistory::new());
    serve_or_fail(&rt, &urls, &history, "probe/start", "the new cluster")?;
    let workload = rt.block_on(Workload::start(&urls, &config.workload, history.clone()))?;

    let fault_started = Instant::now();
    let episodes = {
        let mut nemesis = Nemesis::new(
            &mut cluster,
            &mut firewall,
            &rt,
            admin.clone(),
            history.clone(),
            ChaCha8Rng::seed_from_u64(config.seed),
            config.timing.clone(),
            config.stop.clone(),
        );
        run_episodes(config, &mut nemesis, fault_started)?
    };
    let fault_phase = fault_started.elapsed();
    let Ending {
        final_recovery,
        workload_stats,
        finals,
    } = rt.block_on(end_workload(
        config.workload.request_timeout,
        &urls,
        &history,
        workload,
    ))?;
    let converged = rt.block_on(wait_converged(&admin, &urls, SERVE_DEADLINE));
    let replica_differences = match &converged {
        Ok(_) => compare_replicas(&rt, &cluster),
        Err(_) => Vec::new(),
    };
    let mut unexpected_exits: Vec<_> = episodes
        .iter()
        .flat_map(|e: &faults::Episode| e.unexpected_exits.clone())
        .collect();
    unexpected_exits.extend(cluster.reap_unexpected_exits());
    cluster.shutdown();
    firewall.remove()?;
    drop(rt);

    let ops = history.operations();
    let linearizability = verify::linearizability(&ops, config.check_budget);
    let audit = verify::audit_appends(&ops, &finals);
    Ok(Report {
        seed: config.seed,
        members: config.members,
        clients: config.workload.clients,
        elapsed: started.elapsed(),
        fault_phase,
        stopped_early: config.stop.is_raised(),
        episodes,
        findings: report::Findings {
            final_recovery,
            workload: workload_stats,
            linearizability,
            audit,
            final_keys: finals.len(),
            converged,
            replica_differences,
            unexpected_exits,
        },
        dir: dir.to_path_buf(),
        dir_kept: false,
    })
}

/// Episodes until the duration or the count is reached or the run is stopped; then heals.
fn run_episodes(
    config: &Config,
    nemesis: &mut Nemesis<'_>,
    started: Instant,
) -> Result<Vec<faults::Episode>, Error> {
    let mut episodes = Vec::new();
    while !config.stop.is_raised()
        && episodes.len() < config.episodes_max
        && started.elapsed() < config.duration
    {
        let episode = nemesis.episode(episodes.len() + 1)?;
        if config.progress {
            eprintln!("nemesis: {}", report::episode_line(&episode));
        }
        episodes.push(episode);
    }
    nemesis.heal()?;
    Ok(episodes)
}

/// What the end of the workload found.
pub(crate) struct Ending {
    pub final_recovery: Result<Duration, String>,
    pub workload_stats: workload::WorkloadStats,
    pub finals: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

/// After the final heal: checks the cluster serves, stops the clients, reads every key.
pub(crate) async fn end_workload(
    request_timeout: Duration,
    urls: &[String],
    history: &Arc<TimedHistory>,
    workload: Workload,
) -> Result<Ending, Error> {
    let healed = Instant::now();
    let final_recovery = probe_write(
        urls,
        history,
        PROBE_CLIENT_ID,
        "probe/final".into(),
        "final".into(),
        SERVE_DEADLINE,
    )
    .await
    .map(|_| healed.elapsed());
    let workload_stats = workload.finish().await;
    let keys = verify::keys_of(&history.operations());
    let finals = verify::final_reads(urls, history, &keys, request_timeout, SERVE_DEADLINE).await?;
    Ok(Ending {
        final_recovery,
        workload_stats,
        finals,
    })
}

/// A recorded probe write through every endpoint, or `Err(NotServing)`.
pub(crate) fn serve_or_fail(
    rt: &Runtime,
    urls: &[String],
    history: &TimedHistory,
    key: &str,
    what: &str,
) -> Result<Duration, Error> {
    rt.block_on(probe_write(
        urls,
        history,
        PROBE_CLIENT_ID,
        key.into(),
        "up".into(),
        SERVE_DEADLINE,
    ))
    .map_err(|last| Error::NotServing {
        what: what.into(),
        waited: SERVE_DEADLINE,
        last,
    })
}

/// Compares the copies of every member present (see [`verify::replica_differences`]).
pub(crate) fn compare_replicas(rt: &Runtime, cluster: &Cluster) -> Vec<String> {
    let present = cluster.present();
    let names: Vec<String> = present
        .iter()
        .map(|&i| cluster.spec(i).name.clone())
        .collect();
    let mut states = Vec::new();
    for url in present.iter().map(|&i| cluster.spec(i).client_url()) {
        match rt.block_on(replica_state(&url, Duration::from_secs(10))) {
            Ok(state) => states.push(state),
            Err(why) => return vec![format!("cannot scan {url}: {why}")],
        }
    }
    verify::replica_differences(&names, &states, 10)
}

pub(crate) fn check_binary(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let binary = |reason: String| Error::Binary {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        binary(format!(
            "{e}; build it with `cargo build --release -p cli` or name it with --raftkv / RAFTKV_BIN"
        ))
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(binary("not an executable file".into()));
    }
    Ok(())
}

/// The run's directory: a temporary one, or the caller's (which must be new or empty).
pub(crate) enum WorkDir {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

impl WorkDir {
    pub(crate) fn new(given: Option<&Path>) -> Result<WorkDir, Error> {
        let io = |what: String| move |source| Error::Io { what, source };
        match given {
            None => tempfile::Builder::new()
                .prefix("raftkv-nemesis-")
                .tempdir()
                .map(WorkDir::Temp)
                .map_err(io("creating a temporary directory".into())),
            Some(path) => {
                std::fs::create_dir_all(path)
                    .map_err(io(format!("creating {}", path.display())))?;
                let mut entries =
                    std::fs::read_dir(path).map_err(io(format!("reading {}", path.display())))?;
                if entries.next().is_some() {
                    return Err(Error::Io {
                        what: format!("{} must be empty", path.display()),
                        source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                    });
                }
                Ok(WorkDir::Given(path.to_path_buf()))
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        match self {
            WorkDir::Temp(dir) => dir.path(),
            WorkDir::Given(path) => path,
        }
    }

    /// Keeps the directory or deletes it; returns its path.
    pub(crate) fn finish(self, keep: bool) -> PathBuf {
        match self {
            WorkDir::Temp(dir) if keep => dir.keep(),
            WorkDir::Temp(dir) => dir.path().to_path_buf(),
            WorkDir::Given(path) => path,
        }
    }
}
