//! Membership changes, one server at a time (dissertation §4.1, with the §4.1 fix: a new
//! leader commits an entry of its own term before it changes the configuration).
//!
//! A configuration takes effect on a node as soon as its entry is in the node's log,
//! committed or not; a node therefore always uses the latest configuration entry of its log
//! (else its snapshot's, else the bootstrap one), and goes back to the previous one when a
//! conflicting suffix removes that entry. At most one change is uncommitted at a time, and
//! each changes at most one voter, so the majorities of consecutive configurations overlap.
//!
//! A removed server that never learned of its removal keeps its old configuration and
//! times out; it must not disrupt the cluster (§4.2.3). PreVote keeps its term where it is;
//! besides, a higher-term vote request from outside a node's configuration is ignored inside
//! the leader lease whatever the PreVote/CheckQuorum switches, and any other higher-term
//! message from outside it except a leader's (AppendEntries, InstallSnapshot, TimeoutNow) is
//! dropped (`Raft::step_higher_term`). Votes are granted without consulting the
//! configuration (§4.1), so a voter that missed the entry adding a server can still elect it.
//!
//! Owns: validating and appending a [`ConfChange`], deriving the current configuration from
//! the log, keeping the leader's progress map equal to the members, and the leader stepping
//! down once its own removal commits. Must never: let two changes be uncommitted at once,
//! change more than one voter per entry, or count a learner in any quorum.

use crate::error::ConfChangeError;
use crate::node::Raft;
use crate::progress::Progress;
use crate::ready::Role;
use crate::types::{ConfChange, Configuration, EntryId, EntryKind, LogIndex, NodeId};

impl Raft {
    /// Propose a membership change (leader only). The new configuration is used from now on
    /// (for replication and quorums); the change is done once the returned entry commits.
    pub fn propose_conf_change(&mut self, change: ConfChange) -> Result<EntryId, ConfChangeError> {
        if self.role != Role::Leader {
            return Err(ConfChangeError::NotLeader {
                leader_hint: self.leader(),
            });
        }
        if self.transferee.is_some() {
            return Err(ConfChangeError::TransferInProgress);
        }
        if self.log.term_at(self.log.committed) != Some(self.term) {
            return Err(ConfChangeError::LeaderNotReady);
        }
        if self.pending_conf_index > self.log.committed {
            return Err(ConfChangeError::ChangeInProgress {
                index: self.pending_conf_index,
            });
        }
        let next = self.changed_conf(change)?;
        debug_assert!(
            self.conf.voters.symmetric_difference(&next.voters).count() <= 1,
            "a single-server change moves at most one voter"
        );
        let id = self.append_entry(EntryKind::Config, next.encode());
        self.set_conf(next, id.index);
        Ok(id)
    }

    /// The configuration `change` makes of the current one, if it is allowed.
    fn changed_conf(&self, change: ConfChange) -> Result<Configuration, ConfChangeError> {
        let mut next = self.conf.clone();
        match change {
            ConfChange::AddLearner(id) | ConfChange::AddVoter(id) => {
                if !id.is_some() {
                    return Err(ConfChangeError::InvalidId);
                }
                if next.is_member(id) {
                    return Err(ConfChangeError::AlreadyMember(id));
                }
                if matches!(change, ConfChange::AddLearner(_)) {
                    next.learners.insert(id);
                } else {
                    next.voters.insert(id);
                }
            }
            ConfChange::PromoteLearner(id) => {
                if !next.is_learner(id) {
                    return Err(if next.contains(id) {
                        ConfChangeError::AlreadyMember(id)
                    } else {
                        ConfChangeError::NotLearner(id)
                    });
                }
                let matched = self.progress.get(&id).map_or(LogIndex(0), |p| p.matched);
                let committed = self.log.committed;
                // Caught up: within 10% of the commit index (etcd's readiness rule), so the
                // new voter does not stall the quorum while it catches up.
                if matched.0.saturating_mul(10) < committed.0.saturating_mul(9) {
                    return Err(ConfChangeError::LearnerBehind {
                        id,
                        matched,
                        committed,
                    });
                }
                next.learners.remove(&id);
                next.voters.insert(id);
            }
            ConfChange::Remove(id) => {
                if !next.is_member(id) {
                    return Err(ConfChangeError::NotMember(id));
                }
                if next.contains(id) && next.voters.len() == 1 {
                    return Err(ConfChangeError::LastVoter(id));
                }
                next.voters.remove(&id);
                next.learners.remove(&id);
            }
        }
        Ok(next)
    }

    /// The configuration in effect at `index`: the latest configuration entry at or below it
    /// in the log, else the snapshot's, else the bootstrap one.
    pub(crate) fn conf_at(&self, index: LogIndex) -> (Configuration, LogIndex) {
        let in_log = self
            .log
            .entries_from(self.log.first_index())
            .iter()
            .rev()
            .skip_while(|e| e.index > index)
            .find(|e| e.kind == EntryKind::Config);
        if let Some(e) = in_log {
            let conf = Configuration::decode(&e.data)
                .expect("configuration entries are validated when they enter the log");
            return (conf, e.index);
        }
        let conf = match self.log.snapshot() {
            Some(s) => s.meta.config.clone(),
            None => self.bootstrap_conf.clone(),
        };
        (conf, LogIndex(0))
    }

    /// Re-derive the configuration from the log (after entries were appended or truncated,
    /// or a snapshot installed).
    pub(crate) fn refresh_conf(&mut self) {
        let (conf, index) = self.conf_at(self.log.last_index());
        if conf != self.conf || index != self.pending_conf_index {
            self.set_conf(conf, index);
        }
    }

    fn set_conf(&mut self, conf: Configuration, index: LogIndex) {
        assert!(
            !conf.voters.is_empty(),
            "a configuration always has a voter"
        );
        self.conf = conf;
        self.pending_conf_index = index;
        if self.role == Role::Leader {
            self.sync_progress();
        }
    }

    /// Leader: one progress entry per member but itself, and per member the pending change
    /// removes (a *departing* member: it keeps receiving the log, uncounted, until the change
    /// commits — see [`Raft::release_departed`]).
    fn sync_progress(&mut self) {
        let me = self.id;
        let conf = &self.conf;
        let pending = self.pending_conf_index > self.log.committed;
        self.progress
            .retain(|id, _| *id != me && (conf.is_member(*id) || pending));
        let next = self.log.last_index().next();
        let inflight = self.cfg.inflight_msgs_max;
        for id in self.conf.members().filter(|&m| m != me).collect::<Vec<_>>() {
            self.progress
                .entry(id)
                .or_insert_with(|| Progress::new(next, inflight));
        }
        if self.transferee.is_some() && !self.conf.contains(self.transferee) {
            self.transferee = NodeId::NONE;
        }
    }

    /// Leader, once the pending configuration committed: send each departing member one last
    /// append from its match point, carrying the commit index, and drop its progress. The
    /// member learns from it that its removal committed and stops; otherwise (the message
    /// lost, the member far behind) it never would from its log, as nobody replicates to it
    /// any more (the server then finds out by asking the others).
    pub(crate) fn release_departed(&mut self) {
        debug_assert!(self.pending_conf_index <= self.log.committed);
        let departed: Vec<NodeId> = self
            .progress
            .keys()
            .copied()
            .filter(|id| !self.conf.is_member(*id))
            .collect();
        for id in departed {
            self.send_final_append(id);
            self.progress.remove(&id);
        }
    }

    /// Leader: the configuration that removed it has committed.
    pub(crate) fn removed_and_committed(&self) -> bool {
        self.role == Role::Leader
            && !self.is_voter()
            && self.log.committed >= self.pending_conf_index
    }

    /// Leader, once its removal committed (§4.2.2): tell the followers the commit index, ask
    /// the most caught-up voter to campaign at once (TimeoutNow), and step down. Called at
    /// the start of `ready`, so no handler runs with the leadership gone from under it.
    pub(crate) fn step_down_if_removed(&mut self) {
        if !self.removed_and_committed() {
            return;
        }
        self.broadcast_append();
        self.broadcast_heartbeat();
        let last = self.log.last_index();
        let successor = self
            .progress
            .iter()
            .filter(|(id, pr)| self.conf.contains(**id) && pr.matched == last)
            .map(|(id, _)| *id)
            .next();
        if let Some(to) = successor {
            self.send(to, crate::message::MessageBody::TimeoutNow);
        }
        let term = self.term;
        self.become_follower(term, NodeId::NONE);
    }

    /// Validate the configuration entries among `entries` arriving from a leader.
    pub(crate) fn check_conf_entries(entries: &[crate::types::Entry]) -> Result<(), crate::Error> {
        for e in entries.iter().filter(|e| e.kind == EntryKind::Config) {
            let c = Configuration::decode(&e.data)?;
            if c.voters.is_empty() {
                return Err(crate::Error::Corrupt(
                    "a configuration entry without voters",
                ));
            }
        }
        Ok(())
    }
}
