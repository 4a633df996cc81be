//! [`MemStore`]: an in-memory [`LogStore`] that behaves like a disk with a write cache.
//!
//! Owns: two copies of the Raft state — what has been *written* (visible to reads at once) and
//! what is *durable* (survives [`MemStore::crash`]) — plus the queue of writes made since the
//! last [`LogStore::sync`]. A sync replays that queue onto the durable copy, so its cost is
//! proportional to the new writes, never to the whole log.
//! Must never: let an unsynced write survive a crash except as a prefix of the write queue
//! (what a real write-ahead log can do: its tail may or may not have reached the platter), or
//! reorder writes.

use crate::log_store::{LogStore, StorageError};
use raft::{Configuration, Entry, EntryId, HardState, InitialState, LogIndex, Snapshot, Term};
use std::collections::VecDeque;

/// Bytes a hard state counts for in [`LogStore::log_bytes`] (term, vote, commit).
pub const HARD_STATE_BYTES: usize = 24;

/// One write, kept until it is synced.
#[derive(Clone, Debug)]
enum Write {
    Append(Vec<Entry>),
    HardState(HardState),
    Snapshot(Snapshot),
}

/// One copy of the Raft state: the snapshot, then the contiguous entries after it.
#[derive(Clone, Debug, Default)]
struct DiskState {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    /// Entries `snapshot_index + 1 ..= last`, contiguous.
    entries: VecDeque<Entry>,
    entry_bytes: usize,
}

impl DiskState {
    fn snapshot_id(&self) -> EntryId {
        self.snapshot
            .as_ref()
            .map(|s| s.meta.last)
            .unwrap_or_default()
    }

    fn first_index(&self) -> LogIndex {
        self.snapshot_id().index.next()
    }

    fn last_index(&self) -> LogIndex {
        self.entries
            .back()
            .map(|e| e.index)
            .unwrap_or(self.snapshot_id().index)
    }

    fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let first = self.first_index();
        if index < first {
            return None;
        }
        self.entries.get((index.0 - first.0) as usize)
    }

    fn term_at(&self, index: LogIndex) -> Option<Term> {
        let snap = self.snapshot_id();
        if index == snap.index {
            return Some(snap.term);
        }
        self.entry(index).map(|e| e.term)
    }

    fn check_append(&self, entries: &[Entry]) -> Result<(), StorageError> {
        crate::log_store::check_append(entries, self.snapshot_id().index, self.last_index())
    }

    /// Apply a write already validated by `check_*`.
    fn apply(&mut self, write: &Write) {
        match write {
            Write::Append(entries) => self.append(entries),
            Write::HardState(hs) => self.hard_state = *hs,
            Write::Snapshot(snap) => self.install(snap),
        }
    }

    fn append(&mut self, entries: &[Entry]) {
        let Some(head) = entries.first() else { return };
        let keep = (head.index.0 - self.first_index().0) as usize;
        while self.entries.len() > keep {
            let e = self.entries.pop_back().expect("len > keep");
            self.entry_bytes -= e.size_bytes();
        }
        for e in entries {
            self.entry_bytes += e.size_bytes();
            self.entries.push_back(e.clone());
        }
    }

    fn check_snapshot(&self, snap: &Snapshot) -> Result<(), StorageError> {
        let stored = self.snapshot_id().index;
        if snap.meta.last.index < stored {
            return Err(StorageError::StaleSnapshot {
                index: snap.meta.last.index,
                stored,
            });
        }
        Ok(())
    }

    fn install(&mut self, snap: &Snapshot) {
        let last = snap.meta.last;
        if self.term_at(last.index) == Some(last.term) {
            while self.entries.front().is_some_and(|e| e.index <= last.index) {
                let e = self.entries.pop_front().expect("front exists");
                self.entry_bytes -= e.size_bytes();
            }
        } else {
            self.entries.clear();
            self.entry_bytes = 0;
        }
        self.snapshot = Some(snap.clone());
    }

    fn snapshot_bytes(&self) -> usize {
        self.snapshot.as_ref().map_or(0, |s| {
            s.data.len() + std::mem::size_of::<EntryId>() + 8 * s.meta.config.voters.len()
        })
    }
}

/// An in-memory store that can lose what was not synced.
///
/// Reads see every write at once. [`LogStore::sync`] makes all writes durable;
/// [`MemStore::crash`] throws away the unsynced ones, and [`MemStore::crash_keeping`] keeps a
/// prefix of them, as a write-ahead log whose tail partly reached the disk would.
#[derive(Clone, Debug)]
pub struct MemStore {
    bootstrap: Configuration,
    written: DiskState,
    durable: DiskState,
    unsynced: Vec<Write>,
}

impl MemStore {
    /// An empty store for a member of a new cluster whose voters are `bootstrap`.
    pub fn new(bootstrap: Configuration) -> Self {
        MemStore {
            bootstrap,
            written: DiskState::default(),
            durable: DiskState::default(),
            unsynced: Vec::new(),
        }
    }

    /// Lose every write made since the last sync (power cut).
    pub fn crash(&mut self) {
        self.crash_keeping(0);
    }

    /// Power cut after the first `keep` unsynced writes reached the disk (clamped to the
    /// number of unsynced writes); the rest are lost.
    pub fn crash_keeping(&mut self, keep: usize) {
        let keep = keep.min(self.unsynced.len());
        for w in self.unsynced.drain(..keep) {
            self.durable.apply(&w);
        }
        self.unsynced.clear();
        self.written = self.durable.clone();
    }

    /// Writes made since the last sync.
    pub fn unsynced_writes(&self) -> usize {
        self.unsynced.len()
    }

    /// The hard state as written.
    pub fn hard_state(&self) -> HardState {
        self.written.hard_state
    }

    /// The snapshot as written.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.written.snapshot.as_ref()
    }

    /// First log index after the snapshot.
    pub fn first_index(&self) -> LogIndex {
        self.written.first_index()
    }

    /// Index of the last entry (or of the snapshot when the log is empty).
    pub fn last_index(&self) -> LogIndex {
        self.written.last_index()
    }

    /// The stored entry at `index`, if any.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.written.entry(index)
    }

    /// Term of the entry at `index`, including the snapshot's last entry (and 0 for index 0
    /// of an empty store).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.written.term_at(index)
    }

    /// Durable bytes of Raft state (hard state + log), what a crash now would keep.
    pub fn durable_log_bytes(&self) -> usize {
        HARD_STATE_BYTES + self.durable.entry_bytes
    }

    /// Durable bytes of the snapshot.
    pub fn durable_snapshot_bytes(&self) -> usize {
        self.durable.snapshot_bytes()
    }

    fn write(&mut self, w: Write) {
        self.written.apply(&w);
        self.unsynced.push(w);
    }
}

impl LogStore for MemStore {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        Ok(InitialState {
            hard_state: self.written.hard_state,
            snapshot: self.written.snapshot.clone(),
            entries: self.written.entries.iter().cloned().collect(),
            config: self.bootstrap.clone(),
        })
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.written.check_append(entries)?;
        self.write(Write::Append(entries.to_vec()));
        Ok(())
    }

    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        self.write(Write::HardState(hard_state));
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.written.check_snapshot(snapshot)?;
        self.write(Write::Snapshot(snapshot.clone()));
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        for w in self.unsynced.drain(..) {
            self.durable.apply(&w);
        }
        debug_assert_eq!(self.durable.last_index(), self.written.last_index());
        Ok(())
    }

    fn first_index(&self) -> LogIndex {
        self.written.first_index()
    }

    fn last_index(&self) -> LogIndex {
        self.written.last_index()
    }

    fn term(&self, index: LogIndex) -> Option<Term> {
        self.written.term_at(index)
    }

    fn entries(&self, lo: LogIndex, hi: LogIndex) -> Result<Vec<Entry>, StorageError> {
        crate::log_store::check_range(
            lo,
            hi,
            self.written.first_index(),
            self.written.last_index(),
        )?;
        Ok((lo.0..hi.0)
            .map(|i| self.written.entry(LogIndex(i)).expect("in range").clone())
            .collect())
    }

    fn log_bytes(&self) -> usize {
        HARD_STATE_BYTES + self.written.entry_bytes
    }

    fn snapshot_bytes(&self) -> usize {
        self.written.snapshot_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{EntryKind, NodeId, SnapshotMeta};

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            kind: EntryKind::Normal,
            data: format!("{index}/{term}").into(),
        }
    }

    fn snap(index: u64, term: u64) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                last: EntryId::new(Term(term), LogIndex(index)),
                config: Configuration::new([NodeId(1)]),
            },
            data: "state".into(),
        }
    }

    fn store() -> MemStore {
        MemStore::new(Configuration::new([NodeId(1), NodeId(2), NodeId(3)]))
    }

    fn ids(s: &MemStore) -> Vec<(u64, u64)> {
        s.initial_state()
            .unwrap()
            .entries
            .iter()
            .map(|e| (e.index.0, e.term.0))
            .collect()
    }

    #[test]
    fn memstore_passes_the_conformance_suite() {
        crate::conformance::check_all(MemStore::new, |mut s| {
            s.crash();
            s
        });
    }

    #[test]
    fn crash_loses_unsynced_writes() {
        let mut s = store();
        s.append(&[e(1, 1)]).unwrap();
        s.set_hard_state(HardState {
            term: Term(1),
            vote: NodeId(1),
            commit: LogIndex(0),
        })
        .unwrap();
        s.sync().unwrap();
        s.append(&[e(2, 1)]).unwrap();
        s.set_hard_state(HardState {
            term: Term(2),
            vote: NodeId(2),
            commit: LogIndex(1),
        })
        .unwrap();
        assert_eq!(s.unsynced_writes(), 2);
        let before = s.clone();
        s.crash();
        assert_eq!(ids(&s), vec![(1, 1)]);
        assert_eq!(s.hard_state().term, Term(1));
        let mut t = before;
        t.crash_keeping(1);
        assert_eq!(ids(&t), vec![(1, 1), (2, 1)]);
        assert_eq!(t.hard_state().term, Term(1), "only a prefix survives");
    }

    #[test]
    fn sizes_track_log_and_snapshot() {
        let mut s = store();
        assert_eq!(s.log_bytes(), HARD_STATE_BYTES);
        s.append(&[e(1, 1), e(2, 1)]).unwrap();
        let two = e(1, 1).size_bytes() + e(2, 1).size_bytes();
        assert_eq!(s.log_bytes(), HARD_STATE_BYTES + two);
        assert_eq!(s.durable_log_bytes(), HARD_STATE_BYTES);
        s.sync().unwrap();
        assert_eq!(s.durable_log_bytes(), HARD_STATE_BYTES + two);
        s.save_snapshot(&snap(1, 1)).unwrap();
        assert_eq!(s.log_bytes(), HARD_STATE_BYTES + e(2, 1).size_bytes());
        assert!(s.snapshot_bytes() >= 5);
        assert_eq!(s.durable_snapshot_bytes(), 0);
    }
}
