//! Membership changes on the simulator (Raft paper §6, dissertation §4): single-server
//! changes that commit one at a time (§4.1), learners that catch up before they are promoted
//! (§4.2.1), a removed leader that steps down once its removal commits (§4.2.2), removed
//! servers that never disrupt the cluster (§4.2.3: PreVote, the leader lease, senders outside
//! the configuration ignored), and faults at every step of a change — the leader crashing
//! before the change is durable, with it on a minority, on a quorum but not known committed,
//! right after committing it, a power cut while writing it, partitions isolating the leader
//! while it is pending, crashes between the steps of growing and shrinking the cluster.
//!
//! Everything runs on virtual time with the simulator's checker after every event: the
//! Figure-3 invariants plus membership (no leader's log holds two configuration entries
//! beyond the committed prefix; each committed configuration changes at most one member;
//! every leader is a voter of its configuration). Bounds are ratios of the election timeout
//! E = 150 ms (followers time out in [E, 2E)). Each scenario asserts outcomes: the
//! configuration on every live node, the committed data preserved on every member, who
//! leads, and terms that do not move where that is the claim.
//!
//! A failure prints the seed and the command that replays it
//! (`RAFTKV_SCENARIO_SEED=<seed> cargo test --profile checked -p sim --test scenarios_membership --
//! --exact <test>`).

#[macro_use]
mod common;

use bytes::Bytes;
use common::*;
use raft::{ConfChange, ConfChangeError, Configuration, LogIndex, NodeId, Role, Term};
use sim::{Cluster, SimConfig};
use std::collections::BTreeSet;

/// E in ms: the base election timeout.
const E_MS: u64 = ELECTION_TICKS as u64 * TICK_MS;
/// Bound for one membership change to commit while a quorum is up and connected.
const CHANGE_MS: u64 = 20 * E_MS;
/// Bound for every live member to use the committed configuration / catch up.
const CONVERGE_MS: u64 = 20 * E_MS;
/// How long a scenario watches for disruption.
const WATCH_MS: u64 = 20 * E_MS;

fn ids(raw: &[u64]) -> Vec<NodeId> {
    raw.iter().map(|&i| NodeId(i)).collect()
}

fn voters(raw: &[u64]) -> Configuration {
    Configuration::new(ids(raw))
}

fn with_learners(v: &[u64], l: &[u64]) -> Configuration {
    Configuration::with_learners(ids(v), ids(l))
}

/// Whether `conf` already shows the effect of `change`.
fn reflects(conf: &Configuration, change: ConfChange) -> bool {
    match change {
        ConfChange::AddLearner(x) => conf.is_learner(x),
        ConfChange::AddVoter(x) | ConfChange::PromoteLearner(x) => conf.contains(x),
        ConfChange::Remove(x) => !conf.is_member(x),
    }
}

/// The connected node that leads the highest term, if any.
fn current_leader(c: &Cluster) -> Option<NodeId> {
    c.leaders()
        .into_iter()
        .max_by_key(|&(_, t)| t)
        .map(|(id, _)| id)
}

/// Drive `change` until the committed configuration reflects it: propose it at whoever leads,
/// through elections and the refusals a live cluster gets over (the new leader's first commit,
/// a change or a transfer in progress, a learner still catching up). Returns whether it
/// committed within `bound_ms`.
fn try_change(h: &mut Harness, change: ConfChange, bound_ms: u64) -> bool {
    let deadline = h.now() + bound_ms;
    loop {
        if reflects(h.c.committed_configuration(), change) {
            return true;
        }
        let now = h.now();
        if now >= deadline {
            return false;
        }
        let Some(l) = current_leader(&h.c) else {
            h.sleep(TICK_MS);
            continue;
        };
        match h.c.propose_conf_change(l, change) {
            Ok((eid, _)) => {
                h.run_until(deadline - now, |c| {
                    reflects(c.committed_configuration(), change)
                        || c.raft(l)
                            .is_none_or(|r| !r.is_leader() || r.term() != eid.term)
                });
            }
            Err(e @ (ConfChangeError::LastVoter(_) | ConfChangeError::InvalidId)) => {
                h.fail(format!("{change:?} refused for good: {e}"))
            }
            Err(_) => h.sleep(TICK_MS),
        }
    }
}

/// [`try_change`] that must succeed; returns the index of the committed configuration entry.
fn commit_change(h: &mut Harness, change: ConfChange, bound_ms: u64) -> LogIndex {
    if !try_change(h, change, bound_ms) {
        h.fail(format!(
            "{change:?} did not commit within {bound_ms} ms (committed: {:?})",
            h.c.committed_configuration()
        ));
    }
    h.c.committed_configurations().last().expect("genesis").0
}

/// Every node in `nodes` is up and uses `expected`, within `bound_ms`.
fn wait_confs(h: &mut Harness, nodes: &[NodeId], expected: &Configuration, bound_ms: u64) {
    let ok = h.run_until(bound_ms, |c| {
        nodes
            .iter()
            .all(|&id| c.configuration(id) == Some(expected))
    });
    if !ok {
        let got: Vec<_> = nodes
            .iter()
            .map(|&id| (id, h.c.configuration(id).cloned()))
            .collect();
        h.fail(format!(
            "expected {expected:?} on {nodes:?} within {bound_ms} ms, got {got:?}"
        ));
    }
}

/// Commit a fresh command on every node of `members` (applied there); returns its index.
fn commit_on(h: &mut Harness, members: &[NodeId]) -> LogIndex {
    let data = h.rand_cmd();
    let index = h.one(data, members.len(), true);
    let ok = h.run_until(CONVERGE_MS, |c| {
        members.iter().all(|&id| c.applied_index(id) >= index)
    });
    h.check(ok, || {
        format!("{index:?} not applied on every member {members:?}")
    });
    index
}

/// The commands applied before a change are applied, at the same indexes, on every member.
fn check_preserved(h: &Harness, before: &[(LogIndex, Bytes)], members: &[NodeId]) {
    for &id in members {
        let got = h.c.applied(id);
        h.check(
            got.len() >= before.len() && got[..before.len()] == *before,
            || {
                format!(
                    "{id:?} lost committed commands: {} applied before the changes, {id:?} has {} \
                 (first difference at {:?})",
                    before.len(),
                    got.len(),
                    before.iter().zip(&got).position(|(a, b)| a != b)
                )
            },
        );
    }
}

/// What [`watch`] saw.
struct Watched {
    /// Highest term any watched node had.
    max_term: Term,
    /// (term, leader) pairs seen among the watched nodes.
    leaders: BTreeSet<(Term, NodeId)>,
    /// Whether `probe` was ever a (pre-)candidate or leader.
    probe_campaigned: bool,
}

/// Run `ms`, sampling every tick: terms and leaders among `nodes`, and whether `probe`
/// campaigned.
fn watch(h: &mut Harness, ms: u64, nodes: &[NodeId], probe: NodeId) -> Watched {
    let mut w = Watched {
        max_term: Term(0),
        leaders: BTreeSet::new(),
        probe_campaigned: false,
    };
    let end = h.now() + ms;
    while h.now() < end {
        h.sleep(TICK_MS);
        for &id in nodes {
            if let Some(r) = h.c.raft(id) {
                w.max_term = w.max_term.max(r.term());
                if r.is_leader() {
                    w.leaders.insert((r.term(), id));
                }
            }
        }
        w.probe_campaigned |= matches!(
            h.role(probe),
            Some(Role::Candidate | Role::PreCandidate | Role::Leader)
        );
    }
    w
}

fn commit_some(h: &mut Harness, n: usize, on: usize) {
    for _ in 0..n {
        let c = h.rand_cmd();
        h.one(c, on, true);
    }
}

/// Everything a leader applied so far (commands only).
fn applied_on_leader(h: &mut Harness) -> Vec<(LogIndex, Bytes)> {
    let l = h.check_one_leader();
    h.c.applied(l)
}

/// §4.2.1 + §4.1: a new, empty server joins as a learner and catches up through a lossy network
/// (10% of messages lost each way) without counting in any quorum and without campaigning,
/// then is promoted; every node ends with the four voters and every command.
#[test]
fn learner_catches_up_on_a_lossy_network_then_is_promoted() {
    let sc = scenario!("learner_catches_up_on_a_lossy_network_then_is_promoted");
    run_seeds(sc, SEEDS, |seed| {
        let mut h = Harness::new(sc, config(3, seed, Net::Unreliable));
        commit_some(&mut h, 30, 3);
        h.c.add_node(NodeId(4));
        let w = watch(&mut h, 4 * E_MS, &ids(&[1, 2, 3]), NodeId(4));
        h.check(
            !w.probe_campaigned && h.term(NodeId(4)) == Some(Term(0)),
            || "an empty node in no configuration campaigned or moved its term".into(),
        );
        commit_change(&mut h, ConfChange::AddLearner(NodeId(4)), CHANGE_MS);
        let before = applied_on_leader(&mut h);
        let target = before.last().map_or(LogIndex(0), |&(i, _)| i);
        let ok = h.run_until(CONVERGE_MS, |c| c.applied_index(NodeId(4)) >= target);
        h.check(ok, || "the learner did not catch up".into());
        h.check(h.role(NodeId(4)) == Some(Role::Follower), || {
            format!("the learner is {:?}", h.role(NodeId(4)))
        });
        let all = ids(&[1, 2, 3, 4]);
        wait_confs(&mut h, &all, &with_learners(&[1, 2, 3], &[4]), CONVERGE_MS);
        commit_change(&mut h, ConfChange::PromoteLearner(NodeId(4)), CHANGE_MS);
        wait_confs(&mut h, &all, &voters(&[1, 2, 3, 4]), CONVERGE_MS);
        commit_on(&mut h, &all);
        check_preserved(&h, &before, &all);
    });
}

/// Where the leader crashes while it adds a voter.
#[derive(Clone, Copy, Debug)]
enum CrashPoint {
    /// Before the change's `Ready` was handled: the entry never left memory.
    BeforePersisted,
    /// A power cut at the n-th file operation from writing the change on (its write, its
    /// sync, the writes of commands behind it).
    PowerCutWhileWriting(u64),
    /// The entry reached one follower only (not a quorum of the new configuration).
    OnMinority,
    /// The entry is on a quorum, but no acknowledgement reached the leader.
    OnQuorumUnacknowledged,
    /// The leader committed it; the followers do not know yet.
    RightAfterCommit,
}

/// §4.1, the leader crashing at every step of adding a voter (3 → 4): the change either
/// survives whole (then the new leader commits it: it was on a quorum, or reached a follower
/// that can win) or vanishes whole (never durable anywhere); never two changes at once; every
/// node converges on the committed configuration; the change can then be completed; no
/// committed command is lost.
#[test]
fn add_voter_while_the_leader_crashes_at_every_step_of_the_change() {
    let sc = scenario!("add_voter_while_the_leader_crashes_at_every_step_of_the_change");
    let points = [
        CrashPoint::BeforePersisted,
        CrashPoint::PowerCutWhileWriting(0),
        CrashPoint::PowerCutWhileWriting(2),
        CrashPoint::PowerCutWhileWriting(5),
        CrashPoint::OnMinority,
        CrashPoint::OnQuorumUnacknowledged,
        CrashPoint::RightAfterCommit,
    ];
    run_seeds(sc, SEEDS, |seed| {
        for point in points {
            add_voter_crash_script(&mut Harness::new(sc, config(3, seed, Net::Reliable)), point);
        }
    });
}

fn add_voter_crash_script(h: &mut Harness, point: CrashPoint) {
    let new = NodeId(4);
    commit_some(h, 10, 3);
    let before = applied_on_leader(h);
    let l = h.check_one_leader();
    let f: Vec<NodeId> = h.ids().into_iter().filter(|&i| i != l).collect();
    h.c.add_node(new);
    h.sleep(TICK_MS);
    let change = ConfChange::AddVoter(new);
    // Expected outcome: Some(true) the change survives, Some(false) it vanishes, None either.
    let survives = match point {
        CrashPoint::BeforePersisted => {
            h.c.propose_conf_change(l, change)
                .expect("the leader accepts");
            h.c.crash(l);
            Some(false)
        }
        CrashPoint::PowerCutWhileWriting(ops) => {
            h.c.crash_at_op(l, 0, ops);
            h.c.propose_conf_change(l, change)
                .expect("the leader accepts");
            // Commands behind the change give the disk more writes if the change's own
            // `Ready` took fewer than `ops` file operations.
            for _ in 0..20 {
                if h.run_until(TICK_MS, |c| !c.is_up(l)) {
                    break;
                }
                let data = h.rand_cmd();
                let _ = h.c.propose(l, data);
            }
            h.check(!h.c.is_up(l), || {
                format!("the power cut at op {ops} did not fire")
            });
            None
        }
        CrashPoint::OnMinority => {
            h.c.set_link(l, f[1], false);
            h.c.set_link(l, new, false);
            let (eid, _) = h.c.propose_conf_change(l, change).expect("accepted");
            let f0 = f[0];
            let arrived = h.run_until(E_MS, |c| {
                c.raft(f0).is_some_and(|r| r.last_index() >= eid.index)
            });
            h.check(arrived, || "the change never reached the follower".into());
            h.c.crash(l);
            Some(true)
        }
        CrashPoint::OnQuorumUnacknowledged => {
            for &x in f.iter().chain([&new]) {
                h.c.set_link(x, l, false);
            }
            let (eid, _) = h.c.propose_conf_change(l, change).expect("accepted");
            let fs = f.clone();
            let arrived = h.run_until(E_MS, |c| {
                fs.iter()
                    .all(|&x| c.raft(x).is_some_and(|r| r.last_index() >= eid.index))
            });
            h.check(arrived, || "the change never reached the followers".into());
            h.check(h.c.raft(l).unwrap().commit_index() < eid.index, || {
                "the leader committed without acknowledgements".into()
            });
            h.c.crash(l);
            Some(true)
        }
        CrashPoint::RightAfterCommit => {
            let (eid, _) = h.c.propose_conf_change(l, change).expect("accepted");
            let done = h.run_until(E_MS, |c| {
                c.raft(l).is_some_and(|r| r.commit_index() >= eid.index)
            });
            h.check(done, || "the leader did not commit the change".into());
            h.c.crash(l);
            Some(true)
        }
    };
    h.c.heal();
    // The survivors elect a leader and commit an entry of its term, which settles the change.
    let data = h.rand_cmd();
    h.one(data, 2, true);
    let committed = h.c.committed_configuration().clone();
    let has_new = committed.contains(new);
    h.check(survives.is_none_or(|s| s == has_new), || {
        format!("{point:?}: expected the change to survive: {survives:?}, committed {committed:?}")
    });
    h.check(has_new || committed == voters(&[1, 2, 3]), || {
        format!("{point:?}: committed {committed:?}")
    });
    if !has_new {
        for &x in &f {
            h.check(h.c.configuration(x) == Some(&committed), || {
                format!(
                    "{point:?}: {x:?} uses {:?} though the change vanished",
                    h.c.configuration(x)
                )
            });
        }
    }
    h.c.restart(l);
    h.note(format!("{point:?}: survived {has_new}"));
    commit_change(h, change, CHANGE_MS);
    let all = ids(&[1, 2, 3, 4]);
    wait_confs(h, &all, &voters(&[1, 2, 3, 4]), CONVERGE_MS);
    commit_on(h, &all);
    check_preserved(h, &before, &all);
}

/// §4.1: removing a follower of five: the other four use the new configuration, keep
/// committing (and tolerate one more crash: 3 of 4), while the removed node keeps running,
/// connected. The leader replicates to it until the removal commits and then sends it one
/// last append with that commit, so (the network being reliable) its own log says it was
/// removed, and it hears nothing after; it moves no one: the leader and every member's term
/// stay as they were. Then its process stops for good.
#[test]
fn remove_a_follower_while_it_keeps_running() {
    let sc = scenario!("remove_a_follower_while_it_keeps_running");
    run_seeds(sc, SEEDS, |seed| {
        let mut h = Harness::new(sc, config(5, seed, Net::Reliable));
        commit_some(&mut h, 10, 5);
        let before = applied_on_leader(&mut h);
        let l = h.check_one_leader();
        let gone = h.peer(l, 1);
        let at = commit_change(&mut h, ConfChange::Remove(gone), CHANGE_MS);
        let rest: Vec<NodeId> = h.ids().into_iter().filter(|&i| i != gone).collect();
        let raw: Vec<u64> = rest.iter().map(|i| i.0).collect();
        wait_confs(&mut h, &rest, &voters(&raw), CONVERGE_MS);
        let term = h.term(l).unwrap();
        let w = watch(&mut h, WATCH_MS, &rest, gone);
        let (gone_commit, gone_member) = {
            let r = h.c.raft(gone).expect("the removed node runs");
            (r.commit_index(), r.configuration().is_member(gone))
        };
        h.check(gone_commit >= at && !gone_member, || {
            format!(
                "the removed node never learned its removal: commit {gone_commit:?} (the \
                 change is at {at:?}), member of its own configuration: {gone_member}"
            )
        });
        h.check(
            w.max_term == term && w.leaders == BTreeSet::from([(term, l)]),
            || {
                format!(
                    "the removed node disrupted: max term {:?} (was {term:?}), leaders {:?}",
                    w.max_term, w.leaders
                )
            },
        );
        h.check(h.term(gone) == Some(term) && !h.is_leader(gone), || {
            format!(
                "the removed node is {:?} in {:?}",
                h.role(gone),
                h.term(gone)
            )
        });
        commit_on(&mut h, &rest);
        let down = h.peer(l, 2);
        let down = if down == gone { h.peer(l, 3) } else { down };
        h.c.crash(down);
        let live: Vec<NodeId> = rest.iter().copied().filter(|&i| i != down).collect();
        commit_on(&mut h, &live);
        h.c.restart(down);
        h.c.retire(gone);
        commit_on(&mut h, &rest);
        check_preserved(&h, &before, &rest);
    });
}

/// §4.2.2: a leader that removes itself keeps leading, without counting itself, until the
/// removal commits, then steps down at once and hands over (TimeoutNow): the next leader is
/// one of the remaining nodes, elected in the very next term. The removed node keeps running
/// and connected for 20 E: it knows it is no voter, never campaigns, and no member's term
/// moves.
#[test]
fn remove_the_leader_it_steps_down_after_committing_and_stays_quiet() {
    let sc = scenario!("remove_the_leader_it_steps_down_after_committing_and_stays_quiet");
    run_seeds(sc, SEEDS, |seed| {
        let mut h = Harness::new(sc, config(3, seed, Net::Reliable));
        commit_some(&mut h, 10, 3);
        let before = applied_on_leader(&mut h);
        let l = h.check_one_leader();
        let term = h.term(l).unwrap();
        let rest: Vec<NodeId> = h.ids().into_iter().filter(|&i| i != l).collect();
        let raw: Vec<u64> = rest.iter().map(|i| i.0).collect();
        let index = commit_change(&mut h, ConfChange::Remove(l), CHANGE_MS);
        let stepped = h.run_until(E_MS, |c| c.raft(l).is_some_and(|r| !r.is_leader()));
        h.check(stepped, || "the removed leader still leads after E".into());
        h.check(h.c.raft(l).unwrap().commit_index() >= index, || {
            "stepped down before knowing its removal committed".into()
        });
        let elected = h.run_until(2 * E_MS, |c| {
            rest.iter()
                .any(|&i| c.raft(i).is_some_and(|r| r.is_leader()))
        });
        h.check(elected, || "no successor within 2 E of the handover".into());
        let l2 = current_leader(&h.c).unwrap();
        h.check(h.term(l2) == Some(term.next()), || {
            format!(
                "the successor leads {:?}, expected {:?}",
                h.term(l2),
                term.next()
            )
        });
        let all = h.ids();
        wait_confs(&mut h, &all, &voters(&raw), CONVERGE_MS);
        let w = watch(&mut h, WATCH_MS, &rest, l);
        h.check(!w.probe_campaigned, || {
            "the removed leader campaigned".into()
        });
        h.check(
            w.max_term == term.next() && w.leaders == BTreeSet::from([(term.next(), l2)]),
            || format!("members' terms {:?}, leaders {:?}", w.max_term, w.leaders),
        );
        commit_on(&mut h, &rest);
        check_preserved(&h, &before, &rest);
    });
}

/// A partition for one step of the replacement, drawn by the script.
fn partition_for_step(h: &mut Harness, members: &[NodeId]) -> String {
    let l = current_leader(&h.c).unwrap_or(members[0]);
    let others: Vec<NodeId> = members.iter().copied().filter(|&i| i != l).collect();
    match h.rng.below(4) {
        0 => {
            // One non-leader cut off: the rest still has a quorum.
            let x = others[h.rng.below(others.len() as u64) as usize];
            h.disconnect(x);
            format!("{x:?} disconnected")
        }
        1 => {
            // The leader alone: the rest elects another, which must finish the change.
            h.c.partition(&[&[l], &others]);
            format!("leader {l:?} isolated")
        }
        2 => {
            // The leader loses its links to half the others, one way.
            for &x in others.iter().take(others.len().div_ceil(2)) {
                h.c.set_link(l, x, false);
            }
            format!("links from {l:?} lost")
        }
        _ => "no partition".into(),
    }
}

/// §4.1 / §4.2.1: replacing a node (3 → 4 → 3: add a new learner, promote it, remove an
/// old voter) while each step runs under a partition drawn by the script — a follower cut
/// off, the leader isolated, one-way loss from the leader — healed only if the step cannot
/// finish. The old node's process then stops; the three remaining voters hold every command.
#[test]
fn replace_a_node_under_partitions() {
    let sc = scenario!("replace_a_node_under_partitions");
    run_seeds(sc, SEEDS, |seed| {
        let mut h = Harness::new(sc, config(3, seed, Net::Reliable));
        commit_some(&mut h, 10, 3);
        let before = applied_on_leader(&mut h);
        let old = h.random_node();
        let new = NodeId(4);
        h.c.add_node(new);
        let mut members = ids(&[1, 2, 3]);
        for change in [
            ConfChange::AddLearner(new),
            ConfChange::PromoteLearner(new),
            ConfChange::Remove(old),
        ] {
            let how = partition_for_step(&mut h, &members);
            h.note(format!("{change:?} with {how}"));
            if !try_change(&mut h, change, 10 * E_MS) {
                h.c.heal();
                commit_change(&mut h, change, CHANGE_MS);
            }
            h.c.heal();
            members =
                h.c.committed_configuration()
                    .voters
                    .iter()
                    .copied()
                    .collect();
        }
        h.c.retire(old);
        let rest: Vec<NodeId> = ids(&[1, 2, 3, 4])
            .into_iter()
            .filter(|&i| i != old)
            .collect();
        let raw: Vec<u64> = rest.iter().map(|i| i.0).collect();
        wait_confs(&mut h, &rest, &voters(&raw), CONVERGE_MS);
        commit_on(&mut h, &rest);
        check_preserved(&h, &before, &rest);
    });
}

/// §4.1: grow 3 → 5 (a learner promoted, then a voter added directly) and shrink back to 3
/// (removing two original nodes, the leader among them if it is one) with a crash of a
/// random node — leader or not — and its restart between every two steps. Every step commits;
/// the three final voters converge on one configuration and hold every command.
#[test]
fn grow_three_to_five_and_shrink_to_three_with_crashes_between_steps() {
    let sc = scenario!("grow_three_to_five_and_shrink_to_three_with_crashes_between_steps");
    run_seeds(sc, SEEDS, |seed| {
        let mut h = Harness::new(sc, config(3, seed, Net::Reliable));
        commit_some(&mut h, 10, 3);
        let before = applied_on_leader(&mut h);
        h.c.add_node(NodeId(4));
        h.c.add_node(NodeId(5));
        let steps = [
            ConfChange::AddLearner(NodeId(4)),
            ConfChange::PromoteLearner(NodeId(4)),
            ConfChange::AddVoter(NodeId(5)),
            ConfChange::Remove(NodeId(1)),
            ConfChange::Remove(NodeId(2)),
        ];
        for change in steps {
            commit_change(&mut h, change, CHANGE_MS);
            let members: Vec<NodeId> = h.c.committed_configuration().members().collect();
            let victim = members[h.rng.below(members.len() as u64) as usize];
            h.note(format!("{change:?} committed; crash {victim:?}"));
            h.c.crash(victim);
            h.sleep(2 * E_MS);
            h.c.restart(victim);
            let c = h.rand_cmd();
            h.one(c, members.len() - 1, true);
        }
        h.c.retire(NodeId(1));
        h.c.retire(NodeId(2));
        let rest = ids(&[3, 4, 5]);
        wait_confs(&mut h, &rest, &voters(&[3, 4, 5]), CONVERGE_MS);
        commit_on(&mut h, &rest);
        check_preserved(&h, &before, &rest);
    });
}

/// §4.2.3 with PreVote: a follower is handed leadership (TimeoutNow) and cut off as it
/// starts its election, so it sits alone in a term above the cluster's; it is removed
/// meanwhile. When it comes back its PreVotes are ignored (leader lease; it is no member of
/// anyone's configuration): for 20 E the leader and every member's term stay as they were.
#[test]
fn a_removed_node_back_with_a_higher_term_does_not_disrupt() {
    let sc = scenario!("a_removed_node_back_with_a_higher_term_does_not_disrupt");
    run_seeds(sc, SEEDS, |seed| {
        let mut h = Harness::new(sc, config(5, seed, Net::Reliable));
        commit_some(&mut h, 5, 5);
        let before = applied_on_leader(&mut h);
        let l = h.check_one_leader();
        let term = h.term(l).unwrap();
        let x = h.peer(l, 1);
        h.c.transfer_leader(l, x).expect("transfer starts");
        let started = h.run_until(E_MS, |c| c.raft(x).is_some_and(|r| r.term() > term));
        h.check(started, || "the transferee never campaigned".into());
        h.disconnect(x);
        let x_term = h.term(x).unwrap();
        let rest: Vec<NodeId> = h.ids().into_iter().filter(|&i| i != x).collect();
        commit_change(&mut h, ConfChange::Remove(x), CHANGE_MS);
        h.check(h.term(l) == Some(term) && h.is_leader(l), || {
            "the leader changed while the transferee was cut off".into()
        });
        h.sleep(10 * E_MS);
        h.connect(x);
        let w = watch(&mut h, WATCH_MS, &rest, x);
        h.check(
            w.max_term == term && w.leaders == BTreeSet::from([(term, l)]),
            || {
                format!(
                    "the removed node (term {x_term:?}) disrupted: max term {:?}, leaders {:?}",
                    w.max_term, w.leaders
                )
            },
        );
        h.check(!h.is_leader(x) && h.term(x) == Some(x_term), || {
            format!("the removed node is {:?} in {:?}", h.role(x), h.term(x))
        });
        commit_on(&mut h, &rest);
        check_preserved(&h, &before, &rest);
    });
}

/// §4.2.3 without PreVote or CheckQuorum: a follower partitioned away is removed, and runs
/// real elections alone, its term climbing. Back on the network, its RequestVotes reach a
/// cluster whose members all heard from their leader within E: a vote request from outside
/// the configuration is ignored inside the leader lease whatever the switches, so for 20 E
/// the leader and every member's term stay as they were.
#[test]
fn a_removed_node_without_pre_vote_is_ignored_by_a_cluster_with_a_leader() {
    let sc = scenario!("a_removed_node_without_pre_vote_is_ignored_by_a_cluster_with_a_leader");
    run_seeds(sc, SEEDS, |seed| {
        let mut cfg: SimConfig = config(5, seed, Net::Reliable);
        cfg.pre_vote = false;
        cfg.check_quorum = false;
        let mut h = Harness::new(sc, cfg);
        commit_some(&mut h, 5, 5);
        let l = h.check_one_leader();
        let x = h.peer(l, 2);
        h.disconnect(x);
        commit_change(&mut h, ConfChange::Remove(x), CHANGE_MS);
        let rest: Vec<NodeId> = h.ids().into_iter().filter(|&i| i != x).collect();
        let l = current_leader(&h.c).unwrap();
        let term = h.term(l).unwrap();
        h.sleep(10 * E_MS);
        h.check(h.term(x).unwrap() > term, || {
            "the cut-off node did not campaign (nothing to test)".into()
        });
        h.connect(x);
        let w = watch(&mut h, WATCH_MS, &rest, x);
        h.check(
            w.max_term == term && w.leaders == BTreeSet::from([(term, l)]),
            || {
                format!(
                    "the removed node (term {:?}) disrupted: max term {:?} (was {term:?}), \
                 leaders {:?}",
                    h.term(x),
                    w.max_term,
                    w.leaders
                )
            },
        );
        commit_on(&mut h, &rest);
    });
}

/// §4.2.1: promoting a learner that has not caught up is refused (it would stall the
/// quorum while it catches up): a learner cut off while 100 commands commit is
/// `LearnerBehind`; reconnected, it catches up and its promotion commits.
#[test]
fn promoting_a_learner_that_is_behind_is_refused() {
    let sc = scenario!("promoting_a_learner_that_is_behind_is_refused");
    run_seeds(sc, SEEDS, |seed| {
        let mut h = Harness::new(sc, config(3, seed, Net::Reliable));
        let new = NodeId(4);
        h.c.add_node(new);
        commit_change(&mut h, ConfChange::AddLearner(new), CHANGE_MS);
        h.disconnect(new);
        commit_some(&mut h, 100, 3);
        let l = h.check_one_leader();
        match h.c.propose_conf_change(l, ConfChange::PromoteLearner(new)) {
            Err(ConfChangeError::LearnerBehind {
                id,
                matched,
                committed,
            }) => h.check(id == new && matched < committed, || {
                format!("LearnerBehind for {id:?}: matched {matched:?} of {committed:?}")
            }),
            other => h.fail(format!("promoting a learner 100 entries behind: {other:?}")),
        }
        h.check(h.c.committed_configuration().is_learner(new), || {
            "the refused promotion changed the configuration".into()
        });
        h.connect(new);
        commit_change(&mut h, ConfChange::PromoteLearner(new), CHANGE_MS);
        let all = ids(&[1, 2, 3, 4]);
        wait_confs(&mut h, &all, &voters(&[1, 2, 3, 4]), CONVERGE_MS);
        commit_on(&mut h, &all);
    });
}

/// §4.1 + §6.2 (CheckQuorum): the leader of five is isolated with one follower right after
/// proposing a removal. On their side the change is in use but cannot commit (2 of the new
/// configuration's 4 voters), and the leader steps down within 3 E. The majority elects a
/// leader that commits a change of its own (a new learner) — one change at a time holds
/// across leaders. After healing, the stale entry is overwritten on both nodes that had it,
/// and every node uses the majority's configuration.
#[test]
fn a_partition_isolates_the_leader_while_a_change_is_pending() {
    let sc = scenario!("a_partition_isolates_the_leader_while_a_change_is_pending");
    run_seeds(sc, SEEDS, |seed| {
        let mut h = Harness::new(sc, config(5, seed, Net::Reliable));
        commit_some(&mut h, 10, 5);
        let before = applied_on_leader(&mut h);
        let l = h.check_one_leader();
        let (f1, f2, f3, f4) = (h.peer(l, 1), h.peer(l, 2), h.peer(l, 3), h.peer(l, 4));
        h.c.partition(&[&[l, f1], &[f2, f3, f4]]);
        let (eid, _) =
            h.c.propose_conf_change(l, ConfChange::Remove(f4))
                .expect("the leader accepts");
        let spread = h.run_until(E_MS, |c| {
            c.raft(f1).is_some_and(|r| r.last_index() >= eid.index)
        });
        h.check(spread, || {
            "the change did not reach the leader's partner".into()
        });
        for x in [l, f1] {
            h.check(!h.c.configuration(x).unwrap().contains(f4), || {
                format!("{x:?} does not use the pending configuration")
            });
        }
        let stepped = h.run_until(3 * E_MS, |c| c.raft(l).is_some_and(|r| !r.is_leader()));
        h.check(stepped, || "the isolated leader did not step down".into());
        h.check(
            h.c.committed_configuration() == &voters(&[1, 2, 3, 4, 5]),
            || {
                format!(
                    "committed {:?} without a quorum",
                    h.c.committed_configuration()
                )
            },
        );
        h.c.add_node(NodeId(6));
        commit_change(&mut h, ConfChange::AddLearner(NodeId(6)), CHANGE_MS);
        h.c.heal();
        let all = h.ids();
        wait_confs(
            &mut h,
            &all,
            &with_learners(&[1, 2, 3, 4, 5], &[6]),
            CONVERGE_MS,
        );
        commit_on(&mut h, &all);
        check_preserved(&h, &before, &all);
    });
}

/// §4.1 ("servers process incoming RPC requests without consulting their current
/// configurations"): a voter cut off while a new voter joins (3 → 4) comes back after the
/// leader is lost for good; only the new voter can win (the newest entries reached it
/// alone), and it needs the vote of the node whose configuration does not hold it yet. It is
/// elected within 10 E, the returning voter learns the configuration from it, and the lost
/// leader is then removed and retired: three voters hold every command.
#[test]
fn a_voter_that_missed_a_new_voter_still_elects_it() {
    let sc = scenario!("a_voter_that_missed_a_new_voter_still_elects_it");
    run_seeds(sc, SEEDS, |seed| {
        let mut h = Harness::new(sc, config(3, seed, Net::Reliable));
        commit_some(&mut h, 5, 3);
        let before = applied_on_leader(&mut h);
        let l = h.check_one_leader();
        let (f1, lagging) = (h.peer(l, 1), h.peer(l, 2));
        let new = NodeId(4);
        h.disconnect(lagging);
        h.c.add_node(new);
        commit_change(&mut h, ConfChange::AddVoter(new), CHANGE_MS);
        let ok = h.run_until(CONVERGE_MS, |c| {
            c.applied_index(new) >= c.applied_index(l) && c.applied_index(f1) >= c.applied_index(l)
        });
        h.check(ok, || "the new voter did not catch up".into());
        h.c.set_link(l, f1, false);
        for _ in 0..3 {
            let data = h.rand_cmd();
            h.start(l, data).expect("the leader accepts");
        }
        let newest = h.c.raft(l).unwrap().last_index();
        let reached = h.run_until(E_MS, |c| {
            c.raft(new).is_some_and(|r| r.last_index() >= newest)
        });
        h.check(reached, || {
            "the newest entries did not reach the new voter".into()
        });
        h.c.crash(l);
        h.c.heal();
        h.connect(lagging);
        h.check(!h.c.configuration(lagging).unwrap().contains(new), || {
            "the cut-off voter already knows the new voter".into()
        });
        let elected = h.run_until(10 * E_MS, |c| current_leader(c).is_some());
        h.check(elected && current_leader(&h.c) == Some(new), || {
            format!("leader {:?}, expected the new voter", current_leader(&h.c))
        });
        let rest = vec![f1, lagging, new];
        commit_on(&mut h, &rest);
        h.check(h.c.configuration(lagging).unwrap().contains(new), || {
            "the returning voter did not learn the configuration".into()
        });
        commit_change(&mut h, ConfChange::Remove(l), CHANGE_MS);
        h.c.retire(l);
        let mut raw: Vec<u64> = rest.iter().map(|i| i.0).collect();
        raw.sort_unstable();
        wait_confs(&mut h, &rest, &voters(&raw), CONVERGE_MS);
        commit_on(&mut h, &rest);
        check_preserved(&h, &before, &rest);
    });
}
