//! The five `raftkv serve` processes: start, SIGKILL, restart, SIGSTOP, SIGCONT, shut down.
//!
//! Owns: each member's address (member `i` listens on `127.0.0.(11 + i)`, client port 2379,
//! peer port 2380, so the kernel can tell members apart by source address), its data
//! directory and log file (`<dir>/n<i>/` and `<dir>/n<i>.log`, appended to across restarts),
//! its child process and what the harness last did to it ([`MemberState`]).
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
        assert!(
            (1..=100).contains(&size),
            "cluster size {size} out of range"
        );
        let specs: Vec<MemberSpec> = (0..size)
            .map(|i| MemberSpec {
                name: format!("n{}", i + 1),
                ip: Ipv4Addr::new(127, 0, 0, FIRST_OCTET + i as u8),
                data_dir: dir.join(format!("n{}", i + 1)),
                log_path: dir.join(format!("n{}.log", i + 1)),
            })
            .collect();
        for spec in &specs {
            for port in [CLIENT_PORT, PEER_PORT] {
                ensure_free(spec, port)?;
            }
        }
        let initial_cluster = specs
            .iter()
            .map(|s| format!("{}={}", s.name, s.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            bin: bin.to_path_buf(),
            settings: settings.clone(),
            initial_cluster,
            members: specs
                .into_iter()
                .map(|spec| Member {
                    spec,
                    child: None,
                    state: MemberState::Killed,
                    starts: 0,
                })
                .collect(),
        };
        for i in 0..size {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
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
            member.state = MemberState::Killed;
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
        member.state = MemberState::Killed;
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

    /// Resumes every stopped member and restarts every killed one.
    pub fn revive_all(&mut self) -> Result<(), Error> {
        for i in 0..self.members.len() {
            match self.members[i].state {
                MemberState::Running => {}
                MemberState::Stopped => self.resume(i),
                MemberState::Killed => self.restart(i)?,
            }
        }
        Ok(())
    }

    /// Members that should be running but exited on their own, reaped and marked killed (so
    /// [`Cluster::revive_all`] restarts them).
    pub fn reap_unexpected_exits(&mut self) -> Vec<UnexpectedExit> {
        let mut exits = Vec::new();
        for member in &mut self.members {
            if member.state == MemberState::Killed {
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
        cmd.arg("serve")
            .args(["--name", &spec.name])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", CLUSTER_TOKEN])
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
