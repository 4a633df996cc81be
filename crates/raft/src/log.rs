//! The in-memory Raft log: entries after the latest snapshot, and the watermarks of what is
//! committed, durable, handed out for persisting, and handed out for applying.
//!
//! Owns: entry storage, the snapshot the core keeps for lagging followers, conflict
//! truncation, the fast-backtracking hint. Must never: truncate a committed entry (that would
//! break State Machine Safety — it panics instead), decode entry payloads, or do I/O.

use crate::message::ConflictHint;
use crate::types::{Entry, EntryId, LogIndex, Snapshot, Term};

#[derive(Debug)]
pub(crate) struct RaftLog {
    /// Last entry covered by the snapshot (index 0 / term 0 when there is none).
    snapshot_last: EntryId,
    /// The latest snapshot (kept to send to lagging followers).
    snapshot: Option<Snapshot>,
    /// Entries `snapshot_last.index + 1 ..= last_index`, contiguous.
    entries: Vec<Entry>,
    /// Highest index known committed.
    pub(crate) committed: LogIndex,
    /// Highest index handed to the application in a `Ready` (applied once that Ready is done).
    pub(crate) applied: LogIndex,
    /// Highest index known durable on this node.
    pub(crate) persisted: LogIndex,
    /// First index not yet handed out for persisting.
    unstable_from: LogIndex,
    /// A snapshot received from the leader, not yet handed out for persisting.
    pending_snapshot: Option<Snapshot>,
}

impl RaftLog {
    /// A log restored from durable state: everything given is already persisted.
    pub(crate) fn restore(
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        commit: LogIndex,
    ) -> Self {
        let snapshot_last = snapshot.as_ref().map(|s| s.meta.last).unwrap_or_default();
        let mut log = RaftLog {
            snapshot_last,
            snapshot,
            entries,
            committed: commit.max(snapshot_last.index),
            applied: snapshot_last.index,
            persisted: LogIndex(0),
            unstable_from: LogIndex(0),
            pending_snapshot: None,
        };
        log.persisted = log.last_index();
        log.unstable_from = log.last_index().next();
        log
    }

    pub(crate) fn first_index(&self) -> LogIndex {
        self.snapshot_last.index.next()
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        self.entries
            .last()
            .map_or(self.snapshot_last.index, |e| e.index)
    }

    pub(crate) fn last_id(&self) -> EntryId {
        self.entries.last().map_or(self.snapshot_last, Entry::id)
    }

    pub(crate) fn snapshot_last(&self) -> EntryId {
        self.snapshot_last
    }

    pub(crate) fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Term of the entry at `index`; `None` if compacted away or beyond the end.
    pub(crate) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_last.index {
            return Some(self.snapshot_last.term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub(crate) fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let first = self.first_index();
        if index < first {
            return None;
        }
        self.entries.get((index.0 - first.0) as usize)
    }

    /// True when this log holds `id` (and hence, by Log Matching, the leader's prefix up to it).
    pub(crate) fn matches(&self, id: EntryId) -> bool {
        self.term_at(id.index) == Some(id.term)
    }

    /// Entries from `lo` to the end.
    pub(crate) fn entries_from(&self, lo: LogIndex) -> &[Entry] {
        let first = self.first_index();
        let lo = lo.max(first);
        let start = ((lo.0 - first.0) as usize).min(self.entries.len());
        &self.entries[start..]
    }

    /// Clones of entries from `lo`, at most `bytes_max` worth (always at least one if any).
    pub(crate) fn slice(&self, lo: LogIndex, bytes_max: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for e in self.entries_from(lo) {
            bytes += e.size_bytes();
            if !out.is_empty() && bytes > bytes_max {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// Leader path: append one entry at the end.
    pub(crate) fn append(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index().next(),
            "log append must be contiguous"
        );
        assert!(
            entry.term >= self.last_id().term,
            "log terms must not decrease"
        );
        self.entries.push(entry);
    }

    /// Follower path (AppendEntries receiver, §5.3): if the log holds `prev`, append
    /// `entries`, truncating only at a real conflict, and return the index of the last new
    /// entry; `None` if `prev` does not match.
    pub(crate) fn try_append(&mut self, prev: EntryId, entries: Vec<Entry>) -> Option<LogIndex> {
        if !self.matches(prev) {
            return None;
        }
        let mut expected = prev.index.next();
        for e in &entries {
            assert_eq!(
                e.index, expected,
                "AppendEntries entries must be contiguous"
            );
            expected = expected.next();
        }
        let last_new = prev.index.plus(entries.len() as u64);
        let conflict = entries.iter().position(|e| match self.term_at(e.index) {
            Some(t) => t != e.term,
            // Beyond our end (a new entry) — or compacted, which is committed and matches.
            None => e.index > self.last_index(),
        });
        if let Some(pos) = conflict {
            let at = entries[pos].index;
            if at <= self.last_index() {
                self.truncate_from(at);
            }
            for e in entries.into_iter().skip(pos) {
                self.append(e);
            }
        }
        Some(last_new)
    }

    /// Remove entries with index ≥ `at` (conflict truncation).
    fn truncate_from(&mut self, at: LogIndex) {
        assert!(
            at > self.committed,
            "State Machine Safety: refusing to truncate committed entry {at:?} (committed {:?})",
            self.committed
        );
        assert!(at >= self.first_index(), "truncation below the snapshot");
        self.entries
            .truncate((at.0 - self.first_index().0) as usize);
        self.unstable_from = self.unstable_from.min(at);
        self.persisted = self.persisted.min(at.prev());
    }

    /// Where a leader should retry after we rejected `rejected_prev` (6.824 fast backup).
    pub(crate) fn conflict_hint(&self, rejected_prev: LogIndex) -> ConflictHint {
        let last = self.last_index();
        if rejected_prev > last {
            return ConflictHint {
                term: None,
                index: last.next(),
            };
        }
        let term = self
            .term_at(rejected_prev)
            .expect("rejected index is in the log");
        let mut index = rejected_prev;
        while index > self.first_index() && index.prev() > self.committed {
            if self.term_at(index.prev()) != Some(term) {
                break;
            }
            index = index.prev();
        }
        ConflictHint {
            term: Some(term),
            index,
        }
    }

    /// The last index ≤ `upto` whose term is `term`, if any (leader side of fast backup).
    pub(crate) fn last_index_of_term(&self, term: Term, upto: LogIndex) -> Option<LogIndex> {
        let mut i = upto.min(self.last_index());
        while i >= self.first_index() {
            let t = self.term_at(i)?;
            if t == term {
                return Some(i);
            }
            if t < term {
                return None;
            }
            i = i.prev();
        }
        (self.snapshot_last.term == term).then_some(self.snapshot_last.index)
    }

    /// Debug builds: the log's shape and watermarks are consistent (cheap: ends only).
    pub(crate) fn debug_check(&self) {
        if let (Some(first), Some(last)) = (self.entries.first(), self.entries.last()) {
            debug_assert_eq!(
                first.index,
                self.first_index(),
                "entries follow the snapshot"
            );
            debug_assert_eq!(
                last.index.0 - first.index.0 + 1,
                self.entries.len() as u64,
                "entries are contiguous"
            );
            debug_assert!(
                self.snapshot_last.term <= first.term && first.term <= last.term,
                "terms never decrease along the log"
            );
        }
        let last = self.last_index();
        debug_assert!(self.committed <= last, "commit beyond the log");
        debug_assert!(self.applied <= self.committed, "applied beyond commit");
        debug_assert!(
            self.applied <= self.persisted,
            "applied an entry not durable"
        );
        debug_assert!(self.persisted <= last, "durable beyond the log");
        debug_assert!(
            self.persisted < self.unstable_from,
            "durable but never written"
        );
        debug_assert!(self.unstable_from <= last.next(), "unstable beyond the log");
        debug_assert!(
            self.snapshot_last.index <= self.committed,
            "snapshot not committed"
        );
    }

    pub(crate) fn commit_to(&mut self, index: LogIndex) -> bool {
        if index <= self.committed {
            return false;
        }
        assert!(
            index <= self.last_index(),
            "commit {index:?} beyond last index {:?}",
            self.last_index()
        );
        self.committed = index;
        true
    }

    /// Hand out entries not yet given to storage.
    pub(crate) fn take_unstable(&mut self) -> Vec<Entry> {
        let out = self.entries_from(self.unstable_from).to_vec();
        self.unstable_from = self.last_index().next();
        out
    }

    pub(crate) fn has_unstable(&self) -> bool {
        self.unstable_from <= self.last_index()
    }

    pub(crate) fn take_pending_snapshot(&mut self) -> Option<Snapshot> {
        self.pending_snapshot.take()
    }

    pub(crate) fn has_pending_snapshot(&self) -> bool {
        self.pending_snapshot.is_some()
    }

    /// Storage confirmed entries up to `id` durable.
    pub(crate) fn persisted_to(&mut self, id: EntryId) {
        if id.index > self.persisted && self.matches(id) && id.index < self.unstable_from {
            self.persisted = id.index;
        }
    }

    /// Committed, durable entries not yet handed to the application.
    pub(crate) fn has_committed_to_apply(&self) -> bool {
        self.committed.min(self.persisted) > self.applied
    }

    pub(crate) fn take_committed(&mut self) -> Vec<Entry> {
        let hi = self.committed.min(self.persisted);
        if hi <= self.applied {
            return Vec::new();
        }
        let lo = self.applied.next();
        let n = (hi.0 - lo.0 + 1) as usize;
        let out: Vec<Entry> = self.entries_from(lo)[..n].to_vec();
        debug_assert_eq!(out.first().map(|e| e.index), Some(lo));
        self.applied = hi;
        out
    }

    /// The application snapshotted its state at `index` (≤ applied): drop entries ≤ index.
    pub(crate) fn compact(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta.last.index;
        assert!(index <= self.applied && index > self.snapshot_last.index);
        assert_eq!(self.term_at(index), Some(snapshot.meta.last.term));
        let drop = (index.0 - self.first_index().0 + 1) as usize;
        self.entries.drain(..drop);
        self.snapshot_last = snapshot.meta.last;
        self.snapshot = Some(snapshot);
    }

    /// Install a snapshot received from the leader. Returns false when the log already holds
    /// its last entry (then only the commit index moves).
    pub(crate) fn install(&mut self, snapshot: Snapshot) -> bool {
        let last = snapshot.meta.last;
        assert!(
            last.index > self.committed,
            "installing a snapshot below the commit index"
        );
        if self.matches(last) {
            self.commit_to(last.index);
            return false;
        }
        self.entries.clear();
        self.snapshot_last = last;
        self.committed = last.index;
        self.applied = last.index;
        self.persisted = last.index;
        self.unstable_from = last.index.next();
        self.snapshot = Some(snapshot.clone());
        self.pending_snapshot = Some(snapshot);
        true
    }
}
