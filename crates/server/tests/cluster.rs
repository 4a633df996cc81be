//! Three nodes over real loopback sockets and real WALs: election, writes through the
//! leader, linearizable reads on a follower, a stopped leader, and a restart of every node
//! that keeps every acknowledged write.

mod common;
use bytes::Bytes;
use common::free_addrs;
use raft::{LogIndex, NodeId, Role};
use replica::StateMachine;
use server::{Node, NodeConfig, NodeHandle, ProposeFailure};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Appends every command; its result is the new length.
#[derive(Default)]
struct Log(Vec<Bytes>);

impl StateMachine for Log {
    fn apply(&mut self, _index: LogIndex, data: &[u8]) -> Bytes {
        self.0.push(Bytes::copy_from_slice(data));
        Bytes::from(self.0.len().to_string())
    }
    fn snapshot(&self) -> Bytes {
        let mut out = Vec::new();
        for b in &self.0 {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        out.into()
    }
    fn restore(&mut self, mut data: &[u8]) {
        self.0.clear();
        while data.len() >= 4 {
            let n = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
            self.0.push(Bytes::copy_from_slice(&data[4..4 + n]));
            data = &data[4 + n..];
        }
    }
}

fn config(dir: &Path, id: u64, addrs: &[std::net::SocketAddr]) -> NodeConfig {
    NodeConfig {
        id: NodeId(id),
        cluster_id: 0xABC,
        data_dir: dir.join(format!("n{id}")),
        peers: addrs
            .iter()
            .enumerate()
            .map(|(i, a)| (NodeId(i as u64 + 1), a.to_string()))
            .collect::<HashMap<_, _>>(),
        peer_listen: addrs[id as usize - 1],
        tick: Duration::from_millis(10),
        election_ticks: 10,
        heartbeat_ticks: 2,
        snapshot_entries: 50,
        frame_bytes_max: 4 << 20,
        peer_queue_msgs_max: 4096,
        request_queue_max: 4096,
        advertise: server::members::Attrs {
            name: format!("n{id}"),
            client_urls: vec![],
        },
        members: std::sync::Arc::new(server::members::Members::new((1..=addrs.len() as u64).map(
            |i| server::members::Member {
                id: NodeId(i),
                name: format!("n{i}"),
                peer_urls: vec![addrs[i as usize - 1].to_string()],
                client_urls: vec![],
            },
        ))),
    }
}

/// Every node of `addrs` votes.
fn voters(addrs: &[std::net::SocketAddr]) -> raft::Configuration {
    raft::Configuration::new((1..=addrs.len() as u64).map(NodeId))
}

async fn start_all(dir: &Path, addrs: &[std::net::SocketAddr]) -> Vec<Option<Node<Log>>> {
    let mut nodes = Vec::new();
    for id in 1..=addrs.len() as u64 {
        nodes.push(Some(
            Node::start(config(dir, id, addrs), Log::default(), voters(addrs), None)
                .await
                .unwrap(),
        ));
    }
    nodes
}

/// Wait (by status events, bounded) until some running node leads; returns its index.
async fn leader(nodes: &[Option<Node<Log>>]) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        for (i, n) in nodes.iter().enumerate() {
            if let Some(n) = n {
                if n.handle.status().role == Role::Leader {
                    return i;
                }
            }
        }
        let mut watchers: Vec<_> = nodes
            .iter()
            .flatten()
            .map(|n| n.handle.watch_status())
            .collect();
        let changed = futures_any(&mut watchers);
        assert!(
            tokio::time::timeout_at(deadline, changed).await.is_ok(),
            "no leader within 10 s"
        );
    }
}

async fn futures_any(ws: &mut [tokio::sync::watch::Receiver<server::NodeStatus>]) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    for w in ws.iter() {
        let mut w = w.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = w.changed().await;
            let _ = tx.send(()).await;
        });
    }
    rx.recv().await;
}

async fn put(h: &NodeHandle<Log>, v: &str) -> Result<Bytes, ProposeFailure> {
    tokio::time::timeout(
        Duration::from_secs(5),
        h.propose(Bytes::from(v.to_string())),
    )
    .await
    .unwrap_or(Err(ProposeFailure::Stopped))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_replicate_fail_over_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_addrs(3);
    let mut nodes = start_all(dir.path(), &addrs).await;
    let l = leader(&nodes).await;
    let lh = nodes[l].as_ref().unwrap().handle.clone();
    let mut acked = Vec::new();
    for i in 0..100 {
        let v = format!("a{i}");
        let r = put(&lh, &v).await.expect("leader applies");
        assert_eq!(r, Bytes::from((i + 1).to_string()));
        acked.push(v);
    }
    // A follower refuses writes with a leader hint, and serves linearizable reads.
    let f = (l + 1) % 3;
    let fh = nodes[f].as_ref().unwrap().handle.clone();
    assert_eq!(
        put(&fh, "x").await,
        Err(ProposeFailure::NotLeader {
            leader: Some(NodeId(l as u64 + 1))
        })
    );
    let len = fh.read(|sm: &Log| sm.0.len()).await.unwrap();
    assert_eq!(
        len, 100,
        "a linearizable read on a follower sees every acknowledged write"
    );

    // Stop the leader; the others elect a new one and keep accepting writes.
    nodes[l].take().unwrap().stop().await.unwrap();
    let l2 = leader(&nodes).await;
    assert_ne!(l2, l);
    let h2 = nodes[l2].as_ref().unwrap().handle.clone();
    for i in 0..50 {
        let v = format!("b{i}");
        put(&h2, &v).await.expect("new leader applies");
        acked.push(v);
    }
    // Stop everyone, restart everyone from disk: every acknowledged write is there.
    for n in nodes.iter_mut() {
        if let Some(n) = n.take() {
            n.stop().await.unwrap();
        }
    }
    let nodes = start_all(dir.path(), &addrs).await;
    let l3 = leader(&nodes).await;
    let h3 = nodes[l3].as_ref().unwrap().handle.clone();
    let all: Vec<String> = h3
        .read(|sm: &Log| {
            sm.0.iter()
                .map(|b| String::from_utf8(b.to_vec()).unwrap())
                .collect()
        })
        .await
        .unwrap();
    assert_eq!(all, acked);
    for n in nodes.into_iter().flatten() {
        n.stop().await.unwrap();
    }
}
