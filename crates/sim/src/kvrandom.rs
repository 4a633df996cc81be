//! Seeded random KV runs: [`run_kv_random`] — one `u64` seed derives the cluster (as
//! [`config_for_seed`] does for the Raft-level runs: size, snapshot interval, PreVote and
//! CheckQuorum, message and inflight limits, chunking, crash model, timing, WAL shape), the
//! client mix (clerks, own or shared keys, iterations and their length) and a fault schedule
//! far nastier than 6.824's: random halves and leader-in-minority partitions, one-way link
//! loss, single crashes and restarts, power cuts in the middle of a node's writes, whole-
//! cluster crash rounds, network changes (loss, duplication, long delays and reordering),
//! leadership transfers, and clerks dying with an operation in flight (it stays pending: it
//! may or may not apply). After the faults: heal, restart everything, and require every
//! living clerk to finish, every client's appends to be present exactly once and in order
//! (own keys; a dead clerk's last append at most once), the whole history to be
//! linearizable, and the persisted logs to be trimmed.
//!
//! `cargo test -p sim --profile checked --test kv_seeds` runs the CI seeds (`RAFTKV_KV_SEEDS` for
//! more, `RAFTKV_KV_SEED_START`); a failing seed prints its replay command,
//! `cargo run -p sim --profile checked -- --kv --seed N`.
//!
//! Owns: [`run_kv_random`], [`KvRunReport`], [`kv_params_for_seed`] and the schedule.
//! Must never: draw randomness from anywhere but the seed (parameters are a pure function of
//! it, everything after comes from the cluster's one RNG), or let a failure pass without
//! naming the seed and its replay command.

use crate::config::{LongReorder, NetConfig, SimConfig};
use crate::generic::{
    final_get, finish, persisted_sizes, random_halves, unreliable_net, GenericReport,
    ENTRY_BYTES_MAX,
};
use crate::hash::{finish as finish_hash, mix};
use crate::kvsim::{
    check_client_appends, check_client_appends_last_maybe, yardstick_ms, ClerkId, GenericClient,
    KvOp, KvSim, Program,
};
use crate::random::config_for_seed;
use crate::trace::TraceSink;
use raft::NodeId;
use rand::seq::SliceRandom;
use rand::Rng;
use std::fmt;

/// The client side of a seeded KV run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvRandomParams {
    pub clients: usize,
    /// Clerks share `clients` keys (6.824's random keys) instead of owning one each.
    pub random_keys: bool,
    pub iterations: u32,
    /// Client phase of each iteration, in yardsticks.
    pub client_yardsticks: u64,
    /// Mean pause between two faults, in tenths of a yardstick.
    pub fault_gap_tenths: u64,
}

/// The cluster and the client mix of `seed`: a pure function of it.
pub fn kv_params_for_seed(seed: u64) -> (SimConfig, KvRandomParams) {
    let mut cfg = config_for_seed(seed);
    cfg.kv = Some(kv::KvConfig::default());
    let h = finish_hash(mix(seed, 0x6b76_7261_6e64));
    let pick = |shift: u32, n: u64| (h >> shift) % n;
    let params = KvRandomParams {
        clients: 1 + pick(0, 8) as usize,
        random_keys: pick(4, 2) == 0,
        iterations: 1 + pick(6, 2) as u32,
        client_yardsticks: 3 + pick(8, 4),
        fault_gap_tenths: [3, 6, 10][pick(12, 3) as usize],
    };
    (cfg, params)
}

/// The one command that replays a KV seed.
pub fn kv_repro_command(seed: u64) -> String {
    format!("cargo run -p sim --profile checked -- --kv --seed {seed}")
}

/// What one seeded KV run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvRunReport {
    pub seed: u64,
    pub nodes: usize,
    pub snapshot_every: Option<u64>,
    pub params: KvRandomParams,
    pub sim_ms: u64,
    pub events: u64,
    pub ops: usize,
    pub pending: usize,
    pub ops_on_one_key_max: usize,
    pub faults: u64,
    pub crashes: u64,
    pub power_cuts: u64,
    pub partitions: u64,
    /// Clerks that died with an operation in flight.
    pub clerk_deaths: u64,
    pub net_changes: u64,
    pub transfers: u64,
    pub log_bytes_max: usize,
    pub snapshot_bytes_max: usize,
    pub check_steps: u64,
    pub trace_hash: u64,
}

impl fmt::Display for KvRunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kv seed {}: {} nodes, snapshot every {:?}, {:?}",
            self.seed, self.nodes, self.snapshot_every, self.params
        )?;
        writeln!(
            f,
            "  {} simulated ms, {} events, {} ops ({} pending, most on one key {}), \
             {} check steps",
            self.sim_ms,
            self.events,
            self.ops,
            self.pending,
            self.ops_on_one_key_max,
            self.check_steps
        )?;
        writeln!(
            f,
            "  faults: {} ({} crashes, {} power cuts mid-write, {} partitions, \
             {} network changes, {} transfers, {} clerks died mid-operation)",
            self.faults,
            self.crashes,
            self.power_cuts,
            self.partitions,
            self.net_changes,
            self.transfers,
            self.clerk_deaths
        )?;
        write!(
            f,
            "  largest log {} B, largest snapshot {} B; trace hash {:016x}",
            self.log_bytes_max, self.snapshot_bytes_max, self.trace_hash
        )
    }
}

/// Events allowed per simulated second before a run counts as a message storm.
pub const KV_EVENTS_PER_SECOND_MAX: u64 = 200_000;
/// Bound on the clerks finishing once everything is healed, in yardsticks.
pub const KV_LIVENESS_YARDSTICKS: u64 = 60;

struct Run {
    k: KvSim,
    p: KvRandomParams,
    y: u64,
    faults: u64,
    partitions: u64,
    net_changes: u64,
    transfers: u64,
    clerk_deaths: u64,
    /// This iteration's clerks.
    clerks: Vec<ClerkId>,
    log_bytes_max: usize,
    snapshot_bytes_max: usize,
}

/// Run KV seed `seed`; panics (naming the seed and its replay command) on any failed check.
pub fn run_kv_random(seed: u64) -> KvRunReport {
    run_kv_random_recorded(seed, None)
}

/// [`run_kv_random`], recording the dashboard's events into `trace` (the same run: same
/// report, same trace hash). On a panic, `trace` keeps what happened up to it.
pub fn run_kv_random_recorded(seed: u64, trace: Option<&TraceSink>) -> KvRunReport {
    let (cfg, p) = kv_params_for_seed(seed);
    let y = yardstick_ms(&cfg);
    let mut k = KvSim::new(cfg);
    if let Some(sink) = trace {
        k.cluster_mut().record_trace(sink.clone());
    }
    k.set_repro(kv_repro_command(seed));
    let budget_s =
        1 + (p.iterations as u64 * (p.client_yardsticks + 4 * KV_LIVENESS_YARDSTICKS) * y) / 1000;
    k.cluster_mut()
        .set_event_budget(KV_EVENTS_PER_SECOND_MAX * budget_s);
    let mut run = Run {
        k,
        p,
        y,
        faults: 0,
        partitions: 0,
        net_changes: 0,
        transfers: 0,
        clerk_deaths: 0,
        clerks: Vec::new(),
        log_bytes_max: 0,
        snapshot_bytes_max: 0,
    };
    for iteration in 0..run.p.iterations {
        run.iteration(iteration);
    }
    run.k.cluster_mut().flush_trace();
    run.finish()
}

impl Run {
    fn iteration(&mut self, iteration: u32) {
        let all = self.k.cluster().ids();
        let n = self.p.clients;
        let clerks: Vec<ClerkId> = (0..n).map(|_| self.k.add_clerk(&all)).collect();
        for (cli, &ck) in clerks.iter().enumerate() {
            let g = GenericClient::new(cli as u64, n as u64, self.p.random_keys);
            self.k.run_program(ck, Program::Generic(g));
        }
        self.clerks = clerks.clone();
        let end = self.k.now_ms() + self.p.client_yardsticks * self.y;
        while self.k.now_ms() < end {
            let mean = self.p.fault_gap_tenths * self.y / 10;
            let gap = self.k.cluster_mut().rng().gen_range(1..=2 * mean);
            self.k.run_for(gap.min(end - self.k.now_ms()));
            if self.k.now_ms() < end {
                self.fault();
            }
        }
        self.k.stop_programs();
        self.heal_everything();
        let bound = KV_LIVENESS_YARDSTICKS * self.y;
        if !self.k.run_until(bound, |k| k.all_idle()) {
            self.k.fail(format!(
                "liveness: iteration {iteration}: clerks did not finish within {bound} ms of \
                 healing everything"
            ));
        }
        let ck = self.k.add_clerk(&all);
        for (cli, &c) in clerks.iter().enumerate() {
            let Some(Program::Generic(g)) = self.k.program(c).cloned() else {
                unreachable!("clerks run GenericClient")
            };
            let v = final_get(&mut self.k, ck, g.own_key(), self.y);
            if self.p.random_keys {
                continue;
            }
            let checked = match self.k.abandoned(c) {
                Some(KvOp::Append { .. }) => check_client_appends_last_maybe(cli as u64, &v, g.j),
                _ => check_client_appends(cli as u64, &v, g.j),
            };
            if let Err(e) = checked {
                self.k.fail(format!("iteration {iteration}: {e}"));
            }
        }
        self.check_trimmed(iteration);
    }

    /// Heal the network, restart every crashed node, disarm power cuts, calm the network.
    fn heal_everything(&mut self) {
        let c = self.k.cluster_mut();
        c.heal();
        c.set_net(NetConfig::reliable());
        for id in c.ids() {
            if c.is_up(id) {
                c.disarm_power_cut(id);
            } else {
                c.restart(id);
            }
        }
    }

    /// With snapshots every N entries (6.824's `maxraftstate` ≈ N × [`ENTRY_BYTES_MAX`]), once
    /// every node has caught up the persisted logs stay within 8 × that.
    fn check_trimmed(&mut self, iteration: u32) {
        let (log, snap) = persisted_sizes(self.k.cluster());
        self.log_bytes_max = self.log_bytes_max.max(log);
        self.snapshot_bytes_max = self.snapshot_bytes_max.max(snap);
        let Some(every) = self.k.cluster().config().snapshot_every else {
            return;
        };
        let bound = 8 * every as usize * ENTRY_BYTES_MAX;
        if log > bound {
            self.k.fail(format!(
                "iteration {iteration}: logs were not trimmed: {log} B > 8 × {every} entries \
                 × {ENTRY_BYTES_MAX} B"
            ));
        }
    }

    fn random_node(&mut self) -> NodeId {
        let ids = self.k.cluster().ids();
        *ids.choose(self.k.cluster_mut().rng()).expect("nodes")
    }

    fn leader(&self) -> Option<NodeId> {
        let leaders = self.k.cluster().leaders();
        leaders.iter().max_by_key(|(_, t)| *t).map(|&(id, _)| id)
    }

    /// One fault, drawn from the cluster's RNG.
    fn fault(&mut self) {
        self.faults += 1;
        let roll = self.k.cluster_mut().rng().gen_range(0..100u32);
        match roll {
            0..=19 => {
                random_halves(&mut self.k);
                self.partitions += 1;
            }
            20..=29 => self.leader_in_minority(),
            30..=44 => self.k.cluster_mut().heal(),
            45..=52 => {
                let id = self.random_node();
                self.k.cluster_mut().crash(id);
            }
            53..=64 => self.restart_one_down(),
            65..=71 => {
                let id = self.random_node();
                let syncs = self.k.cluster_mut().rng().gen_range(0..4);
                self.k.cluster_mut().crash_at_sync(id, syncs);
            }
            72..=75 => crate::generic::crash_all_and_restart(&mut self.k, self.y),
            76..=81 => self.one_way_loss(),
            82..=90 => self.change_net(),
            91..=97 => self.transfer(),
            _ => self.clerk_dies(),
        }
    }

    /// A clerk dies with its operation in flight (never completed: pending in the history).
    fn clerk_dies(&mut self) {
        let Some(&ck) = self.clerks.choose(self.k.cluster_mut().rng()) else {
            return;
        };
        if self.k.abandon(ck).is_some() {
            self.clerk_deaths += 1;
        }
    }

    /// 6.824 `make_partition`: the leader and N/2 − 1 others on the minority side.
    fn leader_in_minority(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        let mut others: Vec<NodeId> = self
            .k
            .cluster()
            .ids()
            .into_iter()
            .filter(|&i| i != leader)
            .collect();
        others.shuffle(self.k.cluster_mut().rng());
        let majority = others.len() / 2 + 1;
        let (p1, rest) = others.split_at(majority.min(others.len()));
        let mut p2 = rest.to_vec();
        p2.push(leader);
        self.k.cluster_mut().partition(&[p1, &p2]);
        self.partitions += 1;
    }

    fn restart_one_down(&mut self) {
        let c = self.k.cluster();
        let down: Vec<NodeId> = c.ids().into_iter().filter(|&id| !c.is_up(id)).collect();
        if let Some(&id) = down.choose(self.k.cluster_mut().rng()) {
            self.k.cluster_mut().restart(id);
        }
    }

    fn one_way_loss(&mut self) {
        let links = self.k.cluster_mut().rng().gen_range(1..=3);
        for _ in 0..links {
            let (a, b) = (self.random_node(), self.random_node());
            if a != b {
                self.k.cluster_mut().set_link(a, b, false);
            }
        }
        self.partitions += 1;
    }

    fn change_net(&mut self) {
        let y = self.y;
        let net = match self.k.cluster_mut().rng().gen_range(0..5) {
            0 => NetConfig::reliable(),
            1 => unreliable_net(y),
            2 => NetConfig {
                duplicate: 0.1,
                ..unreliable_net(y)
            },
            3 => NetConfig {
                long_reorder: Some(LongReorder {
                    fraction: 0.3,
                    min_ms: y / 5,
                    max_ms: 2 * y,
                }),
                ..unreliable_net(y)
            },
            _ => NetConfig {
                delay_ms: (0, y / 3),
                ..NetConfig::reliable()
            },
        };
        self.k.cluster_mut().set_net(net);
        self.net_changes += 1;
    }

    fn transfer(&mut self) {
        if let Some(l) = self.leader() {
            let to = self.random_node();
            if to != l {
                let _ = self.k.cluster_mut().transfer_leader(l, to);
                self.transfers += 1;
            }
        }
    }

    fn finish(mut self) -> KvRunReport {
        let seed = self.k.seed();
        let r = finish(&mut self.k, GenericReport::default());
        let c = self.k.cluster();
        KvRunReport {
            seed,
            nodes: c.config().nodes,
            snapshot_every: c.config().snapshot_every,
            params: self.p,
            sim_ms: r.sim_ms,
            events: r.events,
            ops: r.ops,
            pending: r.pending,
            ops_on_one_key_max: r.ops_on_one_key_max,
            faults: self.faults,
            crashes: c.counters().crashes,
            power_cuts: c.counters().power_cuts,
            partitions: self.partitions,
            clerk_deaths: self.clerk_deaths,
            net_changes: self.net_changes,
            transfers: self.transfers,
            log_bytes_max: self.log_bytes_max,
            snapshot_bytes_max: self.snapshot_bytes_max,
            check_steps: r.check_steps,
            trace_hash: c.trace_hash(),
        }
    }
}
