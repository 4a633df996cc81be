//! Shared fixture of the server's integration tests: free loopback ports, member
//! configurations for an n-member cluster on them, and waiting for a leader.

#![allow(dead_code)]

use raft::Role;
use server::{Server, ServerConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// `n` loopback addresses whose ports were free a moment ago.
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let ls: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap()).collect()
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
