//! Random membership changes for seeded runs ([`super::RandomOptions::membership`]): one
//! step of the schedule picks a change for whoever leads — start an empty node beyond the
//! initial ids, add a running non-member as a learner or directly as a voter, promote a
//! learner, remove a member (the leader included), retire a node whose removal committed —
//! and often strikes right after the leader accepted it (crash, power cut at its next sync,
//! disconnection, a partition, a follower's crash), so faults land during every step of a
//! change.
//!
//! Keeps the liveness phase possible: at least [`VOTERS_MIN`] voters, at most
//! [`VOTERS_MAX`]; a process is retired only when no configuration that can still commit
//! holds it: the leader of the newest term has committed an entry of its term and its own
//! latest configuration, which does not hold the node, so no stale entry re-adding it can
//! commit later. (A first version asked only the leader of the highest term among the
//! connected nodes: seed 17171 then retired a node that a newer leader, down at that moment,
//! had re-added — a bug of the schedule, not of the cluster.)
//! Every other node is restarted by the liveness phase, which then requires the members of
//! the final committed configuration to catch up.
//!
//! Owns: the choice of change and of the fault after it. Must never: draw randomness from
//! anywhere but the cluster's RNG, or run when the option is off (a seed's schedule without
//! it is unchanged).

use super::Run;
use raft::{ConfChange, NodeId};
use rand::seq::SliceRandom;
use rand::Rng;

/// Fewest voters a removal leaves.
pub const VOTERS_MIN: usize = 2;
/// Most voters an addition makes.
pub const VOTERS_MAX: usize = 7;
/// Nodes started empty over a run, beyond the initial ones.
pub const NODES_ADDED_MAX: usize = 4;

impl Run {
    /// One membership step of the schedule (see the module docs).
    pub(super) fn change_membership(&mut self) {
        let Some(l) = self.leader() else { return };
        let Some(conf) = self.c.configuration(l).cloned() else {
            return;
        };
        let ids = self.ids();
        // Running processes in no configuration of the leader: spares and removed nodes.
        let outside: Vec<NodeId> = ids
            .iter()
            .copied()
            .filter(|&id| !conf.is_member(id) && !self.c.is_retired(id))
            .collect();
        let learners: Vec<NodeId> = conf.learners.iter().copied().collect();
        let members: Vec<NodeId> = conf.members().collect();
        let roll = self.c.rng().gen_range(0..100u32);
        let change = match roll {
            0..=44 => {
                let Some(x) = self.pick_or_add(&outside) else {
                    return;
                };
                if roll < 30 || conf.voters.len() >= VOTERS_MAX {
                    ConfChange::AddLearner(x)
                } else {
                    ConfChange::AddVoter(x)
                }
            }
            45..=64 if conf.voters.len() < VOTERS_MAX => match learners.choose(self.c.rng()) {
                Some(&x) => ConfChange::PromoteLearner(x),
                None => return,
            },
            65..=89 => {
                let Some(&x) = members.choose(self.c.rng()) else {
                    return;
                };
                if conf.contains(x) && conf.voters.len() <= VOTERS_MIN {
                    return;
                }
                ConfChange::Remove(x)
            }
            90..=99 => return self.retire_one(l),
            _ => return,
        };
        if self.c.propose_conf_change(l, change).is_ok() {
            self.strike_during_change(l);
        }
    }

    /// A node outside the configuration to bring in: an existing one, or a new empty one
    /// while the run may still add nodes.
    fn pick_or_add(&mut self, outside: &[NodeId]) -> Option<NodeId> {
        let added = self.ids().len() - self.c.config().nodes;
        let fresh = added < NODES_ADDED_MAX && (outside.is_empty() || self.c.rng().gen_bool(0.3));
        if fresh {
            let id = NodeId(self.ids().len() as u64 + 1);
            self.c.add_node(id);
            return Some(id);
        }
        outside.choose(self.c.rng()).copied()
    }

    /// Right after leader `l` accepted a change: often a fault, so that every step of a
    /// change (appended, replicated, committed, applied) meets one now and then.
    fn strike_during_change(&mut self, l: NodeId) {
        match self.c.rng().gen_range(0..10u32) {
            0 => self.c.crash(l),
            1 => {
                let syncs = self.c.rng().gen_range(0..2);
                self.c.crash_at_sync(l, syncs);
            }
            2 => {
                self.c.disconnect(l);
                self.report.partitions += 1;
            }
            3 => {
                let delay = self.c.rng().gen_range(0..=20);
                self.c.run_for(delay);
                self.partition();
            }
            4 => {
                let id = self.random_node();
                if id != l {
                    self.c.crash(id);
                }
            }
            _ => {}
        }
    }

    /// Retire a node whose removal is final (see the module docs), if there is one.
    fn retire_one(&mut self, l: NodeId) {
        let Some(r) = self.c.raft(l) else { return };
        // `l` leads the newest term any node led (a stale leader cut off from a newer one
        // would not know of the newer one's changes), has committed an entry of its term
        // (so no entry of an older term beyond it can ever commit) and its own latest
        // configuration entry (so it has no change pending).
        let settled = self.c.latest_leader_term() == Some(r.term())
            && r.term_at(r.commit_index()) == Some(r.term())
            && r.pending_conf_index() <= r.commit_index()
            && r.configuration() == self.c.committed_configuration();
        if !settled {
            return;
        }
        let conf = r.configuration().clone();
        let gone: Vec<NodeId> = self
            .ids()
            .into_iter()
            .filter(|&id| !conf.is_member(id) && !self.c.is_retired(id) && id != l)
            .collect();
        if let Some(&x) = gone.choose(self.c.rng()) {
            self.c.retire(x);
        }
    }
}
