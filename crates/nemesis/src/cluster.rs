//! The five `raftkv serve` processes: start, SIGKILL, restart, SIGSTOP, SIGCONT, shut down;
//! and for membership changes: start a member that joins an existing cluster, expect a
//! removed member's own exit, free its address for another member.
//!
//! Owns: each slot's address (slot `i` listens on `127.0.0.(11 + i)`, client port 2379,
//! peer port 2380, so the kernel can tell members apart by source address), the member that
//! occupies it — its name (`n<i+1>` at first; a member that joins later brings its own), data
//! directory and log file (`<dir>/<name>/` and `<dir>/<name>.log`, appended to across
//! restarts) — its child process and what the harness last did to it ([`MemberState`]).
//! A slot is reused by another member only after the previous one exited and its data
//! directory was deleted ([`Cluster::wipe`]).
//!
//! Every child is spawned from the thread that created the [`Cluster`] with
//! `PR_SET_PDEATHSIG = SIGKILL`, so a harness that dies (even by SIGKILL) takes its members
//! with it; create and drive a `Cluster` from one long-lived thread (never from a tokio
//! blocking-pool thread, which may exit and kill the children).
//!
//! Must never: leave a child running or stopped after [`Cluster::shutdown`] or drop (a
//! stopped child is sent SIGCONT before SIGKILL), signal a process it did not spawn, or
//! decide which member to hurt (that is [`crate::faults`]).

use std::fs::OpenOptions;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::Error;

/// Client port of every member (each on its own address).
pub const CLIENT_PORT: u16 = 2379;
/// Peer port of every member.
pub const PEER_PORT: u16 = 2380;
/// Last octet of member 0's loopback address; member `i` is `127.0.0.(FIRST_OCTET + i)`.
pub const FIRST_OCTET: u8 = 11;
/// The `--initial-cluster-token` of every nemesis cluster.
pub const CLUSTER_TOKEN: &str = "raftkv-nemesis";

/// The `raftkv serve` settings every member gets.
#[derive(Clone, Debug)]
pub struct ServeSettings {
    pub heartbeat_interval: Duration,
    pub election_timeout: Duration,
    pub request_timeout: Duration,
    /// Snapshot every this many applied entries.
    pub snapshot_count: u64,
    /// `RAFTKV_LOG` for the members (a `tracing` filter).
    pub log_filter: String,
}

impl Default for ServeSettings {
    fn default() -> ServeSettings {
        ServeSettings {
            heartbeat_interval: Duration::from_millis(50),
            election_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(2000),
            snapshot_count: 500,
            log_filter: "info".to_string(),
        }
    }
}

/// What the harness last did to a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// Started (or restarted, or continued) and not hurt since.
    Running,
    /// SIGSTOPped.
    Stopped,
    /// SIGKILLed (and reaped); not running until restarted.
    Killed,
    /// Removed from the cluster and expected to exit by itself (see
    /// [`Cluster::wait_exit`]); its exit is not unexpected.
    Leaving,
    /// No process and none expected: the slot was never started, or its member left.
    Absent,
}

/// One member's fixed identity.
#[derive(Clone, Debug)]
pub struct MemberSpec {
    /// `n1` … `n5`.
    pub name: String,
    pub ip: Ipv4Addr,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
}

impl MemberSpec {
    /// `http://IP:2379`.
    pub fn client_url(&self) -> String {
        format!("http://{}:{CLIENT_PORT}", self.ip)
    }

    /// `http://IP:2380`.
    pub fn peer_url(&self) -> String {
        format!("http://{}:{PEER_PORT}", self.ip)
    }
}

struct Member {
    spec: MemberSpec,
    child: Option<Child>,
    state: MemberState,
    starts: u32,
    /// For a member that joined an existing cluster: the `--initial-cluster` it was given
    /// (it starts with `--initial-cluster-state existing`). `None`: a founding member.
    joined: Option<String>,
}

/// How a member that was expected to leave ended.
#[derive(Clone, Debug)]
pub struct MemberExit {
    pub member: String,
    /// Exit code 0.
    pub clean: bool,
    pub status: String,
    /// The last lines of its log.
    pub log_tail: String,
}

/// A member that exited although the harness did not kill it (a crash of the server).
#[derive(Clone, Debug)]
pub struct UnexpectedExit {
    pub member: String,
    pub status: String,
    /// The last lines of its log.
    pub log_tail: String,
}

/// Five (or `size`) `raftkv serve` children.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    settings: ServeSettings,
    initial_cluster: String,
    members: Vec<Member>,
}

impl Cluster {
    /// Starts `size` members under `dir`. Fails if an address is already in use (a leftover
    /// cluster) or a child cannot be spawned.
    pub fn start(
        bin: &Path,
        dir: &Path,
        size: usize,
        settings: &ServeSettings,
    ) -> Result<Cluster, Error> {
        Cluster::start_some(bin, dir, size, size, settings)
    }

    /// Reserves `slots` addresses under `dir` and starts a cluster of the first `founders`
    /// of them (the `--initial-cluster` names only those); the other slots stay
    /// [`MemberState::Absent`] for members that join later ([`Cluster::join`]). Fails if an
    /// address of any slot is already in use or a child cannot be spawned.
    pub fn start_some(
        bin: &Path,
        dir: &Path,
        slots: usize,
        founders: usize,
        settings: &ServeSettings,
    ) -> Result<Cluster, Error> {
        assert!(
            (1..=100).contains(&slots),
            "cluster size {slots} out of range"
        );
        assert!(
            (1..=slots).contains(&founders),
            "{founders} founders of {slots} slots"
        );
        let specs: Vec<MemberSpec> = (0..slots)
            .map(|i| slot_spec(dir, i, &format!("n{}", i + 1)))
            .collect();
        for spec in &specs {
            for port in [CLIENT_PORT, PEER_PORT] {
                ensure_free(spec, port)?;
            }
        }
        let initial_cluster = specs[..founders]
            .iter()
            .map(|s| format!("{}={}", s.name, s.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            settings: settings.clone(),
            initial_cluster,
            members: specs
                .into_iter()
                .map(|spec| Member {
                    spec,
                    child: None,
                    state: MemberState::Absent,
                    starts: 0,
                    joined: None,
                })
                .collect(),
        };
        for i in 0..founders {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    /// Number of slots (members, in a cluster without membership changes).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// The slots that hold a member (anything but [`MemberState::Absent`]), in slot order.
    pub fn present(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].state != MemberState::Absent)
            .collect()
    }

    /// Starts member `name` in the absent slot `i`, joining the existing cluster with
    /// `--initial-cluster initial_cluster --initial-cluster-state existing` (MemberAdd with
    /// the slot's peer URL must have run). The slot's data directory must not exist (a fresh
    /// slot, or one [`Cluster::wipe`]d).
    pub fn join(&mut self, i: usize, name: &str, initial_cluster: &str) -> Result<(), Error> {
        let member = &mut self.members[i];
        assert_eq!(
            member.state,
            MemberState::Absent,
            "join into an occupied slot"
        );
        let spec = slot_spec(&self.dir, i, name);
        assert!(
            !spec.data_dir.exists(),
            "{} exists: a joining member starts from nothing",
            spec.data_dir.display()
        );
        member.spec = spec;
        member.joined = Some(initial_cluster.to_string());
        member.starts = 0;
        self.spawn(i)
    }

    /// Marks running member `i` as removed from the cluster: its exit is expected now.
    pub fn leaving(&mut self, i: usize) {
        let member = &mut self.members[i];
        assert_eq!(
            member.state,
            MemberState::Running,
            "only a running member can leave"
        );
        member.state = MemberState::Leaving;
    }

    /// Waits up to `deadline` for leaving member `i` to exit by itself; then it is absent.
    /// `None` when it still runs (it stays leaving; [`Cluster::shutdown`] kills it).
    pub fn wait_exit(&mut self, i: usize, deadline: Duration) -> Option<MemberExit> {
        let member = &mut self.members[i];
        assert_eq!(
            member.state,
            MemberState::Leaving,
            "wait_exit of a member not leaving"
        );
        let until = std::time::Instant::now() + deadline;
        let status = loop {
            let child = member
                .child
                .as_mut()
                .expect("a leaving member has a process");
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) | Err(_) if std::time::Instant::now() >= until => return None,
                Ok(None) | Err(_) => std::thread::sleep(EXIT_POLL_INTERVAL),
            }
        };
        member.child = None;
        member.state = MemberState::Absent;
        Some(MemberExit {
            member: member.spec.name.clone(),
            clean: status.code() == Some(0),
            status: describe_exit(status),
            log_tail: log_tail(&member.spec.log_path, 20),
        })
    }

    /// Deletes absent member `i`'s data directory, so another member may use the slot. The
    /// log file stays (it is named after the member, not the slot).
    pub fn wipe(&mut self, i: usize) -> Result<(), Error> {
        let member = &self.members[i];
        assert_eq!(
            member.state,
            MemberState::Absent,
            "wipe of a member present"
        );
        match std::fs::remove_dir_all(&member.spec.data_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                what: format!("deleting {}", member.spec.data_dir.display()),
                source,
            }),
        }
    }

    /// Whether the cluster has no member (never: [`Cluster::start`] refuses size 0).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `i`'s identity.
    pub fn spec(&self, i: usize) -> &MemberSpec {
        &self.members[i].spec
    }

    /// Member `i`'s state.
    pub fn state(&self, i: usize) -> MemberState {
        self.members[i].state
    }

    /// Every member's client URL, in member order.
    pub fn client_urls(&self) -> Vec<String> {
        self.members.iter().map(|m| m.spec.client_url()).collect()
    }

    /// Member `i`'s process id, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// How often member `i` was started (1 + restarts).
    pub fn starts(&self, i: usize) -> u32 {
        self.members[i].starts
    }

    /// SIGKILLs member `i` (SIGCONT first if stopped, so it can die) and reaps it.
    pub fn kill(&mut self, i: usize) -> Result<(), Error> {
        let member = &mut self.members[i];
        let Some(mut child) = member.child.take() else {
            if member.state != MemberState::Absent {
                member.state = MemberState::Killed;
            }
            return Ok(());
        };
        if member.state == MemberState::Stopped {
            signal(&child, libc::SIGCONT);
        }
        signal(&child, libc::SIGKILL);
        child.wait().map_err(|source| Error::Process {
            member: member.spec.name.clone(),
            action: "wait for".into(),
            source,
        })?;
        member.state = if member.state == MemberState::Leaving {
            MemberState::Absent
        } else {
            MemberState::Killed
        };
        Ok(())
    }

    /// Starts member `i` again on its data directory. It must be killed.
    pub fn restart(&mut self, i: usize) -> Result<(), Error> {
        assert_eq!(
            self.members[i].state,
            MemberState::Killed,
            "restart of a member that is not killed"
        );
        self.spawn(i)
    }

    /// SIGSTOPs member `i`. It must be running.
    pub fn pause(&mut self, i: usize) {
        let member = &mut self.members[i];
        assert_eq!(
            member.state,
            MemberState::Running,
            "pause of a member not running"
        );
        if let Some(child) = &member.child {
            signal(child, libc::SIGSTOP);
        }
        member.state = MemberState::Stopped;
    }

    /// SIGCONTs member `i`. It must be stopped.
    pub fn resume(&mut self, i: usize) {
        let member = &mut self.members[i];
        assert_eq!(
            member.state,
            MemberState::Stopped,
            "resume of a member not stopped"
        );
        if let Some(child) = &member.child {
            signal(child, libc::SIGCONT);
        }
        member.state = MemberState::Running;
    }

    /// Resumes every stopped member and restarts every killed one (a leaving or absent one
    /// is left alone).
    pub fn revive_all(&mut self) -> Result<(), Error> {
        for i in 0..self.members.len() {
            match self.members[i].state {
                MemberState::Running | MemberState::Leaving | MemberState::Absent => {}
                MemberState::Stopped => self.resume(i),
                MemberState::Killed => self.restart(i)?,
            }
        }
        Ok(())
    }

    /// Members that should be running but exited on their own, reaped and marked killed (so
    /// [`Cluster::revive_all`] restarts them). A leaving member's exit is expected: not here.
    pub fn reap_unexpected_exits(&mut self) -> Vec<UnexpectedExit> {
        let mut exits = Vec::new();
        for member in &mut self.members {
            if matches!(
                member.state,
                MemberState::Killed | MemberState::Leaving | MemberState::Absent
            ) {
                continue;
            }
            let Some(child) = &mut member.child else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                exits.push(UnexpectedExit {
                    member: member.spec.name.clone(),
                    status: describe_exit(status),
                    log_tail: log_tail(&member.spec.log_path, 20),
                });
                member.child = None;
                member.state = MemberState::Killed;
            }
        }
        exits
    }

    /// Kills every child (SIGCONT first where stopped) and reaps it. Idempotent.
    pub fn shutdown(&mut self) {
        for i in 0..self.members.len() {
            if let Err(err) = self.kill(i) {
                eprintln!("nemesis: {err}");
            }
        }
    }

    fn spawn(&mut self, i: usize) -> Result<(), Error> {
        let member = &mut self.members[i];
        let spec = &member.spec;
        let process_error = |action: &str, source| Error::Process {
            member: spec.name.clone(),
            action: action.into(),
            source,
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .map_err(|e| process_error("open the log of", e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| process_error("open the log of", e))?;
        let s = &self.settings;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve").args(["--name", &spec.name]);
        match &member.joined {
            None => cmd.args(["--initial-cluster", &self.initial_cluster]),
            Some(initial) => cmd
                .args(["--initial-cluster", initial])
                .args(["--initial-cluster-state", "existing"]),
        };
        cmd.args(["--initial-cluster-token", CLUSTER_TOKEN])
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .args(["--listen-client-urls", &spec.client_url()])
            .args(["--listen-peer-urls", &spec.peer_url()])
            .args(["--heartbeat-interval", &millis(s.heartbeat_interval)])
            .args(["--election-timeout", &millis(s.election_timeout)])
            .args(["--request-timeout", &millis(s.request_timeout)])
            .args(["--snapshot-count", &s.snapshot_count.to_string()]);
        // Only our flags count: no RAFTKV_* setting of the caller's environment leaks in.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("RAFTKV_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("RAFTKV_LOG", &s.log_filter)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // SAFETY: prctl is async-signal-safe and the closure touches no parent memory.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| process_error("spawn", e))?;
        member.child = Some(child);
        member.state = MemberState::Running;
        member.starts += 1;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How often [`Cluster::wait_exit`] looks whether the member exited.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Slot `i` under `dir`, occupied by member `name`.
fn slot_spec(dir: &Path, i: usize, name: &str) -> MemberSpec {
    let octet = u8::try_from(usize::from(FIRST_OCTET) + i).expect("slot address fits an octet");
    MemberSpec {
        name: name.to_string(),
        ip: Ipv4Addr::new(127, 0, 0, octet),
        data_dir: dir.join(name),
        log_path: dir.join(format!("{name}.log")),
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: signalling our own, not yet reaped, child.
    unsafe {
        libc::kill(pid, signal);
    }
}

fn ensure_free(spec: &MemberSpec, port: u16) -> Result<(), Error> {
    match TcpListener::bind((spec.ip, port)) {
        Ok(_) => Ok(()),
        Err(err) => Err(Error::AddressInUse {
            address: format!("{}:{port}", spec.ip),
            reason: err.to_string(),
        }),
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => status.to_string(),
    }
}

/// The last `lines` lines of the file at `path` ("" when unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
