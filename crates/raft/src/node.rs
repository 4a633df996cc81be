//! The `Raft` state machine of one node: role, term, vote, log, peers, and the input/output
//! plumbing (`tick`, `step`, `propose`, `ready`, `advance`).
//!
//! Owns: term rules applied once for every message, dispatch by role, role transitions,
//! timers in ticks, the outboxes. Handlers for each concern live in sibling modules
//! (`election`, `replication`, `snapshot`, `read_only`, `transfer`). Must never: do I/O, read
//! a clock, or use an unseeded RNG.

use crate::config::Config;
use crate::error::{CompactError, Error, ProposeError, ReadError, TransferError};
use crate::log::RaftLog;
use crate::message::{Message, MessageBody};
use crate::progress::Progress;
use crate::read_only::ReadOnly;
use crate::ready::{ReadFailure, ReadState, Ready, Role, SoftState};
use crate::rng::Rng;
use crate::types::{
    Configuration, Entry, EntryId, EntryKind, HardState, LogIndex, NodeId, Snapshot, SnapshotMeta,
    Term,
};
use bytes::Bytes;
use std::collections::BTreeMap;

/// What a node starts from: its durable state.
#[derive(Clone, Debug, Default)]
pub struct InitialState {
    pub hard_state: HardState,
    /// The latest durable snapshot, if any; the state machine is restored from it and
    /// `applied` starts at its last index.
    pub snapshot: Option<Snapshot>,
    /// Durable log entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
    /// Membership when there is no snapshot and no configuration entry (bootstrap).
    pub config: Configuration,
}

impl InitialState {
    /// A brand-new node of a brand-new cluster.
    pub fn bootstrap(config: Configuration) -> Self {
        InitialState {
            config,
            ..Default::default()
        }
    }
}

/// A summary of one node's state, for checks, metrics and the dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub vote: NodeId,
    pub leader: NodeId,
    pub commit: LogIndex,
    pub applied: LogIndex,
    pub persisted: LogIndex,
    pub first_index: LogIndex,
    pub last: EntryId,
    pub snapshot: EntryId,
}

/// One node's Raft state machine.
pub struct Raft {
    pub(crate) id: NodeId,
    pub(crate) cfg: Config,
    pub(crate) term: Term,
    pub(crate) vote: NodeId,
    pub(crate) leader: NodeId,
    pub(crate) role: Role,
    pub(crate) log: RaftLog,
    pub(crate) conf: Configuration,
    /// Index of the configuration entry `conf` comes from (0: snapshot or bootstrap).
    pub(crate) pending_conf_index: LogIndex,
    /// The configuration when neither the log nor a snapshot has one.
    pub(crate) bootstrap_conf: Configuration,
    /// Leader only: one entry per other member (voters and learners), and per member the
    /// pending configuration change removes, until it commits.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// Candidate/pre-candidate: votes received this round.
    pub(crate) votes: BTreeMap<NodeId, bool>,
    pub(crate) election_elapsed: u32,
    pub(crate) heartbeat_elapsed: u32,
    pub(crate) election_timeout: u32,
    rng: Rng,
    pub(crate) read_only: ReadOnly,
    /// Leader only: target of an ongoing leadership transfer and ticks spent on it.
    pub(crate) transferee: NodeId,
    pub(crate) transfer_elapsed: u32,
    /// Leader only: bytes of entries above the commit index.
    pub(crate) uncommitted_bytes: usize,
    /// Proposals arrived since the last broadcast (sent at the next `ready`, batched).
    pub(crate) pending_broadcast: bool,
    /// Reads registered since the last heartbeat round (a round goes out at the next `ready`).
    pub(crate) pending_read_round: bool,
    /// Follower: a snapshot being received in chunks.
    pub(crate) snapshot_recv: Option<(SnapshotMeta, Vec<u8>)>,
    msgs: Vec<Message>,
    msgs_after_persist: Vec<Message>,
    pub(crate) read_states: Vec<ReadState>,
    pub(crate) read_failures: Vec<ReadFailure>,
    prev_soft: SoftState,
    prev_hard: HardState,
}

impl Raft {
    /// Build a node from its durable state. Checks the state for consistency.
    pub fn new(config: Config, initial: InitialState) -> Result<Self, Error> {
        config.validate()?;
        let InitialState {
            hard_state,
            snapshot,
            entries,
            config: boot_conf,
        } = initial;
        let base = snapshot.as_ref().map(|s| s.meta.last).unwrap_or_default();
        let mut expect = base.index.next();
        let mut last_term = base.term;
        let mut conf = snapshot
            .as_ref()
            .map_or(boot_conf.clone(), |s| s.meta.config.clone());
        let mut conf_index = LogIndex(0);
        for e in &entries {
            if e.index != expect {
                return Err(Error::Corrupt(
                    "log entries are not contiguous after the snapshot",
                ));
            }
            if e.term < last_term {
                return Err(Error::Corrupt("log terms decrease"));
            }
            if e.kind == EntryKind::Config {
                conf = Configuration::decode(&e.data)?;
                conf_index = e.index;
            }
            expect = expect.next();
            last_term = e.term;
        }
        if hard_state.term < last_term {
            return Err(Error::Corrupt("hard state term is older than the log"));
        }
        if hard_state.commit > expect.prev() {
            return Err(Error::Corrupt(
                "hard state commit index is beyond the durable log",
            ));
        }
        if conf.voters.is_empty() {
            return Err(Error::Config("no voters in the configuration".into()));
        }
        let log = RaftLog::restore(snapshot, entries, hard_state.commit);
        let read_only = ReadOnly::new(config.seed);
        let mut raft = Raft {
            id: config.id,
            rng: Rng::new(config.seed),
            cfg: config,
            term: hard_state.term,
            vote: hard_state.vote,
            leader: NodeId::NONE,
            role: Role::Follower,
            log,
            conf,
            pending_conf_index: conf_index,
            bootstrap_conf: boot_conf,
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            election_timeout: 0,
            read_only,
            transferee: NodeId::NONE,
            transfer_elapsed: 0,
            uncommitted_bytes: 0,
            pending_broadcast: false,
            pending_read_round: false,
            snapshot_recv: None,
            msgs: Vec::new(),
            msgs_after_persist: Vec::new(),
            read_states: Vec::new(),
            read_failures: Vec::new(),
            prev_soft: SoftState {
                role: Role::Follower,
                leader: NodeId::NONE,
                term: hard_state.term,
            },
            prev_hard: HardState {
                commit: LogIndex(hard_state.commit.0.max(base.index.0)),
                ..hard_state
            },
        };
        raft.reset_election_timer();
        Ok(raft)
    }

    // ----- inputs -----

    /// Advance logical time by one tick.
    pub fn tick(&mut self) {
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
        self.debug_check();
    }

    fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.election_elapsed >= self.election_timeout && self.is_voter() {
            self.election_elapsed = 0;
            self.start_election(false);
        }
    }

    /// Feed a message from a peer.
    pub fn step(&mut self, msg: Message) -> Result<(), Error> {
        let r = self.step_inner(msg);
        self.debug_check();
        r
    }

    fn step_inner(&mut self, msg: Message) -> Result<(), Error> {
        if msg.to != self.id {
            return Err(Error::WrongRecipient {
                from: msg.from,
                to: msg.to,
                me: self.id,
            });
        }
        if msg.from == self.id || !msg.from.is_some() {
            return Err(Error::InvalidMessage {
                from: msg.from,
                why: "bad sender id",
            });
        }
        if msg.term > self.term {
            if !self.step_higher_term(&msg) {
                return Ok(());
            }
        } else if msg.term < self.term {
            self.step_lower_term(msg);
            return Ok(());
        }
        match &msg.body {
            MessageBody::Vote(_) => {
                self.handle_vote_request(msg);
                Ok(())
            }
            _ => match self.role {
                Role::Leader => self.step_leader(msg),
                Role::Candidate | Role::PreCandidate => self.step_candidate(msg),
                Role::Follower => self.step_follower(msg),
            },
        }
    }

    /// A message with a term above ours. Returns false when it must be ignored.
    ///
    /// Senders outside our configuration (removed servers, dissertation §4.2.3, or servers
    /// of a configuration we have not received yet) move our term only by what a leader of
    /// that term sends — AppendEntries, InstallSnapshot, TimeoutNow — which a node must
    /// follow even before it learns the configuration that holds the leader (a new server
    /// learns its configuration from that very leader). Their vote requests are ignored
    /// inside the leader lease whatever the switches, and anything else they send at a
    /// higher term is dropped: it could only depose our leader for nothing.
    fn step_higher_term(&mut self, msg: &Message) -> bool {
        let member = self.conf.is_member(msg.from);
        match &msg.body {
            MessageBody::Vote(v) => {
                let lease_applies = v.pre_vote || self.cfg.check_quorum || !member;
                if lease_applies && self.in_leader_lease() && !v.transfer {
                    // Leader lease (§4.2.3 of the dissertation): a node that heard from a
                    // live leader recently ignores disruptive candidates.
                    return false;
                }
                if v.pre_vote {
                    return true; // answering a PreVote never changes our term
                }
                self.become_follower(msg.term, NodeId::NONE);
            }
            MessageBody::Append(_) | MessageBody::Snapshot(_) | MessageBody::TimeoutNow => {
                self.become_follower(msg.term, msg.from);
            }
            _ if !member => return false,
            MessageBody::VoteResponse(v) if v.pre_vote && v.granted => {
                return true; // granted PreVote carries the term we would campaign in
            }
            _ => self.become_follower(msg.term, NodeId::NONE),
        }
        true
    }

    /// A message from an older term: tell stale leaders and pre-candidates about our term.
    fn step_lower_term(&mut self, msg: Message) {
        match &msg.body {
            MessageBody::Append(_) | MessageBody::Snapshot(_) => {
                // Our term in the reply makes the stale leader step down (§5.1).
                self.send(
                    msg.from,
                    MessageBody::AppendResponse(crate::message::AppendResponse {
                        outcome: crate::message::AppendOutcome::Rejected {
                            rejected_prev: LogIndex(0),
                            hint: crate::message::ConflictHint {
                                term: None,
                                index: LogIndex(0),
                            },
                        },
                        commit: self.log.committed,
                        read_seq: 0,
                    }),
                );
            }
            // A stale pre-candidate learns our term from the refusal. So does a stale
            // candidate outside our configuration: we never send it anything ourselves (our
            // configuration may be the stale one: a voter that missed the entry adding it),
            // so without this answer it could campaign below our term forever, never
            // getting the vote it needs from us.
            MessageBody::Vote(v) if v.pre_vote || !self.conf.is_member(msg.from) => {
                let pre_vote = v.pre_vote;
                self.send(
                    msg.from,
                    MessageBody::VoteResponse(crate::message::VoteResponse {
                        pre_vote,
                        granted: false,
                    }),
                );
            }
            _ => {}
        }
    }

    fn step_leader(&mut self, msg: Message) -> Result<(), Error> {
        let from = msg.from;
        if let Some(pr) = self.progress.get_mut(&from) {
            pr.recent_active = true;
        }
        match msg.body {
            MessageBody::AppendResponse(r) => self.handle_append_response(from, r),
            MessageBody::SnapshotResponse(r) => self.handle_snapshot_response(from, r),
            MessageBody::ReadIndex { ctx } => self.leader_read(from, ctx),
            MessageBody::Append(_) | MessageBody::Snapshot(_) => {
                return Err(Error::InvalidMessage {
                    from,
                    why: "AppendEntries from another leader of the same term",
                });
            }
            MessageBody::VoteResponse(_)
            | MessageBody::TimeoutNow
            | MessageBody::ReadIndexResponse { .. }
            | MessageBody::Vote(_) => {}
        }
        Ok(())
    }

    fn step_candidate(&mut self, msg: Message) -> Result<(), Error> {
        match msg.body {
            MessageBody::VoteResponse(r) => self.handle_vote_response(msg.from, msg.term, r),
            MessageBody::Append(_) | MessageBody::Snapshot(_) | MessageBody::TimeoutNow => {
                // Someone won this term (§5.2): follow it, then handle the message.
                self.become_follower(msg.term, msg.from);
                return self.step_follower(msg);
            }
            MessageBody::ReadIndex { ctx } => self.reject_forwarded_read(msg.from, ctx),
            _ => {}
        }
        Ok(())
    }

    fn step_follower(&mut self, msg: Message) -> Result<(), Error> {
        let from = msg.from;
        match msg.body {
            MessageBody::Append(a) => {
                self.follow(from);
                self.handle_append(from, a)?;
            }
            MessageBody::Snapshot(s) => {
                self.follow(from);
                self.handle_snapshot_chunk(from, s)?;
            }
            MessageBody::TimeoutNow => {
                if self.is_voter() {
                    self.start_election(true);
                }
            }
            MessageBody::ReadIndex { ctx } => self.reject_forwarded_read(from, ctx),
            MessageBody::ReadIndexResponse { ctx, index } => self.forwarded_read_done(ctx, index),
            MessageBody::VoteResponse(_)
            | MessageBody::AppendResponse(_)
            | MessageBody::SnapshotResponse(_)
            | MessageBody::Vote(_) => {}
        }
        Ok(())
    }

    /// Heard from the leader of our term: reset the election timer.
    fn follow(&mut self, leader: NodeId) {
        self.election_elapsed = 0;
        if self.leader != leader {
            self.read_only.fail_forwarded(&mut self.read_failures);
            self.leader = leader;
        }
    }

    /// Append a command (leader only). Returns the id the entry will have if it commits.
    pub fn propose(&mut self, data: Bytes) -> Result<EntryId, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader_hint: self.leader(),
            });
        }
        if self.transferee.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        let size = data.len() + crate::types::ENTRY_OVERHEAD_BYTES;
        let limit = self.cfg.uncommitted_bytes_max;
        if limit > 0 && self.uncommitted_bytes > 0 && self.uncommitted_bytes + size > limit {
            return Err(ProposeError::UncommittedLimit {
                uncommitted_bytes: self.uncommitted_bytes,
                limit_bytes: limit,
            });
        }
        let id = self.append_entry(EntryKind::Normal, data);
        self.debug_check();
        Ok(id)
    }

    /// Leader: append an entry of the current term; it goes out at the next `ready`.
    pub(crate) fn append_entry(&mut self, kind: EntryKind, data: Bytes) -> EntryId {
        let id = EntryId::new(self.term, self.log.last_index().next());
        let entry = Entry {
            term: id.term,
            index: id.index,
            kind,
            data,
        };
        self.uncommitted_bytes += entry.size_bytes();
        self.log.append(entry);
        self.pending_broadcast = true;
        id
    }

    /// Start a linearizable read; the answer comes back as a `ReadState` (or `ReadFailure`)
    /// with this `ctx` in a later `Ready`. Works on followers (forwarded to the leader).
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadError> {
        match self.role {
            Role::Leader => {
                self.leader_read(self.id, ctx);
                Ok(())
            }
            _ if self.leader.is_some() => {
                self.forward_read(self.leader, ctx);
                Ok(())
            }
            _ => Err(ReadError::NoLeader),
        }
    }

    /// Hand leadership to `to` (leader only).
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
        self.start_transfer(to)
    }

    /// Start an election now (as if the election timer fired).
    pub fn campaign(&mut self) {
        if self.role != Role::Leader && self.is_voter() {
            self.start_election(false);
        }
        self.debug_check();
    }

    /// The application took a snapshot of its state at `index` (≤ applied): keep it (for
    /// lagging followers), discard log entries ≤ index, and return it for the driver to persist.
    pub fn compact(&mut self, index: LogIndex, data: Bytes) -> Result<Snapshot, CompactError> {
        let snapshot = Snapshot {
            meta: self.snapshot_meta(index)?,
            data,
        };
        self.log.compact(snapshot.clone());
        Ok(snapshot)
    }

    /// What a snapshot of the state at `index` (≤ applied, above the current snapshot) will
    /// say about itself — its last entry and the configuration — for an application that
    /// serializes its state elsewhere and calls [`Raft::compact`] with it later. Entries up
    /// to `index` are committed, so the answer stays the same until then.
    pub fn snapshot_meta(&self, index: LogIndex) -> Result<SnapshotMeta, CompactError> {
        if index > self.log.applied {
            return Err(CompactError::NotApplied {
                index,
                applied: self.log.applied,
            });
        }
        let snap_last = self.log.snapshot_last();
        if index <= snap_last.index {
            return Err(CompactError::AlreadyCompacted {
                index,
                snapshot: snap_last.index,
            });
        }
        let term = self
            .log
            .term_at(index)
            .expect("applied entry is in the log");
        Ok(SnapshotMeta {
            last: EntryId::new(term, index),
            config: self.conf_at(index).0,
        })
    }

    // ----- output -----

    pub fn has_ready(&self) -> bool {
        self.pending_broadcast
            || self.removed_and_committed()
            || self.pending_read_round
            || !self.msgs.is_empty()
            || !self.msgs_after_persist.is_empty()
            || self.log.has_unstable()
            || self.log.has_pending_snapshot()
            || self.log.has_committed_to_apply()
            || !self.read_states.is_empty()
            || !self.read_failures.is_empty()
            || self.soft_state() != self.prev_soft
            || self.hard_state() != self.prev_hard
    }

    pub fn ready(&mut self) -> Ready {
        self.step_down_if_removed();
        if self.pending_broadcast {
            self.pending_broadcast = false;
            self.broadcast_append();
        }
        if self.pending_read_round {
            self.pending_read_round = false;
            if self.role == Role::Leader {
                self.heartbeat_elapsed = 0;
                self.broadcast_heartbeat();
            }
        }
        let soft = self.soft_state();
        let hard = self.hard_state();
        debug_assert!(hard.term >= self.prev_hard.term, "term went back");
        debug_assert!(
            hard.term != self.prev_hard.term
                || !self.prev_hard.vote.is_some()
                || hard.vote == self.prev_hard.vote,
            "vote changed within term {:?}",
            hard.term
        );
        debug_assert!(hard.commit >= self.prev_hard.commit, "commit went back");
        let snapshot = self.log.take_pending_snapshot();
        let entries = self.log.take_unstable();
        let must_sync = snapshot.is_some()
            || !entries.is_empty()
            || hard.term != self.prev_hard.term
            || hard.vote != self.prev_hard.vote;
        let rd = Ready {
            soft_state: (soft != self.prev_soft).then_some(soft),
            hard_state: (hard != self.prev_hard).then_some(hard),
            snapshot,
            entries,
            messages: {
                self.read_only.close_batch();
                std::mem::take(&mut self.msgs)
            },
            persisted_messages: std::mem::take(&mut self.msgs_after_persist),
            committed_entries: self.log.take_committed(),
            read_states: std::mem::take(&mut self.read_states),
            read_failures: std::mem::take(&mut self.read_failures),
            must_sync,
        };
        self.prev_soft = soft;
        self.prev_hard = hard;
        self.debug_check();
        rd
    }

    /// The driver handled `ready` completely: persisted (durably, when `must_sync`), sent,
    /// applied. Same as [`Raft::advance_written`] followed by [`Raft::on_persisted`] for
    /// everything the batch wrote.
    pub fn advance(&mut self, ready: Ready) {
        let written = ready.last_written();
        self.advance_written(ready);
        if let Some(id) = written {
            self.on_persisted(id);
        }
    }

    /// The driver handled `ready` except durability: its writes were handed to storage but
    /// may not be synced yet (asynchronous group commit). It must hold `persisted_messages`
    /// until they are, and then report with [`Raft::on_persisted`] the batch's
    /// [`Ready::last_written`].
    pub fn advance_written(&mut self, ready: Ready) {
        drop(ready);
    }

    /// Storage reports that everything written up to entry `id` (the last entry or the
    /// snapshot of some handled `Ready`) is durable. Reports for entries that were since
    /// overwritten by a conflicting suffix are ignored. The leader counts itself toward the
    /// commit quorum only from here on.
    pub fn on_persisted(&mut self, id: EntryId) {
        self.log.persisted_to(id);
        if self.role == Role::Leader {
            self.maybe_commit();
        }
        self.debug_check();
    }

    /// Debug builds: the invariants every input must leave standing (Figure 2's state
    /// rules, cheap checks only); the simulator runs them after every event.
    fn debug_check(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        self.log.debug_check();
        let last = self.log.last_id();
        debug_assert!(last.term <= self.term, "an entry from a future term");
        match self.role {
            Role::Leader => {
                debug_assert_eq!(self.leader, self.id, "a leader names itself");
                debug_assert_eq!(self.vote, self.id, "a leader voted for itself");
                debug_assert_eq!(last.term, self.term, "a leader's log ends in its term");
                for (peer, pr) in &self.progress {
                    debug_assert!(*peer != self.id, "no progress for the leader itself");
                    debug_assert!(
                        pr.matched < pr.next,
                        "{peer:?}: match {pr:?} not below next"
                    );
                    debug_assert!(
                        pr.next <= last.index.next(),
                        "{peer:?}: next beyond the log"
                    );
                }
            }
            Role::Candidate => {
                debug_assert_eq!(self.vote, self.id, "a candidate voted for itself");
                debug_assert!(self.progress.is_empty(), "progress outside leadership");
            }
            Role::PreCandidate | Role::Follower => {
                debug_assert!(self.progress.is_empty(), "progress outside leadership");
                debug_assert!(self.leader != self.id, "a non-leader names itself leader");
            }
        }
    }

    // ----- role transitions -----

    pub(crate) fn become_follower(&mut self, term: Term, leader: NodeId) {
        assert!(term >= self.term, "term must never decrease");
        let was_leader = self.role == Role::Leader;
        if term > self.term {
            self.term = term;
            self.vote = NodeId::NONE;
        }
        self.role = Role::Follower;
        if was_leader {
            self.read_only.fail_leader_reads(
                self.id,
                self.term,
                &mut self.read_failures,
                &mut self.msgs,
            );
        }
        if self.leader != leader || was_leader {
            self.read_only.fail_forwarded(&mut self.read_failures);
        }
        self.leader = leader;
        self.progress.clear();
        self.votes.clear();
        self.transferee = NodeId::NONE;
        self.uncommitted_bytes = 0;
        self.pending_broadcast = false;
        self.pending_read_round = false;
        self.reset_election_timer();
    }

    pub(crate) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        let e = self.cfg.election_ticks;
        self.election_timeout = self.rng.range(e, 2 * e);
    }

    // ----- helpers -----

    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.term, body);
    }

    /// Send with an explicit term (PreVote requests and grants use a future term).
    pub(crate) fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        let msg = Message {
            from: self.id,
            to,
            term,
            body,
        };
        if msg.requires_durability() {
            self.msgs_after_persist.push(msg);
        } else {
            self.msgs.push(msg);
        }
    }

    pub(crate) fn is_voter(&self) -> bool {
        self.conf.contains(self.id)
    }

    /// Every other member (voters and learners): whom a leader replicates to.
    pub(crate) fn replication_peers(&self) -> Vec<NodeId> {
        self.conf.members().filter(|&m| m != self.id).collect()
    }

    /// Other voters.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        self.conf
            .voters
            .iter()
            .copied()
            .filter(|&v| v != self.id)
            .collect()
    }

    /// True while this node recently heard from a live leader (or is one), so it should not
    /// help depose it. PreVote always honours the lease; real votes from members only with
    /// CheckQuorum; real votes from outside the configuration always (see
    /// `step_higher_term`).
    fn in_leader_lease(&self) -> bool {
        match self.role {
            Role::Leader => true,
            _ => self.leader.is_some() && self.election_elapsed < self.cfg.election_ticks,
        }
    }

    fn soft_state(&self) -> SoftState {
        SoftState {
            role: self.role,
            leader: self.leader,
            term: self.term,
        }
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }

    // ----- observers -----

    pub fn id(&self) -> NodeId {
        self.id
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn vote(&self) -> NodeId {
        self.vote
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    /// The leader this node currently follows (or is).
    pub fn leader(&self) -> Option<NodeId> {
        self.leader.is_some().then_some(self.leader)
    }
    pub fn commit_index(&self) -> LogIndex {
        self.log.committed
    }
    /// Highest index handed to the application for applying.
    pub fn applied_index(&self) -> LogIndex {
        self.log.applied
    }
    /// Highest index known durable on this node.
    pub fn persisted_index(&self) -> LogIndex {
        self.log.persisted
    }
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }
    pub fn last_entry_id(&self) -> EntryId {
        self.log.last_id()
    }
    pub fn first_index(&self) -> LogIndex {
        self.log.first_index()
    }
    pub fn configuration(&self) -> &Configuration {
        &self.conf
    }
    /// Index of the entry the current configuration comes from (0: the bootstrap or
    /// snapshot one); the configuration is settled once this index is committed.
    pub fn pending_conf_index(&self) -> LogIndex {
        self.pending_conf_index
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.log.snapshot()
    }
    /// The entry at `index`, if it is in the in-memory log (not compacted).
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.log.entry(index)
    }
    /// Term of the entry at `index` (including the snapshot's last entry and index 0).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.log.term_at(index)
    }
    /// Entries from `lo` (inclusive) to the last index.
    pub fn entries_from(&self, lo: LogIndex) -> &[Entry] {
        self.log.entries_from(lo)
    }
    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role,
            term: self.term,
            vote: self.vote,
            leader: self.leader,
            commit: self.log.committed,
            applied: self.log.applied,
            persisted: self.log.persisted,
            first_index: self.log.first_index(),
            last: self.log.last_id(),
            snapshot: self.log.snapshot_last(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single_leader() -> Raft {
        let cfg = Config::new(NodeId(1));
        let conf = Configuration::new([NodeId(1)]);
        let mut node = Raft::new(cfg, InitialState::bootstrap(conf)).unwrap();
        node.campaign();
        while node.has_ready() {
            let rd = node.ready();
            node.advance(rd);
        }
        assert!(node.is_leader());
        node
    }

    #[test]
    fn a_consistent_node_passes_the_checks() {
        let mut node = single_leader();
        node.propose(Bytes::from_static(b"x")).unwrap();
        let rd = node.ready();
        node.advance(rd);
        node.tick();
        assert_eq!(node.commit_index(), node.last_index());
    }

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "a leader voted for itself"))]
    fn the_checks_catch_a_leader_that_lost_its_vote() {
        let mut node = single_leader();
        node.vote = NodeId(2);
        node.tick(); // release builds: no check, no panic
    }

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "vote changed within term"))]
    fn the_checks_catch_a_second_vote_in_one_term() {
        let mut node = single_leader();
        node.role = Role::Follower;
        node.leader = NodeId::NONE;
        node.progress.clear();
        node.vote = NodeId(2);
        let _ = node.ready();
    }
}
