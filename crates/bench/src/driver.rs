//! The single-threaded in-memory cluster driver both implementations run under.
//!
//! Owns: the [`BenchNode`] seam (what each implementation's adapter must do with its own
//! API), the round loop (tick → propose → handle one Ready per node → compact → deliver every
//! queued message) and the measurement of one run. Must never: know which implementation it
//! drives — both get exactly this loop.
//!
//! One round:
//! 1. every `tick_every_rounds` rounds, every node ticks;
//! 2. the leader (node 1) is offered up to `batch` fresh proposals, as many as keep at most
//!    `window` proposed but not applied on the leader ([`BenchNode::propose_batch`]); refused
//!    ones are offered again next round;
//! 3. each node, in id order, handles at most one `Ready`: persist hard state, snapshot and
//!    entries into its in-memory store, queue the messages, apply committed entries into its
//!    [`Counter`], advance;
//! 4. a node that has applied `compact_every` entries since its last compaction compacts its
//!    log (core and store) at its applied index;
//! 5. every queued message is stepped into its recipient (no loss, no reordering).

use crate::alloc::{self, AllocDelta, AllocStats};
use crate::workload::{payload, Counter, Params};
use std::time::{Duration, Instant};

/// What the driver needs from one node of an implementation.
pub trait BenchNode: Sized {
    /// The implementation's message type.
    type Msg;
    /// Short name for reports.
    const NAME: &'static str;

    /// A brand-new node `id` of a brand-new cluster of `voters`, configured from `params`.
    fn new(id: u64, voters: &[u64], params: &Params) -> Self;
    /// Start an election now.
    fn campaign(&mut self);
    /// One logical clock tick.
    fn tick(&mut self);
    fn is_leader(&self) -> bool;
    /// Offer one proposal; `false` when the core refused it (it is retried next round).
    fn propose(&mut self, data: Vec<u8>) -> bool;
    /// Offer proposals `first_seq..first_seq + count` (payloads from [`payload`]) and return
    /// how many were accepted. By default one `propose` each, stopping at the first refusal.
    fn propose_batch(&mut self, first_seq: u64, count: u64, entry_bytes: usize) -> u64 {
        for i in 0..count {
            if !self.propose(payload(first_seq + i, entry_bytes)) {
                return i;
            }
        }
        count
    }
    /// Deliver a message addressed to this node.
    fn step(&mut self, msg: Self::Msg);
    /// The node a message is addressed to.
    fn recipient(msg: &Self::Msg) -> u64;
    /// True for a snapshot-carrying message (should not happen in this workload; counted).
    fn is_snapshot(msg: &Self::Msg) -> bool;
    /// Handle at most one Ready completely: persist into the store, push every message to
    /// `out` (the network delivers them after all nodes ran), apply committed entries into the
    /// counter, advance. Returns whether there was one.
    fn handle_ready(&mut self, out: &mut Vec<Self::Msg>) -> bool;
    /// The node's state machine.
    fn counter(&self) -> &Counter;
    /// Compact the core's log and the store at the applied index.
    fn compact(&mut self);
    /// Entries currently held in the node's store (for the memory-bound check).
    fn stored_entries(&self) -> usize;
}

/// The outcome of one run.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub name: &'static str,
    pub params: Params,
    /// From the first proposal until the leader applied all `proposals`.
    pub leader_commit: Duration,
    /// From the first proposal until every node applied all `proposals`.
    pub all_applied: Duration,
    /// Allocation work in the measured phase (excludes cluster setup and election).
    pub alloc: AllocDelta,
    pub rounds: u64,
    pub messages: u64,
    pub snapshot_messages: u64,
    pub refused_proposals: u64,
    pub compactions: u64,
    /// Largest number of entries any store held after a compaction.
    pub max_stored_entries: usize,
    /// Lowest and highest entries/s over repeated runs (set by whoever repeats; equal to
    /// this run's own figure otherwise).
    pub entries_per_sec_range: (f64, f64),
}

impl RunStats {
    /// Proposals committed and applied on all nodes per second.
    pub fn entries_per_sec(&self) -> f64 {
        self.params.proposals as f64 / self.all_applied.as_secs_f64()
    }
    pub fn bytes_per_entry(&self) -> f64 {
        self.alloc.alloc_bytes as f64 / self.params.proposals as f64
    }
    pub fn allocs_per_entry(&self) -> f64 {
        self.alloc.allocs as f64 / self.params.proposals as f64
    }
}

/// Rounds without any node applying anything before the driver declares a stall.
const STALL_ROUNDS_MAX: u64 = 100_000;

struct Cluster<N: BenchNode> {
    params: Params,
    nodes: Vec<N>,
    last_compacted: Vec<u64>,
    net: Vec<N::Msg>,
    inbox: Vec<N::Msg>,
    proposed: u64,
    stats: RunStats,
}

impl<N: BenchNode> Cluster<N> {
    fn new(params: &Params) -> Self {
        assert!(params.nodes >= 1 && params.batch >= 1 && params.window >= 1);
        let voters: Vec<u64> = (1..=params.nodes).collect();
        Cluster {
            params: params.clone(),
            nodes: voters
                .iter()
                .map(|&id| N::new(id, &voters, params))
                .collect(),
            last_compacted: vec![0; voters.len()],
            net: Vec::new(),
            inbox: Vec::new(),
            proposed: 0,
            stats: RunStats {
                name: N::NAME,
                params: params.clone(),
                ..Default::default()
            },
        }
    }

    fn round(&mut self, proposing: bool) {
        self.stats.rounds += 1;
        let p = &self.params;
        if p.tick_every_rounds > 0 && self.stats.rounds.is_multiple_of(p.tick_every_rounds) {
            self.nodes.iter_mut().for_each(N::tick);
        }
        if proposing {
            self.offer_batch();
        }
        for i in 0..self.nodes.len() {
            self.nodes[i].handle_ready(&mut self.net);
            self.maybe_compact(i);
        }
        self.deliver();
    }

    fn offer_batch(&mut self) {
        let p = &self.params;
        let leader = &mut self.nodes[0];
        let window_room = p.window - (self.proposed - leader.counter().entries).min(p.window);
        let count = p.batch.min(window_room).min(p.proposals - self.proposed);
        if count == 0 {
            return;
        }
        let accepted = leader.propose_batch(self.proposed, count, p.entry_bytes);
        if accepted < count {
            self.stats.refused_proposals += count - accepted;
        }
        self.proposed += accepted;
    }

    fn maybe_compact(&mut self, i: usize) {
        let applied = self.nodes[i].counter().applied_index;
        if applied - self.last_compacted[i] >= self.params.compact_every {
            self.nodes[i].compact();
            self.last_compacted[i] = applied;
            self.stats.compactions += 1;
            let stored = self.nodes[i].stored_entries();
            self.stats.max_stored_entries = self.stats.max_stored_entries.max(stored);
        }
    }

    fn deliver(&mut self) {
        std::mem::swap(&mut self.net, &mut self.inbox);
        for msg in self.inbox.drain(..) {
            self.stats.messages += 1;
            if N::is_snapshot(&msg) {
                self.stats.snapshot_messages += 1;
            }
            let to = N::recipient(&msg);
            self.nodes[(to - 1) as usize].step(msg);
        }
    }

    fn applied_sum(&self) -> u64 {
        self.nodes.iter().map(|n| n.counter().applied_index).sum()
    }

    /// Run rounds until `done`, panicking on a stall.
    fn run_until(&mut self, proposing: bool, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let mut last_progress = (self.applied_sum(), self.stats.rounds);
        while !done(self) {
            self.round(proposing);
            let applied = self.applied_sum();
            if applied != last_progress.0 {
                last_progress = (applied, self.stats.rounds);
            }
            if self.stats.rounds - last_progress.1 > STALL_ROUNDS_MAX {
                let counters: Vec<Counter> = self.nodes.iter().map(|n| *n.counter()).collect();
                panic!(
                    "{}: stalled waiting for {what} ({STALL_ROUNDS_MAX} rounds without progress); \
                     leader is_leader={}, proposed={}, counters={counters:?}",
                    N::NAME,
                    self.nodes[0].is_leader(),
                    self.proposed,
                );
            }
        }
    }
}

/// Run the whole workload on implementation `N`: elect node 1, wait for its no-op to apply
/// everywhere, then measure committing and applying `params.proposals` proposals.
pub fn run<N: BenchNode>(params: &Params) -> RunStats {
    let mut c = Cluster::<N>::new(params);
    c.nodes[0].campaign();
    c.run_until(false, "the election", |c| {
        c.nodes[0].is_leader() && c.nodes.iter().all(|n| n.counter().applied_index >= 1)
    });
    let start_rounds = c.stats.rounds;

    alloc::reset_peak();
    let before = AllocStats::now();
    let t0 = Instant::now();
    let target = params.proposals;
    c.run_until(true, "the leader's commits", |c| {
        c.nodes[0].counter().entries >= target
    });
    c.stats.leader_commit = t0.elapsed();
    c.run_until(true, "every node to apply", |c| {
        c.nodes.iter().all(|n| n.counter().entries >= target)
    });
    c.stats.all_applied = t0.elapsed();
    c.stats.alloc = AllocStats::now().since(before);

    c.stats.rounds -= start_rounds;
    for n in &c.nodes {
        assert_eq!(
            n.counter().entries,
            target,
            "{}: applied more than proposed",
            N::NAME
        );
        assert_eq!(n.counter().bytes, target * params.entry_bytes as u64);
    }
    let eps = c.stats.entries_per_sec();
    c.stats.entries_per_sec_range = (eps, eps);
    std::mem::take(&mut c.stats)
}
