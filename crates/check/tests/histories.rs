//! Hand-built histories: linearizable ones the checker must accept, and the classic
//! violations (stale read, lost write, duplicated append, read-your-write) it must reject
//! with an explanation naming the operations involved.

use check::{check, check_with, CheckConfig, CheckResult, Input, Operation, Output};

fn op(client: u64, input: Input, output: Output, call: u64, ret: u64) -> Operation {
    Operation::completed(client, input, output, call, ret)
}

fn pending(client: u64, input: Input, call: u64) -> Operation {
    Operation::pending(client, input, call)
}

fn assert_ok(history: &[Operation]) {
    let result = check(history);
    assert_eq!(result, CheckResult::Ok, "{result}");
}

/// Checks that the history is illegal on `key` and returns the explanation.
fn illegal(history: &[Operation], key: &str) -> String {
    match check(history) {
        CheckResult::Illegal {
            key: got,
            explanation,
        } => {
            assert_eq!(got, key.as_bytes(), "{explanation}");
            println!("{explanation}");
            explanation
        }
        other => panic!("expected an illegal history on {key}, got {other:?}"),
    }
}

#[test]
fn empty_history_is_linearizable() {
    assert_ok(&[]);
}

#[test]
fn concurrent_overlapping_operations_may_take_effect_in_either_order() {
    // Two overlapping puts; readers overlapping both may see either, but once a reader saw
    // "b" after "a" no later reader may see "a" again.
    assert_ok(&[
        op(1, Input::put("x", "a"), Output::Written, 0, 100),
        op(2, Input::put("x", "b"), Output::Written, 10, 90),
        op(3, Input::get("x"), Output::value("b"), 20, 30),
        op(4, Input::get("x"), Output::value("a"), 40, 50),
        op(3, Input::get("x"), Output::value("a"), 120, 130),
    ]);
    assert_ok(&[
        op(1, Input::append("x", "1"), Output::Written, 0, 50),
        op(2, Input::append("x", "2"), Output::Written, 0, 50),
        op(3, Input::get("x"), Output::value("21"), 10, 60),
        op(
            4,
            Input::cas("x", Some(b"21"), "z"),
            Output::Cas { succeeded: true },
            55,
            70,
        ),
        op(5, Input::delete("x"), Output::Deleted(1), 65, 80),
        op(
            6,
            Input::cas("x", Some(b"z"), "w"),
            Output::Cas { succeeded: false },
            81,
            82,
        ),
        op(6, Input::get("x"), Output::absent(), 83, 84),
    ]);
}

#[test]
fn a_pending_write_may_take_effect_late() {
    // Client 1 timed out; its put still took effect, much later than its invocation.
    assert_ok(&[
        pending(1, Input::put("x", "late"), 0),
        op(2, Input::get("x"), Output::absent(), 10, 20),
        op(2, Input::put("x", "b"), Output::Written, 30, 40),
        op(3, Input::get("x"), Output::value("b"), 50, 60),
        op(3, Input::get("x"), Output::value("late"), 70, 80),
        op(3, Input::get("x"), Output::value("late"), 90, 95),
    ]);
}

#[test]
fn a_pending_write_may_never_take_effect() {
    assert_ok(&[
        pending(1, Input::append("x", "lost"), 0),
        pending(1, Input::delete("x"), 1),
        op(2, Input::put("x", "a"), Output::Written, 10, 20),
        op(3, Input::get("x"), Output::value("a"), 30, 40),
        pending(4, Input::get("x"), 35),
        op(3, Input::get("x"), Output::value("a"), 50, 60),
    ]);
}

#[test]
fn keys_are_independent() {
    // Each key's sub-history is legal on its own, and a key constrains only its own
    // operations: the read of "x" may follow the read of "y" although neither saw anything
    // of the other key.
    assert_ok(&[
        op(1, Input::put("x", "1"), Output::Written, 0, 10),
        op(1, Input::put("y", "1"), Output::Written, 20, 30),
        op(2, Input::get("y"), Output::value("1"), 25, 40),
        op(2, Input::get("x"), Output::value("1"), 45, 50),
    ]);
}

#[test]
fn stale_read_is_rejected() {
    let text = illegal(
        &[
            op(1, Input::put("x", "a"), Output::Written, 0, 10),
            op(2, Input::put("x", "b"), Output::Written, 20, 30),
            op(3, Input::get("x"), Output::value("a"), 40, 50),
        ],
        "x",
    );
    assert!(text.starts_with(
        r#"Get("x") by client 3 at [40, 50] returned "a", but the longest linearizable prefix has "x" = "b""#
    ));
    assert!(text
        .contains(r#"last write in the prefix: #1 Put("x", "b") by client 2 at [20, 30] -> ok"#));
    assert!(text.contains(r#"operations that wrote "a":"#));
    assert!(text.contains(r#"#0 Put("x", "a") by client 1 at [0, 10] -> ok"#));
}

#[test]
fn lost_write_is_rejected() {
    // The put was acknowledged, yet a read invoked after the acknowledgement misses it.
    let text = illegal(
        &[
            op(1, Input::put("x", "old"), Output::Written, 0, 5),
            op(2, Input::put("x", "acked"), Output::Written, 10, 20),
            op(3, Input::get("x"), Output::value("acked"), 15, 25),
            op(3, Input::get("x"), Output::value("old"), 30, 40),
        ],
        "x",
    );
    assert!(text.starts_with(r#"Get("x") by client 3 at [30, 40] returned "old", but the longest linearizable prefix has "x" = "acked""#), "{text}");

    // An acknowledged put followed by a read that finds the key absent.
    let text = illegal(
        &[
            op(1, Input::put("y", "v"), Output::Written, 0, 10),
            op(2, Input::get("y"), Output::absent(), 20, 30),
        ],
        "y",
    );
    assert!(text.starts_with(r#"Get("y") by client 2 at [20, 30] returned absent, but the longest linearizable prefix has "y" = "v""#), "{text}");
}

#[test]
fn duplicated_append_is_rejected() {
    let text = illegal(
        &[
            op(1, Input::append("log", "a;"), Output::Written, 0, 10),
            op(2, Input::append("log", "b;"), Output::Written, 5, 15),
            op(3, Input::get("log"), Output::value("a;b;a;"), 20, 30),
        ],
        "log",
    );
    assert!(text.starts_with(r#"Get("log") by client 3 at [20, 30] returned "a;b;a;", but the longest linearizable prefix has "log" = "#), "{text}");
    assert!(
        text.contains(r#"no Put or Cas on "log" wrote "a;b;a;""#),
        "{text}"
    );
}

#[test]
fn read_your_write_violation_is_rejected() {
    let text = illegal(
        &[
            op(2, Input::put("x", "theirs"), Output::Written, 0, 5),
            op(1, Input::put("x", "mine"), Output::Written, 10, 20),
            op(1, Input::get("x"), Output::value("theirs"), 30, 40),
        ],
        "x",
    );
    assert!(text.starts_with(r#"Get("x") by client 1 at [30, 40] returned "theirs", but the longest linearizable prefix has "x" = "mine""#), "{text}");
    assert!(text.contains(r#"the same client's last write before it: #1 Put("x", "mine") by client 1 at [10, 20] -> ok"#), "{text}");
}

#[test]
fn wrong_write_outputs_are_rejected() {
    let text = illegal(
        &[
            op(1, Input::put("x", "a"), Output::Written, 0, 10),
            op(2, Input::delete("x"), Output::Deleted(0), 20, 30),
        ],
        "x",
    );
    assert!(text.starts_with(r#"Delete("x") by client 2 at [20, 30] returned deleted 0, but the longest linearizable prefix has "x" = "a", where the model returns deleted 1"#), "{text}");
    let text = illegal(
        &[
            op(
                1,
                Input::cas("x", None, "a"),
                Output::Cas { succeeded: true },
                0,
                10,
            ),
            op(
                2,
                Input::cas("x", None, "b"),
                Output::Cas { succeeded: true },
                20,
                30,
            ),
        ],
        "x",
    );
    assert!(text.contains("where the model returns failed"), "{text}");
    let text = illegal(
        &[op(1, Input::put("x", "a"), Output::Deleted(1), 0, 10)],
        "x",
    );
    assert!(text.contains("which no Put can return"), "{text}");
}

#[test]
fn the_first_illegal_key_in_key_order_is_reported() {
    let history = [
        op(1, Input::put("b", "1"), Output::Written, 0, 10),
        op(2, Input::get("b"), Output::absent(), 20, 30),
        op(1, Input::put("a", "1"), Output::Written, 0, 10),
        op(2, Input::get("a"), Output::value("1"), 20, 30),
        op(1, Input::put("c", "1"), Output::Written, 0, 10),
        op(2, Input::get("c"), Output::absent(), 20, 30),
    ];
    illegal(&history, "b");
}

#[test]
fn explanations_name_every_candidate_with_what_the_model_returns() {
    // After the three puts (the last leaves "a"), two overlapping reads see older values.
    let text = illegal(
        &[
            op(1, Input::put("x", "p"), Output::Written, 0, 5),
            op(2, Input::put("x", "q"), Output::Written, 0, 5),
            op(1, Input::put("x", "a"), Output::Written, 6, 10),
            op(2, Input::get("x"), Output::value("p"), 20, 40),
            op(3, Input::get("x"), Output::value("q"), 25, 35),
            op(4, Input::get("x"), Output::value("a"), 30, 50),
        ],
        "x",
    );
    assert!(text.starts_with(r#"Get("x") by client 3 at [25, 35] returned "q", but the longest linearizable prefix has "x" = "a""#), "{text}");
    assert!(
        text.contains(r#"#4 Get("x") by client 3 at [25, 35] -> "q" — the model returns "a""#),
        "{text}"
    );
    assert!(
        text.contains(r#"#3 Get("x") by client 2 at [20, 40] -> "p" — the model returns "a""#),
        "{text}"
    );
    assert!(text.contains(r#"operations that wrote "q":"#), "{text}");
}

#[test]
fn a_value_no_write_could_build_is_rejected_before_searching() {
    let text = illegal(
        &[
            op(1, Input::put("x", "a"), Output::Written, 0, 10),
            op(2, Input::append("x", "b"), Output::Written, 0, 10),
            op(3, Input::get("x"), Output::value("abb"), 20, 30),
            op(3, Input::get("x"), Output::value("garbage"), 40, 50),
        ],
        "x",
    );
    assert!(text.starts_with(r#"Get("x") by client 3 at [40, 50] returned "garbage", but no write on "x" could have produced it"#), "{text}");
}

#[test]
fn an_exhausted_budget_is_unknown_and_a_stop_callback_is_honoured() {
    // Twenty overlapping puts, then reads of "0", "1", "0" in sequence: "0" would have to
    // be put twice. The search tries every subset of the puts before it can say so.
    let history: Vec<Operation> = (0..20)
        .map(|i| op(i, Input::put("x", format!("{i}")), Output::Written, 0, 100))
        .chain([
            op(99, Input::get("x"), Output::value("0"), 10, 11),
            op(99, Input::get("x"), Output::value("1"), 12, 13),
            op(99, Input::get("x"), Output::value("0"), 14, 15),
        ])
        .collect();
    let config = CheckConfig {
        steps_max: 1000,
        ..CheckConfig::default()
    };
    let report = check_with(&history, &config, &mut || false);
    let CheckResult::Unknown { key, reason } = report.result else {
        panic!("expected Unknown, got {:?}", report.result);
    };
    assert_eq!(key, b"x");
    assert!(reason.contains("1000 search steps"), "{reason}");
    assert!(report.steps <= 1000);

    let config = CheckConfig {
        stop_poll_steps: 10,
        ..CheckConfig::default()
    };
    let mut polls = 0;
    let report = check_with(&history, &config, &mut || {
        polls += 1;
        polls == 3
    });
    assert!(matches!(report.result, CheckResult::Unknown { .. }));
    assert_eq!(report.steps, 30);
}

#[test]
#[should_panic(expected = "returns before it was invoked")]
fn a_return_before_the_call_is_a_recording_bug() {
    check(&[op(1, Input::get("x"), Output::absent(), 10, 5)]);
}
