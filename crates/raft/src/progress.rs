//! The leader's view of each follower: how far its log matches, what to send next, and how
//! much is in flight.
//!
//! Owns: the probe / replicate / snapshot states and the in-flight window. Must never: decide
//! commitment (that is the quorum computation in `replication`) or build messages.

use crate::types::LogIndex;
use std::collections::VecDeque;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ProgressState {
    /// Searching for the match point: one append in flight at a time.
    Probe,
    /// Streaming: pipelined appends, bounded by the in-flight window.
    Replicate,
    /// Sending a snapshot whose last index is `index`; `offset` bytes acknowledged.
    Snapshot { index: LogIndex, offset: u64 },
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to match the leader's log.
    pub(crate) matched: LogIndex,
    /// Next index to send.
    pub(crate) next: LogIndex,
    pub(crate) state: ProgressState,
    /// Probe state: an append is outstanding; wait for its answer or the next heartbeat.
    pub(crate) probe_sent: bool,
    /// Replicate state: last index of each append in flight.
    inflight: VecDeque<LogIndex>,
    inflight_max: usize,
    /// Heard from since the last CheckQuorum round.
    pub(crate) recent_active: bool,
    /// Heartbeat rounds in a row with appends in flight and no acknowledgement.
    pub(crate) stalled_heartbeats: u32,
    /// Highest ReadIndex round this follower acknowledged in the current term.
    pub(crate) read_seq_acked: u64,
}

impl Progress {
    pub(crate) fn new(next: LogIndex, inflight_max: usize) -> Self {
        Progress {
            matched: LogIndex(0),
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            inflight_max,
            recent_active: false,
            stalled_heartbeats: 0,
            read_seq_acked: 0,
        }
    }

    /// True when no append may be sent now.
    pub(crate) fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflight.len() >= self.inflight_max,
            ProgressState::Snapshot { .. } => true,
        }
    }

    pub(crate) fn has_inflight(&self) -> bool {
        !self.inflight.is_empty()
    }

    /// An append ending at `last` was sent: entries `next..=last`, or none (`last` is
    /// `next - 1`: a nudge after an installed snapshot or before a leadership transfer).
    pub(crate) fn sent_entries(&mut self, last: LogIndex) {
        match self.state {
            ProgressState::Replicate if last < self.next => {
                // An empty append carries no entries to track in the window.
                debug_assert_eq!(last, self.next.prev(), "an append starts at next");
            }
            ProgressState::Replicate => {
                self.next = last.next();
                self.inflight.push_back(last);
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot { .. } => unreachable!("no appends while sending a snapshot"),
        }
    }

    /// The follower acknowledged a match up to `index`. Returns true if `matched` grew.
    pub(crate) fn ack(&mut self, index: LogIndex) -> bool {
        while self.inflight.front().is_some_and(|&i| i <= index) {
            self.inflight.pop_front();
        }
        self.probe_sent = false;
        if index > self.matched {
            self.matched = index;
            self.next = self.next.max(index.next());
            self.stalled_heartbeats = 0;
            return true;
        }
        false
    }

    pub(crate) fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.next = self.matched.next();
        self.probe_sent = false;
        self.inflight.clear();
        self.stalled_heartbeats = 0;
    }

    /// Probe with an explicit next index (after a rejection with a hint).
    pub(crate) fn probe_from(&mut self, next: LogIndex) {
        self.become_probe();
        self.next = next.max(self.matched.next());
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.matched.next();
        self.probe_sent = false;
        self.inflight.clear();
        self.stalled_heartbeats = 0;
    }

    pub(crate) fn become_snapshot(&mut self, index: LogIndex) {
        self.state = ProgressState::Snapshot { index, offset: 0 };
        self.probe_sent = false;
        self.inflight.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_append_while_replicating_takes_no_inflight_slot() {
        let mut pr = Progress::new(LogIndex(1), 1);
        pr.ack(LogIndex(4));
        pr.become_replicate();
        assert_eq!(pr.next, LogIndex(5));
        pr.sent_entries(LogIndex(4)); // nothing new to send
        assert!(!pr.has_inflight() && !pr.is_paused());
        assert_eq!(pr.next, LogIndex(5));
        pr.sent_entries(LogIndex(6));
        assert!(
            pr.has_inflight() && pr.is_paused(),
            "the window of one is full"
        );
        assert_eq!(pr.next, LogIndex(7));
    }
}
