//! The [`LogStore`] conformance suite: what every store (the in-memory one, the on-disk WAL
//! later) must do, written once.
//!
//! Owns: behavioural checks of the trait contract, parameterised by how to make a fresh store
//! and how to reopen one after a clean sync (for a disk store: close the files and recover
//! them). Must never: depend on a concrete store or test durability of unsynced writes (that
//! is each store's own crash model).

use crate::log_store::{LogStore, StorageError};
use raft::{
    Configuration, Entry, EntryId, EntryKind, HardState, LogIndex, NodeId, Snapshot, SnapshotMeta,
    Term,
};

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        kind: EntryKind::Normal,
        data: format!("e{index}t{term}").into(),
    }
}

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            last: EntryId::new(Term(term), LogIndex(index)),
            config: Configuration::new([NodeId(1), NodeId(2)]),
        },
        data: format!("state@{index}").into(),
    }
}

fn log_of<S: LogStore>(s: &S) -> Vec<(u64, u64)> {
    let init = s.initial_state().expect("initial_state");
    init.entries.iter().map(|e| (e.index.0, e.term.0)).collect()
}

/// Run every check. `new_store` makes an empty store for the given bootstrap voters;
/// `reopen` closes a store whose writes were all synced and opens it again.
pub fn check_all<S: LogStore>(
    mut new_store: impl FnMut(Configuration) -> S,
    mut reopen: impl FnMut(S) -> S,
) {
    let boot = || Configuration::new([NodeId(1), NodeId(2), NodeId(3)]);
    empty_store_bootstraps(new_store(boot()));
    append_truncates_conflicts(new_store(boot()));
    append_rejects_bad_input(new_store(boot()));
    snapshot_compacts_or_replaces_log(new_store(boot()));
    sizes_follow_contents(new_store(boot()));
    synced_state_survives_reopen(new_store(boot()), &mut reopen);
}

/// A new store reports the bootstrap configuration and nothing else.
pub fn empty_store_bootstraps<S: LogStore>(s: S) {
    let init = s.initial_state().unwrap();
    assert_eq!(
        init.config,
        Configuration::new([NodeId(1), NodeId(2), NodeId(3)])
    );
    assert_eq!(init.hard_state, HardState::default());
    assert!(init.snapshot.is_none() && init.entries.is_empty());
}

/// Appending at an index discards the stored suffix from that index on.
pub fn append_truncates_conflicts<S: LogStore>(mut s: S) {
    s.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]).unwrap();
    s.append(&[entry(2, 2), entry(3, 2), entry(4, 2)]).unwrap();
    assert_eq!(log_of(&s), vec![(1, 1), (2, 2), (3, 2), (4, 2)]);
    s.append(&[entry(5, 2)]).unwrap();
    s.append(&[]).unwrap();
    assert_eq!(log_of(&s).len(), 5);
}

/// Gaps, non-contiguous batches and appends below the snapshot are refused, and change
/// nothing.
pub fn append_rejects_bad_input<S: LogStore>(mut s: S) {
    assert!(matches!(
        s.append(&[entry(2, 1)]),
        Err(StorageError::Gap { .. })
    ));
    let bad = [entry(1, 1), entry(3, 1)];
    assert!(matches!(
        s.append(&bad),
        Err(StorageError::NotContiguous { .. })
    ));
    s.append(&[entry(1, 1), entry(2, 1)]).unwrap();
    s.save_snapshot(&snapshot(2, 1)).unwrap();
    assert!(matches!(
        s.append(&[entry(2, 1)]),
        Err(StorageError::Compacted { .. })
    ));
    assert!(matches!(
        s.save_snapshot(&snapshot(1, 1)),
        Err(StorageError::StaleSnapshot { .. })
    ));
    assert_eq!(log_of(&s), vec![]);
    s.append(&[entry(3, 1)]).unwrap();
    assert_eq!(log_of(&s), vec![(3, 1)]);
}

/// A snapshot keeps the log after it only when the log holds its last entry id.
pub fn snapshot_compacts_or_replaces_log<S: LogStore>(mut s: S) {
    s.append(&[entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)])
        .unwrap();
    s.save_snapshot(&snapshot(2, 1)).unwrap();
    assert_eq!(log_of(&s), vec![(3, 2), (4, 2)]);
    let init = s.initial_state().unwrap();
    assert_eq!(init.snapshot, Some(snapshot(2, 1)));
    // Same index, other term: the log diverged from the snapshot, drop it all.
    s.save_snapshot(&snapshot(4, 3)).unwrap();
    assert_eq!(log_of(&s), vec![]);
    // Beyond the log: nothing to keep.
    s.append(&[entry(5, 3)]).unwrap();
    s.save_snapshot(&snapshot(9, 3)).unwrap();
    assert_eq!(log_of(&s), vec![]);
    s.append(&[entry(10, 3)]).unwrap();
    assert_eq!(log_of(&s), vec![(10, 3)]);
}

/// `log_bytes` grows with entries and shrinks with compaction; `snapshot_bytes` follows the
/// snapshot.
pub fn sizes_follow_contents<S: LogStore>(mut s: S) {
    let empty = s.log_bytes();
    assert_eq!(s.snapshot_bytes(), 0);
    s.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]).unwrap();
    let full = s.log_bytes();
    assert!(full > empty);
    s.save_snapshot(&snapshot(2, 1)).unwrap();
    assert!(s.log_bytes() < full);
    assert!(s.snapshot_bytes() >= snapshot(2, 1).data.len());
}

/// After `sync`, reopening gives back exactly the same state.
pub fn synced_state_survives_reopen<S: LogStore>(mut s: S, reopen: &mut impl FnMut(S) -> S) {
    s.append(&[entry(1, 1), entry(2, 1), entry(3, 2)]).unwrap();
    s.save_snapshot(&snapshot(1, 1)).unwrap();
    let hs = HardState {
        term: Term(2),
        vote: NodeId(3),
        commit: LogIndex(2),
    };
    s.set_hard_state(hs).unwrap();
    s.sync().unwrap();
    let before = s.initial_state().unwrap();
    let s = reopen(s);
    let after = s.initial_state().unwrap();
    assert_eq!(after.hard_state, hs);
    assert_eq!(after.snapshot, before.snapshot);
    assert_eq!(after.entries, before.entries);
    assert_eq!(after.config, before.config);
}
