//! A history recorder stamped by the wall clock, for real-process harnesses.
//!
//! Owns: [`TimedHistory`], a [`History`] whose times are nanoseconds since the recorder was
//! created, read from `std::time::Instant` (monotonic).
//!
//! This is the only module of the crate that reads a clock. Must never: be used by the
//! checker itself, or by deterministic code (the simulator records virtual time through
//! [`History`] directly).

use std::time::Instant;

use crate::history::{History, OpId, Operation};
use crate::model::{Input, Output};

/// A [`History`] that reads its own times: `invoke` before sending, `complete` on reply.
#[derive(Debug)]
pub struct TimedHistory {
    start: Instant,
    history: History,
}

impl Default for TimedHistory {
    fn default() -> Self {
        Self::new()
    }
}

impl TimedHistory {
    /// An empty recorder; time 0 is now.
    pub fn new() -> Self {
        TimedHistory {
            start: Instant::now(),
            history: History::new(),
        }
    }

    /// Records that `client` invokes `input` now (call this before sending the request).
    pub fn invoke(&self, client: u64, input: Input) -> OpId {
        let call = self.now_ns();
        self.history.invoke(client, input, call)
    }

    /// Records that operation `id` returned `output` now (call this after the reply arrived).
    pub fn complete(&self, id: OpId, output: Output) {
        let ret = self.now_ns();
        self.history.complete(id, output, ret);
    }

    /// See [`History::cancel`].
    pub fn cancel(&self, id: OpId) {
        self.history.cancel(id);
    }

    /// The recorded operations, times in nanoseconds since [`TimedHistory::new`].
    pub fn operations(&self) -> Vec<Operation> {
        self.history.operations()
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_monotonic_times() {
        let history = TimedHistory::new();
        let a = history.invoke(1, Input::put("k", "v"));
        history.complete(a, Output::Written);
        let b = history.invoke(1, Input::get("k"));
        let ops = history.operations();
        assert_eq!(ops.len(), 2);
        assert!(ops[0].call <= ops[0].ret.unwrap());
        assert!(ops[0].ret.unwrap() <= ops[1].call);
        assert_eq!(b, OpId(1));
        assert!(ops[1].ret.is_none());
    }
}
