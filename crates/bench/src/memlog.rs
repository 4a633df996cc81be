//! A Vec-backed in-memory log store for our core, written for the bench.
//!
//! Owns: the "durable" state of one node — hard state, latest snapshot, and the log entries
//! after it — with append-with-truncation and compaction. It plays the role `MemStorage`
//! plays for raft-rs. Must never: do I/O, or decide anything Raft decides.

use raft::{Entry, HardState, LogIndex, Snapshot};

/// One node's persisted state.
#[derive(Default, Debug)]
pub struct MemLog {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    /// Contiguous entries; `entries[0].index == first_index()` when not empty.
    entries: Vec<Entry>,
}

impl MemLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Index of the last entry the snapshot covers (0 without one).
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot
            .as_ref()
            .map_or(LogIndex(0), |s| s.meta.last.index)
    }

    /// Index of the first stored entry (snapshot index + 1).
    pub fn first_index(&self) -> LogIndex {
        self.entries
            .first()
            .map_or(self.snapshot_index().next(), |e| e.index)
    }

    /// Index of the last stored entry (or the snapshot's).
    pub fn last_index(&self) -> LogIndex {
        self.entries
            .last()
            .map_or(self.snapshot_index(), |e| e.index)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Append `ents`, first discarding every stored entry at or after `ents[0].index`.
    pub fn append(&mut self, ents: &[Entry]) {
        let Some(first) = ents.first() else { return };
        assert!(
            first.index > self.snapshot_index(),
            "append below the snapshot: {first:?}"
        );
        assert!(
            first.index <= self.last_index().next(),
            "gap before {first:?}"
        );
        let keep = (first.index.0 - self.first_index().0) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(ents);
    }

    /// Keep `snap` and discard the entries it covers (used for both a received snapshot and a
    /// local compaction).
    pub fn apply_snapshot(&mut self, snap: Snapshot) {
        let last = snap.meta.last.index;
        assert!(last >= self.snapshot_index(), "snapshot goes backwards");
        if last >= self.last_index() {
            self.entries.clear();
        } else {
            let drop = (last.0 + 1 - self.first_index().0) as usize;
            self.entries.drain(..drop);
        }
        self.snapshot = Some(snap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{EntryKind, SnapshotMeta, Term};

    fn ent(index: u64, term: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            kind: EntryKind::Normal,
            data: "x".into(),
        }
    }

    fn snap(index: u64, term: u64) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                last: raft::EntryId::new(Term(term), LogIndex(index)),
                ..Default::default()
            },
            data: Default::default(),
        }
    }

    #[test]
    fn append_truncates_conflicting_suffix() {
        let mut log = MemLog::new();
        log.append(&[ent(1, 1), ent(2, 1), ent(3, 1)]);
        log.append(&[ent(2, 2)]);
        assert_eq!(log.entries(), &[ent(1, 1), ent(2, 2)]);
        assert_eq!(log.last_index(), LogIndex(2));
    }

    #[test]
    fn compaction_keeps_the_suffix() {
        let mut log = MemLog::new();
        log.append(&(1..=5).map(|i| ent(i, 1)).collect::<Vec<_>>());
        log.apply_snapshot(snap(3, 1));
        assert_eq!(log.first_index(), LogIndex(4));
        assert_eq!(log.entries(), &[ent(4, 1), ent(5, 1)]);
        log.apply_snapshot(snap(9, 2));
        assert!(log.entries().is_empty());
        assert_eq!(log.first_index(), LogIndex(10));
        assert_eq!(log.last_index(), LogIndex(9));
    }

    #[test]
    #[should_panic(expected = "gap")]
    fn append_rejects_a_gap() {
        let mut log = MemLog::new();
        log.append(&[ent(1, 1)]);
        log.append(&[ent(3, 1)]);
    }
}
