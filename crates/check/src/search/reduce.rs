//! Reductions for never-returned operations: orders the search may skip because another
//! order it also explores reaches the same configuration with fewer of them spent.
//!
//! Owns: three rules, each justified by a linearization the search reaches anyway.
//! - *Erased*: an operation that resets the key (a `Put`, a `Delete`, a successful `Cas`)
//!   right after never-returned ones that nothing observed since — or after which the recent
//!   stack replays without one of them — is skipped: the same order without that operation
//!   leaves the same state, with one fewer never-returned operation used.
//! - *Twins*: never-returned operations with the same input are interchangeable once both
//!   are invoked, so they are used in call order.
//! - *Invisible writes*: a never-returned write whose effect no observer could ever see
//!   (see [`invisible_writes`]) is linearized only where some other candidate behaves
//!   differently after it; anywhere else, moving it later or dropping it does as well.
//!
//! Must never: skip an order unless the search reaches an equivalent one with fewer
//! never-returned operations; the brute-force reference test holds the rules to that.

use std::collections::{HashMap, HashSet};

use super::{is_call, Search, NIL};
use crate::history::Operation;
use crate::model::{Input, Output};
use crate::rules::Rules;

/// How far back the erased rule replays the stack without a never-returned operation.
const REPLAY_FRAMES_MAX: usize = 32;

/// Per-operation facts the rules need, computed once per key.
pub(super) struct Facts {
    pub(super) kinds: Vec<Kind>,
    /// Per never-returned operation: the slot of the previous one with the same input.
    twin_before: Vec<u32>,
    /// Per operation: a never-returned write no observer could see.
    pub(super) invisible: Vec<bool>,
}

impl Facts {
    pub(super) fn new(ops: &[&Operation]) -> Self {
        Facts {
            kinds: ops.iter().map(|op| Kind::of(op)).collect(),
            twin_before: twins(ops),
            invisible: invisible_writes(ops),
        }
    }
}

/// How an operation depends on the state, for `erases_pending`.
pub(super) struct Kind {
    /// The model accepts it from every state (its output says nothing about the state).
    pub(super) oblivious: bool,
    /// Oblivious, and it leaves the same state whatever the state before.
    pub(super) blind: bool,
    /// When the model accepts it, it leaves the same state whatever the state before.
    pub(super) resets: bool,
}

impl Kind {
    fn of(op: &Operation) -> Kind {
        let written = matches!(op.output, None | Some(Output::Written));
        let pending = op.ret.is_none();
        let oblivious =
            pending || (written && matches!(op.input, Input::Put { .. } | Input::Append { .. }));
        let blind = match op.input {
            Input::Put { .. } => oblivious,
            Input::Delete { .. } => pending,
            _ => false,
        };
        let resets = match (&op.input, &op.output) {
            (Input::Put { .. } | Input::Delete { .. }, _) => true,
            (Input::Cas { .. }, Some(Output::Cas { succeeded })) => *succeeded,
            _ => false,
        };
        Kind {
            oblivious,
            blind,
            resets,
        }
    }
}

impl Search<'_> {
    /// Whether linearizing `op` next would erase the effect of a never-returned operation
    /// linearized after the last operation that observed the state. Then the same order
    /// without that operation reaches this configuration with fewer never-returned
    /// operations spent — it dominates, and the search reaches it from the same ancestor.
    pub(super) fn erases_pending(&mut self, op: u32) -> bool {
        let kind = &self.facts.kinds[op as usize];
        if !kind.resets {
            return false;
        }
        if kind.blind && self.stack.last().is_some_and(|top| top.unobserved_pending) {
            return true;
        }
        // Otherwise replay the recent stack without one never-returned operation: if the
        // model still accepts every operation (and `op`), the same state follows.
        let from = self.stack.len().saturating_sub(REPLAY_FRAMES_MAX);
        for j in (from..self.stack.len()).rev() {
            let pending = self.ops[self.stack[j].op as usize].ret.is_none();
            if pending && self.accepted_without(j, op) {
                return true;
            }
        }
        false
    }

    /// Whether the model accepts the stack's operations after frame `j`, then `op`, starting
    /// from the state before frame `j`.
    fn accepted_without(&mut self, j: usize, op: u32) -> bool {
        let mut state = self.stack[j].before;
        let later = self.stack[j + 1..].iter().map(|frame| frame.op);
        for next in later.chain([op]) {
            match self.rules.apply(next, state) {
                Some(after) => state = after,
                None => return false,
            }
        }
        true
    }

    /// Whether no earlier-invoked twin of never-returned `op` (the same input) is still
    /// unlinearized. Twins are interchangeable once both are invoked, so the search uses
    /// them in call order.
    pub(super) fn twin_first(&self, op: u32) -> bool {
        let twin = self.facts.twin_before[op as usize];
        twin == NIL || self.pending_done[(twin / 64) as usize] & (1 << (twin % 64)) != 0
    }

    /// Whether invisible write `op` (never returned) is needed now: some other candidate
    /// behaves differently after it — a completed one the model refuses now but accepts
    /// after it, or a never-returned one that changes the state now but not after it or
    /// the reverse. Otherwise linearizing `op` later (right before the first operation that
    /// does behave differently), or never, does as well: nothing can observe its effect.
    pub(super) fn needed(&mut self, op: u32, barrier: u64) -> bool {
        let before = self.state;
        let after = self
            .rules
            .apply(op, before)
            .expect("a never-returned op applies");
        let head = 2 * self.completed_ops.len();
        let mut entry = self.next[head];
        while entry != NIL && is_call(entry) {
            let other = self.completed_ops[(entry / 2) as usize];
            let now = self.rules.apply(other, before).is_some();
            if !now && self.rules.apply(other, after).is_some() {
                return true;
            }
            entry = self.next[entry as usize];
        }
        let mut node = self.pnext[self.pending_ops.len()];
        while node != NIL {
            let other = self.pending_ops[node as usize];
            if self.ops[other as usize].call > barrier {
                break;
            }
            let changes = |rules: &mut Rules, state| rules.apply(other, state) != Some(state);
            if other != op && changes(&mut self.rules, before) != changes(&mut self.rules, after) {
                return true;
            }
            node = self.pnext[node as usize];
        }
        false
    }
}

/// Per operation: for a never-returned one, the never-returned slot of the last earlier one
/// with the same input (NIL if none, and for completed operations).
fn twins(ops: &[&Operation]) -> Vec<u32> {
    let mut last: HashMap<&Input, u32> = HashMap::new();
    let mut slot = 0;
    ops.iter()
        .map(|op| {
            if op.ret.is_some() {
                return NIL;
            }
            let twin = last.insert(&op.input, slot).unwrap_or(NIL);
            slot += 1;
            twin
        })
        .collect()
}

/// Never-returned writes no observer could ever see directly: an append whose suffix occurs
/// in no value any operation of the key reads or compares against, or a put whose value
/// begins none of them. Until something resets the key, every state after one has that
/// suffix inside or that prefix in front, so only a failed `Cas`, a `Delete`'s count or a
/// never-returned `Cas` can tell whether it happened. Both apply in every state, so one
/// moved later still writes. A `Cas` does not qualify: moved later it may fail, and then
/// its effect on what came between (a failed `Cas` reading a state it made longer) is gone;
/// the brute-force reference found that history.
fn invisible_writes(ops: &[&Operation]) -> Vec<bool> {
    let observed: HashSet<&[u8]> = ops
        .iter()
        .filter_map(|op| match (&op.input, &op.output) {
            (Input::Get { .. }, Some(Output::Value(Some(value)))) => Some(value.as_slice()),
            (
                Input::Cas {
                    expected: Some(e), ..
                },
                _,
            ) => Some(e.as_slice()),
            _ => None,
        })
        .collect();
    ops.iter()
        .map(|op| match (&op.input, op.ret) {
            (Input::Append { suffix, .. }, None) if !suffix.is_empty() => {
                !observed.iter().any(|value| contains(value, suffix))
            }
            (Input::Put { value, .. }, None) => {
                !observed.iter().any(|observed| observed.starts_with(value))
            }
            _ => false,
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    match (std::str::from_utf8(haystack), std::str::from_utf8(needle)) {
        (Ok(haystack), Ok(needle)) => haystack.contains(needle),
        _ => haystack
            .windows(needle.len())
            .any(|window| window == needle),
    }
}
