//! Oracle of the `wal_recovery` target.
//!
//! The input's first [`HEADER_BYTES`] bytes choose a workload (entry count and size, segment
//! size, append batch, an optional snapshot, an optional conflicting suffix) and a kind of
//! damage ([`Damage`]); the rest are the bytes the damage writes. The workload runs on a
//! `FaultFs` through `DiskStore` and is synced; the damage is applied to the durable files;
//! then `DiskStore::open` + `initial_state` run.
//!
//! Whatever the input, nothing may panic. When the damaged region holds no *forged* record
//! (a valid record that the workload did not write there), recovery's outcome is fully
//! determined, and a model computes it from the records the workload wrote:
//! - damage inside the header or records of a segment that is not the last one, or damage
//!   followed by intact records in the last one: recovery refuses (an error);
//! - otherwise the last segment is cut at the first damaged record and the state is the
//!   replay of every record before it (entries, hard state, snapshot), or an error where that
//!   replay itself is inconsistent (a missing snapshot file, entries not following the
//!   snapshot).
//!
//! After a successful open, a second open must see the same state, and the store must accept
//! and durably keep one more entry.

use raft::{
    Configuration, Entry, EntryId, EntryKind, HardState, LogIndex, NodeId, Snapshot, SnapshotMeta,
    Term,
};
use std::path::{Path, PathBuf};
use storage::codec::{self, Record, SEGMENT_HEADER_BYTES};
use storage::{DiskOptions, DiskStore, FaultFs, Fs, Identity, LogStore};

/// Bytes of the input that choose the workload and the damage.
pub const HEADER_BYTES: usize = 8;

const DIR: &str = "/data";

/// What the input does to the files after the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// Overwrite the last segment from `offset`.
    OverwriteLast,
    /// Append to the last segment.
    AppendLast,
    /// Replace everything after the last segment's header.
    ReplaceLastBody,
    /// Cut the last segment at `offset`, then append.
    CutLastAndAppend,
    /// Overwrite the first segment from `offset` (the last one if there is only one).
    OverwriteFirst,
    /// Replace the identity file.
    ReplaceIdentity,
    /// Replace the current snapshot file (append to the last segment without one).
    ReplaceSnapshot,
}

/// The workload and damage an input encodes.
#[derive(Clone, Debug)]
pub struct Plan {
    pub entries: u64,
    pub entry_bytes: usize,
    pub segment_bytes: u64,
    pub batch: u64,
    pub snapshot_at: Option<u64>,
    /// Rewrite the log from this index with term 2 (two entries).
    pub conflict_from: Option<u64>,
    pub damage: Damage,
    pub offset: usize,
}

impl Plan {
    pub fn decode(head: &[u8; HEADER_BYTES]) -> Plan {
        let entries = 1 + u64::from(head[0] % 40);
        let damage = match head[5] % 7 {
            0 => Damage::OverwriteLast,
            1 => Damage::AppendLast,
            2 => Damage::ReplaceLastBody,
            3 => Damage::CutLastAndAppend,
            4 => Damage::OverwriteFirst,
            5 => Damage::ReplaceIdentity,
            _ => Damage::ReplaceSnapshot,
        };
        Plan {
            entries,
            entry_bytes: usize::from(head[1] % 200),
            segment_bytes: 256 + u64::from(head[2]) * 32,
            batch: 1 + u64::from(head[3] % 4),
            snapshot_at: (head[3] & 0x80 != 0).then(|| 1 + u64::from(head[4]) % entries),
            conflict_from: (head[3] & 0x40 != 0).then(|| 1 + u64::from(head[4] >> 3) % entries),
            damage,
            offset: usize::from(u16::from_le_bytes([head[6], head[7]])),
        }
    }
}

pub fn identity() -> Identity {
    Identity {
        cluster_id: 0xF022,
        node_id: NodeId(1),
        bootstrap: Configuration::new([NodeId(1), NodeId(2), NodeId(3)]),
    }
}

fn options(plan: &Plan) -> DiskOptions {
    DiskOptions {
        segment_bytes: plan.segment_bytes,
        write_buffer_bytes: 512,
        // With and without zeros ahead of the records (damage may land in them).
        preallocate_bytes: [0, 200, 4096][(plan.segment_bytes % 3) as usize],
    }
}

fn entry(index: u64, term: u64, bytes: usize) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        kind: EntryKind::Normal,
        // 0xEE never starts a record (its length would exceed the limit).
        data: vec![0xEE; bytes].into(),
    }
}

fn snapshot(last: EntryId) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            last,
            config: identity().bootstrap,
        },
        data: format!("state@{}", last.index.0).into(),
    }
}

/// Run the plan's workload on `fs`, synced after every batch.
fn write_workload(fs: &FaultFs, plan: &Plan) {
    let mut s = DiskStore::open(fs.clone(), DIR, identity(), options(plan)).expect("create");
    let mut next = 1;
    while next <= plan.entries {
        let end = (next + plan.batch).min(plan.entries + 1);
        let batch: Vec<Entry> = (next..end).map(|i| entry(i, 1, plan.entry_bytes)).collect();
        s.append(&batch).expect("append");
        let hs = HardState {
            term: Term(1),
            vote: NodeId(1),
            commit: LogIndex(end - 1),
        };
        s.set_hard_state(hs).expect("hard state");
        if let Some(at) = plan.snapshot_at.filter(|at| (next..end).contains(at)) {
            s.sync().expect("sync");
            let snap = snapshot(EntryId::new(Term(1), LogIndex(at)));
            s.save_snapshot(&snap).expect("snapshot");
        }
        s.sync().expect("sync");
        next = end;
    }
    if let Some(from) = plan.conflict_from {
        let from = from.max(s.first_index().0);
        let batch = [entry(from, 2, plan.entry_bytes), entry(from + 1, 2, 3)];
        s.append(&batch).expect("conflicting append");
        let hs = HardState {
            term: Term(2),
            vote: NodeId(1),
            commit: LogIndex(from - 1),
        };
        s.set_hard_state(hs).expect("hard state");
        s.sync().expect("sync");
    }
}

/// The live segment files, oldest first.
fn segments(fs: &FaultFs) -> Vec<PathBuf> {
    let wal = Path::new(DIR).join("wal");
    let mut names: Vec<String> = fs.list_dir(&wal).expect("wal dir");
    names.retain(|n| n.ends_with(".wal"));
    names.sort();
    names.into_iter().map(|n| wal.join(n)).collect()
}

fn snapshot_files(fs: &FaultFs) -> Vec<PathBuf> {
    let dir = Path::new(DIR).join("snap");
    let mut names = fs.list_dir(&dir).expect("snap dir");
    names.retain(|n| n.ends_with(".snap"));
    names.sort();
    names.into_iter().map(|n| dir.join(n)).collect()
}

fn replace_file(fs: &FaultFs, path: &Path, bytes: &[u8]) {
    fs.truncate(path, 0).expect("truncate");
    fs.corrupt(path, 0, bytes).expect("write");
}

/// A segment's valid records: (offset, framed length, record).
fn records(bytes: &[u8]) -> Vec<(usize, usize, Record)> {
    let mut out = Vec::new();
    let mut at = SEGMENT_HEADER_BYTES;
    while let Ok((rec, n)) = codec::decode_record(&bytes[at.min(bytes.len())..]) {
        out.push((at, n, rec));
        at += n;
    }
    assert_eq!(
        at,
        bytes.len(),
        "the workload left a segment with a bad record"
    );
    out
}

/// What recovery must do, as far as the oracle can tell.
#[derive(Debug)]
enum Expect {
    /// Nothing known (a forged record or a replaced file that still decodes).
    Anything,
    /// Refuse to open.
    Error(String),
    /// Open with this state.
    State(ModelState),
}

/// The state a replay of records yields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelState {
    pub hard_state: HardState,
    pub snapshot: EntryId,
    pub entries: Vec<Entry>,
}

/// Replay records the way recovery is specified to; `Err` where it must refuse.
fn replay<'a>(recs: impl IntoIterator<Item = &'a Record>) -> Result<ModelState, String> {
    let mut m = ModelState::default();
    for rec in recs {
        match rec {
            Record::Entry(e) => {
                if e.index <= m.snapshot.index {
                    return Err(format!("entry {:?} below the snapshot", e.index));
                }
                m.entries.retain(|x| x.index < e.index);
                if m.entries.last().is_some_and(|l| l.index.next() != e.index) {
                    m.entries.clear();
                }
                m.entries.push(e.clone());
            }
            Record::HardState(hs) => m.hard_state = *hs,
            Record::Snapshot { last, keep_suffix } => {
                if last.index < m.snapshot.index {
                    return Err("snapshot marker goes back".into());
                }
                if *keep_suffix {
                    if let Some(e) = m.entries.iter().find(|e| e.index == last.index) {
                        if e.term != last.term {
                            return Err("snapshot keeps a log of another term".into());
                        }
                    }
                    m.entries.retain(|e| e.index > last.index);
                } else {
                    m.entries.clear();
                }
                m.snapshot = *last;
            }
        }
    }
    if let Some(first) = m.entries.first() {
        if first.index != m.snapshot.index.next() {
            return Err(format!(
                "entries start at {:?} after {:?}",
                first.index, m.snapshot
            ));
        }
    }
    Ok(m)
}

/// Damage one segment: `old` became `new`. Returns where replay of it stops and whether
/// recovery must refuse, or `None` when a forged record makes the outcome unknown.
fn segment_damage(old: &[u8], new: &[u8], is_last: bool) -> Option<(usize, bool)> {
    let header_same = match (
        codec::decode_segment_header(old),
        codec::decode_segment_header(new),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !header_same {
        return Some((0, true));
    }
    let originals = records(old);
    let intact = |at: usize, n: usize| new.get(at..at + n) == old.get(at..at + n);
    // The first original record that changed, or the end of the original data.
    let cut = originals
        .iter()
        .find(|(at, n, _)| !intact(*at, *n))
        .map_or(old.len(), |(at, _, _)| *at);
    if cut == new.len() {
        return Some((cut, false));
    }
    let forged = (cut..new.len()).any(|p| {
        codec::decode_record(&new[p..]).is_ok()
            && !originals
                .iter()
                .any(|(at, n, _)| *at == p && intact(*at, *n))
    });
    if forged {
        return None;
    }
    let intact_after = originals
        .iter()
        .any(|(at, n, _)| *at > cut && intact(*at, *n));
    Some((cut, !is_last || intact_after))
}

/// Apply the damage; returns what recovery must do.
fn damage(fs: &FaultFs, plan: &Plan, payload: &[u8]) -> Expect {
    let segs = segments(fs);
    let old: Vec<Vec<u8>> = segs.iter().map(|p| fs.read(p).expect("segment")).collect();
    let last = segs.len() - 1;
    let snaps = snapshot_files(fs);
    let target = match plan.damage {
        Damage::ReplaceIdentity => {
            let path = Path::new(DIR).join("identity");
            replace_file(fs, &path, payload);
            return match codec::decode_identity(payload) {
                Ok(id) if id.cluster_id == identity().cluster_id && id.node_id == NodeId(1) => {
                    Expect::Anything
                }
                _ => Expect::Error("identity file damaged".into()),
            };
        }
        Damage::ReplaceSnapshot if !snaps.is_empty() => {
            replace_file(fs, &snaps[0], payload);
            return match codec::decode_snapshot(payload) {
                Ok(_) => Expect::Anything,
                Err(_) => Expect::Error("snapshot file damaged".into()),
            };
        }
        Damage::OverwriteFirst => 0,
        _ => last,
    };
    let path = &segs[target];
    let len = old[target].len();
    match plan.damage {
        Damage::OverwriteLast | Damage::OverwriteFirst => fs
            .corrupt(path, plan.offset % (len + 1), payload)
            .expect("overwrite"),
        Damage::ReplaceLastBody => {
            fs.truncate(path, SEGMENT_HEADER_BYTES as u64).expect("cut");
            fs.corrupt(path, SEGMENT_HEADER_BYTES, payload)
                .expect("write");
        }
        Damage::CutLastAndAppend => {
            let at = SEGMENT_HEADER_BYTES + plan.offset % (len - SEGMENT_HEADER_BYTES + 1);
            fs.truncate(path, at as u64).expect("cut");
            fs.corrupt(path, at, payload).expect("append");
        }
        _ => fs.corrupt(path, len, payload).expect("append"),
    }
    let new = fs.read(path).expect("segment");
    let Some((cut, refuse)) = segment_damage(&old[target], &new, target == last) else {
        return Expect::Anything;
    };
    if refuse {
        return Expect::Error(format!("segment {target} damaged at {cut}"));
    }
    expected_state(fs, &old, target, cut)
}

/// The model's state: every record the workload wrote, except those of segment `target` from
/// `cut` on (recovery cuts the damaged tail there).
fn expected_state(fs: &FaultFs, old: &[Vec<u8>], target: usize, cut: usize) -> Expect {
    let mut recs: Vec<Record> = Vec::new();
    for (i, bytes) in old.iter().enumerate() {
        let keep = records(bytes)
            .into_iter()
            .filter(|(at, n, _)| i != target || at + n <= cut);
        recs.extend(keep.map(|(_, _, r)| r));
    }
    match replay(&recs) {
        Err(why) => Expect::Error(why),
        Ok(m) if m.snapshot.index.0 > 0 => {
            let name = format!(
                "{:016x}-{:016x}.snap",
                m.snapshot.term.0, m.snapshot.index.0
            );
            if snapshot_files(fs).iter().any(|p| p.ends_with(&name)) {
                Expect::State(m)
            } else {
                Expect::Error(format!("snapshot {name} is gone"))
            }
        }
        Ok(m) => Expect::State(m),
    }
}

fn state_of(s: &DiskStore<FaultFs>) -> ModelState {
    let init = s
        .initial_state()
        .expect("initial_state after a successful open");
    let snapshot = init.snapshot.map(|s| s.meta.last).unwrap_or_default();
    assert_eq!(s.first_index(), snapshot.index.next());
    assert_eq!(
        s.last_index().0,
        snapshot.index.0 + init.entries.len() as u64
    );
    ModelState {
        hard_state: init.hard_state,
        snapshot,
        entries: init.entries,
    }
}

/// Run one input.
pub fn check(data: &[u8]) {
    let Some((head, payload)) = data.split_first_chunk::<HEADER_BYTES>() else {
        return;
    };
    let plan = Plan::decode(head);
    let fs = FaultFs::new();
    write_workload(&fs, &plan);
    let expect = damage(&fs, &plan, payload);
    let opened = DiskStore::open(fs.clone(), DIR, identity(), options(&plan));
    let store = match (opened, &expect) {
        (Err(_), Expect::Error(_) | Expect::Anything) => return,
        (Err(e), Expect::State(m)) => panic!("recovery refused: {e}; expected {m:?}"),
        (Ok(_), Expect::Error(why)) => panic!("recovery accepted damage it must refuse: {why}"),
        (Ok(s), _) => s,
    };
    let state = state_of(&store);
    if let Expect::State(m) = &expect {
        assert_eq!(&state, m, "recovered state differs from the model");
    }
    drop(store);
    let mut again = DiskStore::open(fs.clone(), DIR, identity(), options(&plan))
        .expect("a second open after a successful one");
    assert_eq!(state_of(&again), state, "recovery is not idempotent");
    let next = again.last_index().next();
    again
        .append(&[entry(next.0, 9, 5)])
        .expect("append after recovery");
    again.sync().expect("sync after recovery");
    drop(again);
    let third = DiskStore::open(fs, DIR, identity(), options(&plan)).expect("third open");
    let mut want = state.entries;
    want.push(entry(next.0, 9, 5));
    assert_eq!(
        state_of(&third).entries,
        want,
        "the entry appended after recovery"
    );
}
