//! The search: is one key's history linearizable?
//!
//! Owns: Wing & Gong's backtracking search with Lowe's just-in-time linearization and
//! memoization, in the shape porcupine uses. Completed operations become a doubly linked list
//! of call and return events in time order. Only an operation whose call event comes before
//! the first return event still in the list may be linearized next: its call precedes the
//! earliest return of everything not yet linearized, so real-time order holds by
//! construction. Linearizing an operation lifts its events out of the list; reaching a return
//! event means its operation cannot be placed, so the search backtracks. Every reached
//! configuration goes to the [`Memo`]; one it dominates is never explored again. After each
//! step the [`Lookahead`] checks that the next observer can still be satisfied.
//!
//! Operations that never returned live in a second list, sorted by call: they return at
//! infinity, so they never bound the others, and they may stay unlinearized — the search
//! succeeds once every completed operation is linearized. At each point they are tried
//! before the completed candidates (an operation in flight most likely took effect early,
//! which finds linearizations fastest), subject to the reductions in [`reduce`].
//!
//! Must never: read a clock (the caller's `stop` callback and the step and memory budgets are
//! the only ways out), use randomness (Zobrist keys are a fixed function of an operation's
//! position), or format text (`explain` does that from [`Verdict::Illegal`]).

use crate::history::Operation;
use crate::lookahead::{self, Lookahead};
use crate::memo::Memo;
use crate::model::KeyState;
use crate::rules::{Rules, StateId, ABSENT};

mod reduce;
use reduce::Facts;

/// The search's limits, shared across the keys of one check.
pub(crate) struct Budget<'a> {
    pub steps_left: u64,
    pub memo_bytes_max: usize,
    pub stop_poll_steps: u64,
    pub stop: &'a mut dyn FnMut() -> bool,
}

/// Why a search gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exhausted {
    Steps,
    Memory,
    Stopped,
}

/// The outcome for one key.
#[derive(Debug)]
pub(crate) enum Verdict {
    Linearizable,
    /// Not linearizable. `order` is a longest linearizable prefix (indexes into the key's
    /// operations, in linearization order) and `state` the model after it.
    Illegal {
        order: Vec<usize>,
        state: KeyState,
    },
    /// Not linearizable: operation `op` observed a value no write of the key could build.
    Unproducible {
        op: usize,
    },
    Exhausted(Exhausted),
}

/// Searches one key's operations, which must be sorted by call time. Returns the verdict
/// and the number of steps taken.
pub(crate) fn search(ops: &[&Operation], budget: &mut Budget<'_>) -> (Verdict, u64) {
    assert!(
        ops.windows(2).all(|w| w[0].call <= w[1].call),
        "a key's operations are sorted by call"
    );
    assert!(
        ops.len() < (u32::MAX / 2) as usize,
        "too many operations on one key"
    );
    if let Some(op) = lookahead::unproducible(ops) {
        return (Verdict::Unproducible { op }, 0);
    }
    let mut search = Search::new(ops);
    let verdict = search.run(budget);
    (verdict, search.steps)
}

const NIL: u32 = u32::MAX;
/// How many events the lookahead scans for the next observer.
const OBSERVER_SCAN_MAX: usize = 256;
/// Whether never-returned operations are tried before completed ones at each point.
const PENDING_FIRST: bool = true;

/// Where the search looks for its next candidate.
#[derive(Clone, Copy)]
enum Cursor {
    /// At this event of the completed list.
    Completed(u32),
    /// At this node of the never-returned list; candidates are invoked by `barrier`, the
    /// earliest return among completed operations not linearized.
    Pending { node: u32, barrier: u64 },
}

/// One linearized operation, with what undoing it restores.
struct Frame {
    op: u32,
    /// Whether a never-returned operation was linearized after the last operation whose
    /// output depends on the state (up to and including this one).
    unobserved_pending: bool,
    before: StateId,
    first_open: u32,
    end: u32,
    barrier: u64,
}

struct Search<'h> {
    ops: &'h [&'h Operation],
    rules: Rules,
    /// What the reductions for never-returned operations know of each operation.
    facts: Facts,
    /// Per operation: its index among the completed ones or among the never-returned ones.
    slot: Vec<u32>,
    /// Operation of each completed slot and of each never-returned slot (both in call order).
    completed_ops: Vec<u32>,
    pending_ops: Vec<u32>,
    /// Completed events: entry `2c` is completed slot c's call, `2c + 1` its return; the last
    /// entry is the sentinel before the first event.
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Never-returned nodes by slot, the last one the sentinel.
    pnext: Vec<u32>,
    pprev: Vec<u32>,
    /// The completed slots linearized, the first one not, and one past the last one that is.
    done: Vec<u64>,
    first_open: u32,
    end: u32,
    done_hash: u64,
    /// The never-returned slots linearized.
    pending_done: Vec<u64>,
    state: StateId,
    stack: Vec<Frame>,
    memo: Memo,
    lookahead: Lookahead,
    best: Best,
    /// How many completed and never-returned operations are linearized.
    completed_done: u32,
    pending_done_count: u32,
    /// Scratch: the compact form of `done` the memo stores.
    encoded: Vec<u32>,
    steps: u64,
}

impl<'h> Search<'h> {
    fn new(ops: &'h [&'h Operation]) -> Self {
        let mut slot = Vec::with_capacity(ops.len());
        let (mut completed_ops, mut pending_ops) = (Vec::new(), Vec::new());
        for (i, op) in ops.iter().enumerate() {
            let list = if op.ret.is_some() {
                &mut completed_ops
            } else {
                &mut pending_ops
            };
            slot.push(list.len() as u32);
            list.push(i as u32);
        }
        let (next, prev) = completed_events(ops, &completed_ops);
        // The never-returned list: nodes in slot (= call) order after the sentinel `np`.
        let np = pending_ops.len() as u32;
        let pnext: Vec<u32> = (0..np)
            .map(|p| if p + 1 < np { p + 1 } else { NIL })
            .chain([if np > 0 { 0 } else { NIL }])
            .collect();
        let pprev: Vec<u32> = (0..=np).map(|p| if p == 0 { np } else { p - 1 }).collect();
        Search {
            ops,
            rules: Rules::compile(ops),
            facts: Facts::new(ops),
            lookahead: Lookahead::new(ops),
            best: Best {
                completed: 0,
                pending: 0,
                order: Vec::new(),
                valid: 0,
                state: ABSENT,
            },
            completed_done: 0,
            pending_done_count: 0,
            slot,
            done: vec![0; completed_ops.len().div_ceil(64)],
            pending_done: vec![0; (np as usize).div_ceil(64)],
            memo: Memo::new((np as usize).div_ceil(64)),
            completed_ops,
            pending_ops,
            next,
            prev,
            pnext,
            pprev,
            first_open: 0,
            end: 0,
            done_hash: 0,
            state: ABSENT,
            stack: Vec::with_capacity(ops.len()),
            encoded: Vec::new(),
            steps: 0,
        }
    }

    fn run(&mut self, budget: &mut Budget<'_>) -> Verdict {
        let completed_total = self.completed_ops.len() as u32;
        let mut cursor = self.first_cursor();
        loop {
            if self.first_open == completed_total {
                return Verdict::Linearizable;
            }
            if let Some(exhausted) = self.tick(budget) {
                return Verdict::Exhausted(exhausted);
            }
            cursor = match self.advance(cursor, budget) {
                Ok(Some(cursor)) => cursor,
                // Every candidate at this point was tried: backtrack.
                Ok(None) => match self.backtrack() {
                    Some(cursor) => cursor,
                    None => {
                        let best = &self.best;
                        return Verdict::Illegal {
                            order: best.order.iter().map(|&op| op as usize).collect(),
                            state: self.rules.states.state(best.state),
                        };
                    }
                },
                Err(exhausted) => return Verdict::Exhausted(exhausted),
            };
        }
    }

    /// Tries the candidate under the cursor; returns where to look next, `None` when the
    /// candidates at this point are exhausted.
    fn advance(
        &mut self,
        cursor: Cursor,
        budget: &Budget<'_>,
    ) -> Result<Option<Cursor>, Exhausted> {
        let next = match cursor {
            Cursor::Completed(entry) if is_call(entry) => {
                let op = self.completed_ops[(entry / 2) as usize];
                match self.push(op, 0, budget)? {
                    true => self.first_cursor(),
                    false => Cursor::Completed(self.next[entry as usize]),
                }
            }
            Cursor::Completed(_) if PENDING_FIRST => return Ok(None),
            Cursor::Completed(entry) => Cursor::Pending {
                node: self.pnext[self.pending_ops.len()],
                barrier: self.return_time(entry),
            },
            Cursor::Pending { node, barrier }
                if node != NIL
                    && self.ops[self.pending_ops[node as usize] as usize].call <= barrier =>
            {
                let op = self.pending_ops[node as usize];
                let allowed = self.twin_first(op)
                    && (!self.facts.invisible[op as usize] || self.needed(op, barrier));
                match allowed && self.push(op, barrier, budget)? {
                    true => self.first_cursor(),
                    false => Cursor::Pending {
                        node: self.pnext[node as usize],
                        barrier,
                    },
                }
            }
            Cursor::Pending { .. } if PENDING_FIRST => {
                Cursor::Completed(self.next[2 * self.completed_ops.len()])
            }
            Cursor::Pending { .. } => return Ok(None),
        };
        Ok(Some(next))
    }

    /// Undoes the last linearization; the cursor resumes after the undone operation.
    fn backtrack(&mut self) -> Option<Cursor> {
        let frame = self.pop()?;
        let slot = self.slot[frame.op as usize];
        Some(if self.ops[frame.op as usize].ret.is_some() {
            Cursor::Completed(self.next[2 * slot as usize])
        } else {
            Cursor::Pending {
                node: self.pnext[slot as usize],
                barrier: frame.barrier,
            }
        })
    }

    /// Where the candidates at the current point start.
    fn first_cursor(&self) -> Cursor {
        let head = self.next[2 * self.completed_ops.len()];
        if !PENDING_FIRST {
            return Cursor::Completed(head);
        }
        let mut entry = head;
        while entry != NIL && is_call(entry) {
            entry = self.next[entry as usize];
        }
        Cursor::Pending {
            node: self.pnext[self.pending_ops.len()],
            barrier: if entry == NIL {
                u64::MAX
            } else {
                self.return_time(entry)
            },
        }
    }

    /// The return time of the completed operation whose return event is `entry`.
    fn return_time(&self, entry: u32) -> u64 {
        let op = self.completed_ops[(entry / 2) as usize];
        self.ops[op as usize].ret.expect("completed")
    }

    fn tick(&mut self, budget: &mut Budget<'_>) -> Option<Exhausted> {
        if budget.steps_left == 0 {
            return Some(Exhausted::Steps);
        }
        budget.steps_left -= 1;
        self.steps += 1;
        if self.steps.is_multiple_of(budget.stop_poll_steps.max(1)) && (budget.stop)() {
            return Some(Exhausted::Stopped);
        }
        None
    }

    /// Linearizes `op` next if the model allows it and the configuration is new. `Err` when
    /// the memo outgrew its budget.
    fn push(&mut self, op: u32, barrier: u64, budget: &Budget<'_>) -> Result<bool, Exhausted> {
        if self.erases_pending(op) {
            return Ok(false);
        }
        let Some(after) = self.rules.apply(op, self.state) else {
            return Ok(false);
        };
        let kind = &self.facts.kinds[op as usize];
        let unobserved_pending = kind.oblivious
            && (self.ops[op as usize].ret.is_none()
                || self.stack.last().is_some_and(|top| top.unobserved_pending));
        let frame = Frame {
            op,
            unobserved_pending,
            before: self.state,
            first_open: self.first_open,
            end: self.end,
            barrier,
        };
        self.mark(op);
        self.encode();
        let hash = self.done_hash ^ mix(after);
        if !self
            .memo
            .insert(hash, after, &self.encoded, &self.pending_done)
        {
            self.unmark(&frame);
            return Ok(false);
        }
        if self.memo.bytes() > budget.memo_bytes_max {
            return Err(Exhausted::Memory);
        }
        self.state = after;
        self.lift(op);
        self.stack.push(frame);
        let (completed, pending) = (self.completed_done, self.pending_done_count);
        self.best
            .reached(&self.stack, completed, pending, self.state);
        if !self.observer_feasible() {
            self.pop();
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether the next completed operation that observes the state can still be satisfied
    /// (see `lookahead`).
    fn observer_feasible(&mut self) -> bool {
        let mut entry = self.next[2 * self.completed_ops.len()];
        let mut blocking = None;
        for _ in 0..OBSERVER_SCAN_MAX {
            if entry == NIL {
                return true;
            }
            if !is_call(entry) {
                let op = self.completed_ops[(entry / 2) as usize];
                let b = *blocking.get_or_insert(op);
                if self.lookahead.observes(op) {
                    let (ops, states) = (self.ops, &self.rules.states);
                    return self.lookahead.feasible(ops, states, (op, b), self.state);
                }
            }
            entry = self.next[entry as usize];
        }
        true
    }

    fn pop(&mut self) -> Option<Frame> {
        let frame = self.stack.pop()?;
        self.best.popped(self.stack.len());
        self.unmark(&frame);
        self.unlift(frame.op);
        self.state = frame.before;
        Some(frame)
    }

    fn mark(&mut self, op: u32) {
        let slot = self.slot[op as usize];
        if self.ops[op as usize].ret.is_none() {
            toggle(&mut self.pending_done, slot);
            self.pending_done_count += 1;
            return;
        }
        self.completed_done += 1;
        toggle(&mut self.done, slot);
        self.done_hash ^= zobrist(slot);
        self.end = self.end.max(slot + 1);
        if slot == self.first_open {
            self.first_open = first_zero(&self.done, slot, self.completed_ops.len() as u32);
        }
    }

    fn unmark(&mut self, frame: &Frame) {
        let slot = self.slot[frame.op as usize];
        if self.ops[frame.op as usize].ret.is_none() {
            toggle(&mut self.pending_done, slot);
            self.pending_done_count -= 1;
            return;
        }
        self.completed_done -= 1;
        toggle(&mut self.done, slot);
        self.done_hash ^= zobrist(slot);
        self.first_open = frame.first_open;
        self.end = frame.end;
    }

    /// `[first open slot, linearized slots after it...]`: every slot before the first open
    /// one is linearized, so this names the set exactly.
    fn encode(&mut self) {
        self.encoded.clear();
        self.encoded.push(self.first_open);
        let (from, to) = (self.first_open + 1, self.end);
        if from >= to {
            return;
        }
        for w in (from / 64) as usize..=((to - 1) / 64) as usize {
            let mut word = self.done[w];
            if w == (from / 64) as usize {
                word &= !0u64 << (from % 64);
            }
            while word != 0 {
                self.encoded.push(w as u32 * 64 + word.trailing_zeros());
                word &= word - 1;
            }
        }
    }

    fn lift(&mut self, op: u32) {
        let slot = self.slot[op as usize];
        if self.ops[op as usize].ret.is_none() {
            unlink(&mut self.pnext, &mut self.pprev, slot);
        } else {
            unlink(&mut self.next, &mut self.prev, 2 * slot);
            unlink(&mut self.next, &mut self.prev, 2 * slot + 1);
        }
    }

    fn unlift(&mut self, op: u32) {
        let slot = self.slot[op as usize];
        if self.ops[op as usize].ret.is_none() {
            relink(&mut self.pnext, &mut self.pprev, slot);
        } else {
            relink(&mut self.next, &mut self.prev, 2 * slot + 1);
            relink(&mut self.next, &mut self.prev, 2 * slot);
        }
    }
}

/// The completed operations' call and return events as a linked list in time order (calls
/// before returns at equal times, so those overlap), after a sentinel head.
fn completed_events(ops: &[&Operation], completed_ops: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let nc = completed_ops.len();
    let mut events: Vec<(u64, u8, u32)> = Vec::with_capacity(2 * nc);
    for (c, &op) in completed_ops.iter().enumerate() {
        let op = ops[op as usize];
        events.push((op.call, 0, 2 * c as u32));
        events.push((op.ret.expect("completed"), 1, 2 * c as u32 + 1));
    }
    events.sort_unstable();
    let head = 2 * nc as u32;
    let mut next = vec![NIL; 2 * nc + 1];
    let mut prev = vec![NIL; 2 * nc + 1];
    let mut last = head;
    for &(_, _, entry) in &events {
        next[last as usize] = entry;
        prev[entry as usize] = last;
        last = entry;
    }
    (next, prev)
}

fn unlink(next: &mut [u32], prev: &mut [u32], entry: u32) {
    let (p, n) = (prev[entry as usize], next[entry as usize]);
    next[p as usize] = n;
    if n != NIL {
        prev[n as usize] = p;
    }
}

fn relink(next: &mut [u32], prev: &mut [u32], entry: u32) {
    let (p, n) = (prev[entry as usize], next[entry as usize]);
    next[p as usize] = entry;
    if n != NIL {
        prev[n as usize] = entry;
    }
}

/// The best linearizable prefix seen: the most completed operations, then the fewest
/// never-returned ones. `order` agrees with the stack on its first `valid` entries, so
/// recording a new best copies only what changed since.
struct Best {
    completed: u32,
    pending: u32,
    order: Vec<u32>,
    valid: usize,
    state: StateId,
}

impl Best {
    fn reached(&mut self, stack: &[Frame], completed: u32, pending: u32, state: StateId) {
        let better =
            completed > self.completed || (completed == self.completed && pending < self.pending);
        if !better {
            return;
        }
        self.order.truncate(self.valid);
        self.order
            .extend(stack[self.valid..].iter().map(|frame| frame.op));
        self.valid = stack.len();
        (self.completed, self.pending, self.state) = (completed, pending, state);
    }

    fn popped(&mut self, len: usize) {
        self.valid = self.valid.min(len);
    }
}

/// Whether completed-list entry `entry` is a call event (calls are even, returns odd).
fn is_call(entry: u32) -> bool {
    entry & 1 == 0
}

fn toggle(bits: &mut [u64], slot: u32) {
    bits[(slot / 64) as usize] ^= 1 << (slot % 64);
}

/// The first clear bit at or after `from`, or `len` if all are set.
fn first_zero(bits: &[u64], from: u32, len: u32) -> u32 {
    let mut w = (from / 64) as usize;
    let mut word = !bits[w] & (!0u64 << (from % 64));
    loop {
        if word != 0 {
            return (w as u32 * 64 + word.trailing_zeros()).min(len);
        }
        w += 1;
        if w == bits.len() {
            return len;
        }
        word = !bits[w];
    }
}

/// splitmix64's finalizer: a fixed, well-mixed function of its input.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn zobrist(slot: u32) -> u64 {
    splitmix(u64::from(slot))
}

fn mix(state: StateId) -> u64 {
    splitmix(u64::from(state) ^ 0xA5A5_A5A5_0000_0000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Input, Output};

    fn run(ops: &[Operation]) -> Verdict {
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut stop = || false;
        let mut budget = Budget {
            steps_left: 1_000_000,
            memo_bytes_max: 1 << 30,
            stop_poll_steps: 1024,
            stop: &mut stop,
        };
        search(&refs, &mut budget).0
    }

    fn done(input: Input, output: Output, call: u64, ret: u64) -> Operation {
        Operation::completed(0, input, output, call, ret)
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let ops = [
            done(Input::put("k", "a"), Output::Written, 0, 1),
            done(Input::get("k"), Output::value("a"), 2, 3),
        ];
        assert!(matches!(run(&ops), Verdict::Linearizable));
    }

    #[test]
    fn deepest_prefix_and_state_are_reported() {
        let ops = [
            done(Input::put("k", "a"), Output::Written, 0, 1),
            done(Input::put("k", "b"), Output::Written, 2, 3),
            done(Input::get("k"), Output::value("a"), 4, 5),
        ];
        let Verdict::Illegal { order, state } = run(&ops) else {
            panic!("a stale read must be illegal");
        };
        assert_eq!(order, vec![0, 1]);
        assert_eq!(state, KeyState(Some(b"b".to_vec())));
    }

    #[test]
    fn equal_times_overlap() {
        // The read returns at 5 and the put is invoked at 5: they overlap, so the read may
        // see the put.
        let ops = [
            done(Input::get("k"), Output::value("a"), 0, 5),
            done(Input::put("k", "a"), Output::Written, 5, 6),
        ];
        assert!(matches!(run(&ops), Verdict::Linearizable));
    }

    #[test]
    fn never_returned_operations_apply_in_any_order_or_not_at_all() {
        let ops = [
            Operation::pending(1, Input::append("k", "a"), 0),
            Operation::pending(2, Input::append("k", "b"), 1),
            Operation::pending(3, Input::put("k", "x"), 2),
            done(Input::get("k"), Output::value("xba"), 10, 11),
            done(Input::get("k"), Output::value("xba"), 12, 13),
        ];
        assert!(matches!(run(&ops), Verdict::Linearizable));
        let ops = [
            Operation::pending(1, Input::append("k", "a"), 0),
            done(Input::get("k"), Output::absent(), 10, 11),
        ];
        assert!(matches!(run(&ops), Verdict::Linearizable));
    }

    #[test]
    fn a_blind_write_after_another_pending_one_is_found_alone() {
        // Only "Put(y) alone" explains the read; "Put(x); Put(y)" is skipped as dominated.
        let ops = [
            Operation::pending(1, Input::put("k", "x"), 0),
            Operation::pending(2, Input::put("k", "y"), 1),
            done(Input::get("k"), Output::value("y"), 10, 11),
            done(Input::get("k"), Output::value("x"), 12, 13),
            done(Input::get("k"), Output::value("x"), 14, 15),
        ];
        assert!(matches!(run(&ops), Verdict::Linearizable));
        let ops = [
            Operation::pending(1, Input::put("k", "x"), 0),
            Operation::pending(2, Input::put("k", "y"), 1),
            done(Input::get("k"), Output::value("y"), 10, 11),
            done(Input::get("k"), Output::value("x"), 12, 13),
            done(Input::get("k"), Output::value("y"), 14, 15),
        ];
        assert!(matches!(run(&ops), Verdict::Illegal { .. }));
    }

    #[test]
    fn first_zero_finds_the_first_open_slot() {
        assert_eq!(first_zero(&[0b0111], 0, 64), 3);
        assert_eq!(first_zero(&[!0, 0b1], 5, 100), 65);
        assert_eq!(first_zero(&[!0, !0], 0, 128), 128);
        assert_eq!(first_zero(&[!0, 0b1], 0, 65), 65);
    }
}
