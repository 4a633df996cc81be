//! The membership scenario: membership changes of real `raftkv serve` processes under client
//! load, as an operator makes them — through the `raftkv` CLI and etcd's own `etcdctl`.
//!
//! A run ([`run`]) reserves the five slots of [`crate::cluster`] and starts a cluster of three
//! (`n1`–`n3`); the workload clients (every slot's URL as endpoints) run through the whole
//! scenario, recording a history. Then, one step at a time ([`Step`]), each timed:
//!
//! 1. grow to 5: adding a member with n1's peer URL is refused (`Peer URLs already
//!    exists`); `n4` is added as a learner (raftkv CLI), promoting it before it started is
//!    refused (`in sync with leader`), it starts with `--initial-cluster-state existing` and
//!    the `--initial-cluster` the CLI advised, is waited for until it applied everything the
//!    leader had committed just before, and is promoted (again while refused as not in
//!    sync, within a bound); `n5` likewise through `etcdctl`, started with the
//!    `ETCD_INITIAL_CLUSTER` etcdctl printed;
//! 2. remove the leader (raftkv CLI): it must exit cleanly by itself, saying it was removed,
//!    and another member must lead; removing it again is refused (`member not found`);
//! 3. replace a member: `n6` joins on the removed leader's address (its data directory
//!    deleted first; the reused peer URL must get a new id) as in 1, then an original
//!    follower is removed (`etcdctl`). The five addresses are all in use after 1, so the
//!    replacement comes after the leader's removal, which frees one;
//! 4. shrink to 3: remove another follower (raftkv CLI) — an original member while one is
//!    left, and never `n6` while another will do, so the final three may all be members
//!    that joined, the one on a reused address among them;
//! 5. the member list (`etcdctl member list` and the client library's): three voters, the
//!    expected names, all started.
//!
//! After each stage and each promotion the workload runs undisturbed for `settle`. At the end: a probe write
//! through every member, the clients stop, every key is read, the members must converge and
//! hold identical copies, and the checker judges the whole history. Last, on a separate
//! one-member cluster, removing the last voter must be refused. A failing step ends the
//! scenario (later steps depend on it); the end-of-run checks still run.
//!
//! Owns: the scenario's order, its expectations of the tools' output, and
//! [`MembershipReport`]. Must never: reuse an address before its previous member exited and
//! its data directory is gone, treat a removed member's own exit as a crash (or any other
//! exit as expected), or pass a run with a failed step.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use check::TimedHistory;
use client::Client;
use tokio::runtime::Runtime;

use crate::cluster::{Cluster, MemberState, ServeSettings, UnexpectedExit};
use crate::faults::{secs, PROBE_CLIENT_ID};
use crate::observe::{
    leader_of, probe_write, statuses, wait_converged, wait_leader, POLL_INTERVAL,
};
use crate::report::Findings;
use crate::stop::Stop;
use crate::workload::{client_config, Workload, WorkloadConfig};
use crate::{
    check_binary, compare_replicas, end_workload, serve_or_fail, verify, Error, WorkDir,
    SERVE_DEADLINE, STATUS_TIMEOUT,
};

/// Addresses reserved (all of [`crate::cluster`]'s five).
pub const SLOTS: usize = 5;
/// Members the cluster starts with, and ends with.
pub const FOUNDERS: usize = 3;
/// The member that replaces another, on the removed leader's address.
const REPLACEMENT: &str = "n6";

/// What to run.
#[derive(Clone, Debug)]
pub struct MembershipConfig {
    /// The `raftkv` binary (members and the CLI).
    pub raftkv_bin: PathBuf,
    /// `etcdctl` (3.4 or later) for some of the changes; `None`: the raftkv CLI makes them.
    pub etcdctl: Option<PathBuf>,
    /// Seeds the clients' choices.
    pub seed: u64,
    pub serve: ServeSettings,
    pub workload: WorkloadConfig,
    /// The workload runs this long undisturbed after each change.
    pub settle: Duration,
    /// A new member must catch up within this.
    pub catch_up_deadline: Duration,
    /// Promotions refused as "not in sync" are retried for this long.
    pub promote_deadline: Duration,
    /// A removed member must exit within this.
    pub exit_deadline: Duration,
    /// Another member must lead within this of the leader's removal.
    pub leader_deadline: Duration,
    /// Most time the checker may take before the verdict is "undecided".
    pub check_budget: Duration,
    /// Where data and logs go (must not exist or be empty); a temporary directory if `None`.
    pub dir: Option<PathBuf>,
    /// Keep the directory even when the run passes.
    pub keep_dir: bool,
    /// Print each step to stderr as it ends.
    pub progress: bool,
    /// Raised (e.g. by Ctrl-C) to skip the remaining steps; the run still checks.
    pub stop: Stop,
}

impl MembershipConfig {
    /// The defaults: 5 clients, 8 hot keys, 1 s of load between changes, `etcdctl` from the
    /// `PATH` if there is one.
    pub fn new(raftkv_bin: PathBuf, seed: u64) -> MembershipConfig {
        let base = crate::Config::new(raftkv_bin.clone(), seed);
        MembershipConfig {
            raftkv_bin,
            etcdctl: find_etcdctl(),
            seed,
            serve: base.serve,
            workload: base.workload,
            settle: Duration::from_secs(1),
            catch_up_deadline: Duration::from_secs(30),
            promote_deadline: Duration::from_secs(15),
            exit_deadline: Duration::from_secs(20),
            leader_deadline: Duration::from_secs(10),
            check_budget: Duration::from_secs(120),
            dir: None,
            keep_dir: false,
            progress: false,
            stop: Stop::new(),
        }
    }
}

/// `etcdctl` on the `PATH`, if any.
pub fn find_etcdctl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcdctl"))
        .find(|p| p.is_file())
}

/// One step of the scenario.
#[derive(Clone, Debug)]
pub struct Step {
    /// What was done, e.g. "grow: add n4 as a learner (raftkv CLI)".
    pub name: String,
    /// What it saw (`Ok`), or why it failed.
    pub outcome: Result<String, String>,
    pub elapsed: Duration,
}

/// Everything a membership run found.
#[derive(Clone, Debug)]
pub struct MembershipReport {
    pub seed: u64,
    pub clients: usize,
    /// The whole run, start to verdict.
    pub elapsed: Duration,
    /// From the workload's start to the last change.
    pub scenario: Duration,
    pub steps: Vec<Step>,
    /// Steps the scenario did not get to (a step failed, or the run was stopped).
    pub skipped: Vec<&'static str>,
    /// The members at the end, by name.
    pub final_members: Vec<String>,
    /// Which tool made the `etcdctl` steps (`etcdctl <version>`, or why the raftkv CLI did).
    pub etcdctl: String,
    pub findings: Findings,
    pub dir: PathBuf,
    pub dir_kept: bool,
}

impl MembershipReport {
    /// Why the run fails; empty when it passes.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .steps
            .iter()
            .filter(|s| s.outcome.is_err())
            .map(|s| format!("step failed: {}", s.name))
            .collect();
        if !self.skipped.is_empty() {
            out.push(format!("{} step(s) skipped", self.skipped.len()));
        }
        if let Err(why) = &self.findings.final_recovery {
            out.push(format!("not serving at the end: {why}"));
        }
        out.extend(self.findings.failures());
        out
    }

    /// No failure.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }
}

impl fmt::Display for MembershipReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "membership: seed {}, {} clients, {} steps in {} (whole run {}); etcdctl steps by {}",
            self.seed,
            self.clients,
            self.steps.len(),
            secs(self.scenario),
            secs(self.elapsed),
            self.etcdctl
        )?;
        for (n, step) in self.steps.iter().enumerate() {
            writeln!(f, "  {}", step_line(n + 1, step))?;
        }
        if !self.skipped.is_empty() {
            writeln!(f, "  SKIPPED: {}", self.skipped.join("; "))?;
        }
        writeln!(f, "members at the end: {}", self.final_members.join(" "))?;
        self.findings.fmt_operations(f, self.scenario)?;
        self.findings.fmt_history(f)?;
        match &self.findings.final_recovery {
            Ok(d) => writeln!(
                f,
                "serving at the end: a write through every member in {}",
                secs(*d)
            )?,
            Err(why) => writeln!(f, "NOT SERVING at the end: {why}")?,
        }
        self.findings.fmt_members(f)?;
        let failures = self.failures();
        if failures.is_empty() {
            writeln!(f, "result: PASS")?;
        } else {
            writeln!(f, "result: FAIL — {}", failures.join("; "))?;
        }
        if self.dir_kept {
            writeln!(f, "data and member logs kept in {}", self.dir.display())?;
        }
        Ok(())
    }
}

/// `#3 grow: … (1.2 s): ok — …`.
pub fn step_line(n: usize, step: &Step) -> String {
    let (verdict, text) = match &step.outcome {
        Ok(seen) => ("ok", seen),
        Err(why) => ("FAILED", why),
    };
    format!(
        "#{n} {} ({}): {verdict} — {text}",
        step.name,
        secs(step.elapsed)
    )
}

/// Runs the scenario (see the module docs). `Err` means the harness could not do its job
/// (an address in use, a cluster that never served); a run that found a bug returns a
/// report that does not pass.
pub fn run(config: &MembershipConfig) -> Result<MembershipReport, Error> {
    check_binary(&config.raftkv_bin)?;
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

fn run_in(
    config: &MembershipConfig,
    dir: &Path,
    started: Instant,
) -> Result<MembershipReport, Error> {
    let rt = crate::runtime()?;
    let mut cluster = Cluster::start_some(&config.raftkv_bin, dir, SLOTS, FOUNDERS, &config.serve)?;
    let slot_urls = cluster.client_urls();
    let admin = rt
        .block_on(Client::connect(client_config(
            &slot_urls,
            STATUS_TIMEOUT,
            STATUS_TIMEOUT,
        )))
        .map_err(Error::Client)?;
    let history = Arc::new(TimedHistory::new());
    let founders = &slot_urls[..FOUNDERS];
    serve_or_fail(&rt, founders, &history, "probe/start", "the new cluster")?;
    let workload = rt.block_on(Workload::start(
        &slot_urls,
        &config.workload,
        history.clone(),
    ))?;
    let scenario_started = Instant::now();
    let etcdctl = etcdctl_version(config.etcdctl.as_deref());
    let mut scenario = Scenario {
        config,
        cluster: &mut cluster,
        rt: &rt,
        admin: admin.clone(),
        history: history.clone(),
        etcdctl: etcdctl.as_ref().ok().and(config.etcdctl.clone()),
        steps: Vec::new(),
        exits: Vec::new(),
        probes: 0,
    };
    let skipped = scenario.run();
    let (mut steps, exits) = (scenario.steps, scenario.exits);
    let scenario_time = scenario_started.elapsed();
    let (findings, final_members) =
        conclude(config, &rt, cluster, &admin, &history, workload, exits)?;
    if skipped.is_empty() {
        steps.push(last_voter_step(config, dir, &rt)?);
    }
    Ok(MembershipReport {
        seed: config.seed,
        clients: config.workload.clients,
        elapsed: started.elapsed(),
        scenario: scenario_time,
        steps,
        skipped,
        final_members,
        etcdctl: match etcdctl {
            Ok(version) => version,
            Err(why) => format!("the raftkv CLI ({why})"),
        },
        findings,
        dir: dir.to_path_buf(),
        dir_kept: false,
    })
}

/// After the last change: a write through every member, the clients stop, every key is
/// read; the members converge and are compared; the cluster is shut down and the history
/// checked. Returns the findings and the final members' names.
fn conclude(
    config: &MembershipConfig,
    rt: &Runtime,
    mut cluster: Cluster,
    admin: &Client,
    history: &Arc<TimedHistory>,
    workload: Workload,
    mut unexpected_exits: Vec<UnexpectedExit>,
) -> Result<(Findings, Vec<String>), Error> {
    let present = cluster.present();
    let urls: Vec<String> = present
        .iter()
        .map(|&i| cluster.spec(i).client_url())
        .collect();
    let request_timeout = config.workload.request_timeout;
    let ending = rt.block_on(end_workload(request_timeout, &urls, history, workload))?;
    let converged = rt.block_on(wait_converged(admin, &urls, SERVE_DEADLINE));
    let replica_differences = match &converged {
        Ok(_) => compare_replicas(rt, &cluster),
        Err(_) => Vec::new(),
    };
    unexpected_exits.extend(cluster.reap_unexpected_exits());
    let final_members = present
        .iter()
        .map(|&i| cluster.spec(i).name.clone())
        .collect();
    cluster.shutdown();
    let ops = history.operations();
    let findings = Findings {
        final_recovery: ending.final_recovery,
        workload: ending.workload_stats,
        linearizability: verify::linearizability(&ops, config.check_budget),
        audit: verify::audit_appends(&ops, &ending.finals),
        final_keys: ending.finals.len(),
        converged,
        replica_differences,
        unexpected_exits,
    };
    Ok((findings, final_members))
}

/// `etcdctl <version>`, or why there is none to use.
fn etcdctl_version(etcdctl: Option<&Path>) -> Result<String, String> {
    let path = etcdctl.ok_or("etcdctl is not installed")?;
    let out = Command::new(path)
        .arg("version")
        .env("ETCDCTL_API", "3")
        .output()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("etcdctl version: "))
        .ok_or_else(|| format!("{} version printed {text:?}", path.display()))?;
    Ok(format!("etcdctl {version}"))
}

/// Which tool makes a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    Raftkv,
    Etcdctl,
}

/// A membership command, as either tool spells it.
enum Op<'a> {
    AddLearner {
        name: &'a str,
        peer_url: &'a str,
    },
    Promote(u64),
    /// By name with the raftkv CLI (as its users would), by hex id with `etcdctl`.
    Remove {
        name: &'a str,
        id: u64,
    },
    List,
}

impl Op<'_> {
    fn args(&self, tool: Tool) -> Vec<String> {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match (tool, self) {
            (Tool::Raftkv, Op::AddLearner { name, peer_url }) => {
                words(&["members", "add", name, "--peer-urls", peer_url, "--learner"])
            }
            (Tool::Etcdctl, Op::AddLearner { name, peer_url }) => words(&[
                "member",
                "add",
                name,
                &format!("--peer-urls={peer_url}"),
                "--learner",
            ]),
            (Tool::Raftkv, Op::Promote(id)) => words(&["members", "promote", &format!("{id:x}")]),
            (Tool::Etcdctl, Op::Promote(id)) => words(&["member", "promote", &format!("{id:x}")]),
            (Tool::Raftkv, Op::Remove { name, .. }) => words(&["members", "remove", name]),
            (Tool::Etcdctl, Op::Remove { id, .. }) => {
                words(&["member", "remove", &format!("{id:x}")])
            }
            (Tool::Raftkv, Op::List) => words(&["members"]),
            (Tool::Etcdctl, Op::List) => words(&["member", "list"]),
        }
    }
}

/// How one command ended.
struct Output {
    /// The command line, for messages.
    shown: String,
    success: bool,
    stdout: String,
    stderr: String,
}

impl Output {
    /// The command must succeed; `Ok` is what it printed.
    fn ok(self) -> Result<String, String> {
        if self.success {
            Ok(self.stdout)
        } else {
            Err(format!("`{}` failed: {}", self.shown, self.stderr.trim()))
        }
    }

    /// The command must fail with `needle` in its error; `Ok` says how it was refused.
    fn refused(self, needle: &str) -> Result<String, String> {
        let err = self.stderr.trim();
        if self.success {
            return Err(format!(
                "`{}` succeeded: {}",
                self.shown,
                self.stdout.trim()
            ));
        }
        if !err.contains(needle) {
            return Err(format!("`{}` failed without {needle:?}: {err}", self.shown));
        }
        // The last such line: etcdctl logs its retries before its `Error: …` line.
        let line = err
            .lines()
            .rev()
            .find(|l| l.contains(needle))
            .unwrap_or(err);
        Ok(format!("`{}` refused: {}", self.shown, line.trim()))
    }
}

/// Runs `op` with `tool` against `endpoints` (`etcdctl` with `ETCDCTL_API=3`).
fn command(bin: &Path, tool: Tool, endpoints: &[String], op: &Op<'_>) -> Output {
    let endpoints = endpoints.join(",");
    let args = op.args(tool);
    let mut cmd = Command::new(bin);
    let name = match tool {
        Tool::Raftkv => {
            cmd.args(&args)
                .args(["--endpoints", &endpoints, "--timeout", "10s"]);
            "raftkv"
        }
        Tool::Etcdctl => {
            cmd.env("ETCDCTL_API", "3")
                .arg(format!("--endpoints={endpoints}"))
                .args(["--command-timeout=10s", "--dial-timeout=2s"])
                .args(&args);
            "etcdctl"
        }
    };
    let shown = format!("{name} {}", args.join(" "));
    match cmd.stdin(std::process::Stdio::null()).output() {
        Ok(out) => Output {
            shown,
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Err(e) => Output {
            stderr: format!("cannot run {}: {e}", bin.display()),
            shown,
            success: false,
            stdout: String::new(),
        },
    }
}

/// The new member's id in `Member <hex> added …` (both tools print it so).
fn added_id(out: &str) -> Option<u64> {
    let line = out.lines().find(|l| l.starts_with("Member "))?;
    let hex = line.split_whitespace().nth(1)?;
    u64::from_str_radix(hex, 16).ok()
}

/// The `--initial-cluster` a tool tells the new member to start with: the raftkv CLI's
/// `raftkv serve … --initial-cluster X …` hint, or etcdctl's `ETCD_INITIAL_CLUSTER="X"`.
fn advised_initial_cluster(tool: Tool, out: &str) -> Option<String> {
    match tool {
        Tool::Raftkv => {
            let mut words = out.split_whitespace();
            words.find(|w| *w == "--initial-cluster")?;
            words.next().map(str::to_string)
        }
        Tool::Etcdctl => out
            .lines()
            .find_map(|l| l.strip_prefix("ETCD_INITIAL_CLUSTER="))
            .map(|v| v.trim_matches('"').to_string()),
    }
}

/// The scenario while it runs: the cluster, the tools, the steps so far.
struct Scenario<'a> {
    config: &'a MembershipConfig,
    cluster: &'a mut Cluster,
    rt: &'a Runtime,
    admin: Client,
    history: Arc<TimedHistory>,
    /// `etcdctl` when it works; otherwise its steps use the raftkv CLI.
    etcdctl: Option<PathBuf>,
    steps: Vec<Step>,
    exits: Vec<UnexpectedExit>,
    probes: u64,
}

/// The scenario's stages, in order (named in the report when some are skipped).
const STAGES: [&str; 5] = [
    "grow to 5",
    "remove the leader",
    "replace a member",
    "shrink to 3",
    "check the member list",
];

/// A member that left: its slot and its id.
#[derive(Clone, Copy, Debug)]
struct Left {
    slot: usize,
    id: u64,
}

impl Scenario<'_> {
    /// Runs the stages until one fails; returns the ones not run.
    fn run(&mut self) -> Vec<&'static str> {
        let mut left = None;
        for (n, _) in STAGES.iter().enumerate() {
            if self.config.stop.is_raised() {
                return STAGES[n..].to_vec();
            }
            let ok = match (n, left) {
                (0, _) => self.grow(),
                (1, _) => self.remove_leader().map(|l| left = Some(l)).is_some(),
                (2, Some(l)) => self.replace(l),
                (3, _) => self.shrink(),
                (4, _) => self.check_list(),
                _ => unreachable!("stage {n} without the leader's removal"),
            };
            if !ok {
                return STAGES[n + 1..].to_vec();
            }
            self.config.stop.pause(self.config.settle);
        }
        Vec::new()
    }

    /// Times `f` as a step named `name`; a member that exited on its own fails it.
    fn step(&mut self, name: String, f: impl FnOnce(&mut Self) -> Result<String, String>) -> bool {
        let started = Instant::now();
        let mut outcome = f(self);
        let exits = self.cluster.reap_unexpected_exits();
        if !exits.is_empty() {
            let names: Vec<&str> = exits.iter().map(|e| e.member.as_str()).collect();
            let why = format!("unexpected exit of {}", names.join(", "));
            outcome = Err(match outcome {
                Ok(seen) => format!("{seen}; {why}"),
                Err(err) => format!("{err}; {why}"),
            });
            self.exits.extend(exits);
        }
        let step = Step {
            name,
            outcome,
            elapsed: started.elapsed(),
        };
        if self.config.progress {
            eprintln!("nemesis: {}", step_line(self.steps.len() + 1, &step));
        }
        let ok = step.outcome.is_ok();
        self.steps.push(step);
        ok
    }

    /// The tool that really runs for `tool` (the raftkv CLI when there is no etcdctl).
    fn effective(&self, tool: Tool) -> Tool {
        match (tool, &self.etcdctl) {
            (Tool::Etcdctl, None) => Tool::Raftkv,
            _ => tool,
        }
    }

    /// ` (raftkv CLI)` or ` (etcdctl)`, for step names.
    fn by(&self, tool: Tool) -> &'static str {
        match self.effective(tool) {
            Tool::Raftkv => " (raftkv CLI)",
            Tool::Etcdctl => " (etcdctl)",
        }
    }

    /// Runs `op` with `tool` (see [`Scenario::effective`]) against the running members.
    fn tool(&self, tool: Tool, op: &Op<'_>) -> Output {
        let endpoints: Vec<String> = self
            .running()
            .into_iter()
            .map(|i| self.cluster.spec(i).client_url())
            .collect();
        let tool = self.effective(tool);
        let bin = match tool {
            Tool::Raftkv => self.config.raftkv_bin.as_path(),
            Tool::Etcdctl => self.etcdctl.as_deref().expect("effective checked"),
        };
        command(bin, tool, &endpoints, op)
    }

    /// Slots whose member runs.
    fn running(&self) -> Vec<usize> {
        self.cluster
            .present()
            .into_iter()
            .filter(|&i| self.cluster.state(i) == MemberState::Running)
            .collect()
    }

    fn name(&self, slot: usize) -> String {
        self.cluster.spec(slot).name.clone()
    }

    /// The id of the member with slot `slot`'s peer URL, from the member list.
    fn member_id(&self, slot: usize) -> Result<u64, String> {
        let url = self.cluster.spec(slot).peer_url();
        let list = self
            .rt
            .block_on(self.admin.member_list())
            .map_err(|e| format!("member list: {e}"))?;
        list.members
            .iter()
            .find(|m| m.peer_ur_ls.contains(&url))
            .map(|m| m.id)
            .ok_or_else(|| format!("no member has the peer URL {url}"))
    }

    /// The slot of the current leader, waiting for one up to the leader deadline.
    fn leader(&self, except: Option<usize>) -> Result<usize, String> {
        let urls = self.cluster.client_urls();
        let eligible: Vec<bool> = (0..urls.len())
            .map(|i| Some(i) != except && self.cluster.state(i) == MemberState::Running)
            .collect();
        let deadline = self.config.leader_deadline;
        self.rt
            .block_on(wait_leader(&self.admin, &urls, &eligible, deadline))
            .ok_or_else(|| format!("no leader within {}", secs(deadline)))
    }

    /// A recorded probe write through every running member.
    fn probe(&mut self, what: &str) -> Result<Duration, String> {
        self.probes += 1;
        let urls: Vec<String> = self
            .running()
            .into_iter()
            .map(|i| self.cluster.spec(i).client_url())
            .collect();
        let key = format!("probe/membership/{what}");
        let value = format!("m{}", self.probes);
        self.rt.block_on(probe_write(
            &urls,
            &self.history,
            PROBE_CLIENT_ID,
            key,
            value,
            SERVE_DEADLINE,
        ))
    }
}

/// The stages.
impl Scenario<'_> {
    /// 3 → 5: `n4` by the raftkv CLI (with the refusal to promote it before it started),
    /// `n5` by `etcdctl`.
    fn grow(&mut self) -> bool {
        let taken = self.cluster.spec(0).peer_url();
        let dup = format!("refuse adding a member with n1's peer URL {taken}");
        self.step(dup + self.by(Tool::Raftkv), |s| {
            let op = Op::AddLearner {
                name: "dup",
                peer_url: &taken,
            };
            s.tool(Tool::Raftkv, &op)
                .refused("Peer URLs already exists")
        }) && self.grow_member(Tool::Raftkv, 3, "n4", true, None)
            && self.grow_member(Tool::Etcdctl, 4, "n5", false, None)
    }

    /// Adds `name` at `slot` as a learner with `tool`, (with `refuse_early`: checks that
    /// promoting it before it started is refused), starts it, waits until it caught up,
    /// promotes it. `previous`: the id the slot's peer URL had before (the new one must
    /// differ).
    fn grow_member(
        &mut self,
        tool: Tool,
        slot: usize,
        name: &str,
        refuse_early: bool,
        previous: Option<u64>,
    ) -> bool {
        let url = self.cluster.spec(slot).peer_url();
        let mut initial = String::new();
        let add = format!("add {name} at {url} as a learner{}", self.by(tool));
        let early = format!("refuse promoting {name} before it started{}", self.by(tool));
        let start =
            format!("start {name} (--initial-cluster-state existing), wait until it caught up");
        let promote = format!("promote {name}{}", self.by(tool));
        self.step(add, |s| {
            let (seen, advised) = s.add(tool, slot, name, previous)?;
            initial = advised;
            Ok(seen)
        }) && (!refuse_early
            || self.step(early, |s| {
                let id = s.member_id(slot)?;
                s.tool(tool, &Op::Promote(id))
                    .refused("in sync with leader")
            }))
            && self.step(start, |s| s.start_caught_up(slot, name, &initial))
            && self.step(promote, |s| s.promote(tool, slot))
            && self.config.stop.pause(self.config.settle)
    }

    /// MemberAdd as a learner; `Ok` is what was seen and the `--initial-cluster` the tool
    /// advised.
    fn add(
        &mut self,
        tool: Tool,
        slot: usize,
        name: &str,
        previous: Option<u64>,
    ) -> Result<(String, String), String> {
        let url = self.cluster.spec(slot).peer_url();
        let op = Op::AddLearner {
            name,
            peer_url: &url,
        };
        let out = self.tool(tool, &op).ok()?;
        let id = added_id(&out).ok_or_else(|| format!("no `Member <id> added` in {out:?}"))?;
        let listed = self.member_id(slot)?;
        if listed != id {
            return Err(format!("added {id:x}, but {url} is member {listed:x}"));
        }
        let advised = advised_initial_cluster(self.effective(tool), &out)
            .ok_or_else(|| format!("no initial cluster advised in {out:?}"))?;
        if !advised.split(',').any(|m| m == format!("{name}={url}")) {
            return Err(format!(
                "the advised initial cluster {advised} lacks {name}={url}"
            ));
        }
        let mut seen = format!("member {id:x}; start it with --initial-cluster {advised}");
        if let Some(old) = previous {
            if old == id {
                return Err(format!(
                    "{url} was member {old:x} before and got the same id"
                ));
            }
            seen += &format!(" (a new id: {url} was member {old:x} before)");
        }
        Ok((seen, advised))
    }

    /// Starts `name` in `slot` joining with `initial` and waits until it caught up.
    fn start_caught_up(
        &mut self,
        slot: usize,
        name: &str,
        initial: &str,
    ) -> Result<String, String> {
        self.cluster
            .join(slot, name, initial)
            .map_err(|e| e.to_string())?;
        let urls = self.cluster.client_urls();
        let deadline = self.config.catch_up_deadline;
        self.rt
            .block_on(caught_up(&self.admin, &urls, slot, deadline))
    }

    /// Promotes the learner in `slot`, again while it is refused as not in sync.
    fn promote(&mut self, tool: Tool, slot: usize) -> Result<String, String> {
        let id = self.member_id(slot)?;
        let started = Instant::now();
        let mut refusals = 0;
        loop {
            let out = self.tool(tool, &Op::Promote(id));
            if out.success {
                return Ok(format!(
                    "member {id:x} votes ({refusals} \"not in sync\" refusal(s) before)"
                ));
            }
            let behind = out.stderr.contains("in sync with leader");
            if !behind || started.elapsed() >= self.config.promote_deadline {
                return out.ok();
            }
            refusals += 1;
            std::thread::sleep(PROMOTE_RETRY_INTERVAL);
        }
    }

    /// Removes the leader (raftkv CLI): it exits by itself, another member leads, the rest
    /// serves; removing it again is refused.
    fn remove_leader(&mut self) -> Option<Left> {
        let mut left = None;
        let removed = self.step(format!("remove the leader{}", self.by(Tool::Raftkv)), |s| {
            let slot = s.leader(None)?;
            let name = s.name(slot);
            let id = s.member_id(slot)?;
            s.tool(Tool::Raftkv, &Op::Remove { name: &name, id }).ok()?;
            let removed_at = Instant::now();
            s.cluster.leaving(slot);
            let exited = s.await_exit(slot, removed_at)?;
            let next = s.leader(Some(slot))?;
            let led = removed_at.elapsed();
            let served = s.probe("leader-removed")?;
            left = Some(Left { slot, id });
            Ok(format!(
                "{name} ({id:x}) led; it exited cleanly {} after its removal; {} leads ({} after \
                 the removal); a write through every member took {}",
                secs(exited),
                s.name(next),
                secs(led),
                secs(served)
            ))
        });
        let left = left.filter(|_| removed)?;
        let (tool, needle) = match self.effective(Tool::Etcdctl) {
            Tool::Etcdctl => (Tool::Etcdctl, "member not found"),
            Tool::Raftkv => (Tool::Raftkv, "no member is named or has the id"),
        };
        let again = format!(
            "refuse removing the removed leader {:x} again{}",
            left.id,
            self.by(tool)
        );
        self.step(again, |s| {
            let name = format!("{:x}", left.id);
            s.tool(
                tool,
                &Op::Remove {
                    name: &name,
                    id: left.id,
                },
            )
            .refused(needle)
        })
        .then_some(left)
    }

    /// Replaces an original follower: `n6` joins at the removed leader's address, then the
    /// follower is removed (`etcdctl`).
    fn replace(&mut self, left: Left) -> bool {
        self.grow_member(Tool::Raftkv, left.slot, REPLACEMENT, false, Some(left.id))
            && self.remove_follower(Tool::Etcdctl, "replaced by n6", |slot| slot < FOUNDERS)
    }

    /// 4 → 3: removes another follower (raftkv CLI), an original one if it can.
    fn shrink(&mut self) -> bool {
        self.remove_follower(Tool::Raftkv, "back to 3 members", |_| true)
    }

    /// Removes a running follower whose slot passes `pick`: an original member if one is
    /// left, else one that joined before `n6` (so the member on a reused address stays to
    /// be compared at the end), else any.
    fn remove_follower(&mut self, tool: Tool, why: &str, pick: impl Fn(usize) -> bool) -> bool {
        let name = format!("remove a follower, {why}{}", self.by(tool));
        self.step(name, |s| {
            let leader = s.leader(None)?;
            let rank = |i: &usize| match s.name(*i) {
                n if *i < FOUNDERS && n == format!("n{}", i + 1) => 0,
                n if n == REPLACEMENT => 2,
                _ => 1,
            };
            let slot = s
                .running()
                .into_iter()
                .filter(|&i| i != leader && pick(i))
                .min_by_key(rank)
                .ok_or("no follower to remove")?;
            let name = s.name(slot);
            let id = s.member_id(slot)?;
            s.tool(tool, &Op::Remove { name: &name, id }).ok()?;
            let removed_at = Instant::now();
            s.cluster.leaving(slot);
            let exited = s.await_exit(slot, removed_at)?;
            Ok(format!(
                "{name} ({id:x}) exited cleanly {} after its removal; {} leads",
                secs(exited),
                s.name(leader)
            ))
        })
    }

    /// Waits for leaving `slot` to exit cleanly, saying it was removed; deletes its data
    /// directory. `Ok` is the time since `since`.
    fn await_exit(&mut self, slot: usize, since: Instant) -> Result<Duration, String> {
        let name = self.name(slot);
        let deadline = self.config.exit_deadline;
        let exit = self
            .cluster
            .wait_exit(slot, deadline)
            .ok_or_else(|| format!("{name} still runs {} after its removal", secs(deadline)))?;
        let elapsed = since.elapsed();
        if !exit.clean {
            return Err(format!(
                "{name} exited with {}; log tail:\n{}",
                exit.status, exit.log_tail
            ));
        }
        if !exit.log_tail.contains("removed from the cluster") {
            return Err(format!(
                "{name} exited without saying it was removed; log tail:\n{}",
                exit.log_tail
            ));
        }
        self.cluster.wipe(slot).map_err(|e| e.to_string())?;
        Ok(elapsed)
    }

    /// The member list (`etcdctl member list`, and the client library's): exactly the
    /// members running, all voters, all started.
    fn check_list(&mut self) -> bool {
        let name = format!("check the member list{}", self.by(Tool::Etcdctl));
        self.step(name, |s| {
            let mut expected: Vec<String> = s.running().into_iter().map(|i| s.name(i)).collect();
            expected.sort();
            let out = s.tool(Tool::Etcdctl, &Op::List).ok()?;
            let list =
                s.rt.block_on(s.admin.member_list())
                    .map_err(|e| format!("member list: {e}"))?;
            let mut names: Vec<String> = list.members.iter().map(|m| m.name.clone()).collect();
            names.sort();
            if names != expected {
                return Err(format!("members {names:?}, expected {expected:?}: {out}"));
            }
            if let Some(m) = list.members.iter().find(|m| m.is_learner) {
                return Err(format!("{} is still a learner: {out}", m.name));
            }
            let shown = out.trim().lines().count();
            if shown != expected.len() || expected.iter().any(|n| !out.contains(n.as_str())) {
                return Err(format!(
                    "the tool lists {shown} members, expected {expected:?}: {out}"
                ));
            }
            if s.effective(Tool::Etcdctl) == Tool::Etcdctl
                && !out
                    .lines()
                    .all(|l| l.contains(", started, ") && l.ends_with(", false"))
            {
                return Err(format!(
                    "etcdctl shows a member unstarted or a learner: {out}"
                ));
            }
            Ok(format!("{} voters: {}", expected.len(), expected.join(" ")))
        })
    }
}

/// Promotions refused as "not in sync" are retried this often.
const PROMOTE_RETRY_INTERVAL: Duration = Duration::from_millis(200);

/// Polls until the member at `urls[slot]` applied everything the leader had committed just
/// before the member answered (the leader is asked first, then the member), and says
/// whether it still is a learner.
async fn caught_up(
    admin: &Client,
    urls: &[String],
    slot: usize,
    deadline: Duration,
) -> Result<String, String> {
    let started = Instant::now();
    let others: Vec<bool> = (0..urls.len()).map(|i| i != slot).collect();
    let mut last = "no answer".to_string();
    loop {
        let round = statuses(admin, urls).await;
        if let Some(leader) = leader_of(&round, &others) {
            let commit = admin.status(&urls[leader]).await.map(|st| st.raft_index);
            let me = admin.status(&urls[slot]).await;
            match (commit, me) {
                (Ok(commit), Ok(me)) if me.raft_applied_index >= commit => {
                    return Ok(format!(
                        "caught up {} after its start: applied {} ≥ {commit}, the leader's \
                         commit index just before (learner: {})",
                        secs(started.elapsed()),
                        me.raft_applied_index,
                        me.is_learner
                    ));
                }
                (Ok(commit), Ok(me)) => {
                    last = format!("applied {} of {commit}", me.raft_applied_index)
                }
                (_, Err(e)) => last = format!("no status: {e}"),
                (Err(e), _) => last = format!("no status from the leader: {e}"),
            }
        }
        if started.elapsed() >= deadline {
            return Err(format!("not caught up within {}: {last}", secs(deadline)));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// On a separate one-member cluster (the main one is gone): removing its only member, the
/// last voter, is refused.
fn last_voter_step(config: &MembershipConfig, dir: &Path, rt: &Runtime) -> Result<Step, Error> {
    let started = Instant::now();
    let solo_dir = dir.join("solo");
    std::fs::create_dir_all(&solo_dir).map_err(|source| Error::Io {
        what: format!("creating {}", solo_dir.display()),
        source,
    })?;
    let mut solo = Cluster::start_some(&config.raftkv_bin, &solo_dir, 1, 1, &config.serve)?;
    let urls = solo.client_urls();
    let scratch = TimedHistory::new();
    let served = rt.block_on(probe_write(
        &urls,
        &scratch,
        PROBE_CLIENT_ID,
        "probe/solo".into(),
        "up".into(),
        SERVE_DEADLINE,
    ));
    let mut outcome = served
        .map_err(|why| format!("the one-member cluster did not serve: {why}"))
        .and_then(|_| {
            let op = Op::Remove { name: "n1", id: 0 };
            command(&config.raftkv_bin, Tool::Raftkv, &urls, &op)
                .refused("cannot remove the last voting member")
        });
    if let Some(exit) = solo.reap_unexpected_exits().first() {
        outcome = Err(format!(
            "the one member exited ({}): {}",
            exit.status, exit.log_tail
        ));
    }
    solo.shutdown();
    Ok(Step {
        name: "refuse removing the last voter of a one-member cluster (raftkv CLI)".into(),
        outcome,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_id_and_the_advised_initial_cluster_are_read_from_either_tool() {
        let raftkv = "Member 1a2b added to the cluster as a learner\n\nStart it with:\n  \
                      raftkv serve --name n4 --initial-cluster n1=http://a:2380,n4=http://d:2380 \
                      --initial-cluster-state existing --listen-peer-urls http://d:2380 ...\n";
        assert_eq!(added_id(raftkv), Some(0x1a2b));
        assert_eq!(
            advised_initial_cluster(Tool::Raftkv, raftkv).as_deref(),
            Some("n1=http://a:2380,n4=http://d:2380")
        );
        let etcdctl = "Member 8e9e05c52164694d added to cluster cdf818194e3a8c32\n\n\
                       ETCD_NAME=\"n5\"\nETCD_INITIAL_CLUSTER=\"n1=http://a:2380,n5=http://e:2380\"\n\
                       ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://e:2380\"\n\
                       ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n";
        assert_eq!(added_id(etcdctl), Some(0x8e9e_05c5_2164_694d));
        assert_eq!(
            advised_initial_cluster(Tool::Etcdctl, etcdctl).as_deref(),
            Some("n1=http://a:2380,n5=http://e:2380")
        );
        assert_eq!(
            added_id("Error: etcdserver: Peer URLs already exists"),
            None
        );
    }

    #[test]
    fn each_tool_spells_the_commands_its_own_way() {
        let add = Op::AddLearner {
            name: "n4",
            peer_url: "http://d:2380",
        };
        assert_eq!(
            add.args(Tool::Raftkv),
            [
                "members",
                "add",
                "n4",
                "--peer-urls",
                "http://d:2380",
                "--learner"
            ]
        );
        assert_eq!(
            add.args(Tool::Etcdctl),
            [
                "member",
                "add",
                "n4",
                "--peer-urls=http://d:2380",
                "--learner"
            ]
        );
        let remove = Op::Remove {
            name: "n2",
            id: 0xab,
        };
        assert_eq!(remove.args(Tool::Raftkv), ["members", "remove", "n2"]);
        assert_eq!(remove.args(Tool::Etcdctl), ["member", "remove", "ab"]);
        assert_eq!(
            Op::Promote(0xab).args(Tool::Etcdctl),
            ["member", "promote", "ab"]
        );
    }
}
