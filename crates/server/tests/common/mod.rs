//! Shared fixture of the server's integration tests: free loopback ports, member
//! configurations for an n-member cluster on them, and waiting for a leader.

#![allow(dead_code)]

use raft::Role;
use server::{Server, ServerConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// `n` loopback addresses whose ports were free a moment ago.
///
/// The ports lie below the kernel's ephemeral range (32768–60999 by default), where
/// `connect` never picks a local port: a port from `bind(0)` is in that range, and between
/// this check and the member's own bind an outgoing connection of another member (say, to a
/// peer not yet listening) could take it as its local port — seen as `AddrInUse` at start.
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Processes start at different places so that parallel test binaries rarely meet.
    let start = std::process::id().wrapping_mul(97);
    let mut out = Vec::new();
    for _ in 0..SPAN {
        if out.len() == n {
            return out;
        }
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + start.wrapping_add(k) % SPAN) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            out.push(l.local_addr().unwrap());
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN);
}

/// Peer and client addresses of every member.
pub struct Ports {
    pub peer: Vec<SocketAddr>,
    pub client: Vec<SocketAddr>,
}

impl Ports {
    pub fn new(n: usize) -> Ports {
        Ports {
            peer: free_addrs(n),
            client: free_addrs(n),
        }
    }
}

/// A connected gRPC channel to a member's client address.
pub async fn channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// etcd's put of `k` = `v`.
pub fn put(k: &str, v: &str) -> proto::etcdserverpb::PutRequest {
    proto::etcdserverpb::PutRequest {
        key: k.into(),
        value: v.into(),
        ..Default::default()
    }
}

/// Start every member of the cluster on `p`, member `i` configured by `config(i)`.
pub async fn start_all(p: &Ports, config: impl Fn(usize) -> ServerConfig) -> Vec<Option<Server>> {
    let mut v = Vec::new();
    for i in 0..p.peer.len() {
        v.push(Some(Server::start(config(i)).await.unwrap()));
    }
    v
}

/// Member `i` (named `n{i}`, data in `dir/n{i}`) of the cluster on `p`.
pub fn config(dir: &Path, i: usize, p: &Ports) -> ServerConfig {
    let mut c = ServerConfig::single(
        &format!("n{i}"),
        dir.join(format!("n{i}")),
        p.client[i],
        "unused",
    );
    c.initial_cluster = (0..p.peer.len())
        .map(|j| (format!("n{j}"), format!("http://{}", p.peer[j])))
        .collect();
    c
}

/// Wait (on status events, bounded) until some running member leads; its index.
pub async fn leader(servers: &[Option<Server>]) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        for (i, s) in servers.iter().enumerate() {
            if let Some(s) = s {
                if s.handle().status().role == Role::Leader {
                    return i;
                }
            }
        }
        let mut w = servers
            .iter()
            .flatten()
            .next()
            .unwrap()
            .handle()
            .watch_status();
        assert!(
            tokio::time::timeout_at(deadline, w.changed()).await.is_ok(),
            "no leader within 10 s"
        );
    }
}
