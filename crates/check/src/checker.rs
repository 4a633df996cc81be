//! The entry points: split a history by key, search each key, report the first failure.
//!
//! Owns: [`check`] and [`check_with`], their limits ([`CheckConfig`]) and answer
//! ([`CheckResult`], [`CheckReport`]); the per-key partitioning (every operation touches one
//! key, so the history is linearizable iff each key's sub-history is); dropping reads that
//! never returned (they constrain nothing).
//!
//! Keys are checked in byte order; the first illegal key is reported. A key whose search ran
//! out of budget makes the answer [`CheckResult::Unknown`] unless a later key is illegal.
//!
//! Must never: read a clock (a deadline is the caller's `stop` callback), spawn threads, use
//! randomness, or answer `Ok` for a key it did not finish.

use std::collections::BTreeMap;
use std::fmt;

use crate::explain::{explain, explain_unproducible, KeyOps, OpLine};
use crate::history::Operation;
use crate::search::{search, Budget, Exhausted, Verdict};

/// The checker's limits. The budget is counted in search steps (one candidate tried or one
/// backtrack), never in wall time; a caller wanting a deadline passes a `stop` callback to
/// [`check_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    /// Search steps for the whole check, over all keys.
    pub steps_max: u64,
    /// Memory of one key's memo table (reached configurations), in bytes.
    pub memo_bytes_max: usize,
    /// How often, in steps, the `stop` callback is asked.
    pub stop_poll_steps: u64,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            steps_max: 100_000_000,
            memo_bytes_max: 1 << 30,
            stop_poll_steps: 4096,
        }
    }
}

/// The checker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    /// Every key's history is linearizable.
    Ok,
    /// `key`'s history is not linearizable; `explanation` says which operation could not be
    /// placed, what the model held then, and the operations involved.
    Illegal { key: Vec<u8>, explanation: String },
    /// The budget ran out (or `stop` said so) while searching `key`; no key found illegal.
    Unknown { key: Vec<u8>, reason: String },
}

impl CheckResult {
    /// Whether the history was proven linearizable.
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckResult::Ok)
    }

    /// Whether the history was proven not linearizable.
    pub fn is_illegal(&self) -> bool {
        matches!(self, CheckResult::Illegal { .. })
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckResult::Ok => f.write_str("linearizable"),
            CheckResult::Illegal { explanation, .. } => {
                write!(f, "not linearizable: {explanation}")
            }
            CheckResult::Unknown { reason, .. } => write!(f, "unknown: {reason}"),
        }
    }
}

/// A [`CheckResult`] with what it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    pub result: CheckResult,
    /// Search steps taken, over all keys searched.
    pub steps: u64,
    /// Distinct keys in the history.
    pub keys: usize,
}

/// Checks `history` with the default limits.
///
/// # Panics
/// If an operation has exactly one of `output`/`ret`, or returns before it was invoked
/// (`ret < call`): those are recording bugs, not behaviours of the system under test.
pub fn check(history: &[Operation]) -> CheckResult {
    check_with(history, &CheckConfig::default(), &mut || false).result
}

/// Checks `history` within `config`'s limits; `stop` is asked every
/// `config.stop_poll_steps` steps and ends the check as `Unknown` when it returns true.
///
/// # Panics
/// As [`check`].
pub fn check_with(
    history: &[Operation],
    config: &CheckConfig,
    stop: &mut dyn FnMut() -> bool,
) -> CheckReport {
    let partitions = partition(history);
    let mut budget = Budget {
        steps_left: config.steps_max,
        memo_bytes_max: config.memo_bytes_max,
        stop_poll_steps: config.stop_poll_steps,
        stop,
    };
    let mut steps = 0;
    let mut unknown = None;
    for key_ops in &partitions {
        let (verdict, key_steps) = search(&key_ops.ops, &mut budget);
        steps += key_steps;
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Illegal { order, state } => {
                return CheckReport {
                    result: CheckResult::Illegal {
                        key: key_ops.key.to_vec(),
                        explanation: explain(key_ops, &order, &state),
                    },
                    steps,
                    keys: partitions.len(),
                };
            }
            Verdict::Unproducible { op } => {
                return CheckReport {
                    result: CheckResult::Illegal {
                        key: key_ops.key.to_vec(),
                        explanation: explain_unproducible(key_ops, op),
                    },
                    steps,
                    keys: partitions.len(),
                };
            }
            Verdict::Exhausted(why) => {
                unknown.get_or_insert_with(|| CheckResult::Unknown {
                    key: key_ops.key.to_vec(),
                    reason: exhausted_reason(why, key_ops, key_steps, config),
                });
            }
        }
    }
    CheckReport {
        result: unknown.unwrap_or(CheckResult::Ok),
        steps,
        keys: partitions.len(),
    }
}

/// Groups operations by key (in key order), validating each and dropping pending reads.
fn partition(history: &[Operation]) -> Vec<KeyOps<'_>> {
    let mut by_key: BTreeMap<&[u8], KeyOps<'_>> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        validate(index, op);
        let key = op.input.key();
        let key_ops = by_key.entry(key).or_insert_with(|| KeyOps {
            key,
            ops: Vec::new(),
            index: Vec::new(),
        });
        if op.ret.is_none() && !op.input.may_write() {
            continue;
        }
        key_ops.ops.push(op);
        key_ops.index.push(index);
    }
    let mut partitions: Vec<KeyOps<'_>> = by_key.into_values().collect();
    for key_ops in &mut partitions {
        // The search wants call order; ties keep the history's order.
        let mut order: Vec<usize> = (0..key_ops.ops.len()).collect();
        order.sort_by_key(|&i| (key_ops.ops[i].call, key_ops.index[i]));
        key_ops.ops = order.iter().map(|&i| key_ops.ops[i]).collect();
        key_ops.index = order.iter().map(|&i| key_ops.index[i]).collect();
    }
    partitions
}

fn validate(index: usize, op: &Operation) {
    assert_eq!(
        op.output.is_some(),
        op.ret.is_some(),
        "operation {}: output and ret must both be set (returned) or both be None (pending)",
        OpLine(index, op)
    );
    if let Some(ret) = op.ret {
        assert!(
            op.call <= ret,
            "operation {}: returns before it was invoked",
            OpLine(index, op)
        );
    }
}

fn exhausted_reason(
    why: Exhausted,
    key_ops: &KeyOps<'_>,
    key_steps: u64,
    config: &CheckConfig,
) -> String {
    let limit = match why {
        Exhausted::Steps => format!("the budget of {} search steps ran out", config.steps_max),
        Exhausted::Memory => format!(
            "the memo table reached its limit of {} bytes",
            config.memo_bytes_max
        ),
        Exhausted::Stopped => "the caller stopped the check".to_string(),
    };
    format!(
        "{limit} while checking key {} ({} operations, {key_steps} steps on it)",
        crate::model::ShowBytes(key_ops.key),
        key_ops.ops.len()
    )
}
