//! Histories: what clients invoked, when, and what came back.
//!
//! Owns: [`Operation`] (one client call with its invoke and return times) and [`History`],
//! a recorder that many client threads can share (`&History` is `Sync`: one `std` mutex
//! around a vector).
//!
//! Times are whatever monotonic unit the caller uses (virtual ticks in the simulator,
//! nanoseconds in a real-process harness); the caller passes them in. An operation `a`
//! precedes `b` in real time only if `a.ret < b.call` strictly; equal times overlap.
//!
//! Must never: read a clock (see [`crate::realtime`] for the recorder that does), decide
//! linearizability, or reorder or drop a completed operation.

use std::sync::{Mutex, MutexGuard};

use crate::model::{Input, Output};

/// One client operation. `output` and `ret` are both `None` for an operation that never
/// returned (a timeout, a crashed client): it may have taken effect at any time after
/// `call`, or never, and any output it would have produced is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Who issued it (only printed; the checker does not assume one op per client at a time).
    pub client: u64,
    /// What was asked.
    pub input: Input,
    /// What came back, `None` if the operation never returned.
    pub output: Option<Output>,
    /// Invoke time.
    pub call: u64,
    /// Return time, `None` if the operation never returned.
    pub ret: Option<u64>,
}

impl Operation {
    /// A completed operation.
    pub fn completed(client: u64, input: Input, output: Output, call: u64, ret: u64) -> Self {
        Operation {
            client,
            input,
            output: Some(output),
            call,
            ret: Some(ret),
        }
    }

    /// An operation that never returned.
    pub fn pending(client: u64, input: Input, call: u64) -> Self {
        Operation {
            client,
            input,
            output: None,
            call,
            ret: None,
        }
    }

    /// Whether the operation returned.
    pub fn is_completed(&self) -> bool {
        self.ret.is_some()
    }
}

/// The handle [`History::invoke`] returns, to complete or cancel that operation later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub usize);

/// A thread-safe history recorder. Record the invoke time before sending a request and the
/// return time after its reply arrived; an operation never completed stays pending.
#[derive(Debug, Default)]
pub struct History {
    slots: Mutex<Vec<Slot>>,
}

#[derive(Debug)]
enum Slot {
    Recorded(Operation),
    /// The operation certainly had no effect (e.g. refused before it was proposed).
    Cancelled,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `client` invoked `input` at time `call`.
    pub fn invoke(&self, client: u64, input: Input, call: u64) -> OpId {
        let mut slots = self.lock();
        slots.push(Slot::Recorded(Operation::pending(client, input, call)));
        OpId(slots.len() - 1)
    }

    /// Records that operation `id` returned `output` at time `ret`.
    ///
    /// # Panics
    /// If `id` was already completed or cancelled, or `ret < call` (a recording bug).
    pub fn complete(&self, id: OpId, output: Output, ret: u64) {
        let mut slots = self.lock();
        let Slot::Recorded(op) = &mut slots[id.0] else {
            panic!("History::complete: operation {} was cancelled", id.0);
        };
        assert!(
            op.ret.is_none(),
            "History::complete: operation {} completed twice",
            id.0
        );
        assert!(
            ret >= op.call,
            "History::complete: operation {} returns at {ret} before its call at {}",
            id.0,
            op.call
        );
        op.output = Some(output);
        op.ret = Some(ret);
    }

    /// Removes operation `id`: it definitely did not take effect (for example the server
    /// refused it before proposing it). A timeout is not a cancellation: leave it pending.
    ///
    /// # Panics
    /// If `id` already completed.
    pub fn cancel(&self, id: OpId) {
        let mut slots = self.lock();
        if let Slot::Recorded(op) = &slots[id.0] {
            assert!(
                op.ret.is_none(),
                "History::cancel: operation {} already completed",
                id.0
            );
        }
        slots[id.0] = Slot::Cancelled;
    }

    /// The recorded operations so far, in invocation order (cancelled ones left out).
    pub fn operations(&self) -> Vec<Operation> {
        let slots = self.lock();
        slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Recorded(op) => Some(op.clone()),
                Slot::Cancelled => None,
            })
            .collect()
    }

    /// Number of operations recorded (including cancelled ones).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        // A client thread that panicked mid-record leaves a consistent vector behind.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_completed_pending_and_cancelled_operations() {
        let history = History::new();
        let put = history.invoke(1, Input::put("x", "a"), 10);
        let get = history.invoke(2, Input::get("x"), 11);
        let refused = history.invoke(3, Input::delete("x"), 12);
        history.complete(put, Output::Written, 20);
        history.cancel(refused);
        let ops = history.operations();
        assert_eq!(
            ops,
            vec![
                Operation::completed(1, Input::put("x", "a"), Output::Written, 10, 20),
                Operation::pending(2, Input::get("x"), 11),
            ]
        );
        assert_eq!(get, OpId(1));
    }

    #[test]
    fn many_threads_share_one_recorder() {
        let history = History::new();
        std::thread::scope(|scope| {
            for client in 0..4u64 {
                let history = &history;
                scope.spawn(move || {
                    for i in 0..100 {
                        let id = history.invoke(client, Input::get("k"), i);
                        history.complete(id, Output::absent(), i + 1);
                    }
                });
            }
        });
        assert_eq!(history.operations().len(), 400);
        assert!(history.operations().iter().all(Operation::is_completed));
    }

    #[test]
    #[should_panic(expected = "completed twice")]
    fn completing_twice_is_a_recording_bug() {
        let history = History::new();
        let id = history.invoke(1, Input::get("k"), 0);
        history.complete(id, Output::absent(), 1);
        history.complete(id, Output::absent(), 2);
    }
}
