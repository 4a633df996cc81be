//! The checker against a brute-force reference on small histories: every order of the
//! operations that respects real time, with each never-returned operation placed anywhere or
//! left out, run through the sequential model. The checker prunes heavily (memo dominance,
//! erased never-returned operations, lookahead); this proves the pruning never changes an
//! answer.

mod support;

use check::{check, CheckResult, Input, KeyState, Operation, Output};
use proptest::prelude::*;
use support::{execute, Fate, Planned};

/// Whether some real-time-respecting order of a subset containing every completed
/// operation is accepted by the model.
fn brute_force(ops: &[Operation]) -> bool {
    fn go(ops: &[Operation], used: &mut Vec<bool>, state: &KeyState) -> bool {
        let all_completed = ops
            .iter()
            .zip(used.iter())
            .all(|(op, &used)| used || op.ret.is_none());
        if all_completed {
            return true;
        }
        for i in 0..ops.len() {
            if used[i] {
                continue;
            }
            // `i` may go next only if no unused completed operation returned before it was
            // invoked.
            let blocked = ops
                .iter()
                .zip(used.iter())
                .any(|(other, &used)| !used && other.ret.is_some_and(|ret| ret < ops[i].call));
            if blocked {
                continue;
            }
            let (after, output) = state.apply(&ops[i].input);
            if ops[i].output.as_ref().is_some_and(|out| *out != output) {
                continue;
            }
            used[i] = true;
            let found = go(ops, used, &after);
            used[i] = false;
            if found {
                return true;
            }
        }
        false
    }
    go(ops, &mut vec![false; ops.len()], &KeyState::default())
}

/// A small domain, so that operations collide; "c" and "d" are rarely read back, which
/// makes never-returned writes of them invisible (see `search::reduce`).
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(b"a".to_vec()),
        3 => Just(b"b".to_vec()),
        1 => Just(b"c".to_vec()),
        1 => Just(b"d".to_vec()),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        Just(Input::get("k")),
        value().prop_map(|v| Input::put("k", v)),
        value().prop_map(|v| Input::append("k", v)),
        Just(Input::delete("k")),
        (prop::option::of(value()), value()).prop_map(|(e, n)| Input::cas("k", e.as_deref(), n)),
    ]
}

/// A random output of the right kind for `input`, from a small domain (so that some
/// random histories are linearizable).
fn output_for(input: &Input, pick: u8) -> Output {
    const VALUES: [Option<&[u8]>; 6] = [
        None,
        Some(b"a"),
        Some(b"b"),
        Some(b"ab"),
        Some(b"ba"),
        Some(b"aa"),
    ];
    match input {
        Input::Get { .. } => Output::Value(VALUES[pick as usize % 6].map(<[u8]>::to_vec)),
        Input::Put { .. } | Input::Append { .. } => Output::Written,
        Input::Delete { .. } => Output::Deleted(u64::from(pick % 2)),
        Input::Cas { .. } => Output::Cas {
            succeeded: pick.is_multiple_of(2),
        },
    }
}

/// Small random histories: random inputs, times and outputs; a quarter never return.
fn random_history() -> impl Strategy<Value = Vec<Operation>> {
    prop::collection::vec((input(), 0u64..12, 0u64..6, any::<u8>(), 0u8..4), 1..10).prop_map(
        |ops| {
            ops.into_iter()
                .enumerate()
                .map(|(i, (input, call, len, pick, pending))| {
                    if pending == 0 {
                        Operation::pending(i as u64, input, call)
                    } else {
                        let output = output_for(&input, pick);
                        Operation::completed(i as u64, input, output, call, call + len)
                    }
                })
                .collect()
        },
    )
}

/// Linearizable histories from a simulated execution, with one output replaced.
fn mutated_execution() -> impl Strategy<Value = Vec<Operation>> {
    let planned = (0u64..3, input(), 0u64..4, 0u64..6, 0u64..6, 0u8..6).prop_map(
        |(client, input, think, before, after, fate)| Planned {
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
        },
    );
    (
        prop::collection::vec(planned, 1..11),
        any::<usize>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(plan, at, pick, mutate)| {
            let mut ops = execute(&plan);
            let i = at % ops.len();
            if mutate && ops[i].ret.is_some() {
                ops[i].output = Some(output_for(&ops[i].input, pick));
            }
            ops
        })
}

fn agrees(ops: &[Operation]) -> Result<(), TestCaseError> {
    let expected = brute_force(ops);
    let result = check(ops);
    prop_assert!(
        !matches!(result, CheckResult::Unknown { .. }),
        "unknown on a tiny history"
    );
    prop_assert_eq!(
        result.is_ok(),
        expected,
        "history {:#?}\nchecker: {}",
        ops,
        result
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn random_histories_agree_with_brute_force(ops in random_history()) {
        agrees(&ops)?;
    }

    #[test]
    fn mutated_executions_agree_with_brute_force(ops in mutated_execution()) {
        agrees(&ops)?;
    }
}
