//! Negative controls for the KV scenarios: with a safety mechanism switched off in the
//! clerks, the same checks the 4A/4B scenarios rely on must fail. A check that cannot fail
//! proves nothing.
//!
//! - Gets answered from the contacted node's state without ReadIndex → a deposed leader in a
//!   minority answers with what the majority already overwrote: the linearizability checker
//!   rejects the history (with ReadIndex the same Get never completes);
//! - writes without a session → a retried append applied twice, caught by the clients'
//!   read-your-writes check, the per-client append check (6.824 `checkClntAppends`), or —
//!   with shared keys, where only it can tell — the linearizability checker.
//!
//! (Under GenericTest's partitioner, local reads are not stale often enough to be a useful
//! control: a clerk reads at the node its last write went through, and a new majority
//! commits nothing within the short window before the clerk's next write fails over.)

use check::CheckResult;
use sim::generic::{finish, generic_config, generic_iteration, GenericParams, GenericReport};
use sim::kvsim::yardstick_ms;
use sim::{KvOp, KvReply, KvSim};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs GenericTest `p` on `seed` with the clerk switch `sabotage` applied; returns the
/// failure message, if the checks caught something.
fn failure(p: &GenericParams, seed: u64, sabotage: fn(&mut sim::ClerkConfig)) -> Option<String> {
    let run = catch_unwind(AssertUnwindSafe(|| {
        let mut k = KvSim::new(generic_config(p, seed));
        let mut cc = k.clerk_config();
        sabotage(&mut cc);
        k.set_clerk_config(cc);
        let mut report = GenericReport::default();
        for i in 0..p.iterations {
            generic_iteration(&mut k, p, i, &mut report);
        }
        finish(&mut k, report);
    }));
    run.err().map(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "(non-string panic)".into())
    })
}

/// The first of `seeds` whose run the checks reject, with the message.
fn caught(p: &GenericParams, sabotage: fn(&mut sim::ClerkConfig)) -> (u64, String) {
    for seed in 1..=10 {
        if let Some(why) = failure(p, seed, sabotage) {
            return (seed, why);
        }
    }
    panic!("the checks missed the sabotage on 10 seeds: {p:?}")
}

/// TestOnePartition4A's first half, then a Get by a clerk of the minority (which holds the
/// old leader): what the checker says of the history, and the Get's reply if it completed.
fn minority_get(seed: u64, read_index: bool) -> (CheckResult, Option<KvReply>) {
    let mut k = KvSim::new(generic_config(&GenericParams::new(1, 5), seed));
    let mut cc = k.clerk_config();
    cc.read_index = read_index;
    k.set_clerk_config(cc);
    let y = yardstick_ms(k.cluster().config());
    let all = k.cluster().ids();
    let ck = k.add_clerk(&all);
    assert!(k.call(ck, KvOp::put("1", "13"), 30 * y).is_some());
    let (leader, _) = *k
        .cluster()
        .leaders()
        .iter()
        .max_by_key(|(_, t)| *t)
        .unwrap();
    let others: Vec<_> = all.iter().copied().filter(|&i| i != leader).collect();
    let (p1, p2) = (others[..3].to_vec(), vec![others[3], leader]);
    k.cluster_mut().partition(&[&p1, &p2]);
    let ckp1 = k.add_clerk(&p1);
    assert!(k.call(ckp1, KvOp::put("1", "14"), 30 * y).is_some());
    let ckp2 = k.add_clerk(&p2);
    let got = k.call(ckp2, KvOp::get("1"), 3 * y);
    (check::check(&k.operations()), got)
}

#[test]
fn reads_without_read_index_are_caught_as_not_linearizable() {
    for seed in 1..=5 {
        let (result, got) = minority_get(seed, false);
        assert_eq!(got, Some(KvReply::Value(Some("13".into()))), "seed {seed}");
        let CheckResult::Illegal { key, explanation } = result else {
            panic!("seed {seed}: a stale read passed the checker: {result:?}");
        };
        assert_eq!(key, b"1");
        assert!(explanation.contains("Get(\"1\")"), "{explanation}");
        let (result, got) = minority_get(seed, true);
        assert_eq!(
            (result, got),
            (CheckResult::Ok, None),
            "seed {seed} with ReadIndex"
        );
    }
}

/// Writes without sessions on TestUnreliable4A's network: a lost reply makes the clerk
/// retry an append that was applied, and it is applied again.
#[test]
fn writes_without_sessions_are_caught_as_duplicates() {
    let p = GenericParams {
        unreliable: true,
        iterations: 1,
        ..GenericParams::new(5, 5)
    };
    let (seed, why) = caught(&p, |c| c.sessions = false);
    assert!(
        ["get wrong value", "duplicate element", "not linearizable"]
            .iter()
            .any(|m| why.contains(m)),
        "seed {seed}: {why}"
    );
}

/// The same with shared keys (TestPersistPartitionUnreliableLinearizable4A's mix): only the
/// linearizability checker can see that an append took effect twice.
#[test]
fn duplicated_appends_on_shared_keys_are_caught_as_not_linearizable() {
    let p = GenericParams {
        unreliable: true,
        random_keys: true,
        iterations: 1,
        ..GenericParams::new(5, 5)
    };
    let (seed, why) = caught(&p, |c| c.sessions = false);
    assert!(why.contains("not linearizable"), "seed {seed}: {why}");
}
