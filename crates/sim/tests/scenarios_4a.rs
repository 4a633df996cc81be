//! 6.824 lab 4A (kvraft without snapshots) on the simulated cluster: every `…4A` test of
//! `6824-scenarios.md` §3, on the real `KvStateMachine`, with clerks that retry under one
//! exactly-once session, Gets through ReadIndex, and every history checked linearizable.
//! Durations are scaled to the 300 ms election-timeout yardstick `Y` standing for 6.824's
//! 1 s `electionTimeout` (see `sim::generic`): 5 s of clients → 5 Y = 1.5 s, partitions every
//! 1.0–1.2 Y, "neither may complete within 1 s" → within Y, and so on.
//!
//! Each scenario runs `KV_SEEDS` seeds (`KV_SEEDS_LONG_VALUES` for the reliable GenericTest
//! rows; see `common::kv`), `RAFTKV_SCENARIO_SEEDS=N` runs `1..=N`, `RAFTKV_SCENARIO_SEED=S`
//! one; a failure prints the command that replays it.

#[macro_use]
mod common;

use common::kv::*;
use common::*;
use sim::generic::{
    final_get, finish, generic_config, run_speed, GenericParams, GenericReport, SPEED_OPS,
};
use sim::kvsim::{check_concurrent_appends, yardstick_ms, KvOp, KvReply, KvSim, Program};

/// TestBasic4A: one client, 5 servers, no faults.
#[test]
fn basic_4a() {
    generic(scenario!("basic_4a"), GenericParams::new(1, 5));
}

/// TestConcurrent4A: 5 concurrent clients.
#[test]
fn concurrent_4a() {
    generic(scenario!("concurrent_4a"), GenericParams::new(5, 5));
}

/// TestUnreliable4A: 5 clients on labrpc's unreliable network.
#[test]
fn unreliable_4a() {
    let p = GenericParams {
        unreliable: true,
        ..GenericParams::new(5, 5)
    };
    generic(scenario!("unreliable_4a"), p);
}

/// TestManyPartitionsOneClient4A: one client while the partitioner re-splits the servers.
#[test]
fn many_partitions_one_client_4a() {
    let p = GenericParams {
        partitions: true,
        ..GenericParams::new(1, 5)
    };
    generic(scenario!("many_partitions_one_client_4a"), p);
}

/// TestManyPartitionsManyClients4A.
#[test]
fn many_partitions_many_clients_4a() {
    let p = GenericParams {
        partitions: true,
        ..GenericParams::new(5, 5)
    };
    generic(scenario!("many_partitions_many_clients_4a"), p);
}

/// TestPersistOneClient4A: every server crashes and restarts after each iteration.
#[test]
fn persist_one_client_4a() {
    let p = GenericParams {
        crash: true,
        ..GenericParams::new(1, 5)
    };
    generic(scenario!("persist_one_client_4a"), p);
}

/// TestPersistConcurrent4A.
#[test]
fn persist_concurrent_4a() {
    let p = GenericParams {
        crash: true,
        ..GenericParams::new(5, 5)
    };
    generic(scenario!("persist_concurrent_4a"), p);
}

/// TestPersistConcurrentUnreliable4A.
#[test]
fn persist_concurrent_unreliable_4a() {
    let p = GenericParams {
        crash: true,
        unreliable: true,
        ..GenericParams::new(5, 5)
    };
    generic(scenario!("persist_concurrent_unreliable_4a"), p);
}

/// TestPersistPartition4A.
#[test]
fn persist_partition_4a() {
    let p = GenericParams {
        crash: true,
        partitions: true,
        ..GenericParams::new(5, 5)
    };
    generic(scenario!("persist_partition_4a"), p);
}

/// TestPersistPartitionUnreliable4A.
#[test]
fn persist_partition_unreliable_4a() {
    let p = GenericParams {
        crash: true,
        partitions: true,
        unreliable: true,
        ..GenericParams::new(5, 5)
    };
    generic(scenario!("persist_partition_unreliable_4a"), p);
}

/// TestPersistPartitionUnreliableLinearizable4A: 15 clients on 7 servers over 15 shared
/// keys (random keys, 10% puts), unreliable, crashes and partitions; only the
/// linearizability checker judges.
#[test]
fn persist_partition_unreliable_linearizable_4a() {
    let p = GenericParams {
        crash: true,
        partitions: true,
        unreliable: true,
        random_keys: true,
        ..GenericParams::new(15, 7)
    };
    generic(scenario!("persist_partition_unreliable_linearizable_4a"), p);
}

/// TestSpeed4A: 1,000 sequential appends by one clerk on 3 servers take at most a third of a
/// heartbeat interval each (simulated): commits do not wait for the next heartbeat.
#[test]
fn speed_4a() {
    let sc = scenario!("speed_4a");
    run_seeds(sc, KV_SEEDS, |seed| {
        let r = run_speed(None, seed, &sc.repro(seed));
        assert_eq!(r.ops, SPEED_OPS);
        note_speed(sc, &r);
    });
}

/// TestUnreliableOneKey4A: on an unreliable network 5 clerks append 10 elements each to one
/// key; the final value holds each client's elements exactly once, in its order (duplicate
/// suppression by the session table, however often a write is retried).
#[test]
fn unreliable_one_key_4a() {
    let sc = scenario!("unreliable_one_key_4a");
    run_seeds(sc, KV_SEEDS, |seed| {
        let p = GenericParams {
            unreliable: true,
            ..GenericParams::new(5, 3)
        };
        let mut k = KvSim::new(generic_config(&p, seed));
        k.set_repro(sc.repro(seed));
        let y = yardstick_ms(k.cluster().config());
        let all = k.cluster().ids();
        let ck = k.add_clerk(&all);
        if k.call(ck, KvOp::put("k", ""), 30 * y).is_none() {
            k.fail("Put(k, \"\") did not complete");
        }
        const NCLIENT: u64 = 5;
        const UPTO: u64 = 10;
        for me in 0..NCLIENT {
            let c = k.add_clerk(&all);
            let program = Program::Appends {
                key: "k".into(),
                me,
                next: 0,
                upto: UPTO,
            };
            k.run_program(c, program);
        }
        if !k.run_until(60 * y, |k| k.all_idle()) {
            k.fail("the appending clients did not finish");
        }
        let v = final_get(&mut k, ck, "k".into(), y);
        if let Err(e) = check_concurrent_appends(&v, &[UPTO; NCLIENT as usize]) {
            k.fail(e);
        }
        let r = finish(&mut k, GenericReport::default());
        note(sc, &r);
    });
}

/// TestOnePartition4A: with the leader in a 2-server minority, a clerk of the 3-server
/// majority makes progress (Put 1=14, Get = 14, Put 16, Get = 16) while two clerks of the
/// minority see neither their Put 1=15 nor their Get complete within a yardstick (both stay
/// pending); once healed, the blocked Put completes within 3 yardsticks and is applied after
/// 16: the final value is 15.
#[test]
fn one_partition_4a() {
    let sc = scenario!("one_partition_4a");
    run_seeds(sc, KV_SEEDS, |seed| {
        let p = GenericParams::new(1, 5);
        let mut k = KvSim::new(generic_config(&p, seed));
        k.set_repro(sc.repro(seed));
        let y = yardstick_ms(k.cluster().config());
        let all = k.cluster().ids();
        let ck = k.add_clerk(&all);
        let must = |k: &mut KvSim, ck, op: KvOp| match k.call(ck, op.clone(), 30 * y) {
            Some(r) => r,
            None => k.fail(format!("{op:?} did not complete")),
        };
        let value = |v: &str| KvReply::Value(Some(v.to_string().into()));
        must(&mut k, ck, KvOp::put("1", "13"));

        // make_partition: a majority p1 and a minority p2 holding the current leader.
        let Some(&(leader, _)) = k.cluster().leaders().iter().max_by_key(|(_, t)| *t) else {
            k.fail("no leader after a completed Put");
        };
        let others: Vec<_> = all.iter().copied().filter(|&i| i != leader).collect();
        let p1 = others[..3].to_vec();
        let p2 = vec![others[3], leader];
        k.cluster_mut().partition(&[&p1, &p2]);
        let ckp1 = k.add_clerk(&p1);
        let ckp2a = k.add_clerk(&p2);
        let ckp2b = k.add_clerk(&p2);

        // Progress in the majority.
        must(&mut k, ckp1, KvOp::put("1", "14"));
        let got = must(&mut k, ckp1, KvOp::get("1"));
        if got != value("14") {
            k.fail(format!("majority Get = {got:?}, want 14"));
        }

        // No progress in the minority.
        let put15 = k.start(ckp2a, KvOp::put("1", "15"));
        let get = k.start(ckp2b, KvOp::get("1"));
        k.run_for(y);
        if k.result(put15).is_some() {
            k.fail("Put in minority completed");
        }
        if k.result(get).is_some() {
            k.fail("Get in minority completed");
        }
        let got = must(&mut k, ckp1, KvOp::get("1"));
        if got != value("14") {
            k.fail(format!("majority Get = {got:?}, want 14"));
        }
        must(&mut k, ckp1, KvOp::put("1", "16"));
        let got = must(&mut k, ckp1, KvOp::get("1"));
        if got != value("16") {
            k.fail(format!("majority Get = {got:?}, want 16"));
        }
        if k.result(put15).is_some() || k.result(get).is_some() {
            k.fail("an operation in the minority completed while partitioned");
        }

        // Completion after heal.
        k.cluster_mut().heal();
        k.set_servers(ckp2a, &all);
        k.set_servers(ckp2b, &all);
        let healed = k.now_ms();
        k.run_for(y);
        if !k.run_until(3 * y, |k| k.result(put15).is_some()) {
            k.fail(format!(
                "Put did not complete within {} ms of the heal",
                k.now_ms() - healed
            ));
        }
        k.run_until(30 * y, |k| k.result(get).is_some());
        let got = must(&mut k, ck, KvOp::get("1"));
        if got != value("15") {
            k.fail(format!("final Get = {got:?}, want 15"));
        }
        let r = finish(&mut k, GenericReport::default());
        note(sc, &r);
    });
}
