//! Seeded random-fault runs (VOPR-style): one `u64` seed derives the cluster, the fault
//! schedule and the workload; a liveness phase at the end heals everything and requires
//! progress.
//!
//! With [`RandomOptions::membership`] the schedule also changes the membership (the
//! `membership` child module): nodes started empty beyond the initial ids, added as learners
//! or voters, promoted, removed (the leader too), retired once their removal committed, with
//! a fault right after many of the changes. Off (the default, and [`run_random`]), a seed's
//! schedule and trace are exactly what they were before membership changes existed.
//!
//! Owns: [`run_random`], [`RunReport`], and the mapping seed → configuration → schedule.
//! Must never: draw randomness from anywhere but the seed (the configuration is a pure
//! function of it, everything after comes from the cluster's one RNG), or let a failure
//! pass without naming the seed.

use crate::cluster::Cluster;
use crate::config::{NetConfig, SimConfig};
use crate::hash::finish;
use crate::trace::TraceSink;
use bytes::Bytes;
use raft::{LogIndex, NodeId};
use rand::seq::SliceRandom;
use rand::Rng;
use std::fmt;
use storage::DiskOptions;

mod membership;

/// What a random run mixes into its schedule besides the faults every run has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RandomOptions {
    /// Random membership changes (see the `membership` module).
    pub membership: bool,
}

/// Bound on electing a leader once everything is healed (simulated ms).
pub const LIVENESS_LEADER_MS: u64 = 10_000;
/// Bound on committing a new entry once there is a leader (simulated ms).
pub const LIVENESS_COMMIT_MS: u64 = 10_000;
/// Bound on every node applying that entry (simulated ms).
pub const LIVENESS_CATCH_UP_MS: u64 = 30_000;

/// Events allowed per simulated minute (the liveness phase counts as one more minute);
/// a typical minute takes about 50,000. More is a message storm and fails the seed.
pub const EVENTS_PER_MINUTE_MAX: u64 = 3_000_000;

/// What one seeded run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    pub seed: u64,
    pub nodes: usize,
    pub snapshot_every: Option<u64>,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Each node's write-ahead log shape.
    pub disk: DiskOptions,
    /// WAL syncs completed later, as the server's sync thread completes them (0 when the
    /// seed syncs at once: [`crate::SimConfig::sync_deferred`]).
    pub syncs_deferred: u64,
    /// Simulated time, including the liveness phase.
    pub sim_ms: u64,
    pub events: u64,
    pub messages_delivered: u64,
    pub messages_dropped: u64,
    /// Terms that had a leader.
    pub elections: usize,
    /// Length of the committed log prefix.
    pub commits: u64,
    pub proposals: u64,
    pub proposals_applied: u64,
    pub reads_ready: u64,
    pub crashes: u64,
    /// Crashes by an armed power cut, in the middle of a node's writes (part of `crashes`).
    pub power_cuts: u64,
    pub restarts: u64,
    pub partitions: u64,
    pub net_changes: u64,
    pub transfers: u64,
    /// Membership mode: changes a leader accepted, nodes started empty, nodes retired, and
    /// the voters and learners of the final committed configuration.
    pub membership: bool,
    pub conf_changes: u64,
    pub nodes_added: u64,
    pub nodes_retired: u64,
    pub final_voters: usize,
    pub final_learners: usize,
    /// Simulated ms the liveness phase needed to elect, commit and catch everyone up.
    pub liveness_ms: u64,
    pub trace_hash: u64,
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: {} nodes, snapshot every {:?}, pre_vote {}, check_quorum {}, \
             WAL segments {} B, write buffer {} B, {}",
            self.seed,
            self.nodes,
            self.snapshot_every,
            self.pre_vote,
            self.check_quorum,
            self.disk.segment_bytes,
            self.disk.write_buffer_bytes,
            match self.syncs_deferred {
                0 => "syncs at once".to_string(),
                n => format!("{n} syncs deferred"),
            }
        )?;
        writeln!(
            f,
            "  {} simulated ms, {} events, {} messages delivered, {} dropped",
            self.sim_ms, self.events, self.messages_delivered, self.messages_dropped
        )?;
        writeln!(
            f,
            "  {} elections, {} entries committed, {} proposals ({} applied), {} reads",
            self.elections, self.commits, self.proposals, self.proposals_applied, self.reads_ready
        )?;
        writeln!(
            f,
            "  faults: {} crashes ({} power cuts mid-write), {} restarts, {} partitions, \
             {} network changes, {} transfers",
            self.crashes,
            self.power_cuts,
            self.restarts,
            self.partitions,
            self.net_changes,
            self.transfers
        )?;
        if self.membership {
            writeln!(
                f,
                "  membership: {} changes, {} nodes added, {} retired; final: {} voters, {} \
                 learners",
                self.conf_changes,
                self.nodes_added,
                self.nodes_retired,
                self.final_voters,
                self.final_learners
            )?;
        }
        write!(
            f,
            "  liveness phase: {} ms; trace hash {:016x}",
            self.liveness_ms, self.trace_hash
        )
    }
}

/// The one command that replays `seed`.
pub fn repro_command(seed: u64, minutes: u64) -> String {
    repro_command_with(seed, minutes, RandomOptions::default())
}

/// The one command that replays `seed` run with `opts`.
pub fn repro_command_with(seed: u64, minutes: u64, opts: RandomOptions) -> String {
    let mode = if opts.membership { " --membership" } else { "" };
    if minutes == 1 {
        format!("cargo run -p sim --profile checked --{mode} --seed {seed}")
    } else {
        format!("cargo run -p sim --profile checked --{mode} --seed {seed} --minutes {minutes}")
    }
}

/// The cluster configuration for `seed`: a pure function of it.
pub fn config_for_seed(seed: u64) -> SimConfig {
    let h = finish(seed ^ 0x7261_6674_6b76_5349);
    let pick = |shift: u32, n: u64| (h >> shift) % n;
    let nodes = [3, 5, 7][pick(0, 3) as usize];
    let mut cfg = SimConfig::new(nodes, seed);
    cfg.snapshot_every = [None, Some(10), Some(50), Some(200)][pick(4, 4) as usize];
    cfg.snapshot_background = pick(52, 2) == 0;
    cfg.sync_deferred = pick(54, 2) == 0;
    cfg.pre_vote = pick(8, 4) != 0;
    cfg.check_quorum = pick(10, 4) != 0;
    cfg.inflight_msgs_max = [1, 4, 64][pick(12, 3) as usize];
    cfg.msg_bytes_max = [64, 4096, 1 << 20][pick(16, 3) as usize];
    cfg.snapshot_chunk_bytes = [64, 1024, 1 << 20][pick(20, 3) as usize];
    cfg.crash_keeps_unsynced_prefix = pick(24, 2) == 0;
    cfg.election_ticks = 10 + pick(28, 11) as u32;
    cfg.heartbeat_ticks = 2 + pick(36, 4) as u32;
    cfg.disk = DiskOptions {
        segment_bytes: [1 << 10, 4 << 10, 64 << 10][pick(40, 3) as usize],
        write_buffer_bytes: [1, 256, 64 << 10][pick(44, 3) as usize],
        preallocate_bytes: [0, 300, 4 << 10][pick(48, 3) as usize],
    };
    cfg
}

struct Run {
    c: Cluster,
    report: RunReport,
    opts: RandomOptions,
    next_cmd: u64,
    next_read: u64,
}

/// Run `seed` for `minutes` simulated minutes of random faults and proposals, then heal and
/// require progress. Panics (naming the seed) on any invariant violation or liveness failure.
pub fn run_random(seed: u64, minutes: u64) -> RunReport {
    run_random_with(seed, minutes, RandomOptions::default())
}

/// [`run_random`] with `opts` mixed into the schedule (a failure's reproduction command
/// names them).
pub fn run_random_with(seed: u64, minutes: u64, opts: RandomOptions) -> RunReport {
    run_random_traced(seed, minutes, opts, None)
}

/// [`run_random`], recording the dashboard's events into `trace` (the same run: same
/// report, same trace hash). On a panic, `trace` keeps what happened up to it.
pub fn run_random_recorded(seed: u64, minutes: u64, trace: Option<&TraceSink>) -> RunReport {
    run_random_traced(seed, minutes, RandomOptions::default(), trace)
}

/// [`run_random_with`], recording into `trace` as [`run_random_recorded`] does.
pub fn run_random_traced(
    seed: u64,
    minutes: u64,
    opts: RandomOptions,
    trace: Option<&TraceSink>,
) -> RunReport {
    let cfg = config_for_seed(seed);
    let report = RunReport {
        seed,
        nodes: cfg.nodes,
        snapshot_every: cfg.snapshot_every,
        pre_vote: cfg.pre_vote,
        check_quorum: cfg.check_quorum,
        disk: cfg.disk,
        sim_ms: 0,
        events: 0,
        messages_delivered: 0,
        messages_dropped: 0,
        elections: 0,
        commits: 0,
        proposals: 0,
        proposals_applied: 0,
        reads_ready: 0,
        crashes: 0,
        power_cuts: 0,
        syncs_deferred: 0,
        restarts: 0,
        partitions: 0,
        net_changes: 0,
        transfers: 0,
        membership: opts.membership,
        conf_changes: 0,
        nodes_added: 0,
        nodes_retired: 0,
        final_voters: 0,
        final_learners: 0,
        liveness_ms: 0,
        trace_hash: 0,
    };
    let mut c = Cluster::new(cfg);
    if let Some(sink) = trace {
        c.record_trace(sink.clone());
    }
    c.set_event_budget(EVENTS_PER_MINUTE_MAX * (minutes + 1));
    let mut run = Run {
        c,
        report,
        opts,
        next_cmd: 0,
        next_read: 0,
    };
    let end_ms = minutes * 60_000;
    while run.c.now_ms() < end_ms {
        let step = run.c.rng().gen_range(5..=150);
        run.c.run_for(step);
        run.act();
    }
    run.liveness(minutes);
    run.c.flush_trace();
    run.finish()
}

impl Run {
    fn ids(&self) -> Vec<NodeId> {
        self.c.ids()
    }

    /// Any node, added ones included (retired ones too: faults on them are no-ops).
    fn random_node(&mut self) -> NodeId {
        let n = self.c.ids().len() as u64;
        NodeId(self.c.rng().gen_range(1..=n))
    }

    /// Restart `id` unless its process was retired.
    fn restart(&mut self, id: NodeId) {
        if !self.c.is_retired(id) {
            self.c.restart(id);
        }
    }

    /// The up node that believes it leads the highest term, if any.
    fn leader(&self) -> Option<NodeId> {
        self.c
            .leaders()
            .into_iter()
            .max_by_key(|&(_, t)| t)
            .map(|(id, _)| id)
    }

    fn command(&mut self) -> Bytes {
        self.next_cmd += 1;
        Bytes::from(format!("s{}c{}", self.report.seed, self.next_cmd))
    }

    fn propose_some(&mut self, count: u64) {
        let target = match self.leader() {
            Some(l) if self.c.rng().gen_bool(0.9) => l,
            _ => self.random_node(),
        };
        for _ in 0..count {
            let cmd = self.command();
            let _ = self.c.propose(target, cmd);
        }
    }

    /// One scheduling step: mostly workload, sometimes a fault or a repair.
    fn act(&mut self) {
        let roll = self.c.rng().gen_range(0..1000u32);
        match roll {
            0..=499 => {
                let k = self.c.rng().gen_range(1..=3);
                self.propose_some(k);
            }
            500..=519 => {
                let k = self.c.rng().gen_range(10..=60);
                self.propose_some(k);
            }
            520..=569 => {
                let id = self.random_node();
                self.next_read += 1;
                let _ = self.c.read_index(id, self.next_read);
            }
            570..=584 => self.partition(),
            585..=594 => {
                let id = self.random_node();
                self.c.disconnect(id);
                self.report.partitions += 1;
            }
            595..=609 => self.one_way_loss(),
            610..=639 => {
                self.c.heal();
            }
            640..=654 => {
                let id = self.random_node();
                self.c.crash(id);
            }
            655..=684 => self.restart_one_down(),
            685..=689 => {
                let id = self.random_node();
                self.restart(id);
            }
            690..=709 => self.change_net(),
            710..=719 => self.transfer(),
            720..=734 => {
                let id = self.random_node();
                let syncs = self.c.rng().gen_range(0..4);
                self.c.crash_at_sync(id, syncs);
            }
            735..=739 => self.leader_churn(),
            740..=799 if self.opts.membership => self.change_membership(),
            _ => {}
        }
    }

    /// 6.824 Figure 8 in miniature: propose at the leader, let a little time pass, often
    /// crash the leader before its entries reach everyone, restart nodes while a majority
    /// stays up. Builds logs with entries of many terms at the same indexes.
    fn leader_churn(&mut self) {
        let rounds = self.c.rng().gen_range(5..=30);
        let tick_ms = self.c.config().tick_ms;
        let election_ms = tick_ms * u64::from(self.c.config().election_ticks);
        let majority = self.c.config().nodes / 2 + 1;
        for _ in 0..rounds {
            if let Some(l) = self.leader() {
                let k = self.c.rng().gen_range(1..=3);
                for _ in 0..k {
                    let cmd = self.command();
                    let _ = self.c.propose(l, cmd);
                }
            }
            let pause = if self.c.rng().gen_bool(0.1) {
                self.c.rng().gen_range(0..=election_ms * 2)
            } else {
                self.c.rng().gen_range(0..=tick_ms * 2)
            };
            self.c.run_for(pause);
            if let Some(l) = self.leader() {
                if self.c.rng().gen_bool(0.5) {
                    self.c.crash(l);
                }
            }
            let up = self.ids().iter().filter(|&&id| self.c.is_up(id)).count();
            if up < majority || self.c.rng().gen_bool(0.3) {
                self.restart_one_down();
            }
        }
    }

    fn partition(&mut self) {
        let mut ids = self.ids();
        ids.shuffle(self.c.rng());
        let n = ids.len();
        let cut = self.c.rng().gen_range(1..n);
        let three = n >= 5 && self.c.rng().gen_bool(0.3);
        if three {
            let cut2 = self.c.rng().gen_range(cut..=n);
            let (a, rest) = ids.split_at(cut);
            let (b, c) = rest.split_at(cut2 - cut);
            self.c.partition(&[a, b, c]);
        } else {
            let (a, b) = ids.split_at(cut);
            self.c.partition(&[a, b]);
        }
        self.report.partitions += 1;
    }

    fn one_way_loss(&mut self) {
        let links = self.c.rng().gen_range(1..=3);
        for _ in 0..links {
            let (a, b) = (self.random_node(), self.random_node());
            if a != b {
                self.c.set_link(a, b, false);
            }
        }
        self.report.partitions += 1;
    }

    fn restart_one_down(&mut self) {
        let down: Vec<NodeId> = self
            .ids()
            .into_iter()
            .filter(|&id| !self.c.is_up(id) && !self.c.is_retired(id))
            .collect();
        if let Some(&id) = down.choose(self.c.rng()) {
            self.c.restart(id);
        }
    }

    fn change_net(&mut self) {
        let net = match self.c.rng().gen_range(0..6) {
            0 | 1 => NetConfig::reliable(),
            2 => NetConfig::unreliable(),
            3 => NetConfig::unreliable().with_long_reordering(),
            4 => NetConfig {
                delay_ms: (0, 500),
                ..NetConfig::reliable()
            },
            _ => NetConfig {
                duplicate: 0.05,
                delay_ms: (0, 30),
                ..NetConfig::unreliable()
            },
        };
        self.c.set_net(net);
        self.report.net_changes += 1;
    }

    fn transfer(&mut self) {
        if let Some(l) = self.leader() {
            let to = self.random_node();
            if to != l {
                let _ = self.c.transfer_leader(l, to);
                self.report.transfers += 1;
            }
        }
    }

    /// Heal everything, restart every crashed node, and require a leader, a new commit, and
    /// every node catching up, each within a bound.
    fn liveness(&mut self, minutes: u64) {
        let seed = self.report.seed;
        let opts = self.opts;
        let fail = |what: String| liveness_failure(seed, minutes, opts, &what);
        let t0 = self.c.now_ms();
        self.c.heal();
        self.c.set_net(NetConfig::reliable());
        for id in self.ids() {
            if self.c.is_up(id) {
                self.c.disarm_power_cut(id);
            } else {
                self.restart(id);
            }
        }
        let deadline = t0 + LIVENESS_LEADER_MS + LIVENESS_COMMIT_MS;
        let cmd = Bytes::from(format!("s{seed}-liveness"));
        let index = loop {
            let now = self.c.now_ms();
            if now >= deadline {
                fail(format!(
                    "no new commit within {} ms of healing\n{}",
                    now - t0,
                    self.c.describe()
                ));
            }
            if !self
                .c
                .run_until(deadline - now, |c| !c.leaders().is_empty())
            {
                fail(format!(
                    "no leader within {LIVENESS_LEADER_MS} ms of healing\n{}",
                    self.c.describe()
                ));
            }
            let leader = self.leader().expect("a leader exists");
            let Ok(id) = self.c.propose(leader, cmd.clone()) else {
                self.c.run_for(10);
                continue;
            };
            let ok = self.c.run_until(1_000, |c| {
                c.n_committed(id.index).1.as_ref() == Some(&cmd)
                    || c.raft(leader).is_none_or(|r| r.term() != id.term)
            });
            if ok && self.c.n_committed(id.index).1.as_ref() == Some(&cmd) {
                break id.index;
            }
        };
        // Every member of the configuration committed by now (every node without membership
        // changes): removed nodes and nodes never brought in hear from no leader.
        let members: Vec<NodeId> = if self.opts.membership {
            self.c.committed_configuration().members().collect()
        } else {
            self.ids()
        };
        let all_caught_up = |c: &Cluster| members.iter().all(|&i| c.applied_index(i) >= index);
        if !self.c.run_until(LIVENESS_CATCH_UP_MS, all_caught_up) {
            let applied: Vec<(NodeId, LogIndex)> = members
                .iter()
                .map(|&i| (i, self.c.applied_index(i)))
                .collect();
            fail(format!(
                "not every node applied {index:?} within {LIVENESS_CATCH_UP_MS} ms \
                 (applied: {applied:?})\n{}",
                self.c.describe()
            ));
        }
        self.report.liveness_ms = self.c.now_ms() - t0;
    }

    fn finish(mut self) -> RunReport {
        let c = &self.c;
        let k = c.counters();
        let r = &mut self.report;
        r.sim_ms = c.now_ms();
        r.events = k.events;
        r.messages_delivered = k.messages_delivered;
        r.messages_dropped = k.messages_dropped;
        r.elections = c.elections();
        r.commits = c.committed_len();
        r.proposals = k.proposals;
        r.proposals_applied = k.proposals_applied;
        r.reads_ready = k.reads_ready;
        r.crashes = k.crashes;
        r.power_cuts = k.power_cuts;
        r.syncs_deferred = k.syncs_deferred;
        r.restarts = k.restarts;
        r.conf_changes = k.conf_changes_accepted;
        r.nodes_added = k.nodes_added;
        r.nodes_retired = k.nodes_retired;
        r.final_voters = c.committed_configuration().voters.len();
        r.final_learners = c.committed_configuration().learners.len();
        r.trace_hash = c.trace_hash();
        self.report
    }
}

fn liveness_failure(seed: u64, minutes: u64, opts: RandomOptions, what: &str) -> ! {
    panic!(
        "[sim seed={seed}] liveness: {what}\n  reproduce: {}",
        repro_command_with(seed, minutes, opts)
    )
}
