//! Elections (§5.2, §5.4.1) with PreVote (dissertation §9.6).
//!
//! Owns: campaigning, granting votes under the one-vote-per-term and up-to-date rules,
//! counting votes, becoming leader (with its no-op entry). Must never: grant a real vote
//! without it being persisted before the grant leaves (grants are durability-bound
//! messages), or count votes from another round or term.

use crate::message::{Message, MessageBody, VoteRequest, VoteResponse};
use crate::node::Raft;
use crate::progress::Progress;
use crate::ready::Role;
use crate::types::{EntryKind, NodeId, Term};
use bytes::Bytes;

impl Raft {
    /// Election timer fired (or `TimeoutNow` arrived, `transfer = true`).
    pub(crate) fn start_election(&mut self, transfer: bool) {
        if self.cfg.pre_vote && !transfer {
            self.campaign_pre_vote();
        } else {
            self.campaign_vote(transfer);
        }
    }

    fn campaign_pre_vote(&mut self) {
        self.reset_election_timer();
        self.role = Role::PreCandidate;
        self.leader = NodeId::NONE;
        self.read_only.fail_forwarded(&mut self.read_failures);
        self.votes.clear();
        self.votes.insert(self.id, true);
        if self.won_votes() {
            return self.campaign_vote(false);
        }
        let req = VoteRequest {
            pre_vote: true,
            last: self.log.last_id(),
            transfer: false,
        };
        let term = self.term.next();
        for peer in self.peers() {
            self.send_with_term(peer, term, MessageBody::Vote(req));
        }
    }

    fn campaign_vote(&mut self, transfer: bool) {
        let term = self.term.next();
        self.become_follower(term, NodeId::NONE);
        self.role = Role::Candidate;
        self.vote = self.id;
        self.votes.insert(self.id, true);
        if self.won_votes() {
            return self.become_leader();
        }
        let req = VoteRequest {
            pre_vote: false,
            last: self.log.last_id(),
            transfer,
        };
        for peer in self.peers() {
            // Durability-bound: goes out only after our term and self-vote are persisted.
            self.send(peer, MessageBody::Vote(req));
        }
    }

    /// RequestVote / PreVote receiver (term rules already applied).
    ///
    /// The grant does not consult our configuration (dissertation §4.1: "servers process
    /// incoming RPC requests without consulting their current configurations"): the
    /// candidate may be a voter of a configuration entry we have not received, whose
    /// majority needs our vote — a voter that missed the entry adding a server would
    /// otherwise block every election that server must win. Removed servers cannot win
    /// this way (the majorities of consecutive configurations overlap and a removed server's
    /// log lacks its committed removal), and the lease in `step_higher_term` keeps them from
    /// disrupting a cluster that has a leader.
    pub(crate) fn handle_vote_request(&mut self, msg: Message) {
        let MessageBody::Vote(req) = msg.body else {
            unreachable!()
        };
        let free = self.vote == msg.from || (!self.vote.is_some() && !self.leader.is_some());
        let future_pre_vote = req.pre_vote && msg.term > self.term;
        let up_to_date = req.last.is_up_to_date_with(self.log.last_id());
        let granted = (free || future_pre_vote) && up_to_date;
        if granted && !req.pre_vote {
            self.vote = msg.from;
            self.election_elapsed = 0;
        }
        let resp = VoteResponse {
            pre_vote: req.pre_vote,
            granted,
        };
        // A granted PreVote answers in the requested term; everything else in ours.
        let term = if granted { msg.term } else { self.term };
        self.send_with_term(msg.from, term, MessageBody::VoteResponse(resp));
    }

    pub(crate) fn handle_vote_response(&mut self, from: NodeId, term: Term, resp: VoteResponse) {
        let expecting_pre = self.role == Role::PreCandidate;
        // A PreVote grant must be for the term this round asks for; anything else is stale.
        let round_term = if expecting_pre && resp.granted {
            self.term.next()
        } else {
            self.term
        };
        if resp.pre_vote != expecting_pre || term != round_term || !self.conf.contains(from) {
            return; // a stale answer from another round
        }
        self.votes.insert(from, resp.granted);
        if self.won_votes() {
            if expecting_pre {
                self.campaign_vote(false);
            } else {
                self.become_leader();
            }
        } else if self.lost_votes() {
            let term = self.term;
            self.become_follower(term, NodeId::NONE);
        }
    }

    fn won_votes(&self) -> bool {
        self.count_votes(true) >= self.conf.quorum()
    }

    fn lost_votes(&self) -> bool {
        self.count_votes(false) > self.conf.voters.len() - self.conf.quorum()
    }

    fn count_votes(&self, granted: bool) -> usize {
        self.conf
            .voters
            .iter()
            .filter(|v| self.votes.get(v) == Some(&granted))
            .count()
    }

    pub(crate) fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        assert_eq!(self.vote, self.id);
        self.role = Role::Leader;
        self.leader = self.id;
        self.votes.clear();
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        self.read_only.reset_for_new_term();
        let next = self.log.last_index().next();
        let inflight = self.cfg.inflight_msgs_max;
        self.progress = self
            .replication_peers()
            .into_iter()
            .map(|p| (p, Progress::new(next, inflight)))
            .collect();
        // The no-op lets the leader commit entries of earlier terms (§5.4.2, §8).
        self.append_entry(EntryKind::Noop, Bytes::new());
    }
}
