//! Lookahead: can the next operation that observes the state still be satisfied?
//!
//! Owns: a cheap necessary condition the search checks after each step. Let `b` be the
//! completed operation not yet linearized that returns first (everything invoked after it
//! returned must come after it) and `o` the first, in return order, of those that observes
//! an exact state: a `Get` (its value), a successful `Cas` (its expected value), a `Delete`
//! that found nothing (absent). Only a known set of operations can be linearized before `o`:
//! completed ones invoked by `o`'s return that return no earlier than `b` (every other
//! completed one is linearized already or invoked too late) and never-returned ones invoked
//! by then. If no sequence of those can turn the current state into what `o` needs — even
//! ignoring their own outputs and letting appends repeat — the configuration is dead, and the
//! search backtracks at once instead of trying every order of writes that nobody will observe
//! (unobserved appends alone have factorially many).
//!
//! The condition over-approximates what is reachable, so it only ever prunes dead
//! configurations. Answers are cached per (`o`, `b`, state). [`unproducible`] is the same
//! test once for the whole key, before the search: an observed value that no writer of the
//! key could ever build makes the history illegal at once.
//!
//! Must never: prune a configuration from which `o` can be satisfied, read a clock, or use
//! randomness.

use std::collections::{HashMap, HashSet};

use crate::history::Operation;
use crate::model::{Input, Output};
use crate::rules::{StateId, States};

/// What an observing operation needs the state to be right before it.
enum Target {
    Absent,
    Value(Vec<u8>),
}

/// The operations that may be linearized before an observer, by kind (indexes into `ops`).
#[derive(Default)]
struct Writers {
    /// `Put`s and `Cas`es: the values they could leave.
    values: Vec<u32>,
    /// Whether a `Delete` is among them.
    delete: bool,
    /// `Append`s.
    appends: Vec<u32>,
}

/// The lookahead of one key's search.
pub(crate) struct Lookahead {
    targets: Vec<Option<Target>>,
    writers: HashMap<(u32, u32), Writers>,
    feasible: HashMap<(u32, u32, StateId), bool>,
    /// The longest completed operation, to bound the scan for those returning after a time.
    duration_max: u64,
}

impl Lookahead {
    pub(crate) fn new(ops: &[&Operation]) -> Self {
        let duration_max = ops
            .iter()
            .filter_map(|op| op.ret.map(|ret| ret - op.call))
            .max()
            .unwrap_or(0);
        Lookahead {
            targets: ops.iter().map(|op| target(op)).collect(),
            writers: HashMap::new(),
            feasible: HashMap::new(),
            duration_max,
        }
    }

    /// Whether operation `op` observes an exact state.
    pub(crate) fn observes(&self, op: u32) -> bool {
        self.targets[op as usize].is_some()
    }

    /// Whether observer `o` can still be satisfied from `state` when `b` returns first among
    /// the completed operations not linearized (`ops` sorted by call).
    pub(crate) fn feasible(
        &mut self,
        ops: &[&Operation],
        states: &States,
        (o, b): (u32, u32),
        state: StateId,
    ) -> bool {
        if let Some(&answer) = self.feasible.get(&(o, b, state)) {
            return answer;
        }
        let duration_max = self.duration_max;
        let writers = self
            .writers
            .entry((o, b))
            .or_insert_with(|| writers(ops, o as usize, b as usize, duration_max));
        let target = self.targets[o as usize].as_ref().expect("an observer");
        let answer = reachable(ops, target, writers, states.value(state));
        self.feasible.insert((o, b, state), answer);
        answer
    }
}

fn target(op: &Operation) -> Option<Target> {
    let value = |v: &Option<Vec<u8>>| v.clone().map_or(Target::Absent, Target::Value);
    match (&op.input, op.output.as_ref()?) {
        (Input::Get { .. }, Output::Value(v)) => Some(value(v)),
        (Input::Cas { expected, .. }, Output::Cas { succeeded: true }) => Some(value(expected)),
        (Input::Delete { .. }, Output::Deleted(0)) => Some(Target::Absent),
        _ => None,
    }
}

/// The operations that may be linearized before `ops[o]` while `ops[b]` returns first.
fn writers(ops: &[&Operation], o: usize, b: usize, duration_max: u64) -> Writers {
    let deadline = ops[o].ret.expect("an observer returned");
    let barrier = ops[b].ret.expect("a blocking operation returned");
    let invoked = ops.partition_point(|op| op.call <= deadline);
    let mut writers = Writers::default();
    for (i, op) in ops[..invoked].iter().enumerate().rev() {
        // A completed operation invoked this early returns before the barrier: it is
        // linearized already. Only never-returned ones remain.
        let early = op.call.saturating_add(duration_max) < barrier;
        if i != o && op.ret.is_none_or(|ret| ret >= barrier) {
            writers.add(i as u32, op);
        }
        if early {
            for (j, op) in ops[..i].iter().enumerate() {
                if op.ret.is_none() {
                    writers.add(j as u32, op);
                }
            }
            break;
        }
    }
    writers
}

impl Writers {
    fn add(&mut self, i: u32, op: &Operation) {
        match &op.input {
            Input::Put { .. } | Input::Cas { .. } => self.values.push(i),
            Input::Append { suffix, .. } if !suffix.is_empty() => self.appends.push(i),
            Input::Delete { .. } => self.delete = true,
            Input::Get { .. } | Input::Append { .. } => {}
        }
    }
}

/// Whether the writers can turn `current` into `target` (an over-approximation: any writer
/// in any order, appends any number of times).
fn reachable(
    ops: &[&Operation],
    target: &Target,
    writers: &Writers,
    current: Option<&[u8]>,
) -> bool {
    let Target::Value(target) = target else {
        return current.is_none() || writers.delete;
    };
    if current == Some(target.as_slice()) {
        return true;
    }
    // reach[i]: some sequence of writes leaves the first i bytes of the target.
    let mut reach = vec![false; target.len() + 1];
    reach[0] = current.is_none() || writers.delete;
    let values = writers
        .values
        .iter()
        .map(|&i| match &ops[i as usize].input {
            Input::Put { value, .. } | Input::Cas { new: value, .. } => value.as_slice(),
            _ => unreachable!("values are puts and cases"),
        });
    for base in current.into_iter().chain(values) {
        if target.starts_with(base) {
            reach[base.len()] = true;
        }
    }
    let suffixes: Vec<&[u8]> = writers
        .appends
        .iter()
        .map(|&i| match &ops[i as usize].input {
            Input::Append { suffix, .. } => suffix.as_slice(),
            _ => unreachable!("appends"),
        })
        .collect();
    for i in 0..target.len() {
        if reach[i] {
            for suffix in &suffixes {
                if target[i..].starts_with(suffix) {
                    reach[i + suffix.len()] = true;
                }
            }
        }
    }
    reach[target.len()]
}

/// The first completed operation (in return order) observing a value that no sequence of
/// the key's writes could build, if any.
pub(crate) fn unproducible(ops: &[&Operation]) -> Option<usize> {
    let mut values: HashSet<&[u8]> = HashSet::new();
    let mut suffixes: HashMap<usize, HashSet<&[u8]>> = HashMap::new();
    for op in ops {
        match &op.input {
            Input::Put { value, .. } | Input::Cas { new: value, .. } => {
                values.insert(value);
            }
            Input::Append { suffix, .. } if !suffix.is_empty() => {
                suffixes.entry(suffix.len()).or_default().insert(suffix);
            }
            _ => {}
        }
    }
    // Hashing every prefix of a long value costs O(len²): look only at prefixes whose length
    // some written value has.
    let value_lens: HashSet<usize> = values.iter().map(|v| v.len()).collect();
    let buildable = |target: &[u8]| {
        // reach[i]: the first i bytes can be the key's value (from absent, i = 0).
        let mut reach = vec![false; target.len() + 1];
        reach[0] = true;
        for i in 1..=target.len() {
            reach[i] = (value_lens.contains(&i) && values.contains(&target[..i]))
                || suffixes.iter().any(|(&len, set)| {
                    len <= i && reach[i - len] && set.contains(&target[i - len..i])
                });
        }
        reach[target.len()]
    };
    let mut observers: Vec<usize> = (0..ops.len())
        .filter(|&i| matches!(target(ops[i]), Some(Target::Value(_))))
        .collect();
    observers.sort_by_key(|&i| (ops[i].ret, i));
    observers.into_iter().find(|&i| match target(ops[i]) {
        Some(Target::Value(v)) => !buildable(&v),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(input: Input, output: Output, call: u64, ret: u64) -> Operation {
        Operation::completed(0, input, output, call, ret)
    }

    fn feasible(ops: &[Operation], o: u32, b: u32, current: Option<&str>) -> bool {
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut states = crate::rules::Rules::compile(&refs).states;
        let state = states.intern(current.map(str::as_bytes));
        Lookahead::new(&refs).feasible(&refs, &states, (o, b), state)
    }

    #[test]
    fn a_read_is_reachable_through_overlapping_puts_deletes_and_appends() {
        let ops = [
            op(Input::put("k", "ab;"), Output::Written, 0, 5),
            op(Input::append("k", "c;"), Output::Written, 1, 10),
            op(Input::get("k"), Output::value("ab;c;c;"), 2, 10),
        ];
        assert!(feasible(&ops, 2, 0, Some("zz")), "put then appends");
        assert!(
            !feasible(&ops, 2, 1, Some("zz")),
            "the put returned before the barrier"
        );
        assert!(feasible(&ops, 2, 1, Some("ab;")), "appends extend");
        assert!(!feasible(&ops, 2, 1, Some("x")), "appends only extend");
        let ops = [
            op(Input::delete("k"), Output::Deleted(1), 0, 5),
            op(Input::append("k", "c;"), Output::Written, 1, 10),
            op(Input::get("k"), Output::value("c;"), 2, 10),
            op(Input::get("k"), Output::absent(), 2, 10),
        ];
        assert!(feasible(&ops, 2, 0, Some("x")), "delete then append");
        assert!(feasible(&ops, 3, 0, Some("x")), "delete");
        assert!(
            !feasible(&ops, 3, 1, Some("x")),
            "the delete returned before the barrier"
        );
    }

    #[test]
    fn values_no_write_can_build_are_unproducible() {
        let ops = [
            op(Input::put("k", "a;"), Output::Written, 0, 1),
            op(Input::append("k", "b;"), Output::Written, 2, 3),
            op(Input::get("k"), Output::value("a;b;b;"), 4, 5),
            op(Input::get("k"), Output::value("b;"), 4, 6),
            op(Input::get("k"), Output::value("a;c;"), 4, 7),
            op(Input::get("k"), Output::value("never"), 4, 8),
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        assert_eq!(unproducible(&refs), Some(4));
        assert_eq!(unproducible(&refs[..4]), None);
    }

    #[test]
    fn never_returned_writers_count_however_early_they_were_invoked() {
        let ops = [
            Operation::pending(1, Input::put("k", "late"), 0),
            op(Input::put("k", "x"), Output::Written, 100, 110),
            op(Input::get("k"), Output::value("late"), 1000, 1010),
            op(Input::get("k"), Output::value("never"), 1000, 1010),
        ];
        assert!(feasible(&ops, 2, 2, Some("x")));
        assert!(!feasible(&ops, 3, 2, Some("x")));
    }
}
