//! Histories from simulated concurrent executions (each operation takes effect at one instant
//! inside its interval, in instant order) are always linearizable, whatever the overlap and
//! whichever operations never return; corrupting one read to a value never written makes
//! them illegal, and the explanation names that read. Also: 10,000-operation histories are
//! decided within the default budget.

mod support;

use check::{check, check_with, CheckConfig, CheckResult, Input, Output};
use proptest::prelude::*;
use support::{execute, random_plan, Fate, Planned, Workload};

fn input(keys: u8) -> impl Strategy<Value = Input> {
    let key = (0..keys).prop_map(|k| format!("k{k}"));
    let value = (0u8..4).prop_map(|v| format!("v{v}"));
    prop_oneof![
        4 => key.clone().prop_map(Input::get),
        2 => (key.clone(), value.clone()).prop_map(|(k, v)| Input::put(k, v)),
        2 => (key.clone(), 0u16..1000).prop_map(|(k, n)| Input::append(k, format!("{n};"))),
        1 => key.clone().prop_map(Input::delete),
        1 => (key, prop::option::of(value.clone()), value)
            .prop_map(|(k, e, n)| Input::cas(k, e.as_ref().map(String::as_bytes), n)),
    ]
}

/// Plans whose delays go from no overlap (long think times, short latencies) to heavy
/// overlap, with some operations never returning.
fn plan() -> impl Strategy<Value = Vec<Planned>> {
    (1u64..6, 0u64..50, 1u64..50).prop_flat_map(|(clients, think_max, latency_max)| {
        let planned = (
            0..clients,
            input(3),
            0..=think_max,
            0..=latency_max,
            0..=latency_max,
            0u8..20,
        )
            .prop_map(|(client, input, think, before, after, fate)| Planned {
                client,
                input,
                think,
                before,
                after,
                fate: match fate {
                    0 => Fate::AppliedPending,
                    1 => Fate::LostPending,
                    _ => Fate::Returns,
                },
            });
        prop::collection::vec(planned, 1..120)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn executions_are_linearizable(plan in plan()) {
        let history = execute(&plan);
        let result = check(&history);
        prop_assert_eq!(&result, &CheckResult::Ok, "{}", result);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_illegal(plan in plan(), pick in any::<prop::sample::Index>()) {
        let mut history = execute(&plan);
        let reads: Vec<usize> = (0..history.len())
            .filter(|&i| matches!(history[i].input, Input::Get { .. }) && history[i].ret.is_some())
            .collect();
        prop_assume!(!reads.is_empty());
        let read = reads[pick.index(reads.len())];
        history[read].output = Some(Output::value("never written"));
        let CheckResult::Illegal { key, explanation } = check(&history) else {
            return Err(TestCaseError::fail("a read of a value never written must be illegal"));
        };
        prop_assert_eq!(key.as_slice(), history[read].input.key());
        prop_assert!(explanation.contains("\"never written\""), "{}", explanation);
        prop_assert!(explanation.contains(&format!("#{read} ")), "{}", explanation);
    }
}

fn ten_thousand(keys: u32, think_max: u64, latency_max: u64) -> Workload {
    Workload {
        ops: 10_000,
        clients: 10,
        keys,
        values: 5,
        think_max,
        latency_max,
        pending_per_mille: 5,
    }
}

#[test]
fn ten_thousand_operations_over_a_hundred_keys_are_checked() {
    let history = execute(&random_plan(7, &ten_thousand(100, 50, 200)));
    let report = check_with(&history, &CheckConfig::default(), &mut || false);
    assert_eq!(report.result, CheckResult::Ok);
    assert!(report.steps < 1_000_000, "{} steps", report.steps);
}

#[test]
fn ten_thousand_heavily_overlapping_operations_on_three_keys_are_checked() {
    let history = execute(&random_plan(7, &ten_thousand(3, 5, 1000)));
    let report = check_with(&history, &CheckConfig::default(), &mut || false);
    assert_eq!(report.result, CheckResult::Ok);
    assert!(report.steps < 5_000_000, "{} steps", report.steps);
}
