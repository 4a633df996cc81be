//! `raftkv dev`: a local cluster in one command — one `raftkv serve` child process per member
//! on loopback, data kept under one directory for the next run.
//!
//! Ports follow etcd's local-cluster convention: member 1 serves clients on the base port
//! (2379) and peers on the next one (2380); member `i > 1` on `base + i * 10000` and the next
//! one (22379/22380, 32379/32380, ...). Each member's admin endpoint (metrics, dashboard; see
//! `server::admin`) listens on its client port + 2 (2381, 22381, 32381: the port kubeadm
//! gives etcd's metrics).
//!
//! Owns: the dev cluster's layout (names, ports, directories, logs), starting the members,
//! waiting until one leads, and stopping every child on Ctrl-C or SIGTERM. Must never: leave
//! a child running after it exits (children get SIGTERM, then SIGKILL after a grace period,
//! and die with their parent via PR_SET_PDEATHSIG), or delete data unless told `--fresh`.

use anyhow::{bail, Context};
use clap::Args;
use proto::etcdserverpb::maintenance_client::MaintenanceClient;
use proto::etcdserverpb::StatusRequest;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The dev cluster's `--initial-cluster-token`.
const DEV_TOKEN: &str = "raftkv-dev";

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Directory holding every member's data and log (created if missing).
    #[arg(long, default_value = "raftkv-dev", env = "RAFTKV_DEV_DIR")]
    pub dir: PathBuf,

    /// Delete the data of an earlier run before starting.
    #[arg(long)]
    pub fresh: bool,

    /// Number of members (odd numbers tolerate the most failures for their size).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=5))]
    pub members: u16,

    /// Client port of the first member; see the port layout in `raftkv dev --help`.
    #[arg(long, default_value_t = 2379)]
    pub base_port: u16,

    /// Leader heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub heartbeat_interval: u64,

    /// Election timeout in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub election_timeout: u64,
}

/// One member of the dev cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevMember {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    /// The admin endpoint: client port + 2.
    pub admin_port: u16,
}

/// The members' names and ports for `members` members from `base`.
pub fn layout(members: u16, base: u16) -> anyhow::Result<Vec<DevMember>> {
    (0..members)
        .map(|i| {
            let offset = if i == 0 {
                0
            } else {
                (u32::from(i) + 1) * 10_000
            };
            let client = u32::from(base) + offset;
            if client + 2 > u32::from(u16::MAX) {
                bail!(
                    "--base-port {base} leaves no room for {members} members (ports above 65535)"
                );
            }
            Ok(DevMember {
                name: format!("n{}", i + 1),
                client_port: client as u16,
                peer_port: client as u16 + 1,
                admin_port: client as u16 + 2,
            })
        })
        .collect()
}

fn check_ports_free(members: &[DevMember]) -> anyhow::Result<()> {
    for m in members {
        for port in [m.client_port, m.peer_port, m.admin_port] {
            if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                bail!(
                    "port {port} (member {}) is not free: {e}. Another `raftkv dev` or etcd may be \
                     running; stop it or pick other ports with --base-port",
                    m.name
                );
            }
        }
    }
    Ok(())
}

fn spawn(
    exe: &Path,
    dir: &Path,
    m: &DevMember,
    cluster: &str,
    args: &DevArgs,
) -> anyhow::Result<Child> {
    let log_path = dir.join(format!("{}.log", m.name));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("serve")
        .arg("--name")
        .arg(&m.name)
        .arg("--initial-cluster")
        .arg(cluster)
        .arg("--initial-cluster-token")
        .arg(DEV_TOKEN)
        .arg("--data-dir")
        .arg(dir.join(&m.name))
        .arg("--listen-client-urls")
        .arg(format!("http://127.0.0.1:{}", m.client_port))
        .arg("--listen-admin-urls")
        .arg(format!("http://127.0.0.1:{}", m.admin_port))
        .arg("--heartbeat-interval")
        .arg(args.heartbeat_interval.to_string())
        .arg("--election-timeout")
        .arg(args.election_timeout.to_string())
        .env_remove("RAFTKV_CONFIG_FILE")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; the closure touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("starting member {}", m.name))
}

/// Wait (bounded) until a member reports a leader; returns (leader name, term).
async fn await_leader(members: &[DevMember]) -> anyhow::Result<(String, u64)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        for m in members {
            let url = format!("http://127.0.0.1:{}", m.client_port);
            let Ok(mut c) = MaintenanceClient::connect(url).await else {
                continue;
            };
            if let Ok(s) = c.status(StatusRequest {}).await {
                let s = s.into_inner();
                if s.leader != 0 {
                    let name = members
                        .iter()
                        .find(|m| server::members::member_id(DEV_TOKEN, &m.name).0 == s.leader)
                        .map(|m| m.name.clone())
                        .unwrap_or_else(|| format!("member {:x}", s.leader));
                    return Ok((name, s.raft_term));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no leader after 30 s; see the members' logs")
}

async fn stop_all(children: &mut [(DevMember, Option<Child>)]) {
    for (_, c) in children.iter_mut() {
        if let Some(pid) = c.as_ref().and_then(|c| c.id()) {
            // SAFETY: sending a signal to our own child's pid.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
    }
    for (m, c) in children.iter_mut() {
        if let Some(mut child) = c.take() {
            match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    eprintln!("member {} did not stop in 5 s; killing it", m.name);
                    let _ = child.kill().await;
                }
            }
        }
    }
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let members = layout(args.members, args.base_port)?;
    if args.fresh && args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("removing {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = args.dir.canonicalize()?;
    check_ports_free(&members)?;
    let exe = std::env::current_exe().context("locating the raftkv binary")?;
    let cluster = members
        .iter()
        .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
        .collect::<Vec<_>>()
        .join(",");
    let endpoints = members
        .iter()
        .map(|m| format!("127.0.0.1:{}", m.client_port))
        .collect::<Vec<_>>()
        .join(",");

    let mut children = Vec::new();
    for m in &members {
        let child = spawn(&exe, &dir, m, &cluster, &args)?;
        children.push((m.clone(), Some(child)));
    }
    println!(
        "raftkv dev: {} member(s), data in {} (kept for the next run; --fresh starts over)",
        members.len(),
        dir.display()
    );
    for (m, c) in &children {
        println!(
            "  {}  client http://127.0.0.1:{}  peer http://127.0.0.1:{}  log {}/{}.log  pid {}  \
             admin http://127.0.0.1:{}",
            m.name,
            m.client_port,
            m.peer_port,
            dir.display(),
            m.name,
            c.as_ref().and_then(|c| c.id()).unwrap_or(0),
            m.admin_port
        );
    }
    let ready = tokio::select! {
        r = await_leader(&members) => r,
        _ = tokio::signal::ctrl_c() => {
            stop_all(&mut children).await;
            return Ok(());
        }
    };
    match ready {
        Ok((leader, term)) => println!("cluster ready: leader {leader}, term {term}"),
        Err(e) => {
            stop_all(&mut children).await;
            return Err(e);
        }
    }
    println!("endpoints: {endpoints}");
    println!(
        "dashboard: http://127.0.0.1:{}/  (every member serves it on its admin port; \
         /metrics, /health, /status there too)",
        members[0].admin_port
    );
    println!("try:");
    println!("  raftkv put greeting hello && raftkv get greeting");
    println!("  etcdctl --endpoints={endpoints} put greeting hello");
    println!("Ctrl-C stops the cluster.");
    supervise(&mut children).await
}

/// Wait for Ctrl-C or SIGTERM, reporting members that exit meanwhile.
async fn supervise(children: &mut [(DevMember, Option<Child>)]) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let running: Vec<usize> = (0..children.len())
            .filter(|&i| children[i].1.is_some())
            .collect();
        if running.is_empty() {
            bail!("every member exited; see the logs");
        }
        let exited = async {
            let waits = children
                .iter_mut()
                .enumerate()
                .filter_map(|(i, (_, c))| c.as_mut().map(|c| (i, c)))
                .map(|(i, c)| Box::pin(async move { (i, c.wait().await) }));
            futures_util::future::select_all(waits).await.0
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            (i, status) = exited => {
                let (m, c) = &mut children[i];
                *c = None;
                match status {
                    Ok(s) => eprintln!("member {} exited ({s}); the others keep serving", m.name),
                    Err(e) => eprintln!("member {} is gone ({e})", m.name),
                }
            }
        }
    }
    println!("stopping the cluster");
    stop_all(children).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_follow_the_etcd_local_cluster_layout() {
        let l = layout(3, 2379).unwrap();
        let ports: Vec<_> = l.iter().map(|m| (m.client_port, m.peer_port)).collect();
        assert_eq!(ports, vec![(2379, 2380), (22379, 22380), (32379, 32380)]);
        let admin: Vec<_> = l.iter().map(|m| m.admin_port).collect();
        assert_eq!(admin, vec![2381, 22381, 32381]);
        assert_eq!(l[2].name, "n3");
        assert_eq!(layout(5, 2379).unwrap()[4].client_port, 52379);
        assert!(
            layout(5, 20000).is_err(),
            "20000 + 50000 does not fit in a port"
        );
    }
}
