//! [`SimStateMachine`]: the simulated application. It records every committed entry it
//! applies, so the checker can compare nodes and tests can ask what was applied.
//!
//! Owns: the applied record of one node, its snapshot encoding (every applied entry, like
//! 6.824's `applierSnap`), and the check that entries arrive contiguously.
//! Must never: interpret command bytes or produce anything that depends on more than the
//! entries applied (it must be deterministic).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use raft::{Entry, EntryId, EntryKind, LogIndex, Term};
use replica::StateMachine;

/// One applied entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedEntry {
    pub id: EntryId,
    pub kind: EntryKind,
    pub data: Bytes,
}

/// A state machine whose state is the list of everything applied: `records()[i]` is the entry
/// at index `i + 1`. Its snapshot carries the whole list, so a restore brings it all back.
#[derive(Default, Debug)]
pub struct SimStateMachine {
    records: Vec<AppliedEntry>,
    restores: u64,
}

impl SimStateMachine {
    pub fn new() -> Self {
        SimStateMachine::default()
    }

    /// Every applied entry, index `i + 1` at position `i`.
    pub fn records(&self) -> &[AppliedEntry] {
        &self.records
    }

    /// Times the state was replaced by a snapshot (the checker re-reads the record then).
    pub fn restores(&self) -> u64 {
        self.restores
    }

    /// Last applied index.
    pub fn applied_index(&self) -> LogIndex {
        LogIndex(self.records.len() as u64)
    }

    /// The application command applied at `index`, if any.
    pub fn command_at(&self, index: LogIndex) -> Option<&Bytes> {
        let r = self.records.get((index.0 as usize).checked_sub(1)?)?;
        (r.kind == EntryKind::Normal).then_some(&r.data)
    }

    fn record(&mut self, id: EntryId, kind: EntryKind, data: Bytes) -> Bytes {
        assert_eq!(
            id.index.0,
            self.records.len() as u64 + 1,
            "entries must be applied contiguously (applierSnap: CommandIndex == lastApplied+1)"
        );
        self.records.push(AppliedEntry { id, kind, data });
        Bytes::copy_from_slice(&id.index.0.to_le_bytes())
    }
}

const KIND_NORMAL: u8 = 0;
const KIND_NOOP: u8 = 1;
const KIND_CONFIG: u8 = 2;

impl StateMachine for SimStateMachine {
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Bytes {
        // Only reached if a driver bypasses `apply_entry`; the term is then unknown.
        self.record(
            EntryId::new(Term(0), index),
            EntryKind::Normal,
            Bytes::copy_from_slice(data),
        )
    }

    fn apply_entry(&mut self, entry: &Entry) -> Bytes {
        self.record(entry.id(), entry.kind, entry.data.clone())
    }

    fn snapshot(&self) -> Bytes {
        let len: usize = self.records.iter().map(|r| 21 + r.data.len()).sum();
        let mut b = BytesMut::with_capacity(8 + len);
        b.put_u64_le(self.records.len() as u64);
        for r in &self.records {
            b.put_u64_le(r.id.term.0);
            b.put_u8(match r.kind {
                EntryKind::Normal => KIND_NORMAL,
                EntryKind::Noop => KIND_NOOP,
                EntryKind::Config => KIND_CONFIG,
            });
            b.put_u32_le(r.data.len() as u32);
            b.put_slice(&r.data);
        }
        b.freeze()
    }

    fn restore(&mut self, data: &[u8]) {
        let mut b = Bytes::copy_from_slice(data);
        let n = b.get_u64_le() as usize;
        self.records.clear();
        self.records.reserve(n);
        for i in 0..n {
            let term = Term(b.get_u64_le());
            let kind = match b.get_u8() {
                KIND_NORMAL => EntryKind::Normal,
                KIND_NOOP => EntryKind::Noop,
                KIND_CONFIG => EntryKind::Config,
                k => panic!("corrupt sim snapshot: entry kind {k}"),
            };
            let len = b.get_u32_le() as usize;
            let data = b.split_to(len);
            let id = EntryId::new(term, LogIndex(i as u64 + 1));
            self.records.push(AppliedEntry { id, kind, data });
        }
        assert!(b.is_empty(), "corrupt sim snapshot: trailing bytes");
        self.restores += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_every_record() {
        let mut sm = SimStateMachine::new();
        let e = |i: u64, kind, d: &'static str| Entry {
            term: Term(i),
            index: LogIndex(i),
            kind,
            data: Bytes::from_static(d.as_bytes()),
        };
        sm.apply_entry(&e(1, EntryKind::Noop, ""));
        sm.apply_entry(&e(2, EntryKind::Normal, "x"));
        sm.apply_entry(&e(3, EntryKind::Normal, "yz"));
        let mut other = SimStateMachine::new();
        other.restore(&sm.snapshot());
        assert_eq!(other.records(), sm.records());
        assert_eq!(other.restores(), 1);
        assert_eq!(
            other.command_at(LogIndex(2)),
            Some(&Bytes::from_static(b"x"))
        );
        assert_eq!(other.command_at(LogIndex(1)), None);
    }

    #[test]
    #[should_panic(expected = "contiguously")]
    fn gaps_are_refused() {
        let mut sm = SimStateMachine::new();
        sm.apply(LogIndex(2), b"x");
    }
}
