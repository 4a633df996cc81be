//! 6.824 lab 4B (kvraft with snapshots) on the simulated cluster: every `…4B` test of
//! `6824-scenarios.md` §3. `maxraftstate = 1000` bytes becomes a snapshot every
//! `1000 / ENTRY_BYTES_MAX` applied entries (the replica's policy counts entries; see
//! `sim::generic`), and the bounds stay in bytes: the largest persisted log ≤ 8 × 1000 B,
//! and for TestSnapshotSize4B the snapshot ≤ 500 B. Everything 4A checks still holds:
//! linearizable histories, each client's appends exactly once and in order.

#[macro_use]
mod common;

use common::kv::*;
use common::*;
use sim::generic::{
    finish, generic_config, persisted_sizes, run_speed, GenericParams, GenericReport,
    MAXRAFTSTATE_4B, SPEED_OPS,
};
use sim::kvsim::{yardstick_ms, ClerkId, KvOp, KvReply, KvSim};

/// 6.824's `maxsnapshotstate` for TestSnapshotSize4B.
const MAXSNAPSHOTSTATE: usize = 500;

fn snap(p: GenericParams) -> GenericParams {
    GenericParams {
        maxraftstate: Some(MAXRAFTSTATE_4B),
        ..p
    }
}

/// A `Put`/`Get` that must complete (6.824's `Put` and `check` helpers).
fn must(k: &mut KvSim, ck: ClerkId, op: KvOp) -> KvReply {
    let y = yardstick_ms(k.cluster().config());
    match k.call(ck, op.clone(), 30 * y) {
        Some(r) => r,
        None => k.fail(format!("{op:?} did not complete")),
    }
}

fn check_get(k: &mut KvSim, ck: ClerkId, key: &str, want: &str) {
    let got = must(k, ck, KvOp::get(key.to_string()));
    if got != KvReply::Value(Some(want.to_string().into())) {
        k.fail(format!("Get({key}) = {got:?}, want {want:?}"));
    }
}

fn check_log_bound(k: &KvSim, when: &str) -> usize {
    let (log, _) = persisted_sizes(k.cluster());
    if log > 8 * MAXRAFTSTATE_4B {
        k.fail(format!(
            "{when}: logs were not trimmed ({log} > 8*{MAXRAFTSTATE_4B})"
        ));
    }
    log
}

/// TestSnapshotRPC4B: a majority {1, 2} compacts its log (≤ 8 × maxraftstate) while server 3
/// is cut off; then {1, 3} must work, so server 3 catches up by InstallSnapshot; then all.
#[test]
fn snapshot_rpc_4b() {
    let sc = scenario!("snapshot_rpc_4b");
    run_seeds(sc, KV_SEEDS, |seed| {
        let p = snap(GenericParams::new(1, 3));
        let mut k = KvSim::new(generic_config(&p, seed));
        k.set_repro(sc.repro(seed));
        let y = yardstick_ms(k.cluster().config());
        let all = k.cluster().ids();
        let (a, b, c) = (all[0], all[1], all[2]);
        let ck = k.add_clerk(&all);
        must(&mut k, ck, KvOp::put("a", "A"));
        check_get(&mut k, ck, "a", "A");

        // A bunch of puts into the majority partition.
        k.cluster_mut().partition(&[&[a, b], &[c]]);
        let ck1 = k.add_clerk(&[a, b]);
        for i in 0..50 {
            must(&mut k, ck1, KvOp::put(i.to_string(), i.to_string()));
        }
        k.run_for(y);
        must(&mut k, ck1, KvOp::put("b", "B"));
        let log = check_log_bound(&k, "majority after 50 puts");

        // A group that needs the lagging server, so that it has to catch up.
        let restores = k.cluster().state_machine(c).restores();
        k.cluster_mut().partition(&[&[a, c], &[b]]);
        let ck1 = k.add_clerk(&[a, c]);
        must(&mut k, ck1, KvOp::put("c", "C"));
        must(&mut k, ck1, KvOp::put("d", "D"));
        check_get(&mut k, ck1, "a", "A");
        check_get(&mut k, ck1, "b", "B");
        check_get(&mut k, ck1, "1", "1");
        check_get(&mut k, ck1, "49", "49");
        if k.cluster().state_machine(c).restores() == restores {
            k.fail(format!("{c:?} caught up without installing a snapshot"));
        }

        // Now everybody.
        k.cluster_mut().heal();
        must(&mut k, ck, KvOp::put("e", "E"));
        check_get(&mut k, ck, "c", "C");
        check_get(&mut k, ck, "e", "E");
        check_get(&mut k, ck, "1", "1");
        let report = GenericReport {
            log_bytes_max: log,
            ..GenericReport::default()
        };
        note(sc, &finish(&mut k, report));
    });
}

/// TestSnapshotSize4B: 200 × (Put x=0, Get, Put x=1, Get) on 3 servers: the log stays
/// ≤ 8 × maxraftstate and the snapshot ≤ 500 B (the session table must not bloat it).
#[test]
fn snapshot_size_4b() {
    let sc = scenario!("snapshot_size_4b");
    run_seeds(sc, KV_SEEDS, |seed| {
        let p = snap(GenericParams::new(1, 3));
        let mut k = KvSim::new(generic_config(&p, seed));
        k.set_repro(sc.repro(seed));
        let all = k.cluster().ids();
        let ck = k.add_clerk(&all);
        for _ in 0..200 {
            must(&mut k, ck, KvOp::put("x", "0"));
            check_get(&mut k, ck, "x", "0");
            must(&mut k, ck, KvOp::put("x", "1"));
            check_get(&mut k, ck, "x", "1");
        }
        let log = check_log_bound(&k, "after 800 operations");
        let (_, snapshot) = persisted_sizes(k.cluster());
        if snapshot == 0 {
            k.fail("no snapshot after 800 operations");
        }
        if snapshot > MAXSNAPSHOTSTATE {
            k.fail(format!(
                "snapshot too large ({snapshot} > {MAXSNAPSHOTSTATE})"
            ));
        }
        let report = GenericReport {
            log_bytes_max: log,
            snapshot_bytes_max: snapshot,
            ..GenericReport::default()
        };
        note(sc, &finish(&mut k, report));
    });
}

/// TestSpeed4B: TestSpeed4A with snapshots.
#[test]
fn speed_4b() {
    let sc = scenario!("speed_4b");
    run_seeds(sc, KV_SEEDS, |seed| {
        let r = run_speed(Some(MAXRAFTSTATE_4B), seed, &sc.repro(seed));
        assert_eq!(r.ops, SPEED_OPS);
        note_speed(sc, &r);
    });
}

/// TestSnapshotRecover4B: one client; every server crashes and restarts from its snapshot
/// and log after each iteration.
#[test]
fn snapshot_recover_4b() {
    let p = GenericParams {
        crash: true,
        ..GenericParams::new(1, 5)
    };
    generic(scenario!("snapshot_recover_4b"), snap(p));
}

/// TestSnapshotRecoverManyClients4B: 20 clients.
#[test]
fn snapshot_recover_many_clients_4b() {
    let p = GenericParams {
        crash: true,
        ..GenericParams::new(20, 5)
    };
    generic(scenario!("snapshot_recover_many_clients_4b"), snap(p));
}

/// TestSnapshotUnreliable4B.
#[test]
fn snapshot_unreliable_4b() {
    let p = GenericParams {
        unreliable: true,
        ..GenericParams::new(5, 5)
    };
    generic(scenario!("snapshot_unreliable_4b"), snap(p));
}

/// TestSnapshotUnreliableRecover4B.
#[test]
fn snapshot_unreliable_recover_4b() {
    let p = GenericParams {
        unreliable: true,
        crash: true,
        ..GenericParams::new(5, 5)
    };
    generic(scenario!("snapshot_unreliable_recover_4b"), snap(p));
}

/// TestSnapshotUnreliableRecoverConcurrentPartition4B.
#[test]
fn snapshot_unreliable_recover_concurrent_partition_4b() {
    let p = GenericParams {
        unreliable: true,
        crash: true,
        partitions: true,
        ..GenericParams::new(5, 5)
    };
    generic(
        scenario!("snapshot_unreliable_recover_concurrent_partition_4b"),
        snap(p),
    );
}

/// TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable4B: 15 clients, 7 servers,
/// random keys.
#[test]
fn snapshot_unreliable_recover_concurrent_partition_linearizable_4b() {
    let p = GenericParams {
        unreliable: true,
        crash: true,
        partitions: true,
        random_keys: true,
        ..GenericParams::new(15, 7)
    };
    generic(
        scenario!("snapshot_unreliable_recover_concurrent_partition_linearizable_4b"),
        snap(p),
    );
}
