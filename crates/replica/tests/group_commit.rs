//! The asynchronous persistence path: a `Replica` over `DiskStore` with its group-commit
//! sync thread. Writes go to the WAL and the loop moves on; acknowledgements and the leader's
//! own vote for its entries wait for the sync thread's report.

use bytes::Bytes;
use raft::{Config, Configuration, Message, NodeId};
use replica::{Completion, Replica, SnapshotPolicy, StateMachine};
use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver};
use storage::{DiskOptions, DiskStore, Identity, StdFs, SyncDone};

#[derive(Default)]
struct Log(Vec<Bytes>);

impl StateMachine for Log {
    fn apply(&mut self, _index: raft::LogIndex, data: &[u8]) -> Bytes {
        self.0.push(Bytes::copy_from_slice(data));
        Bytes::from(self.0.len().to_string())
    }
    fn snapshot(&self) -> Bytes {
        Bytes::new()
    }
    fn restore(&mut self, _data: &[u8]) {}
}

struct Node {
    replica: Replica<DiskStore<StdFs>, Log>,
    synced: Receiver<SyncDone>,
}

fn node(dir: &std::path::Path, id: u64, voters: &[u64]) -> Node {
    let conf = Configuration::new(voters.iter().map(|&v| NodeId(v)));
    let identity = Identity {
        cluster_id: 9,
        node_id: NodeId(id),
        bootstrap: conf,
    };
    let mut store = DiskStore::open(
        StdFs,
        dir.join(id.to_string()),
        identity,
        DiskOptions::default(),
    )
    .unwrap();
    let (tx, rx) = channel();
    store
        .enable_group_commit(Box::new(move |d| {
            let _ = tx.send(d);
        }))
        .unwrap();
    let replica = Replica::new(
        Config::new(NodeId(id)),
        store,
        Log::default(),
        SnapshotPolicy::never(),
    )
    .unwrap();
    Node {
        replica,
        synced: rx,
    }
}

#[test]
fn single_node_applies_only_after_its_sync_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = node(dir.path(), 1, &[1]);
    let mut out: Vec<Message> = Vec::new();
    n.replica.campaign();
    n.replica.handle_ready(&mut out).unwrap();
    // The vote for itself is durable only after the sync thread says so.
    while !n.replica.raft().is_leader() || n.replica.unsynced_batches() > 0 {
        let d = n.synced.recv().unwrap();
        assert_eq!(d.result, Ok(()));
        n.replica.on_synced(d.ticket, &mut out).unwrap();
    }
    let id = n.replica.propose("x".into(), 7).unwrap();
    let done = n.replica.handle_ready(&mut out).unwrap();
    assert!(
        done.is_empty(),
        "nothing applies before the leader's entry is durable"
    );
    assert!(n.replica.unsynced_batches() > 0);
    let mut done = Vec::new();
    while done.is_empty() {
        let d = n.synced.recv().unwrap();
        done = n.replica.on_synced(d.ticket, &mut out).unwrap();
    }
    assert_eq!(
        done,
        vec![Completion::Applied {
            token: 7,
            id,
            result: "1".into()
        }]
    );
    assert!(out.is_empty());
}

#[test]
fn three_nodes_commit_a_stream_of_proposals_with_background_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = (1..=3).map(|i| node(dir.path(), i, &[1, 2, 3])).collect();
    let mut net: VecDeque<Message> = VecDeque::new();
    let mut applied = std::collections::BTreeSet::new();
    nodes[0].replica.campaign();
    let mut proposed = 0u64;
    let total = 300u64;
    // No ticks: the campaign above elects node 1 without timers, and nothing is lost.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while applied.len() < total as usize {
        assert!(
            std::time::Instant::now() < deadline,
            "no progress: applied {}",
            applied.len()
        );
        if nodes[0].replica.raft().is_leader() && proposed < total {
            for _ in 0..10 {
                if proposed < total {
                    nodes[0]
                        .replica
                        .propose(Bytes::from(proposed.to_string()), proposed)
                        .unwrap();
                    proposed += 1;
                }
            }
        }
        for (i, n) in nodes.iter_mut().enumerate() {
            let mut out = Vec::new();
            // Followers alternate between syncing here and on the sync thread.
            let here = i > 0 && proposed % 20 < 10;
            let mut done = n.replica.handle_ready_syncing_here(&mut out, here).unwrap();
            while let Ok(d) = n.synced.try_recv() {
                assert_eq!(d.result, Ok(()));
                done.extend(n.replica.on_synced(d.ticket, &mut out).unwrap());
            }
            net.extend(out);
            if i == 0 {
                for c in done {
                    if let Completion::Applied { token, .. } = c {
                        assert!(applied.insert(token), "token {token} applied twice");
                    }
                }
            }
        }
        while let Some(m) = net.pop_front() {
            let to = (m.to.0 - 1) as usize;
            nodes[to].replica.receive(m).unwrap();
        }
    }
    assert_eq!(nodes[0].replica.state_machine().0.len(), total as usize);
    for n in &nodes[1..] {
        assert!(
            n.replica.synced_here() > 0,
            "some follower batches synced here"
        );
    }
}

/// A batch synced on the caller's thread ([`Replica::handle_ready_syncing_here`]) is durable when
/// `handle_ready` returns: its messages went and its entry counts, so a lone leader applies
/// it in the same call; a batch handed to the sync thread waits for the report. Only a batch
/// with no earlier one still syncing is synced here (a sync here covers every write before
/// it only if nothing is in flight on the thread).
#[test]
fn a_batch_synced_here_is_durable_when_handle_ready_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = node(dir.path(), 1, &[1]);
    let mut out: Vec<Message> = Vec::new();
    n.replica.campaign();
    n.replica.handle_ready_syncing_here(&mut out, true).unwrap();
    assert!(
        n.replica.raft().is_leader(),
        "its vote synced here: it leads at once"
    );
    assert_eq!(n.replica.unsynced_batches(), 0);
    let id = n.replica.propose("x".into(), 7).unwrap();
    let done = n.replica.handle_ready_syncing_here(&mut out, true).unwrap();
    assert_eq!(
        done,
        vec![Completion::Applied {
            token: 7,
            id,
            result: "1".into()
        }]
    );
    let here = n.replica.synced_here();
    assert!(here >= 2, "the vote and the entry synced here");

    // Off again: the next entry waits for the sync thread.
    n.replica.propose("y".into(), 8).unwrap();
    assert!(n.replica.handle_ready(&mut out).unwrap().is_empty());
    assert_eq!(n.replica.unsynced_batches(), 1);
    // On, while that sync is in flight: the next batch still goes to the thread.
    n.replica.propose("z".into(), 9).unwrap();
    n.replica.handle_ready_syncing_here(&mut out, true).unwrap();
    assert_eq!(
        n.replica.synced_here(),
        here,
        "nothing synced here past a pending sync"
    );
    let mut applied = Vec::new();
    while applied.len() < 2 {
        let d = n.synced.recv().unwrap();
        for c in n.replica.on_synced(d.ticket, &mut out).unwrap() {
            if let Completion::Applied { token, .. } = c {
                applied.push(token);
            }
        }
    }
    assert_eq!(applied, vec![8, 9]);
    assert_eq!(n.replica.state_machine().0.len(), 3);
}
