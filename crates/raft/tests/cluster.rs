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
        Net::with(n, |_| {})
    }

    /// `n` nodes whose configs `tweak` adjusts.
    fn with(n: u64, tweak: impl Fn(&mut Config)) -> Net {
        let conf = Configuration::new((1..=n).map(NodeId));
        let nodes = (1..=n)
            .map(|i| {
                let mut c = cfg(i);
                tweak(&mut c);
                let raft = Raft::new(c, InitialState::bootstrap(conf.clone())).unwrap();
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

    /// Start a new, empty node `id` that knows the cluster as `conf` (what an operator gives
    /// a joining member).
    fn add_node(&mut self, id: u64, conf: Configuration) {
        let raft = Raft::new(cfg(id), InitialState::bootstrap(conf)).unwrap();
        let node = Node {
            raft,
            applied: vec![],
            reads: vec![],
            read_failures: vec![],
        };
        self.nodes.insert(NodeId(id), node);
    }

    /// Propose `n` commands on the leader and let them commit everywhere reachable.
    fn write(&mut self, n: usize) {
        let l = self.leader().expect("a leader");
        for i in 0..n {
            self.raft(l).propose(Bytes::from(format!("w{i}"))).unwrap();
        }
        self.tick_all(3);
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

fn voters(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().map(|&i| NodeId(i)).collect()
}

#[test]
fn learner_catches_up_is_promoted_and_a_voter_is_removed_one_change_at_a_time() {
    // §4.1: grow 3 → 4 through a learner, then shrink back to 3 by removing a voter.
    let mut net = Net::new(3);
    let l = net.elect();
    net.write(40);
    net.add_node(
        4,
        Configuration::with_learners(voters(&[1, 2, 3]), [NodeId(4)]),
    );
    net.raft(l)
        .propose_conf_change(ConfChange::AddLearner(NodeId(4)))
        .unwrap();
    net.tick_all(5);
    assert_eq!(
        net.nodes[&NodeId(4)].applied.len(),
        40,
        "the learner received the log"
    );
    assert!(net.raft(NodeId(4)).configuration().is_learner(NodeId(4)));

    // A learner never counts: with it cut off and one voter down, a 2-of-3 quorum commits;
    // with two voters down nothing commits although the learner would make a "majority".
    let other = (1..=3).map(NodeId).find(|&i| i != l).unwrap();
    net.cut.insert(NodeId(4));
    net.cut.insert(other);
    let before = net.raft(l).commit_index();
    net.write(1);
    assert!(net.raft(l).commit_index() > before, "2 of 3 voters commit");

    net.cut.clear();
    net.tick_all(5);
    let id = net
        .raft(l)
        .propose_conf_change(ConfChange::PromoteLearner(NodeId(4)))
        .unwrap();
    net.tick_all(3);
    assert!(net.raft(l).commit_index() >= id.index);
    for n in net.nodes.values() {
        assert_eq!(
            n.raft.configuration().voters,
            voters(&[1, 2, 3, 4]),
            "{:?}",
            n.raft.id()
        );
    }
    // Now 4 voters: a quorum is 3, so two cut voters stop commits.
    let two: Vec<NodeId> = (1..=4).map(NodeId).filter(|&i| i != l).take(2).collect();
    net.cut.extend(two.iter().copied());
    let before = net.raft(l).commit_index();
    net.raft(l).propose(Bytes::from_static(b"stuck")).unwrap();
    net.deliver();
    assert_eq!(
        net.raft(l).commit_index(),
        before,
        "2 of 4 voters cannot commit"
    );
    net.cut.clear();
    net.tick_all(3);
    assert!(net.raft(l).commit_index() > before);

    // Remove a follower voter: back to 3.
    let gone = (1..=4).map(NodeId).find(|&i| i != l).unwrap();
    net.raft(l)
        .propose_conf_change(ConfChange::Remove(gone))
        .unwrap();
    net.tick_all(3);
    let rest: BTreeSet<NodeId> = (1..=4).map(NodeId).filter(|&i| i != gone).collect();
    assert_eq!(net.raft(l).configuration().voters, rest);
    net.cut.insert(gone);
    net.write(5);
    for id in &rest {
        assert_eq!(net.nodes[id].applied.len(), net.nodes[&l].applied.len());
    }
}

#[test]
fn a_removed_leader_steps_down_once_its_removal_commits() {
    let mut net = Net::new(3);
    let l = net.elect();
    net.write(3);
    let id = net
        .raft(l)
        .propose_conf_change(ConfChange::Remove(l))
        .unwrap();
    // Until the change commits, the leader still manages the cluster, without counting itself.
    assert!(net.raft(l).is_leader());
    net.deliver();
    assert!(net.raft(l).commit_index() >= id.index);
    assert!(
        !net.raft(l).is_leader(),
        "stepped down after committing its removal"
    );
    net.cut.insert(l);
    let l2 = net.elect();
    assert_ne!(l2, l);
    net.write(2);
    // The removed node never campaigns again (it is not a voter of its configuration).
    net.cut.clear();
    let term = net.raft(l2).term();
    net.tick_all(100);
    assert_eq!(
        net.raft(l2).term(),
        term,
        "the removed node disrupted nobody"
    );
    assert!(!net.raft(l).is_leader());
}

#[test]
fn unsafe_membership_changes_are_refused_with_reasons() {
    let mut net = Net::new(1);
    let l = net.elect();
    // §4.1 fix: no change before an entry of the leader's term commits — here it already has
    // (a one-node cluster commits its no-op at once), so check the other rules.
    net.tick_all(1);
    let r = net.raft(l);
    assert_eq!(
        r.propose_conf_change(ConfChange::Remove(l)),
        Err(ConfChangeError::LastVoter(l))
    );
    assert_eq!(
        r.propose_conf_change(ConfChange::AddVoter(l)),
        Err(ConfChangeError::AlreadyMember(l))
    );
    assert_eq!(
        r.propose_conf_change(ConfChange::PromoteLearner(NodeId(9))),
        Err(ConfChangeError::NotLearner(NodeId(9)))
    );
    assert_eq!(
        r.propose_conf_change(ConfChange::Remove(NodeId(9))),
        Err(ConfChangeError::NotMember(NodeId(9)))
    );
    assert_eq!(
        r.propose_conf_change(ConfChange::AddVoter(NodeId::NONE)),
        Err(ConfChangeError::InvalidId)
    );
    // A learner that never answered is behind: promoting it is refused.
    net.write(20);
    net.raft(l)
        .propose_conf_change(ConfChange::AddLearner(NodeId(2)))
        .unwrap();
    net.tick_all(1);
    assert!(matches!(
        net.raft(l)
            .propose_conf_change(ConfChange::PromoteLearner(NodeId(2))),
        Err(ConfChangeError::LearnerBehind { .. })
    ));
}

#[test]
fn one_change_at_a_time_and_not_before_the_leaders_first_commit() {
    let mut net = Net::new(3);
    let l = net.elect();
    net.tick_all(2);
    let others: Vec<NodeId> = (1..=3).map(NodeId).filter(|&i| i != l).collect();
    net.cut.extend(others.iter().copied());
    net.raft(l)
        .propose_conf_change(ConfChange::AddLearner(NodeId(4)))
        .unwrap();
    let pending = net
        .raft(l)
        .propose_conf_change(ConfChange::AddLearner(NodeId(5)));
    assert!(
        matches!(pending, Err(ConfChangeError::ChangeInProgress { .. })),
        "{pending:?}"
    );
    // A follower is never asked.
    assert!(matches!(
        net.raft(others[0])
            .propose_conf_change(ConfChange::AddLearner(NodeId(5))),
        Err(ConfChangeError::NotLeader { .. })
    ));
}

#[test]
fn an_uncommitted_configuration_is_undone_when_its_entry_is_overwritten() {
    // A configuration is used from the moment it is in the log; if a new leader overwrites
    // the entry, the node goes back to the configuration before it.
    let mut net = Net::new(3);
    let l1 = net.elect();
    net.write(2);
    net.cut.insert(l1);
    net.raft(l1)
        .propose_conf_change(ConfChange::AddVoter(NodeId(4)))
        .unwrap();
    assert!(net.raft(l1).configuration().contains(NodeId(4)));
    let l2 = net.elect();
    assert_ne!(l1, l2);
    net.write(3);
    net.cut.clear();
    net.tick_all(30);
    for n in net.nodes.values() {
        assert_eq!(
            n.raft.configuration().voters,
            voters(&[1, 2, 3]),
            "{:?}",
            n.raft.id()
        );
    }
    assert_eq!(net.nodes[&l1].applied.len(), net.nodes[&l2].applied.len());
}

#[test]
fn configurations_with_learners_survive_restart_and_snapshots() {
    let mut net = Net::new(3);
    let l = net.elect();
    net.raft(l)
        .propose_conf_change(ConfChange::AddLearner(NodeId(4)))
        .unwrap();
    net.write(10);
    // A snapshot taken past the change records it.
    let applied = net.raft(l).applied_index();
    let snap = net
        .raft(l)
        .compact(applied, Bytes::from_static(b"state"))
        .unwrap();
    assert!(snap.meta.config.is_learner(NodeId(4)));
    // Encoding: voters-only configurations keep their original bytes; with learners a new
    // format that decodes back.
    let plain = Configuration::new(voters(&[1, 2]));
    assert_eq!(plain.encode().len(), 16);
    assert_eq!(Configuration::decode(&plain.encode()).unwrap(), plain);
    let c = &snap.meta.config;
    assert_eq!(&Configuration::decode(&c.encode()).unwrap(), c);
    assert!(Configuration::decode(&c.encode()[..c.encode().len() - 1]).is_err());
    // A node rebuilt from the snapshot and no entries has the learner too.
    let r = Raft::new(
        cfg(9),
        InitialState {
            hard_state: HardState {
                term: snap.meta.last.term,
                ..HardState::default()
            },
            snapshot: Some(snap),
            entries: vec![],
            config: Configuration::new(voters(&[1, 2, 3])),
        },
    );
    // Node 9 is not a member: it builds, but it is no voter.
    let r = r.unwrap();
    assert!(r.configuration().is_learner(NodeId(4)));
}

#[test]
fn a_new_empty_node_outside_its_bootstrap_configuration_never_campaigns() {
    // A joining node knows the cluster's bootstrap membership, which does not hold it: it
    // stays a quiet follower in term 0 until a leader brings it in.
    let mut net = Net::new(3);
    let l = net.elect();
    let term = net.raft(l).term();
    net.add_node(4, Configuration::new(voters(&[1, 2, 3])));
    let votes_before = net.sent.get("Vote").copied().unwrap_or(0);
    net.raft(NodeId(4)).campaign();
    net.tick_all(100);
    let r = net.raft(NodeId(4));
    assert_eq!((r.role(), r.term()), (Role::Follower, Term(0)));
    assert_eq!(net.sent.get("Vote").copied().unwrap_or(0), votes_before);
    assert_eq!(net.raft(l).term(), term);
    assert!(net.raft(l).is_leader());
}

#[test]
fn a_voter_that_missed_the_entry_adding_a_server_still_votes_for_it() {
    // Dissertation §4.1: votes are granted without consulting the configuration. 3 → 4 with
    // node 3 cut off; then entries reach only the new node 4, and the leader is lost for
    // good. 4 is the only node that can win (its log is the most up to date) and it needs
    // the vote of 3, whose configuration does not know it yet.
    let mut net = Net::new(3);
    let l = net.elect();
    net.write(5);
    let others: Vec<NodeId> = (1..=3).map(NodeId).filter(|&i| i != l).collect();
    let (f1, lagging) = (others[0], others[1]);
    net.cut.insert(lagging);
    net.add_node(4, Configuration::new(voters(&[1, 2, 3])));
    let id = net
        .raft(l)
        .propose_conf_change(ConfChange::AddVoter(NodeId(4)))
        .unwrap();
    net.tick_all(5);
    assert!(
        net.raft(l).commit_index() >= id.index,
        "committed by 1, 2 and 4"
    );
    net.cut.insert(f1);
    for i in 0..3 {
        net.raft(l)
            .propose(Bytes::from(format!("only-4-{i}")))
            .unwrap();
    }
    net.tick_all(2);
    assert!(net.raft(NodeId(4)).last_index() > net.raft(f1).last_index());
    assert!(!net.raft(lagging).configuration().contains(NodeId(4)));
    net.cut = BTreeSet::from([l]);
    let leader = net.elect();
    assert_eq!(leader, NodeId(4));
    net.write(1);
    assert_eq!(
        net.raft(lagging).configuration().voters,
        voters(&[1, 2, 3, 4])
    );
}

#[test]
fn a_removed_follower_learns_that_its_removal_committed() {
    // The leader adopts the new configuration when it appends it, but keeps replicating to
    // the member it removes until the change commits, then sends it one last append with
    // the commit index: the removed member's own log says it was removed (the server stops
    // it), instead of it finding out by timing out and asking around.
    let mut net = Net::new(3);
    let l = net.elect();
    net.write(2);
    let gone = (1..=3).map(NodeId).find(|&i| i != l).unwrap();
    let id = net
        .raft(l)
        .propose_conf_change(ConfChange::Remove(gone))
        .unwrap();
    net.deliver();
    assert!(net.raft(l).commit_index() >= id.index);
    assert!(
        net.raft(gone).commit_index() >= id.index,
        "the removed member knows its removal committed"
    );
    assert!(!net.raft(gone).configuration().is_member(gone));
    net.deliver();
    assert!(net.nodes[&gone].applied.iter().all(|(i, _)| *i <= id.index));
    // After that the leader sends it nothing (its log stops growing), and it disrupts nobody.
    let term = net.raft(l).term();
    let gone_last = net.raft(gone).last_index();
    net.write(3);
    assert!(net.raft(l).last_index() > gone_last);
    assert_eq!(
        net.raft(gone).last_index(),
        gone_last,
        "still replicated to"
    );
    net.tick_all(100);
    assert_eq!(net.raft(l).term(), term);
    assert!(net.raft(l).is_leader());
}

#[test]
fn a_removed_node_without_pre_vote_or_check_quorum_cannot_depose_the_leader() {
    // §4.2.3: a removed server that never learned of its removal times out and sends
    // RequestVotes in ever higher terms. With neither PreVote nor CheckQuorum, members would
    // adopt those terms and depose their leader; a vote request from outside the
    // configuration is ignored inside the leader lease whatever the switches.
    let mut net = Net::with(3, |c| {
        c.pre_vote = false;
        c.check_quorum = false;
    });
    let l = net.elect();
    net.write(2);
    let gone = (1..=3).map(NodeId).find(|&i| i != l).unwrap();
    net.cut.insert(gone);
    let id = net
        .raft(l)
        .propose_conf_change(ConfChange::Remove(gone))
        .unwrap();
    net.tick_all(3);
    assert!(net.raft(l).commit_index() >= id.index);
    let term = net.raft(l).term();
    net.tick_all(50);
    assert!(
        net.raft(gone).term() > term,
        "the removed node campaigned alone"
    );
    net.cut.clear();
    net.tick_all(100);
    assert!(net.raft(l).is_leader());
    let rest: Vec<NodeId> = (1..=3).map(NodeId).filter(|&i| i != gone).collect();
    for id in rest {
        assert_eq!(
            net.raft(id).term(),
            term,
            "{id:?} adopted the removed node's term"
        );
    }
}

#[test]
fn a_higher_term_answer_from_outside_the_configuration_is_dropped() {
    // A leader steps down for a higher term only when a member says so: a non-member's
    // answer (a removed node that campaigned alone, replying late) is dropped.
    let mut net = Net::new(3);
    let l = net.elect();
    let term = net.raft(l).term();
    let stray = Message {
        from: NodeId(9),
        to: l,
        term: Term(term.get() + 5),
        body: MessageBody::AppendResponse(AppendResponse {
            outcome: AppendOutcome::Rejected {
                rejected_prev: LogIndex(0),
                hint: ConflictHint {
                    term: None,
                    index: LogIndex(0),
                },
            },
            commit: LogIndex(0),
            read_seq: 0,
        }),
    };
    net.raft(l).step(stray).unwrap();
    assert!(net.raft(l).is_leader());
    assert_eq!(net.raft(l).term(), term);
    // The same answer from a member deposes it (§5.1).
    let member = (1..=3).map(NodeId).find(|&i| i != l).unwrap();
    let from_member = Message {
        from: member,
        to: l,
        term: Term(term.get() + 5),
        body: MessageBody::AppendResponse(AppendResponse {
            outcome: AppendOutcome::Accepted {
                match_index: LogIndex(0),
            },
            commit: LogIndex(0),
            read_seq: 0,
        }),
    };
    net.raft(l).step(from_member).unwrap();
    assert!(!net.raft(l).is_leader());
}

#[test]
fn a_followers_reads_of_one_turn_share_one_read_index_request() {
    let mut net = Net::new(3);
    let l = net.elect();
    net.raft(l).propose(Bytes::from_static(b"x")).unwrap();
    net.deliver();
    let f = net.nodes.keys().copied().find(|&i| i != l).unwrap();
    let requests = |net: &Net| net.sent.get("ReadIndex").copied().unwrap_or(0);
    let before = requests(&net);
    for ctx in [8, 9, 10] {
        net.raft(f).read_index(ctx).unwrap();
    }
    net.deliver();
    assert_eq!(
        requests(&net),
        before + 1,
        "one request for the three reads"
    );
    let commit = net.raft(l).commit_index();
    let served: Vec<_> = net.nodes[&f]
        .reads
        .iter()
        .map(|r| (r.ctx, r.index))
        .collect();
    assert_eq!(served, vec![(8, commit), (9, commit), (10, commit)]);

    // A read after the request left needs a request of its own, at the newer commit.
    net.raft(l).propose(Bytes::from_static(b"y")).unwrap();
    net.deliver();
    net.raft(f).read_index(11).unwrap();
    net.deliver();
    assert_eq!(requests(&net), before + 2);
    let last = net.nodes[&f].reads.last().copied().unwrap();
    assert_eq!(last.ctx, 11);
    assert_eq!(last.index, net.raft(l).commit_index());
    assert!(last.index > commit);
}
