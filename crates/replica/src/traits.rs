//! The seams a [`crate::Replica`] is generic over.
//!
//! Owns: the [`StateMachine`] and [`Transport`] contracts. Must never: grow methods that need
//! async or a clock — a node's logic stays synchronous and deterministic.

use bytes::Bytes;
use raft::{Entry, EntryKind, LogIndex, Message};

/// The replicated application. Must be deterministic: the same entries in the same order
/// give the same state and the same results on every node.
pub trait StateMachine {
    /// Apply the command at `index` and return its result for the waiting client.
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Bytes;

    /// Serialize the whole state (everything applied so far).
    fn snapshot(&self) -> Bytes;

    /// The state as it is now, serialized later and possibly on another thread: the closure
    /// returns what [`StateMachine::snapshot`] returns now, whatever is applied meanwhile. A
    /// machine that can copy its state faster than it serializes it overrides this, so that
    /// a background snapshot holds up the node only for the copy. The default serializes now.
    fn snapshot_later(&self) -> Box<dyn FnOnce() -> Bytes + Send> {
        let data = self.snapshot();
        Box::new(move || data)
    }

    /// Replace the whole state with what `snapshot` produced.
    fn restore(&mut self, data: &[u8]);

    /// Every committed entry passes through here, in index order. The default applies
    /// application commands with [`StateMachine::apply`] and skips leader no-ops and
    /// configuration entries (result: empty). Override to observe every entry.
    fn apply_entry(&mut self, entry: &Entry) -> Bytes {
        match entry.kind {
            EntryKind::Normal => self.apply(entry.index, &entry.data),
            EntryKind::Noop | EntryKind::Config => Bytes::new(),
        }
    }

    /// [`StateMachine::apply_entry`] for an entry no client of this node waits for (a
    /// follower's entries, a restarted node's replay): its result would be dropped. The
    /// state must change exactly as `apply_entry` would change it; a machine may skip
    /// building the result. The default calls `apply_entry`.
    fn apply_entry_unobserved(&mut self, entry: &Entry) {
        let _ = self.apply_entry(entry);
    }
}

/// Where a node's outgoing messages go. Delivery is best effort: the network may lose,
/// delay, duplicate or reorder them, and Raft copes.
pub trait Transport {
    fn send(&mut self, msg: Message);
}

impl Transport for Vec<Message> {
    fn send(&mut self, msg: Message) {
        self.push(msg);
    }
}
