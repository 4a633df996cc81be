//! Core-level tests: several `Raft` instances wired by an in-memory, lossless message queue,
//! with a minimal in-test "disk" (what `Ready` asked to persist). Exercises the core without
//! the replica or the simulator.

use bytes::Bytes;
use raft::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

struct Node {
    raft: Raft,
    applied: Vec<(LogIndex, Bytes)>,
    reads: Vec<ReadState>,
    read_failures: Vec<u64>,
}

struct Net {
    nodes: BTreeMap<NodeId, Node>,
    queue: VecDeque<Message>,
    cut: BTreeSet<NodeId>,
    sent: BTreeMap<&'static str, usize>,
}

fn cfg(id: u64) -> Config {
    let mut c = Config::new(NodeId(id));
    c.election_ticks = 10;
    c.heartbeat_ticks = 2;
    c.seed = id * 7919;
    c
}

impl Net {
    fn new(n: u64) -> Net {
        let conf = Configuration::new((1..=n).map(NodeId));
        let nodes = (1..=n)
            .map(|i| {
                let raft = Raft::new(cfg(i), InitialState::bootstrap(conf.clone())).unwrap();
                (
                    NodeId(i),
                    Node {
                        raft,
                        applied: vec![],
                        reads: vec![],
                        read_failures: vec![],
                    },
                )
            })
            .collect();
        Net {
            nodes,
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            sent: BTreeMap::new(),
        }
    }

    fn process_ready(&mut self) {
        loop {
            let mut any = false;
            for node in self.nodes.values_mut() {
                while node.raft.has_ready() {
                    any = true;
                    let rd = node.raft.ready();
                    for m in rd.messages.iter().chain(rd.persisted_messages.iter()) {
                        *self.sent.entry(m.kind_name()).or_default() += 1;
                        self.queue.push_back(m.clone());
                    }
                    if let Some(s) = &rd.snapshot {
                        node.applied.retain(|(i, _)| *i <= s.meta.last.index);
                    }
                    for e in &rd.committed_entries {
                        if e.kind == EntryKind::Normal {
                            node.applied.push((e.index, e.data.clone()));
                        }
                    }
                    node.reads.extend(rd.read_states.iter().copied());
                    node.read_failures
                        .extend(rd.read_failures.iter().map(|f| f.ctx));
                    node.raft.advance(rd);
                }
            }
            if !any {
                break;
            }
        }
    }

    /// Deliver until quiet.
    fn deliver(&mut self) {
        for _ in 0..100_000 {
            self.process_ready();
            let Some(m) = self.queue.pop_front() else {
                return;
            };
            if self.cut.contains(&m.from) || self.cut.contains(&m.to) {
                continue;
            }
            if let Some(n) = self.nodes.get_mut(&m.to) {
                n.raft.step(m).unwrap();
            }
        }
        panic!("network never went quiet");
    }

    fn tick_all(&mut self, ticks: usize) {
        for _ in 0..ticks {
            for n in self.nodes.values_mut() {
                n.raft.tick();
            }
            self.deliver();
        }
    }

    fn leader(&self) -> Option<NodeId> {
        let leaders: Vec<_> = self
            .nodes
            .values()
            .filter(|n| n.raft.is_leader() && !self.cut.contains(&n.raft.id()))
            .map(|n| n.raft.id())
            .collect();
        assert!(leaders.len() <= 1, "two connected leaders: {leaders:?}");
        leaders.first().copied()
    }

    fn elect(&mut self) -> NodeId {
        for _ in 0..100 {
            self.tick_all(1);
            if let Some(l) = self.leader() {
                return l;
            }
        }
        panic!("no leader elected");
    }

    fn raft(&mut self, id: NodeId) -> &mut Raft {
        &mut self.nodes.get_mut(&id).unwrap().raft
    }
}

#[test]
fn three_nodes_elect_replicate_and_apply() {
    let mut net = Net::new(3);
    let l = net.elect();
    for i in 0..100u32 {
        net.raft(l)
            .propose(Bytes::from(i.to_le_bytes().to_vec()))
            .unwrap();
        if i % 7 == 0 {
            net.deliver();
        }
    }
    net.tick_all(3);
    for n in net.nodes.values() {
        assert_eq!(
            n.applied.len(),
            100,
            "node {:?} applied {}",
            n.raft.id(),
            n.applied.len()
        );
    }
    let terms: BTreeSet<Term> = net.nodes.values().map(|n| n.raft.term()).collect();
    assert_eq!(terms.len(), 1);
}

#[test]
fn leader_partitioned_new_leader_old_steps_down_and_catches_up() {
    let mut net = Net::new(3);
    let l1 = net.elect();
    net.raft(l1).propose(Bytes::from_static(b"a")).unwrap();
    net.tick_all(2);
    net.cut.insert(l1);
    // Uncommittable entries on the old leader.
    for _ in 0..5 {
        net.raft(l1).propose(Bytes::from_static(b"lost")).unwrap();
    }
    let l2 = net.elect();
    assert_ne!(l1, l2);
    net.raft(l2).propose(Bytes::from_static(b"b")).unwrap();
    net.tick_all(5);
    // CheckQuorum: the old leader stepped down on its own.
    net.tick_all(25);
    assert!(
        !net.raft(l1).is_leader(),
        "isolated leader must step down (CheckQuorum)"
    );
    net.cut.clear();
    net.tick_all(20);
    for n in net.nodes.values() {
        let vals: Vec<&[u8]> = n.applied.iter().map(|(_, d)| d.as_ref()).collect();
        assert_eq!(vals, vec![&b"a"[..], &b"b"[..]], "node {:?}", n.raft.id());
    }
}

#[test]
fn pre_vote_keeps_rejoining_node_from_disrupting() {
    let mut net = Net::new(3);
    let l = net.elect();
    let term = net.raft(l).term();
    let f = net.nodes.keys().copied().find(|&i| i != l).unwrap();
    net.cut.insert(f);
    net.tick_all(100);
    assert_eq!(
        net.raft(f).term(),
        term,
        "PreVote: isolated node must not bump its term"
    );
    net.cut.clear();
    net.tick_all(20);
    assert!(net.raft(l).is_leader());
    assert_eq!(net.raft(l).term(), term);
}

#[test]
fn read_index_on_leader_and_follower() {
    let mut net = Net::new(3);
    let l = net.elect();
    net.raft(l).propose(Bytes::from_static(b"x")).unwrap();
    net.deliver();
    net.raft(l).read_index(7).unwrap();
    let f = net.nodes.keys().copied().find(|&i| i != l).unwrap();
    net.raft(f).read_index(8).unwrap();
    net.deliver();
    let commit = net.raft(l).commit_index();
    assert_eq!(
        net.nodes[&l].reads,
        vec![ReadState {
            ctx: 7,
            index: commit
        }]
    );
    assert_eq!(
        net.nodes[&f].reads,
        vec![ReadState {
            ctx: 8,
            index: commit
        }]
    );
}

#[test]
fn partitioned_leader_never_answers_read() {
    let mut net = Net::new(3);
    let l = net.elect();
    net.tick_all(3);
    net.cut.insert(l);
    net.raft(l).read_index(1).unwrap();
    net.tick_all(40);
    assert!(net.nodes[&l].reads.is_empty());
    assert_eq!(net.nodes[&l].read_failures, vec![1]);
}

#[test]
fn leadership_transfer() {
    let mut net = Net::new(3);
    let l = net.elect();
    net.raft(l).propose(Bytes::from_static(b"x")).unwrap();
    net.deliver();
    let t = net.nodes.keys().copied().find(|&i| i != l).unwrap();
    let term = net.raft(l).term();
    net.raft(l).transfer_leader(t).unwrap();
    net.deliver();
    assert!(net.raft(t).is_leader());
    assert_eq!(net.raft(t).term(), term.next());
}

#[test]
fn snapshot_catches_up_lagging_follower() {
    let mut net = Net::new(3);
    let l = net.elect();
    let f = net.nodes.keys().copied().find(|&i| i != l).unwrap();
    net.cut.insert(f);
    for i in 0..50u32 {
        net.raft(l)
            .propose(Bytes::from(i.to_le_bytes().to_vec()))
            .unwrap();
    }
    net.tick_all(2);
    let applied = net.raft(l).applied_index();
    let snap = net
        .raft(l)
        .compact(applied, Bytes::from_static(b"state"))
        .unwrap();
    assert_eq!(snap.meta.last.index, applied);
    net.cut.clear();
    net.tick_all(10);
    assert_eq!(net.raft(f).commit_index(), net.raft(l).commit_index());
    assert_eq!(
        net.raft(f).snapshot().unwrap().data,
        Bytes::from_static(b"state")
    );
}
