//! DiskStore: the conformance suite on the real disk and on FaultFs, and recovery's handling
//! of torn tails, mid-log corruption, foreign directories and segment removal.

use raft::{
    Configuration, Entry, EntryId, EntryKind, HardState, LogIndex, NodeId, Snapshot, SnapshotMeta,
    Term,
};
use std::path::{Path, PathBuf};
use storage::{
    conformance, DiskOptions, DiskStore, FaultFs, Fs, Identity, LogStore, Restart, StdFs,
    StorageError,
};

fn identity(conf: Configuration) -> Identity {
    Identity {
        cluster_id: 0xC1,
        node_id: NodeId(1),
        bootstrap: conf,
    }
}

fn boot() -> Configuration {
    Configuration::new([NodeId(1), NodeId(2), NodeId(3)])
}

fn entry(index: u64, term: u64, size: usize) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        kind: EntryKind::Normal,
        data: vec![(index % 251) as u8; size].into(),
    }
}

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            last: EntryId::new(Term(term), LogIndex(index)),
            config: boot(),
        },
        data: format!("state@{index}").into(),
    }
}

fn small_segments() -> DiskOptions {
    DiskOptions {
        segment_bytes: 4096,
        write_buffer_bytes: 1024,
        preallocate_bytes: 1000,
    }
}

#[test]
fn std_disk_store_passes_the_conformance_suite() {
    let root = tempfile::tempdir().unwrap();
    let mut n = 0;
    let base = root.path().to_path_buf();
    conformance::check_all(
        |conf| {
            n += 1;
            DiskStore::open(
                StdFs,
                base.join(n.to_string()),
                identity(conf),
                small_segments(),
            )
            .unwrap()
        },
        |s: DiskStore<StdFs>| {
            let dir = s_dir(&s);
            let id = s.identity().clone();
            drop(s);
            DiskStore::open(StdFs, dir, id, small_segments()).unwrap()
        },
    );
}

fn s_dir<F: Fs>(s: &DiskStore<F>) -> PathBuf {
    s.recovery_report();
    // The conformance stores live in numbered directories; recover the path from the first
    // segment file.
    s.segment_path(0)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn fault_fs_disk_store_passes_the_conformance_suite() {
    let fs = FaultFs::new();
    let mut n = 0;
    let fs2 = fs.clone();
    conformance::check_all(
        |conf| {
            n += 1;
            DiskStore::open(
                fs.clone(),
                PathBuf::from(format!("/d{n}")),
                identity(conf),
                small_segments(),
            )
            .unwrap()
        },
        |s: DiskStore<FaultFs>| {
            let dir = s_dir(&s);
            let id = s.identity().clone();
            drop(s);
            fs2.restart(Restart::LoseUnsynced);
            DiskStore::open(fs2.clone(), dir, id, small_segments()).unwrap()
        },
    );
}

fn open(fs: &FaultFs, dir: &str) -> Result<DiskStore<FaultFs>, StorageError> {
    DiskStore::open(fs.clone(), dir, identity(boot()), small_segments())
}

fn ids(s: &impl LogStore) -> Vec<(u64, u64)> {
    let init = s.initial_state().unwrap();
    init.entries.iter().map(|e| (e.index.0, e.term.0)).collect()
}

#[test]
fn restart_across_many_segments_returns_every_synced_entry() {
    let fs = FaultFs::new();
    let mut s = open(&fs, "/n").unwrap();
    for i in 1..=300 {
        s.append(&[entry(i, 1 + i / 100, 100)]).unwrap();
        if i % 7 == 0 {
            s.set_hard_state(HardState {
                term: Term(1 + i / 100),
                vote: NodeId(2),
                commit: LogIndex(i - 3),
            })
            .unwrap();
        }
    }
    s.sync().unwrap();
    assert!(s.segment_count() > 5, "small segments roll");
    let expect = s.initial_state().unwrap();
    drop(s);
    fs.restart(Restart::LoseUnsynced);
    let s = open(&fs, "/n").unwrap();
    let got = s.initial_state().unwrap();
    assert_eq!(got.entries, expect.entries);
    assert_eq!(got.hard_state, expect.hard_state);
    assert_eq!(
        s.entries(LogIndex(10), LogIndex(20)).unwrap(),
        expect.entries[9..19]
    );
    assert_eq!(s.term(LogIndex(250)), Some(Term(3)));
    assert_eq!(s.recovery_report().truncated, None);
}

#[test]
fn torn_tail_is_cut_off_and_reported() {
    let fs = FaultFs::new();
    let mut s = open(&fs, "/n").unwrap();
    s.append(&[entry(1, 1, 10), entry(2, 1, 10)]).unwrap();
    s.sync().unwrap();
    s.append(&[entry(3, 1, 200)]).unwrap();
    fs.cut_power_after(fs.ops());
    assert!(s.sync().is_err());
    drop(s);
    fs.restart(Restart::KeepCompleted {
        torn_bytes: 50,
        zero_fill: false,
    });
    let s = open(&fs, "/n").unwrap();
    assert_eq!(ids(&s), vec![(1, 1), (2, 1)]);
    let (file, _offset, bytes) = s.recovery_report().truncated.clone().expect("torn tail");
    assert!(file.ends_with("wal/0000000000000001.wal"));
    assert_eq!(bytes, 50);
    // The repaired log takes appends again.
    let mut s = s;
    s.append(&[entry(3, 2, 5)]).unwrap();
    s.sync().unwrap();
    drop(s);
    let s = open(&fs, "/n").unwrap();
    assert_eq!(ids(&s), vec![(1, 1), (2, 1), (3, 2)]);
}

#[test]
fn zero_filled_tail_is_free_space() {
    let fs = FaultFs::new();
    let mut s = open(&fs, "/n").unwrap();
    s.append(&[entry(1, 1, 10)]).unwrap();
    s.sync().unwrap();
    s.append(&[entry(2, 1, 300)]).unwrap();
    fs.cut_power_after(fs.ops());
    assert!(s.sync().is_err());
    drop(s);
    fs.restart(Restart::KeepCompleted {
        torn_bytes: 0,
        zero_fill: true,
    });
    let mut s = open(&fs, "/n").unwrap();
    assert_eq!(ids(&s), vec![(1, 1)]);
    // Zeros after the data are what preallocation leaves too: nothing to cut or report.
    assert_eq!(s.recovery_report().truncated, None);
    s.append(&[entry(2, 2, 30)]).unwrap();
    s.sync().unwrap();
    drop(s);
    let s = open(&fs, "/n").unwrap();
    assert_eq!(ids(&s), vec![(1, 1), (2, 2)]);
}

fn segment_file(fs: &FaultFs, dir: &str, seq: u64) -> PathBuf {
    let p = Path::new(dir).join("wal").join(format!("{seq:016x}.wal"));
    assert!(fs.read(&p).is_ok(), "{} exists", p.display());
    p
}

#[test]
fn corruption_before_valid_records_refuses_to_start_naming_file_and_offset() {
    let fs = FaultFs::new();
    let mut s = open(&fs, "/n").unwrap();
    for i in 1..=5 {
        s.append(&[entry(i, 1, 20)]).unwrap();
    }
    s.sync().unwrap();
    let second_entry_offset = s.entry_offset(LogIndex(2));
    drop(s);
    let path = segment_file(&fs, "/n", 1);
    fs.corrupt(&path, second_entry_offset as usize + 12, &[0xFF])
        .unwrap();
    match open(&fs, "/n") {
        Err(StorageError::CorruptFile { file, offset, .. }) => {
            assert_eq!(file, path);
            assert_eq!(offset, second_entry_offset);
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a WAL with a damaged middle"),
    }
}

#[test]
fn corruption_in_an_earlier_segment_is_never_a_torn_tail() {
    let fs = FaultFs::new();
    let mut s = open(&fs, "/n").unwrap();
    for i in 1..=100 {
        s.append(&[entry(i, 1, 100)]).unwrap();
    }
    s.sync().unwrap();
    assert!(s.segment_count() >= 2);
    drop(s);
    let path = segment_file(&fs, "/n", 1);
    let len = fs.read(&path).unwrap().len();
    fs.corrupt(&path, len - 3, &[0xAB]).unwrap();
    let err = open(&fs, "/n").err().expect("refused");
    assert!(
        matches!(err, StorageError::CorruptFile { ref file, .. } if *file == path),
        "{err}"
    );
}

#[test]
fn a_foreign_or_newer_directory_is_refused_with_a_clear_error() {
    let fs = FaultFs::new();
    let mut s = open(&fs, "/n").unwrap();
    s.append(&[entry(1, 1, 1)]).unwrap();
    s.sync().unwrap();
    drop(s);
    let other = Identity {
        cluster_id: 0xC2,
        ..identity(boot())
    };
    let err = DiskStore::open(fs.clone(), "/n", other, small_segments())
        .err()
        .expect("foreign cluster refused");
    assert!(matches!(
        err,
        StorageError::WrongCluster {
            found_cluster: 0xC1,
            expected_cluster: 0xC2,
            ..
        }
    ));
    assert!(err.to_string().contains("wrong --data-dir"), "{err}");
    let other_node = Identity {
        node_id: NodeId(2),
        ..identity(boot())
    };
    assert!(matches!(
        DiskStore::open(fs.clone(), "/n", other_node, small_segments()),
        Err(StorageError::WrongCluster { .. })
    ));
    // A segment from a future format version.
    let path = segment_file(&fs, "/n", 1);
    fs.corrupt(&path, 8, &[9]).unwrap();
    assert!(matches!(
        open(&fs, "/n"),
        Err(StorageError::UnsupportedVersion { found: 9, .. })
    ));
}

#[test]
fn a_missing_segment_is_an_error() {
    let fs = FaultFs::new();
    let mut s = open(&fs, "/n").unwrap();
    for i in 1..=120 {
        s.append(&[entry(i, 1, 100)]).unwrap();
    }
    s.sync().unwrap();
    assert!(s.segment_count() >= 3);
    drop(s);
    fs.remove_file(&segment_file(&fs, "/n", 2)).unwrap();
    fs.sync_dir(Path::new("/n/wal")).unwrap();
    let err = open(&fs, "/n").err().expect("refused");
    assert!(err.to_string().contains("0000000000000002.wal"), "{err}");
}

#[test]
fn durable_snapshot_removes_covered_segments_and_old_snapshots() {
    let fs = FaultFs::new();
    let mut s = open(&fs, "/n").unwrap();
    for i in 1..=200 {
        s.append(&[entry(i, 1, 100)]).unwrap();
    }
    s.sync().unwrap();
    let before = s.segment_count();
    s.save_snapshot(&snapshot(50, 1)).unwrap();
    s.sync().unwrap();
    s.save_snapshot(&snapshot(150, 1)).unwrap();
    s.sync().unwrap();
    let after = s.segment_count();
    assert!(after < before, "segments {before} -> {after}");
    let snaps = fs.list_dir(Path::new("/n/snap")).unwrap();
    assert_eq!(snaps, vec![format!("{:016x}-{:016x}.snap", 1, 150)]);
    let expect = s.initial_state().unwrap();
    drop(s);
    fs.restart(Restart::LoseUnsynced);
    let s = open(&fs, "/n").unwrap();
    let got = s.initial_state().unwrap();
    assert_eq!(got.snapshot, Some(snapshot(150, 1)));
    assert_eq!(got.entries, expect.entries);
    assert_eq!(got.entries.first().map(|e| e.index), Some(LogIndex(151)));
}

#[test]
fn snapshot_without_durable_marker_is_ignored_after_a_crash() {
    let fs = FaultFs::new();
    let mut s = open(&fs, "/n").unwrap();
    for i in 1..=10 {
        s.append(&[entry(i, 1, 10)]).unwrap();
    }
    s.sync().unwrap();
    s.save_snapshot(&snapshot(8, 1)).unwrap();
    drop(s); // marker never synced
    fs.restart(Restart::LoseUnsynced);
    let s = open(&fs, "/n").unwrap();
    assert!(s.snapshot().is_none());
    assert_eq!(ids(&s).len(), 10);
    assert_eq!(
        s.recovery_report().removed.len(),
        1,
        "the unused snapshot file is removed"
    );
}

#[test]
fn group_commit_reports_every_ticket_durable() {
    let root = tempfile::tempdir().unwrap();
    let mut s =
        DiskStore::open(StdFs, root.path(), identity(boot()), DiskOptions::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    s.enable_group_commit(Box::new(move |d| tx.send(d).unwrap()))
        .unwrap();
    let mut last = 0;
    for i in 1..=200 {
        s.append(&[entry(i, 1, 256)]).unwrap();
        last = s.start_sync().unwrap();
    }
    let mut durable = 0;
    let mut reports = 0;
    while durable < last {
        let d = rx.recv().unwrap();
        assert_eq!(d.result, Ok(()));
        assert!(d.ticket > durable, "tickets grow");
        durable = d.ticket;
        reports += 1;
    }
    assert_eq!(s.durable_ticket(), last);
    assert!(reports <= 200);
    drop(s);
    let s = DiskStore::open(StdFs, root.path(), identity(boot()), DiskOptions::default()).unwrap();
    assert_eq!(ids(&s).len(), 200);
}

/// Group commit under power cuts: whatever the sync thread reported durable before the
/// power went out is there after recovery, and the log is a prefix of what was written.
#[test]
fn group_commit_acknowledgements_survive_power_cuts() {
    for round in 0..60u64 {
        let fs = FaultFs::new();
        let mut s = open(&fs, "/n").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        s.enable_group_commit(Box::new(move |d| {
            let _ = tx.send(d);
        }))
        .unwrap();
        let cut_after = 5 + round * 7;
        let mut last_index_at_ticket = vec![0u64];
        let mut written = 0u64;
        for i in 1..=400u64 {
            if i == cut_after {
                fs.cut_power();
            }
            if s.append(&[entry(i, 1, (i % 300) as usize)]).is_err() {
                break;
            }
            written = i;
            match s.start_sync() {
                Ok(t) => {
                    last_index_at_ticket.resize(t as usize + 1, i);
                    last_index_at_ticket[t as usize] = i;
                }
                Err(_) => break,
            }
        }
        drop(s); // joins the sync thread: every report is in the channel now
        let acked = rx
            .try_iter()
            .filter(|d| d.result.is_ok())
            .map(|d| last_index_at_ticket[d.ticket as usize])
            .max()
            .unwrap_or(0);
        fs.restart(if round % 2 == 0 {
            Restart::LoseUnsynced
        } else {
            Restart::Random { seed: round }
        });
        let s = open(&fs, "/n").unwrap();
        let got = s.initial_state().unwrap().entries;
        assert!(
            got.len() as u64 >= acked,
            "round {round}: acknowledged {acked} entries, recovered {}",
            got.len()
        );
        assert!(got.len() as u64 <= written);
        for (k, e) in got.iter().enumerate() {
            assert_eq!(*e, entry(k as u64 + 1, 1, ((k as u64 + 1) % 300) as usize));
        }
    }
}
