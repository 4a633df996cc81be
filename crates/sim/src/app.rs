//! [`SimStateMachine`]: the simulated application's recorder. It records every committed
//! entry it applies, so the checker can compare nodes and tests can ask what was applied.
//!
//! Two snapshot encodings ([`Recording`]): [`Recording::Full`] carries every applied entry
//! (like 6.824's `applierSnap`), so a restored node still knows its whole applied sequence;
//! [`Recording::Digest`] carries only the last applied entry id and a hash chain over
//! everything applied ([`chain_next`]), a few dozen bytes, so that a node whose snapshot
//! must stay small (the KV scenarios bound it at 500 B) can still be checked: the checker
//! compares the restored chain with the global applied sequence's (State Machine Safety
//! across snapshot installs), then checks the entries applied after it one by one.
//!
//! Owns: the applied record of one node, its snapshot encodings, and the check that entries
//! arrive contiguously.
//! Must never: interpret command bytes or produce anything that depends on more than the
//! entries applied (it must be deterministic).

use crate::disk::entry_hash;
use crate::hash::mix;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use raft::{Entry, EntryId, EntryKind, LogIndex, Term};
use replica::StateMachine;

/// What a [`SimStateMachine`]'s snapshot carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Recording {
    /// Every applied entry: a restore brings the whole record back.
    #[default]
    Full,
    /// The last applied entry id and the hash chain through it: a restore starts the record
    /// after it ([`SimStateMachine::records_base`]).
    Digest,
}

/// Length of a [`Recording::Digest`] snapshot: index, term, chain.
pub const DIGEST_SNAPSHOT_BYTES: usize = 24;

/// The hash chain over an applied sequence: `chain(0) = 0`, `chain(i) = chain_next(chain(i -
/// 1), entry i)`. Two nodes with equal chains at `i` applied the same `i` entries.
pub fn chain_next(prev: u64, term: Term, kind: EntryKind, data: &[u8]) -> u64 {
    mix(mix(prev, term.0), entry_hash(kind, data))
}

/// One applied entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedEntry {
    pub id: EntryId,
    pub kind: EntryKind,
    pub data: Bytes,
}

/// A state machine whose state is the list of everything applied: `records()[i]` is the entry
/// at index `records_base().index + i + 1` (the base is index 0 unless a
/// [`Recording::Digest`] snapshot was restored).
#[derive(Default, Debug)]
pub struct SimStateMachine {
    records: Vec<AppliedEntry>,
    /// The last entry a digest restore covered (index 0: the record starts at index 1).
    base: EntryId,
    /// The hash chain through `base`.
    base_chain: u64,
    /// The hash chain through the last applied entry.
    chain: u64,
    restores: u64,
    recording: Recording,
}

impl SimStateMachine {
    /// A recorder whose snapshots carry every entry ([`Recording::Full`]).
    pub fn new() -> Self {
        SimStateMachine::default()
    }

    /// A recorder with the given snapshot encoding.
    pub fn with_recording(recording: Recording) -> Self {
        SimStateMachine {
            recording,
            ..SimStateMachine::default()
        }
    }

    pub fn recording(&self) -> Recording {
        self.recording
    }

    /// Every applied entry after [`SimStateMachine::records_base`], in index order.
    pub fn records(&self) -> &[AppliedEntry] {
        &self.records
    }

    /// The entry just before `records()[0]`: index 0 unless a digest snapshot was restored,
    /// then the last entry that snapshot covered.
    pub fn records_base(&self) -> EntryId {
        self.base
    }

    /// The hash chain ([`chain_next`]) through [`SimStateMachine::records_base`].
    pub fn base_chain(&self) -> u64 {
        self.base_chain
    }

    /// The hash chain through the last applied entry.
    pub fn chain(&self) -> u64 {
        self.chain
    }

    /// Times the state was replaced by a snapshot (the checker re-reads the record then).
    pub fn restores(&self) -> u64 {
        self.restores
    }

    /// Last applied index.
    pub fn applied_index(&self) -> LogIndex {
        LogIndex(self.base.index.0 + self.records.len() as u64)
    }

    fn record_at(&self, index: LogIndex) -> Option<&AppliedEntry> {
        let k = index.0.checked_sub(self.base.index.0 + 1)?;
        self.records.get(k as usize)
    }

    /// The application command applied at `index`, if any (and if still recorded: a digest
    /// restore forgets the commands it covers).
    pub fn command_at(&self, index: LogIndex) -> Option<&Bytes> {
        let r = self.record_at(index)?;
        (r.kind == EntryKind::Normal).then_some(&r.data)
    }

    /// Term of the entry applied at `index`, if recorded (or the digest's base).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.base.index && index.0 > 0 {
            return Some(self.base.term);
        }
        self.record_at(index).map(|r| r.id.term)
    }

    fn last_id(&self) -> EntryId {
        self.records.last().map_or(self.base, |r| r.id)
    }

    fn record(&mut self, id: EntryId, kind: EntryKind, data: Bytes) -> Bytes {
        assert_eq!(
            id.index,
            self.applied_index().next(),
            "entries must be applied contiguously (applierSnap: CommandIndex == lastApplied+1)"
        );
        self.chain = chain_next(self.chain, id.term, kind, &data);
        self.records.push(AppliedEntry { id, kind, data });
        Bytes::copy_from_slice(&id.index.0.to_le_bytes())
    }

    fn snapshot_full(&self) -> Bytes {
        assert_eq!(
            self.base.index,
            LogIndex(0),
            "a full record starts at index 1"
        );
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

    fn restore_full(&mut self, data: &[u8]) {
        let mut b = Bytes::copy_from_slice(data);
        let n = b.get_u64_le() as usize;
        self.records.clear();
        self.records.reserve(n);
        self.chain = 0;
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
            self.chain = chain_next(self.chain, term, kind, &data);
            self.records.push(AppliedEntry { id, kind, data });
        }
        assert!(b.is_empty(), "corrupt sim snapshot: trailing bytes");
    }

    fn snapshot_digest(&self) -> Bytes {
        let last = self.last_id();
        let mut b = BytesMut::with_capacity(DIGEST_SNAPSHOT_BYTES);
        b.put_u64_le(last.index.0);
        b.put_u64_le(last.term.0);
        b.put_u64_le(self.chain);
        b.freeze()
    }

    fn restore_digest(&mut self, data: &[u8]) {
        assert_eq!(
            data.len(),
            DIGEST_SNAPSHOT_BYTES,
            "corrupt sim digest snapshot: {} bytes",
            data.len()
        );
        let mut b = data;
        let index = LogIndex(b.get_u64_le());
        let term = Term(b.get_u64_le());
        self.chain = b.get_u64_le();
        self.base = EntryId::new(term, index);
        self.base_chain = self.chain;
        self.records.clear();
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
        match self.recording {
            Recording::Full => self.snapshot_full(),
            Recording::Digest => self.snapshot_digest(),
        }
    }

    fn restore(&mut self, data: &[u8]) {
        match self.recording {
            Recording::Full => self.restore_full(data),
            Recording::Digest => self.restore_digest(data),
        }
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
    fn digest_snapshot_is_small_and_restores_the_chain() {
        let mut sm = SimStateMachine::with_recording(Recording::Digest);
        for i in 1..=50u64 {
            sm.apply_entry(&Entry {
                term: Term(1 + i / 20),
                index: LogIndex(i),
                kind: EntryKind::Normal,
                data: Bytes::from(vec![i as u8; 40]),
            });
        }
        let snap = sm.snapshot();
        assert_eq!(snap.len(), DIGEST_SNAPSHOT_BYTES);
        let mut other = SimStateMachine::with_recording(Recording::Digest);
        other.restore(&snap);
        assert_eq!(other.applied_index(), LogIndex(50));
        assert_eq!(other.records_base(), EntryId::new(Term(3), LogIndex(50)));
        assert_eq!(
            (other.base_chain(), other.chain()),
            (sm.chain(), sm.chain())
        );
        assert!(other.records().is_empty() && other.command_at(LogIndex(50)).is_none());
        assert_eq!(other.term_at(LogIndex(50)), Some(Term(3)));
        let next = Entry {
            term: Term(3),
            index: LogIndex(51),
            kind: EntryKind::Normal,
            data: Bytes::from_static(b"z"),
        };
        sm.apply_entry(&next);
        other.apply_entry(&next);
        assert_eq!(other.chain(), sm.chain());
        assert_eq!(
            other.command_at(LogIndex(51)),
            Some(&Bytes::from_static(b"z"))
        );
    }

    #[test]
    fn full_restore_rebuilds_the_same_chain() {
        let mut sm = SimStateMachine::new();
        for i in 1..=5u64 {
            sm.apply(LogIndex(i), &[i as u8]);
        }
        let mut other = SimStateMachine::new();
        other.restore(&sm.snapshot());
        assert_eq!(other.chain(), sm.chain());
    }

    #[test]
    #[should_panic(expected = "contiguously")]
    fn gaps_are_refused() {
        let mut sm = SimStateMachine::new();
        sm.apply(LogIndex(2), b"x");
    }
}
