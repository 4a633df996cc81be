//! Opening a data directory: identity checks, WAL replay, torn-tail repair, snapshot loading.
//!
//! Owns: the decision between "a crash tore the end of the log" (cut it off, log how many
//! bytes from which file, carry on) and "data in the middle is damaged" (refuse to start,
//! naming file and offset). A bad record counts as a torn tail only in the last segment and
//! only when no valid record follows it. Must never: drop a record that a valid record
//! follows, start from a directory of another cluster or node, or guess at a missing file.

use crate::codec::{self, DecodeError, Identity, Record, SEGMENT_HEADER_BYTES};
use crate::disk::{
    io_err, parse_segment_name, parse_snapshot_name, segment_name, snap_dir, snapshot_name,
    wal_dir, write_atomic, DiskOptions, DiskStore, Loc, RecoveryReport, Segment,
};
use crate::fs::Fs;
use crate::log_store::StorageError;
use crate::syncer::SyncShared;
use bytes::Bytes;
use raft::{Entry, EntryId, HardState, LogIndex};
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const IDENTITY_FILE: &str = "identity";

fn corrupt(file: &Path, offset: u64, reason: impl ToString) -> StorageError {
    StorageError::CorruptFile {
        file: file.to_path_buf(),
        offset,
        reason: reason.to_string(),
    }
}

fn decode_failure(file: &Path, offset: u64, e: DecodeError) -> StorageError {
    match e {
        DecodeError::Version { found } => StorageError::UnsupportedVersion {
            file: file.to_path_buf(),
            found,
            supported: codec::FORMAT_VERSION,
        },
        e => corrupt(file, offset, e),
    }
}

fn check_owner(file: &Path, id: &Identity, cluster: u64, node: u64) -> Result<(), StorageError> {
    if cluster != id.cluster_id || node != id.node_id.0 {
        return Err(StorageError::WrongCluster {
            file: file.to_path_buf(),
            expected_cluster: id.cluster_id,
            expected_node: id.node_id.0,
            found_cluster: cluster,
            found_node: node,
        });
    }
    Ok(())
}

/// The log as replay rebuilds it.
#[derive(Default)]
struct Replay {
    hard_state: HardState,
    base: EntryId,
    entries: VecDeque<Entry>,
    locs: VecDeque<Loc>,
    records: u64,
}

impl Replay {
    fn last(&self) -> Option<LogIndex> {
        self.entries.back().map(|e| e.index)
    }

    fn first(&self) -> Option<LogIndex> {
        self.entries.front().map(|e| e.index)
    }

    fn truncate_from(&mut self, index: LogIndex) {
        while self.last().is_some_and(|l| l >= index) {
            self.entries.pop_back();
            self.locs.pop_back();
        }
    }

    fn apply(&mut self, rec: Record, loc: Loc, file: &Path) -> Result<(), StorageError> {
        self.records += 1;
        match rec {
            Record::Entry(e) => {
                if e.index <= self.base.index {
                    return Err(corrupt(
                        file,
                        loc.offset,
                        format!(
                            "entry {:?} at or below the snapshot {:?}",
                            e.index, self.base
                        ),
                    ));
                }
                let contiguous = self.last().is_some_and(|l| e.index <= l.next())
                    && self.first().is_some_and(|f| e.index >= f);
                if contiguous {
                    self.truncate_from(e.index);
                } else {
                    // A gap: entries before were in segments a later snapshot made obsolete
                    // (checked at the end: a later snapshot marker must cover the hole).
                    self.entries.clear();
                    self.locs.clear();
                }
                self.entries.push_back(e);
                self.locs.push_back(loc);
            }
            Record::HardState(hs) => self.hard_state = hs,
            Record::Snapshot { last, keep_suffix } => {
                if last.index < self.base.index {
                    return Err(corrupt(
                        file,
                        loc.offset,
                        format!("snapshot marker {last:?} older than {:?}", self.base),
                    ));
                }
                if keep_suffix {
                    while self.first().is_some_and(|f| f <= last.index) {
                        let e = self.entries.pop_front().expect("non-empty");
                        self.locs.pop_front();
                        if e.index == last.index && e.term != last.term {
                            return Err(corrupt(
                                file,
                                loc.offset,
                                format!(
                                    "snapshot {last:?} keeps a log holding term {:?} there",
                                    e.term
                                ),
                            ));
                        }
                    }
                } else {
                    self.entries.clear();
                    self.locs.clear();
                }
                self.base = last;
            }
        }
        Ok(())
    }
}

/// True when some offset in `buf[from..]` starts a valid record: then a bad record before it
/// is damage in the middle of the log, not a torn tail.
fn valid_record_after(buf: &[u8], from: usize) -> bool {
    (from..buf.len().saturating_sub(codec::RECORD_HEADER_BYTES)).any(|p| {
        let len = u32::from_le_bytes(buf[p..p + 4].try_into().expect("4")) as usize;
        len != 0
            && len <= buf.len() - p - codec::RECORD_HEADER_BYTES
            && codec::decode_record(&buf[p..]).is_ok()
    })
}

fn list(fs: &impl Fs, dir: &Path) -> Result<Vec<String>, StorageError> {
    fs.list_dir(dir).map_err(|e| io_err(dir.display(), e))
}

fn remove_tmp_files<F: Fs>(
    fs: &F,
    dir: &Path,
    report: &mut RecoveryReport,
) -> Result<(), StorageError> {
    let mut any = false;
    for name in list(fs, dir)? {
        if name.ends_with(".tmp") {
            let p = dir.join(name);
            fs.remove_file(&p).map_err(|e| io_err(p.display(), e))?;
            tracing::info!(file = %p.display(), "removed a temporary file left by a crash");
            report.removed.push(p);
            any = true;
        }
    }
    if any {
        fs.sync_dir(dir).map_err(|e| io_err(dir.display(), e))?;
    }
    Ok(())
}

/// The identity stored in data directory `dir`, if it holds one (a member that ran before).
pub fn read_identity(fs: &impl Fs, dir: &Path) -> Result<Option<Identity>, StorageError> {
    let path = dir.join(IDENTITY_FILE);
    match fs.read(&path) {
        Ok(bytes) => codec::decode_identity(&bytes)
            .map(Some)
            .map_err(|e| decode_failure(&path, 0, e)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path.display(), e)),
    }
}

fn check_identity<F: Fs>(
    fs: &F,
    dir: &Path,
    identity: Identity,
    has_segments: bool,
) -> Result<Identity, StorageError> {
    let path = dir.join(IDENTITY_FILE);
    match fs.read(&path) {
        Ok(bytes) => {
            let stored = codec::decode_identity(&bytes).map_err(|e| decode_failure(&path, 0, e))?;
            check_owner(&path, &identity, stored.cluster_id, stored.node_id.0)?;
            Ok(stored)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if has_segments {
                return Err(StorageError::Corrupt {
                    what: format!("{} holds WAL segments but no identity file", dir.display()),
                });
            }
            write_atomic(fs, &path, &codec::encode_identity(&identity))?;
            Ok(identity)
        }
        Err(e) => Err(io_err(path.display(), e)),
    }
}

/// Open or create the store in `dir` (see [`DiskStore::open`]).
pub(crate) fn open<F: Fs>(
    fs: F,
    dir: PathBuf,
    identity: Identity,
    opts: DiskOptions,
) -> Result<DiskStore<F>, StorageError> {
    let (wal, snaps) = (wal_dir(&dir), snap_dir(&dir));
    for d in [&dir, &wal, &snaps] {
        fs.create_dir_all(d).map_err(|e| io_err(d.display(), e))?;
    }
    fs.sync_dir(&dir).map_err(|e| io_err(dir.display(), e))?;
    let mut report = RecoveryReport::default();
    remove_tmp_files(&fs, &wal, &mut report)?;
    remove_tmp_files(&fs, &snaps, &mut report)?;
    let mut seqs: Vec<u64> = list(&fs, &wal)?
        .iter()
        .filter_map(|n| parse_segment_name(n))
        .collect();
    seqs.sort_unstable();
    let identity = check_identity(&fs, &dir, identity, !seqs.is_empty())?;
    let mut store = DiskStore {
        fs,
        dir,
        identity,
        opts,
        segments: Vec::new(),
        file_len: 0,
        alloc_len: 0,
        buf: Vec::new(),
        hard_state: HardState::default(),
        snapshot: None,
        snapshot_last: EntryId::default(),
        snapshot_file_bytes: 0,
        locs: VecDeque::new(),
        entry_bytes: 0,
        recovered: Mutex::new(None),
        written_ticket: 0,
        shared: Arc::new(SyncShared::default()),
        syncer: None,
        remover: None,
        pending_gc: VecDeque::new(),
        poisoned: None,
        report,
    };
    if seqs.is_empty() {
        let (seg, len, alloc) = store.create_segment(1)?;
        store.segments.push(seg);
        store.file_len = len;
        store.alloc_len = alloc;
        *store.recovered.lock().expect("fresh mutex") = Some(Vec::new());
        return Ok(store);
    }
    replay(&mut store, &seqs)?;
    Ok(store)
}

fn replay<F: Fs>(store: &mut DiskStore<F>, seqs: &[u64]) -> Result<(), StorageError> {
    let wal = wal_dir(&store.dir);
    for w in seqs.windows(2) {
        if w[1] != w[0] + 1 {
            return Err(StorageError::Corrupt {
                what: format!(
                    "WAL segment {} is missing from {} (found {} then {})",
                    segment_name(w[0] + 1),
                    wal.display(),
                    segment_name(w[0]),
                    segment_name(w[1])
                ),
            });
        }
    }
    let mut rp = Replay::default();
    for (i, &seq) in seqs.iter().enumerate() {
        let path = wal.join(segment_name(seq));
        let is_last = i + 1 == seqs.len();
        let (max_index, len, alloc) = replay_segment(store, &mut rp, seq, &path, is_last)?;
        let file = store
            .fs
            .open(&path)
            .map_err(|e| io_err(path.display(), e))?;
        store.segments.push(Segment {
            seq,
            path,
            file: Arc::new(file),
            max_index,
        });
        store.file_len = len;
        store.alloc_len = alloc;
    }
    if let Some(first) = rp.first() {
        if first != rp.base.index.next() {
            return Err(StorageError::Corrupt {
                what: format!(
                    "log entries {:?}..{:?} are missing from {} (snapshot at {:?})",
                    rp.base.index.next(),
                    first,
                    wal.display(),
                    rp.base
                ),
            });
        }
    }
    load_snapshot(store, rp.base)?;
    store.hard_state = rp.hard_state;
    store.snapshot_last = rp.base;
    store.entry_bytes = rp.locs.iter().map(|l| l.len as usize).sum();
    store.locs = rp.locs;
    store.report.segments = seqs.len();
    store.report.records = rp.records;
    store.report.entries = rp.entries.len();
    *store.recovered.lock().expect("fresh mutex") = Some(rp.entries.into());
    Ok(())
}

/// Replay one segment; returns the highest entry index in it, the length of its valid data
/// and the size of its file (larger when zeros were preallocated after the data).
fn replay_segment<F: Fs>(
    store: &mut DiskStore<F>,
    rp: &mut Replay,
    seq: u64,
    path: &Path,
    is_last: bool,
) -> Result<(LogIndex, u64, u64), StorageError> {
    let bytes = Bytes::from(store.fs.read(path).map_err(|e| io_err(path.display(), e))?);
    let header = codec::decode_segment_header(&bytes).map_err(|e| decode_failure(path, 0, e))?;
    check_owner(path, &store.identity, header.cluster_id, header.node_id.0)?;
    if header.seq != seq {
        return Err(corrupt(
            path,
            0,
            format!("header names segment {}", header.seq),
        ));
    }
    let mut at = SEGMENT_HEADER_BYTES;
    let mut max_index = LogIndex(0);
    while at < bytes.len() {
        match codec::decode_record_in(&bytes, at) {
            Ok((rec, n)) => {
                if let Record::Entry(e) = &rec {
                    max_index = max_index.max(e.index);
                }
                let loc = Loc {
                    term: match &rec {
                        Record::Entry(e) => e.term,
                        _ => Default::default(),
                    },
                    seg: seq,
                    offset: at as u64,
                    len: n as u32,
                };
                rp.apply(rec, loc, path)?;
                at += n;
            }
            // Preallocated space (or a write whose zeros arrived but not its data, which
            // no sync covered): the data ends here.
            Err(_) if bytes[at..].iter().all(|&b| b == 0) => {
                return Ok((max_index, at as u64, bytes.len() as u64));
            }
            Err(e) if is_last && !valid_record_after(&bytes, at + 1) => {
                let torn_end = bytes.iter().rposition(|&b| b != 0).map_or(at, |i| i + 1);
                let cut = (torn_end - at) as u64;
                store
                    .fs
                    .truncate(path, at as u64)
                    .map_err(|e| io_err(path.display(), e))?;
                tracing::warn!(
                    file = %path.display(),
                    offset = at,
                    bytes = cut,
                    reason = %e,
                    "WAL: cut off a torn tail left by a crash"
                );
                store.report.truncated = Some((path.to_path_buf(), at as u64, cut));
                break;
            }
            Err(e) => return Err(corrupt(path, at as u64, e)),
        }
    }
    Ok((max_index, at as u64, at as u64))
}

fn load_snapshot<F: Fs>(store: &mut DiskStore<F>, base: EntryId) -> Result<(), StorageError> {
    let dir = snap_dir(&store.dir);
    let keep = snapshot_name(base);
    let mut stale = Vec::new();
    for name in list(&store.fs, &dir)? {
        if parse_snapshot_name(&name).is_some() && (base.index.0 == 0 || name != keep) {
            stale.push(dir.join(name));
        }
    }
    if base.index.0 > 0 {
        let path = dir.join(&keep);
        let bytes = store.fs.read(&path).map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                StorageError::Corrupt {
                    what: format!("snapshot {} named by the WAL is missing", path.display()),
                }
            } else {
                io_err(path.display(), e)
            }
        })?;
        let (cluster, snap) =
            codec::decode_snapshot(&bytes).map_err(|e| decode_failure(&path, 0, e))?;
        check_owner(&path, &store.identity, cluster, store.identity.node_id.0)?;
        if snap.meta.last != base {
            return Err(corrupt(
                &path,
                0,
                format!("holds snapshot {:?}", snap.meta.last),
            ));
        }
        store.snapshot_file_bytes = bytes.len();
        store.snapshot = Some(snap);
    }
    for p in stale {
        // Older snapshots are obsolete; newer ones never became current (crash before their
        // marker was durable).
        store
            .fs
            .remove_file(&p)
            .map_err(|e| io_err(p.display(), e))?;
        tracing::info!(file = %p.display(), "removed a snapshot the WAL does not use");
        store.report.removed.push(p);
    }
    if !store.report.removed.is_empty() {
        store
            .fs
            .sync_dir(&dir)
            .map_err(|e| io_err(dir.display(), e))?;
    }
    Ok(())
}
