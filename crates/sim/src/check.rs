//! Cross-node safety checks (the Raft paper's Figure 3), run after every simulated event.
//!
//! Owns: the global registries the checks compare against — every entry ever written (Log
//! Matching), the leader of every term (Election Safety), the committed prefix (Leader
//! Completeness) and the applied prefix (State Machine Safety) — and a cursor per node so
//! each check only looks at what changed since the last event (cost O(new entries)).
//! Must never: mutate a node, or forget anything for the whole run (a violation may involve
//! a node that crashed long ago).
//!
//! Membership (dissertation §4.1): every configuration entry that enters the applied sequence
//! differs from the previous committed configuration (the genesis membership before the
//! first) by at most one member's status (absent, learner, voter), so at most one voter; no
//! leader's log ever holds two configuration entries beyond the committed prefix; and a node
//! leads only terms in which it was elected as a voter of its configuration.
//!
//! A node restored from a digest snapshot ([`crate::app::Recording::Digest`]) no longer knows
//! the entries the snapshot covers, only their hash chain: the checker compares that chain
//! with the global applied sequence's at the snapshot index (or, if no node was seen applying
//! that far yet, keeps the claim and compares it once one is), and checks the entries the node
//! applies after it as usual.

use crate::app::{chain_next, SimStateMachine};
use crate::disk::{entry_hash, SimStore};
use crate::machine::NodeMachine;
use raft::{Configuration, EntryId, EntryKind, LogIndex, NodeId, Term};
use replica::Replica;
use std::collections::{BTreeMap, HashMap};

/// A simulated node as the checker sees it.
pub type SimReplica = Replica<SimStore, NodeMachine>;

/// What the checker has already seen of one node.
#[derive(Default, Clone, Debug)]
struct NodeCursor {
    audit_seen: usize,
    records_seen: usize,
    restores_seen: u64,
    /// The restored digest base is beyond the global applied sequence: its chain is checked,
    /// and the records after it, once the sequence gets there.
    base_unverified: bool,
    commit_seen: LogIndex,
    leader_term_seen: Option<Term>,
    /// While leading: the log index scanned for configuration entries so far this term,
    /// and the configuration entries found beyond the committed prefix.
    leader_scanned: LogIndex,
    leader_pending_confs: Vec<LogIndex>,
}

/// Global registries plus per-node cursors.
#[derive(Default, Debug)]
pub struct Checker {
    /// Log Matching: every entry written anywhere → (payload hash, previous entry's term).
    entries: HashMap<EntryId, (u64, Option<Term>)>,
    /// Election Safety: term → its one leader.
    leaders: BTreeMap<Term, NodeId>,
    /// State Machine Safety: `applied[i]` = (term, payload hash) of what was applied at i + 1.
    applied: Vec<(Term, u64)>,
    /// `chain[i]`: the hash chain through `applied[i]` ([`chain_next`]).
    chain: Vec<u64>,
    /// The entries known committed: `committed[i]` is (term of the entry at index i + 1,
    /// term of the node that first saw it committed). The second over-approximates the term
    /// in which the entry was committed (a node learns of a commit in its leader's term, or
    /// later), which is what Leader Completeness is about.
    committed: Vec<(Term, Term)>,
    /// Every configuration of the applied sequence with the index of its entry, oldest
    /// first; the genesis membership at index 0.
    confs: Vec<(LogIndex, Configuration)>,
    nodes: Vec<NodeCursor>,
}

impl Checker {
    /// `nodes` nodes bootstrapped with the `genesis` membership.
    pub fn new(nodes: usize, genesis: Configuration) -> Self {
        Checker {
            nodes: vec![NodeCursor::default(); nodes],
            confs: vec![(LogIndex(0), genesis)],
            ..Default::default()
        }
    }

    /// One more node (the next id), started empty.
    pub fn add_node(&mut self) {
        self.nodes.push(NodeCursor::default());
    }

    /// The configuration of the last configuration entry in the applied sequence (the
    /// genesis membership before the first).
    pub fn committed_configuration(&self) -> &Configuration {
        &self.confs.last().expect("the genesis membership").1
    }

    /// Every committed configuration so far, with the index of its entry (0: genesis).
    pub fn committed_configurations(&self) -> &[(LogIndex, Configuration)] {
        &self.confs
    }

    /// Number of terms that had a leader so far.
    pub fn elections(&self) -> usize {
        self.leaders.len()
    }

    /// The newest term that had a leader so far.
    pub fn latest_leader_term(&self) -> Option<Term> {
        self.leaders.keys().next_back().copied()
    }

    /// Length of the committed prefix known so far.
    pub fn committed_len(&self) -> u64 {
        self.committed.len() as u64
    }

    /// Length of the globally applied prefix.
    pub fn applied_len(&self) -> u64 {
        self.applied.len() as u64
    }

    /// Node `n` restarted: its commit index and role start over.
    pub fn restarted(&mut self, n: usize) {
        let c = &mut self.nodes[n];
        c.commit_seen = LogIndex(0);
        c.records_seen = 0;
        // A fresh state machine counts its restores from 0 again.
        c.restores_seen = 0;
        c.base_unverified = false;
        c.leader_term_seen = None;
        c.leader_scanned = LogIndex(0);
        c.leader_pending_confs.clear();
    }

    /// Check node `n` after an event that touched it.
    pub fn check_node(&mut self, n: usize, node: &SimReplica) -> Result<(), String> {
        self.log_matching(n, node)?;
        self.state_machine_safety(n, node)?;
        self.indexes(node)?;
        self.commits(n, node)?;
        self.leadership(n, node)
    }

    /// Log Matching (§5.3), inductively: the same id always has the same payload and the
    /// same previous term, so two logs holding one id agree on everything before it.
    fn log_matching(&mut self, n: usize, node: &SimReplica) -> Result<(), String> {
        let audit = node.store().audit();
        let id = NodeId(n as u64 + 1);
        for rec in &audit[self.nodes[n].audit_seen..] {
            let known = self
                .entries
                .entry(rec.id)
                .or_insert((rec.hash, rec.prev_term));
            if known.0 != rec.hash {
                return Err(format!(
                    "log matching: {id:?} wrote {:?} with a payload differing from an earlier copy",
                    rec.id
                ));
            }
            match (known.1, rec.prev_term) {
                (Some(a), Some(b)) if a != b => {
                    return Err(format!(
                        "log matching: {id:?} wrote {:?} after an entry of {b:?}, \
                         another log has it after {a:?}",
                        rec.id
                    ));
                }
                (None, Some(b)) => known.1 = Some(b),
                _ => {}
            }
        }
        self.nodes[n].audit_seen = audit.len();
        Ok(())
    }

    /// State Machine Safety (§5.4.3): every node's applied sequence is a prefix of one
    /// global sequence.
    fn state_machine_safety(&mut self, n: usize, node: &SimReplica) -> Result<(), String> {
        let sm = node.state_machine().recorder();
        let cur = &mut self.nodes[n];
        if sm.restores() != cur.restores_seen {
            cur.restores_seen = sm.restores();
            cur.records_seen = 0;
            cur.base_unverified = sm.records_base().index.0 > 0;
        }
        if cur.base_unverified {
            if !self.verify_base(n, sm)? {
                return self.applied_matches(n, node, sm);
            }
            self.nodes[n].base_unverified = false;
        }
        let base = sm.records_base().index.0 as usize;
        let records = sm.records();
        for (k, r) in records.iter().enumerate().skip(self.nodes[n].records_seen) {
            let i = base + k;
            let got = (r.id.term, entry_hash(r.kind, &r.data));
            if i < self.applied.len() {
                if self.applied[i] != got {
                    return Err(format!(
                        "state machine safety: n{} applied {:?} ({:?}), another node applied an \
                         entry of {:?} at that index",
                        n + 1,
                        r.id,
                        r.kind,
                        self.applied[i].0
                    ));
                }
            } else {
                let prev = self.chain.last().copied().unwrap_or(0);
                self.chain
                    .push(chain_next(prev, r.id.term, r.kind, &r.data));
                self.applied.push(got);
                if r.kind == EntryKind::Config {
                    self.committed_conf(r.id, &r.data)?;
                }
            }
        }
        self.nodes[n].records_seen = records.len();
        self.applied_matches(n, node, sm)
    }

    /// Single-server changes (§4.1): the configuration committed at `id` changes the status
    /// of at most one member relative to the previous committed one.
    fn committed_conf(&mut self, id: EntryId, data: &[u8]) -> Result<(), String> {
        let next = Configuration::decode(data)
            .map_err(|e| format!("membership: the configuration committed at {id:?}: {e}"))?;
        let (prev_index, prev) = self.confs.last().expect("the genesis membership");
        let status = |c: &Configuration, m: NodeId| (c.contains(m), c.is_learner(m));
        let changed: Vec<NodeId> = prev
            .members()
            .chain(next.members())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|&m| status(prev, m) != status(&next, m))
            .collect();
        if changed.len() > 1 || next.voters.is_empty() {
            return Err(format!(
                "membership: the configuration committed at {id:?} ({next:?}) changes {changed:?} \
                 relative to the one committed at {prev_index:?} ({prev:?}); one server at a time"
            ));
        }
        self.confs.push((id.index, next));
        Ok(())
    }

    /// Compare a restored digest with the global chain at its index; `Ok(false)` while the
    /// global sequence is shorter than that (the claim is compared later).
    fn verify_base(&self, n: usize, sm: &SimStateMachine) -> Result<bool, String> {
        let base = sm.records_base();
        let k = base.index.0 as usize - 1;
        let Some(&chain) = self.chain.get(k) else {
            return Ok(false);
        };
        if chain != sm.base_chain() || self.applied[k].0 != base.term {
            return Err(format!(
                "state machine safety: n{} restored a snapshot through {base:?} whose applied \
                 sequence differs from the one other nodes applied (term there {:?})",
                n + 1,
                self.applied[k].0
            ));
        }
        Ok(true)
    }

    fn applied_matches(
        &self,
        n: usize,
        node: &SimReplica,
        sm: &SimStateMachine,
    ) -> Result<(), String> {
        if node.applied_index() != sm.applied_index() {
            return Err(format!(
                "n{}: replica applied {:?} but the state machine holds {:?}",
                n + 1,
                node.applied_index(),
                sm.applied_index()
            ));
        }
        Ok(())
    }

    /// applied ≤ commit ≤ last index.
    fn indexes(&self, node: &SimReplica) -> Result<(), String> {
        let raft = node.raft();
        let (applied, commit, last) =
            (raft.applied_index(), raft.commit_index(), raft.last_index());
        if applied <= commit && commit <= last {
            Ok(())
        } else {
            Err(format!(
                "{:?}: indexes out of order: applied {applied:?}, commit {commit:?}, last {last:?}",
                raft.id()
            ))
        }
    }

    /// A committed entry never changes: extend the committed prefix with this node's new
    /// commits and compare those already known.
    fn commits(&mut self, n: usize, node: &SimReplica) -> Result<(), String> {
        let raft = node.raft();
        let commit = raft.commit_index();
        let sm = node.state_machine().recorder();
        let mut i = self.nodes[n].commit_seen.next();
        while i <= commit {
            let k = i.0 as usize - 1;
            let term = raft.term_at(i).or_else(|| sm.term_at(i));
            let term = match term {
                Some(t) => t,
                // Covered by a digest restore the checker verified: the node applied exactly
                // the global sequence up to its base.
                None if i <= sm.records_base().index && !self.nodes[n].base_unverified => {
                    match self.applied.get(k) {
                        Some(&(t, _)) => t,
                        None => break,
                    }
                }
                // Covered by a digest the checker cannot compare yet: look again later.
                None if i <= sm.records_base().index => break,
                None => {
                    return Err(format!(
                        "n{}: committed index {i:?} neither in log nor applied",
                        n + 1
                    ))
                }
            };
            if k < self.committed.len() {
                if self.committed[k].0 != term {
                    return Err(format!(
                        "n{} committed {:?} at {i:?} but {:?} was committed there before",
                        n + 1,
                        term,
                        self.committed[k].0
                    ));
                }
            } else {
                self.committed.push((term, raft.term()));
            }
            i = i.next();
        }
        let cur = &mut self.nodes[n];
        cur.commit_seen = cur.commit_seen.max(i.prev());
        Ok(())
    }

    /// Election Safety (§5.2) and Leader Completeness (§5.4): at most one leader per term
    /// over the whole run, and a new leader's log holds every entry committed so far in an
    /// earlier term (a leader of an older term can still be elected late, when the votes
    /// for it arrive after a newer leader committed entries: it owes nothing to those).
    fn leadership(&mut self, n: usize, node: &SimReplica) -> Result<(), String> {
        let raft = node.raft();
        if !raft.is_leader() {
            return Ok(());
        }
        let (id, term) = (raft.id(), raft.term());
        let leader = *self.leaders.entry(term).or_insert(id);
        if leader != id {
            return Err(format!(
                "election safety: {leader:?} and {id:?} both led {term:?}"
            ));
        }
        if self.nodes[n].leader_term_seen == Some(term) {
            return self.one_pending_change(n, node);
        }
        self.nodes[n].leader_term_seen = Some(term);
        self.nodes[n].leader_scanned = LogIndex(0);
        self.nodes[n].leader_pending_confs.clear();
        if !raft.configuration().contains(id) {
            return Err(format!(
                "membership: {id:?} leads {term:?} but is no voter of its configuration {:?}",
                raft.configuration()
            ));
        }
        let snap = raft.snapshot().map_or(LogIndex(0), |s| s.meta.last.index);
        for (k, &(t, committed_in)) in self.committed.iter().enumerate().skip(snap.0 as usize) {
            if committed_in >= term {
                continue;
            }
            let index = LogIndex(k as u64 + 1);
            if raft.term_at(index) != Some(t) {
                return Err(format!(
                    "leader completeness: {id:?} became leader of {term:?} without the \
                     committed entry {:?} (it has {:?})",
                    EntryId::new(t, index),
                    raft.term_at(index)
                ));
            }
        }
        self.one_pending_change(n, node)
    }

    /// At most one configuration entry of a leader's log lies beyond the committed prefix
    /// (§4.1: a leader proposes a change only once the previous one committed). Scans only
    /// the entries appended since the last look.
    fn one_pending_change(&mut self, n: usize, node: &SimReplica) -> Result<(), String> {
        let raft = node.raft();
        let committed = LogIndex(self.committed.len() as u64);
        let cur = &mut self.nodes[n];
        let from = cur
            .leader_scanned
            .max(committed)
            .next()
            .max(raft.first_index());
        for e in raft.entries_from(from) {
            if e.kind == EntryKind::Config {
                cur.leader_pending_confs.push(e.index);
            }
        }
        cur.leader_scanned = cur.leader_scanned.max(raft.last_index());
        cur.leader_pending_confs.retain(|&i| i > committed);
        if cur.leader_pending_confs.len() > 1 {
            return Err(format!(
                "membership: leader {:?} of {:?} holds configuration entries {:?} beyond the \
                 committed prefix {committed:?}; at most one may be uncommitted",
                raft.id(),
                raft.term(),
                cur.leader_pending_confs
            ));
        }
        Ok(())
    }
}
