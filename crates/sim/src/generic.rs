//! 6.824's kvraft `GenericTest` on [`KvSim`], in virtual time: [`run_generic`].
//!
//! Per iteration (3 by default): `nclients` clerks run [`GenericClient`] for 5 yardsticks
//! (with partitions: 1 yardstick undisturbed, then the partitioner for 5 more); the
//! partitioner puts every server on side 0 or 1 uniformly at random (a side may be empty)
//! every 1.0–1.2 yardsticks. Then clients are told to stop; with partitions everything is
//! reconnected and the run sleeps 1 yardstick; with crashes every server is shut down
//! (a power cut: what was not synced is lost), 1 yardstick passes, all restart. Each clerk
//! finishes its operation in flight; a fresh clerk then reads every client's key, which must
//! hold each of that client's appends exactly once and in order (without random keys). With a
//! snapshot threshold the largest persisted log must stay within 8 × that threshold after
//! every iteration; without one no node may hold a snapshot. At the end the whole history
//! must be linearizable (`check::check` answers `Ok`).
//!
//! The yardstick `Y` is the cluster's largest election timeout ([`yardstick_ms`], 300 ms for
//! `SimConfig::new`), standing for 6.824's 1 s `electionTimeout`; every 6.824 duration is
//! scaled by `Y / 1 s` (5 s of clients → 1.5 s, partitions every 300–360 ms).
//!
//! 6.824 snapshots when the persisted Raft state reaches `maxraftstate` bytes; the replica's
//! policy counts entries, so a threshold of `T` bytes becomes a snapshot every
//! `T / `[`ENTRY_BYTES_MAX`] applied entries (the log between snapshots then stays within
//! `T`), and the bound checked is on bytes, as in 6.824: `persisted_log_bytes ≤ 8 · T`.
//!
//! Owns: the GenericTest parameters ([`GenericParams`]), its schedule, and its checks.
//! Must never: read the wall clock, or draw randomness but from the cluster's seeded RNG.

use crate::config::{NetConfig, SimConfig};
use crate::kvsim::{
    check_client_appends, yardstick_ms, ClerkId, GenericClient, KvOp, KvReply, KvSim, KvStats,
    Program,
};
use bytes::Bytes;
use check::{check_with, CheckConfig, CheckResult, Operation};
use raft::NodeId;
use rand::Rng;
use std::collections::BTreeMap;

/// The largest WAL record of one GenericTest entry, in bytes (framing, entry header and a
/// command `Append("k", "x c j y")` with its session); measured, and checked by the
/// `entry_bytes_bound_holds` test.
pub const ENTRY_BYTES_MAX: usize = 64;

/// 6.824's `maxraftstate = 1000` for the 4B tests.
pub const MAXRAFTSTATE_4B: usize = 1000;

/// The snapshot interval (entries) standing for a `maxraftstate` of `bytes`.
pub fn snapshot_every_for(bytes: usize) -> u64 {
    (bytes / ENTRY_BYTES_MAX).max(1) as u64
}

/// labrpc's unreliable network with its 0–26 ms jitter scaled to the yardstick `y_ms`.
pub fn unreliable_net(y_ms: u64) -> NetConfig {
    NetConfig {
        delay_ms: (0, 26 * y_ms / 1000),
        ..NetConfig::unreliable()
    }
}

/// One GenericTest: its row of the 6.824 table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericParams {
    pub nclients: usize,
    pub nservers: usize,
    pub unreliable: bool,
    pub crash: bool,
    pub partitions: bool,
    /// 6.824's `maxraftstate` in bytes (`None`: −1, never snapshot).
    pub maxraftstate: Option<usize>,
    pub random_keys: bool,
    pub iterations: u32,
    /// The client phase, in yardsticks (6.824: 5 s = 5).
    pub client_yardsticks: u64,
}

impl GenericParams {
    /// `nclients` clients on `nservers` servers, reliable, no faults, no snapshots, own keys,
    /// 3 iterations of 5 yardsticks.
    pub fn new(nclients: usize, nservers: usize) -> Self {
        GenericParams {
            nclients,
            nservers,
            unreliable: false,
            crash: false,
            partitions: false,
            maxraftstate: None,
            random_keys: false,
            iterations: 3,
            client_yardsticks: 5,
        }
    }
}

/// The simulator configuration of a GenericTest: [`SimConfig::new`] timing, the KV service,
/// the network and snapshot policy its parameters ask for.
pub fn generic_config(p: &GenericParams, seed: u64) -> SimConfig {
    let mut cfg = SimConfig::new(p.nservers, seed);
    cfg.kv = Some(kv::KvConfig::default());
    cfg.snapshot_every = p.maxraftstate.map(snapshot_every_for);
    if p.unreliable {
        cfg.net = unreliable_net(yardstick_ms(&cfg));
    }
    cfg
}

/// What one GenericTest did.
#[derive(Clone, Debug, Default)]
pub struct GenericReport {
    pub seed: u64,
    pub sim_ms: u64,
    pub events: u64,
    /// Operations in the history, completed and pending.
    pub ops: usize,
    pub pending: usize,
    /// Most operations on one key.
    pub ops_on_one_key_max: usize,
    /// Largest persisted log and snapshot seen at the end of an iteration, in bytes.
    pub log_bytes_max: usize,
    pub snapshot_bytes_max: usize,
    pub partitions: u64,
    pub crashes: u64,
    pub check_steps: u64,
    pub stats: KvStats,
    /// The history, for callers that time the checker.
    pub history: Vec<Operation>,
}

/// Bound on the clerks finishing their last operation once faults stop, in yardsticks.
pub const CLIENTS_FINISH_YARDSTICKS: u64 = 30;
/// Bound on a final `Get`, in yardsticks.
pub const FINAL_GET_YARDSTICKS: u64 = 30;

/// Run GenericTest `p` with `seed`; panics (printing `repro`) on any failed check.
pub fn run_generic(p: &GenericParams, seed: u64, repro: &str) -> GenericReport {
    let mut k = KvSim::new(generic_config(p, seed));
    k.set_repro(repro);
    let mut report = GenericReport {
        seed,
        ..GenericReport::default()
    };
    for iteration in 0..p.iterations {
        generic_iteration(&mut k, p, iteration, &mut report);
    }
    finish(&mut k, report)
}

/// One iteration of GenericTest on `k` (whose servers are all up and connected).
pub fn generic_iteration(
    k: &mut KvSim,
    p: &GenericParams,
    iteration: u32,
    report: &mut GenericReport,
) {
    let y = yardstick_ms(k.cluster().config());
    let all = k.cluster().ids();
    let clerks: Vec<ClerkId> = (0..p.nclients).map(|_| k.add_clerk(&all)).collect();
    for (cli, &ck) in clerks.iter().enumerate() {
        let g = GenericClient::new(cli as u64, p.nclients as u64, p.random_keys);
        k.run_program(ck, Program::Generic(g));
    }
    if p.partitions {
        k.run_for(y);
        let end = k.now_ms() + p.client_yardsticks * y;
        while k.now_ms() < end {
            random_halves(k);
            report.partitions += 1;
            let pause = y + k.cluster_mut().rng().gen_range(0..y / 5);
            k.run_for(pause.min(end - k.now_ms()));
        }
    } else {
        k.run_for(p.client_yardsticks * y);
    }
    k.stop_programs();
    if p.partitions {
        k.cluster_mut().heal();
        k.run_for(y);
    }
    if p.crash {
        crash_all_and_restart(k, y);
        report.crashes += all.len() as u64;
    }
    if !k.run_until(CLIENTS_FINISH_YARDSTICKS * y, |k| k.all_idle()) {
        k.fail(format!(
            "iteration {iteration}: clients did not finish their last operation within {} ms \
             of the faults stopping",
            CLIENTS_FINISH_YARDSTICKS * y
        ));
    }
    let ck = k.add_clerk(&all);
    for (cli, &c) in clerks.iter().enumerate() {
        let Some(Program::Generic(g)) = k.program(c).cloned() else {
            unreachable!("a GenericTest clerk runs GenericClient")
        };
        let key = g.own_key();
        let v = final_get(k, ck, key, y);
        if !p.random_keys {
            if let Err(e) = check_client_appends(cli as u64, &v, g.j) {
                k.fail(format!("iteration {iteration}: {e}"));
            }
        }
    }
    check_sizes(k, p, iteration, report);
}

/// 6.824's partitioner step: every server on side 0 or 1, uniformly.
pub fn random_halves(k: &mut KvSim) {
    let ids = k.cluster().ids();
    let mut sides: [Vec<NodeId>; 2] = [Vec::new(), Vec::new()];
    for id in ids {
        let s = k.cluster_mut().rng().gen_range(0..2);
        sides[s].push(id);
    }
    k.cluster_mut().partition(&[&sides[0], &sides[1]]);
}

/// 6.824: shut down every server, wait one yardstick, restart them all, reconnect.
pub fn crash_all_and_restart(k: &mut KvSim, y: u64) {
    let ids = k.cluster().ids();
    for &id in &ids {
        k.cluster_mut().crash(id);
    }
    k.run_for(y);
    for &id in &ids {
        k.cluster_mut().restart(id);
    }
    k.cluster_mut().heal();
}

/// A `Get(key)` that must complete; returns the value ("" when absent, as 6.824's Get).
pub fn final_get(k: &mut KvSim, ck: ClerkId, key: Bytes, y: u64) -> Bytes {
    match k.call(ck, KvOp::get(key.clone()), FINAL_GET_YARDSTICKS * y) {
        Some(KvReply::Value(v)) => v.unwrap_or_default(),
        Some(r) => k.fail(format!("Get({key:?}) answered {r:?}")),
        None => k.fail(format!(
            "Get({key:?}) did not complete within {} ms",
            FINAL_GET_YARDSTICKS * y
        )),
    }
}

/// 6.824 `LogSize()` and `SnapshotSize()`: the largest persisted log (hard state and live
/// entries) and snapshot over all nodes, in bytes.
pub fn persisted_sizes(c: &crate::Cluster) -> (usize, usize) {
    let log = c.ids().iter().map(|&id| c.persisted_log_bytes(id)).max();
    let snap = c
        .ids()
        .iter()
        .map(|&id| c.persisted_snapshot_bytes(id))
        .max();
    (log.unwrap_or(0), snap.unwrap_or(0))
}

/// 6.824 after every iteration: `LogSize() ≤ 8 · maxraftstate`, or no snapshot at all.
pub fn check_sizes(k: &KvSim, p: &GenericParams, iteration: u32, report: &mut GenericReport) {
    let (log, snap) = persisted_sizes(k.cluster());
    report.log_bytes_max = report.log_bytes_max.max(log);
    report.snapshot_bytes_max = report.snapshot_bytes_max.max(snap);
    match p.maxraftstate {
        Some(t) if log > 8 * t => k.fail(format!(
            "iteration {iteration}: logs were not trimmed ({log} > 8*{t})"
        )),
        None if snap > 0 => k.fail(format!(
            "iteration {iteration}: snapshot of {snap} bytes without a snapshot threshold"
        )),
        _ => {}
    }
}

/// Check the whole history (must be linearizable) and fill in the report (the seed, the
/// sizes now folded into the largest seen, the counts).
pub fn finish(k: &mut KvSim, mut report: GenericReport) -> GenericReport {
    let (log, snap) = persisted_sizes(k.cluster());
    report.seed = k.seed();
    report.log_bytes_max = report.log_bytes_max.max(log);
    report.snapshot_bytes_max = report.snapshot_bytes_max.max(snap);
    let ops = k.operations();
    let rep = check_with(&ops, &CheckConfig::default(), &mut || false);
    match &rep.result {
        CheckResult::Ok => {}
        other => k.fail(format!("history of {} operations: {other}", ops.len())),
    }
    let mut per_key: BTreeMap<&[u8], usize> = BTreeMap::new();
    for op in &ops {
        *per_key.entry(op.input.key()).or_default() += 1;
    }
    report.ops_on_one_key_max = per_key.values().copied().max().unwrap_or(0);
    report.check_steps = rep.steps;
    report.ops = ops.len();
    report.pending = ops.iter().filter(|o| !o.is_completed()).count();
    report.sim_ms = k.now_ms();
    report.events = k.cluster().counters().events;
    report.stats = k.stats().clone();
    report.history = ops;
    report
}

/// What 6.824's `GenericTestSpeed` measured.
#[derive(Clone, Debug, Default)]
pub struct SpeedReport {
    pub generic: GenericReport,
    pub ops: u64,
    /// Simulated ms the sequential appends took, all together.
    pub appends_ms: u64,
    /// The leader's heartbeat interval, in ms.
    pub heartbeat_ms: u64,
}

/// Appends of 6.824's `GenericTestSpeed`.
pub const SPEED_OPS: u64 = 1000;
/// "heartbeat interval should be ~100 ms; require at least 3 ops per interval".
pub const SPEED_OPS_PER_HEARTBEAT: u64 = 3;

/// 6.824 `GenericTestSpeed`: 3 reliable servers, one clerk; a `Get` waits for a leader, then
/// [`SPEED_OPS`] sequential appends must all be present in order, and take at most
/// `SPEED_OPS × heartbeat / 3` of simulated time — commits must not wait for a heartbeat.
pub fn run_speed(maxraftstate: Option<usize>, seed: u64, repro: &str) -> SpeedReport {
    let p = GenericParams {
        maxraftstate,
        ..GenericParams::new(1, 3)
    };
    let cfg = generic_config(&p, seed);
    let heartbeat_ms = u64::from(cfg.heartbeat_ticks) * cfg.tick_ms;
    let y = yardstick_ms(&cfg);
    let mut k = KvSim::new(cfg);
    k.set_repro(repro);
    let all = k.cluster().ids();
    let ck = k.add_clerk(&all);
    final_get(&mut k, ck, Bytes::from_static(b"x"), y);
    let start = k.now_ms();
    for i in 0..SPEED_OPS {
        let op = KvOp::append("x", GenericClient::element(0, i));
        if k.call(ck, op, FINAL_GET_YARDSTICKS * y).is_none() {
            k.fail(format!("append {i} did not complete"));
        }
    }
    let appends_ms = k.now_ms() - start;
    let v = final_get(&mut k, ck, Bytes::from_static(b"x"), y);
    if let Err(e) = check_client_appends(0, &v, SPEED_OPS) {
        k.fail(e);
    }
    if appends_ms * SPEED_OPS_PER_HEARTBEAT > SPEED_OPS * heartbeat_ms {
        k.fail(format!(
            "operations completed too slowly: {appends_ms} ms for {SPEED_OPS} ops, \
             more than {}/{SPEED_OPS_PER_HEARTBEAT} ms (heartbeat/{SPEED_OPS_PER_HEARTBEAT}) each",
            heartbeat_ms
        ));
    }
    let mut report = GenericReport {
        seed,
        ..GenericReport::default()
    };
    check_sizes(&k, &p, 0, &mut report);
    SpeedReport {
        generic: finish(&mut k, report),
        ops: SPEED_OPS,
        appends_ms,
        heartbeat_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The snapshot interval is derived from [`ENTRY_BYTES_MAX`]: every GenericTest entry's
    /// record must fit in it (the longest values: client 99, j in the thousands).
    #[test]
    fn entry_bytes_bound_holds() {
        let mut p = GenericParams::new(1, 3);
        p.iterations = 1;
        let mut k = KvSim::new(generic_config(&p, 1));
        let ids = k.cluster().ids();
        let ck = k.add_clerk(&ids);
        k.call(ck, KvOp::put("99", ""), 5_000).expect("a leader");
        let before = k.cluster().persisted_log_bytes(ids[0]);
        let n = 20;
        for j in 0..n {
            let v = GenericClient::element(99, 100_000 + j);
            k.call(ck, KvOp::append("99", v), 5_000).expect("append");
        }
        k.run_for(100);
        let after = k.cluster().persisted_log_bytes(ids[0]);
        let per_entry = (after - before) / n as usize;
        eprintln!("{per_entry} bytes per GenericTest entry");
        assert!(
            per_entry <= ENTRY_BYTES_MAX,
            "{per_entry} bytes per entry > {ENTRY_BYTES_MAX}"
        );
    }
}
