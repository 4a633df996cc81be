//! [`DiskStore`]: the durable [`LogStore`] — a segmented write-ahead log plus snapshot files,
//! over any [`Fs`] (the real disk, or [`crate::FaultFs`] in tests and the simulator).
//!
//! Data directory layout:
//! - `identity` — cluster id, node id and bootstrap membership (written once, checked on
//!   every open);
//! - `wal/{seq:016x}.wal` — log segments; each starts with a header and a copy of the current
//!   snapshot marker and hard state, then records (see [`crate::codec`]);
//! - `snap/{term:016x}-{index:016x}.snap` — the current snapshot (older ones are removed once
//!   a newer one is durable).
//!
//! Owns: the write path (records buffered, then written and synced — blocking with
//! [`LogStore::sync`], or by group commit on a dedicated thread with
//! [`DiskStore::start_sync`]), segment rolling, snapshot files, and removal of segments and
//! snapshots a durable snapshot made obsolete. Recovery lives in [`crate::recovery`].
//! Must never: delete anything a restart could still need (a segment is removed only once a
//! later, durable snapshot covers every entry in it), write after a failed write or sync, or
//! report a ticket durable that no `fdatasync` covered.

use crate::codec::{self, Identity, Record, RECORD_PAYLOAD_MAX};
use crate::fs::{Fs, FsFile};
use crate::log_store::{check_append, check_range, LogStore, StorageError, SyncState};
use crate::syncer::{SyncListener, SyncShared, SyncTicket, Syncer, Worker};
use raft::{Entry, EntryId, HardState, InitialState, LogIndex, Snapshot, Term};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Tunables of a [`DiskStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskOptions {
    /// Start a new segment once the current one reaches this size.
    pub segment_bytes: u64,
    /// Hand buffered records to the file once this many bytes are pending.
    pub write_buffer_bytes: usize,
    /// Zero-fill the active segment ahead of the records in steps of this many bytes (0: no
    /// preallocation). A record then overwrites blocks the file already has, so its
    /// `fdatasync` flushes data only: the file's size does not change, no journal commit
    /// (on ext4 about half the latency of a sync that grows the file, less under load).
    /// The zeros are written on the caller's thread with the records that reach past them,
    /// so one step is one stall of the event loop: 64 KiB, not more (a 1 MiB step took
    /// 2.7–2.9 ms there, and every request waiting meanwhile paid it; see BENCHMARKS.md).
    pub preallocate_bytes: u64,
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            segment_bytes: 64 << 20,
            write_buffer_bytes: 1 << 20,
            preallocate_bytes: 64 << 10,
        }
    }
}

/// Where an entry's record lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub(crate) term: Term,
    pub(crate) seg: u64,
    pub(crate) offset: u64,
    /// Framed length of the record.
    pub(crate) len: u32,
}

pub(crate) struct Segment<F: Fs> {
    pub(crate) seq: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<F::File>,
    /// Highest entry index written into this segment (0: none).
    pub(crate) max_index: LogIndex,
}

/// What recovery found and did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub records: u64,
    pub entries: usize,
    /// A torn tail cut off: file, offset where valid data ended, bytes of torn data removed
    /// (preallocated zeros after them not counted).
    pub truncated: Option<(PathBuf, u64, u64)>,
    /// Leftover temporary files and snapshots no marker refers to, removed.
    pub removed: Vec<PathBuf>,
}

/// A durable Raft log in a data directory. See the module docs for the layout.
pub struct DiskStore<F: Fs> {
    pub(crate) fs: F,
    pub(crate) dir: PathBuf,
    pub(crate) identity: Identity,
    pub(crate) opts: DiskOptions,
    pub(crate) segments: Vec<Segment<F>>,
    /// Bytes of the active (last) segment handed to the file.
    pub(crate) file_len: u64,
    /// Size of the active segment's file: `file_len ..alloc_len` holds zeros (preallocated).
    pub(crate) alloc_len: u64,
    /// Encoded records not yet handed to the file; they start at `file_len`.
    pub(crate) buf: Vec<u8>,
    pub(crate) hard_state: HardState,
    pub(crate) snapshot: Option<Snapshot>,
    pub(crate) snapshot_last: EntryId,
    pub(crate) snapshot_file_bytes: usize,
    /// Entries `snapshot_last.index + 1 ..`.
    pub(crate) locs: VecDeque<Loc>,
    pub(crate) entry_bytes: usize,
    /// Entries read during recovery, handed out by the first `initial_state` if nothing was
    /// written since.
    pub(crate) recovered: Mutex<Option<Vec<Entry>>>,
    /// Number of times buffered records were handed to the file.
    pub(crate) written_ticket: SyncTicket,
    pub(crate) shared: Arc<SyncShared>,
    pub(crate) syncer: Option<Syncer<F::File>>,
    /// With group commit: the thread that unlinks obsolete files (an unlink of a large file
    /// can take long, e.g. on a file system mounted with `discard`).
    pub(crate) remover: Option<Worker<Removal>>,
    /// Snapshots whose marker is not yet known durable: (ticket of the marker, snapshot).
    pub(crate) pending_gc: VecDeque<(SyncTicket, EntryId)>,
    pub(crate) poisoned: Option<String>,
    pub(crate) report: RecoveryReport,
}

pub(crate) fn io_err(what: impl std::fmt::Display, e: std::io::Error) -> StorageError {
    StorageError::Io(format!("{what}: {e}"))
}

pub(crate) fn wal_dir(dir: &Path) -> PathBuf {
    dir.join("wal")
}
pub(crate) fn snap_dir(dir: &Path) -> PathBuf {
    dir.join("snap")
}
pub(crate) fn segment_name(seq: u64) -> String {
    format!("{seq:016x}.wal")
}
pub(crate) fn snapshot_name(id: EntryId) -> String {
    format!("{:016x}-{:016x}.snap", id.term.0, id.index.0)
}

/// The snapshot id a snapshot file name encodes.
pub(crate) fn parse_snapshot_name(name: &str) -> Option<EntryId> {
    let stem = name.strip_suffix(".snap")?;
    let (t, i) = stem.split_once('-')?;
    let term = u64::from_str_radix(t, 16).ok()?;
    let index = u64::from_str_radix(i, 16).ok()?;
    Some(EntryId::new(Term(term), LogIndex(index)))
}

/// The sequence number a segment file name encodes.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".wal")?;
    if stem.len() != 16 {
        return None;
    }
    u64::from_str_radix(stem, 16).ok()
}

/// The file size that holds `data_end` bytes of data and zeros after them up to the next
/// multiple of `step` (`data_end` itself when `step` is 0).
pub(crate) fn preallocated_len(data_end: u64, step: u64) -> u64 {
    if step == 0 {
        data_end
    } else {
        data_end.div_ceil(step) * step
    }
}

/// Write `bytes` to `path` atomically: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomic<F: Fs>(fs: &F, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    write_atomic_via(fs, path, bytes, "tmp", usize::MAX)
}

/// How much of a snapshot file the background writer hands to the disk between syncs: a
/// large file then never queues all of itself in front of the WAL's next `fdatasync`.
const SNAPSHOT_SYNC_CHUNK_BYTES: usize = 4 << 20;

/// [`write_atomic`] through a temporary file with extension `tmp_ext` (ending in `tmp`, so
/// that recovery removes it; writers on different threads use different ones), syncing after
/// every `chunk` bytes.
fn write_atomic_via<F: Fs>(
    fs: &F,
    path: &Path,
    bytes: &[u8],
    tmp_ext: &str,
    chunk: usize,
) -> Result<(), StorageError> {
    debug_assert!(
        tmp_ext.ends_with("tmp"),
        "recovery removes only *.tmp files"
    );
    let dir = path.parent().expect("file in a directory");
    let tmp = path.with_extension(tmp_ext);
    let f = fs.create(&tmp).map_err(|e| io_err(tmp.display(), e))?;
    let mut offset = 0;
    for part in bytes.chunks(chunk.max(1)) {
        if offset > 0 {
            f.sync_data().map_err(|e| io_err(tmp.display(), e))?;
        }
        f.write_at(part, offset)
            .map_err(|e| io_err(tmp.display(), e))?;
        offset += part.len() as u64;
    }
    f.sync_data().map_err(|e| io_err(tmp.display(), e))?;
    fs.rename(&tmp, path)
        .map_err(|e| io_err(path.display(), e))?;
    fs.sync_dir(dir).map_err(|e| io_err(dir.display(), e))
}

/// Obsolete files to unlink, then the directories to sync. Leftovers are harmless (recovery
/// ignores and removes them), so a removal may run late, on the clean-up thread.
#[derive(Debug, Default)]
pub(crate) struct Removal {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Removal {
    fn run<F: Fs>(&self, fs: &F) -> Result<(), StorageError> {
        for p in &self.files {
            fs.remove_file(p).map_err(|e| io_err(p.display(), e))?;
        }
        for d in &self.dirs {
            fs.sync_dir(d).map_err(|e| io_err(d.display(), e))?;
        }
        Ok(())
    }
}

/// The clean-up thread: runs [`Removal`]s in order.
fn spawn_remover<F: Fs>(fs: F) -> std::io::Result<Worker<Removal>> {
    Worker::spawn(
        "raftkv-wal-gc",
        move |rx: std::sync::mpsc::Receiver<Removal>| {
            for removal in rx {
                if let Err(e) = removal.run(&fs) {
                    tracing::warn!(error = %e, "removing obsolete WAL files failed");
                }
            }
        },
    )
}

/// Write `snapshot`'s file into the snapshot directory `dir` and make it durable (through a
/// temporary file with extension `tmp_ext`); returns its size. Touches no store state, so it
/// may run on any thread.
fn write_snapshot_file<F: Fs>(
    fs: &F,
    dir: &Path,
    cluster_id: u64,
    snapshot: &Snapshot,
    tmp_ext: &str,
    chunk: usize,
) -> Result<usize, StorageError> {
    let path = dir.join(snapshot_name(snapshot.meta.last));
    let bytes = codec::encode_snapshot(cluster_id, snapshot);
    write_atomic_via(fs, &path, &bytes, tmp_ext, chunk)?;
    Ok(bytes.len())
}

impl<F: Fs> DiskStore<F> {
    /// Open the store in `dir`, creating it for `identity` if the directory holds none, and
    /// recover: a torn tail is cut off (and logged), anything else wrong is an error.
    pub fn open(
        fs: F,
        dir: impl Into<PathBuf>,
        identity: Identity,
        opts: DiskOptions,
    ) -> Result<Self, StorageError> {
        crate::recovery::open(fs, dir.into(), identity, opts)
    }

    /// What recovery found when this store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The directory's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The hard state as last written.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The snapshot as last written.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Start group commit: a sync thread that calls `listener` after each `fdatasync`.
    /// Afterwards [`DiskStore::start_sync`] queues syncs instead of running them.
    /// Obsolete files are then also removed on a thread of their own.
    pub fn enable_group_commit(&mut self, listener: SyncListener) -> Result<(), StorageError> {
        if self.syncer.is_none() {
            let s = Syncer::spawn(self.shared.clone(), listener)
                .map_err(|e| io_err("spawning the sync thread", e))?;
            self.syncer = Some(s);
        }
        if self.remover.is_none() {
            let r = spawn_remover(self.fs.clone())
                .map_err(|e| io_err("spawning the clean-up thread", e))?;
            self.remover = Some(r);
        }
        Ok(())
    }

    /// Hand every buffered record to the file and queue a sync covering them; returns the
    /// ticket the sync thread will report to the listener. Without group commit this syncs
    /// now (the ticket is then already durable).
    pub fn start_sync(&mut self) -> Result<SyncTicket, StorageError> {
        let ticket = self.write_out()?;
        if self.durable_ticket() >= ticket {
            return Ok(ticket);
        }
        let file = self.active().file.clone();
        match &self.syncer {
            Some(s) if s.request(ticket, file) => Ok(ticket),
            _ => {
                self.sync()?;
                Ok(ticket)
            }
        }
    }

    /// Hand every buffered record to the active segment without syncing it: the ticket a
    /// later sync ([`LogStore::sync`], or the sync thread) makes durable. For a driver that
    /// runs its syncs itself, later (the simulator).
    pub fn write_out(&mut self) -> Result<SyncTicket, StorageError> {
        self.check_usable()?;
        self.flush()?;
        Ok(self.written_ticket)
    }

    /// Highest ticket known durable.
    pub fn durable_ticket(&self) -> SyncTicket {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// Highest ticket handed to the file so far.
    pub fn written_ticket(&self) -> SyncTicket {
        self.written_ticket
    }

    /// Path of the `i`-th live segment file (oldest first).
    pub fn segment_path(&self, i: usize) -> &Path {
        &self.segments[i].path
    }

    /// File offset of the record holding entry `index` (for corruption tests and tools).
    pub fn entry_offset(&self, index: LogIndex) -> u64 {
        let i = (index.0 - self.snapshot_last.index.0 - 1) as usize;
        self.locs[i].offset
    }

    pub(crate) fn active(&self) -> &Segment<F> {
        self.segments.last().expect("a store always has a segment")
    }

    fn check_usable(&mut self) -> Result<(), StorageError> {
        if self.poisoned.is_none() && self.shared.failed.load(Ordering::Acquire) {
            self.poisoned = Some("a background sync failed".into());
        }
        match &self.poisoned {
            Some(why) => Err(StorageError::Io(format!(
                "store unusable after an earlier failure ({why}); restart the node"
            ))),
            None => {
                self.collect_garbage();
                Ok(())
            }
        }
    }

    fn poison(&mut self, e: StorageError) -> StorageError {
        self.poisoned = Some(e.to_string());
        e
    }

    /// Hand buffered records to the active segment.
    fn flush(&mut self) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data_end = self.file_len + self.buf.len() as u64;
        if data_end > self.alloc_len {
            // Past the zeroed region: write the next stretch of zeros with the records.
            let padded = preallocated_len(data_end, self.opts.preallocate_bytes);
            self.buf.resize((padded - self.file_len) as usize, 0);
        }
        let seg = self.active();
        let res = seg
            .file
            .write_at(&self.buf, self.file_len)
            .map_err(|e| io_err(seg.path.display(), e));
        if let Err(e) = res {
            return Err(self.poison(e));
        }
        self.alloc_len = self.alloc_len.max(self.file_len + self.buf.len() as u64);
        self.file_len = data_end;
        debug_assert!(self.file_len <= self.alloc_len);
        self.buf.clear();
        self.written_ticket += 1;
        Ok(())
    }

    fn push_record(&mut self, rec: &Record) -> Result<u64, StorageError> {
        let offset = self.file_len + self.buf.len() as u64;
        codec::encode_record(rec, &mut self.buf);
        if self.buf.len() >= self.opts.write_buffer_bytes {
            self.flush()?;
        }
        Ok(offset)
    }

    /// Start a new segment once the active one is full. The full one is synced first, so a
    /// torn tail can only ever be in the last segment.
    fn maybe_roll(&mut self) -> Result<(), StorageError> {
        if self.file_len + (self.buf.len() as u64) < self.opts.segment_bytes {
            return Ok(());
        }
        self.roll().map_err(|e| self.poison(e))
    }

    fn roll(&mut self) -> Result<(), StorageError> {
        self.flush()?;
        let old = self.active();
        old.file
            .sync_data()
            .map_err(|e| io_err(old.path.display(), e))?;
        self.shared
            .durable
            .fetch_max(self.written_ticket, Ordering::AcqRel);
        let seq = old.seq + 1;
        let (seg, len, alloc) = self.create_segment(seq)?;
        self.file_len = len;
        self.alloc_len = alloc;
        self.segments.push(seg);
        Ok(())
    }

    /// Create segment `seq` holding its header, the current snapshot marker and hard state
    /// and the first preallocated zeros, durably (temp file, fsync, rename, fsync of the
    /// directory). Returns it, the length of its data and the size of its file.
    pub(crate) fn create_segment(&self, seq: u64) -> Result<(Segment<F>, u64, u64), StorageError> {
        let wal = wal_dir(&self.dir);
        let path = wal.join(segment_name(seq));
        let mut bytes = codec::encode_segment_header(seq, &self.identity);
        codec::encode_record(
            &Record::Snapshot {
                last: self.snapshot_last,
                keep_suffix: true,
            },
            &mut bytes,
        );
        codec::encode_record(&Record::HardState(self.hard_state), &mut bytes);
        let len = bytes.len() as u64;
        let alloc = preallocated_len(len, self.opts.preallocate_bytes);
        bytes.resize(alloc as usize, 0);
        write_atomic(&self.fs, &path, &bytes)?;
        let file = self.fs.open(&path).map_err(|e| io_err(path.display(), e))?;
        Ok((
            Segment {
                seq,
                path,
                file: Arc::new(file),
                max_index: LogIndex(0),
            },
            len,
            alloc,
        ))
    }

    /// Refuse a snapshot older than the stored one (or any, once the store is unusable).
    fn check_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.check_usable()?;
        let last = snapshot.meta.last;
        if last.index < self.snapshot_last.index {
            return Err(StorageError::StaleSnapshot {
                index: last.index,
                stored: self.snapshot_last.index,
            });
        }
        Ok(())
    }

    /// Make `snapshot`, whose file is durable (`file_bytes` long), the store's: mark it in
    /// the WAL and drop the entries it covers.
    fn adopt_snapshot(
        &mut self,
        snapshot: &Snapshot,
        file_bytes: usize,
    ) -> Result<(), StorageError> {
        let last = snapshot.meta.last;
        self.invalidate_recovered();
        self.maybe_roll()?;
        let keep_suffix = LogStore::term(self, last.index) == Some(last.term);
        self.push_record(&Record::Snapshot { last, keep_suffix })?;
        if keep_suffix {
            let drop = (last.index.0 - self.snapshot_last.index.0) as usize;
            for l in self.locs.drain(..drop.min(self.locs.len())) {
                self.entry_bytes -= l.len as usize;
            }
        } else {
            self.locs.clear();
            self.entry_bytes = 0;
        }
        self.snapshot_last = last;
        self.snapshot = Some(snapshot.clone());
        self.snapshot_file_bytes = file_bytes;
        self.pending_gc.push_back((self.written_ticket + 1, last));
        Ok(())
    }

    fn invalidate_recovered(&mut self) {
        if let Ok(mut r) = self.recovered.lock() {
            *r = None;
        }
    }

    /// Remove snapshot files and segments that a durable snapshot made obsolete.
    fn collect_garbage(&mut self) {
        let durable = self.durable_ticket();
        let mut newest = None;
        while self.pending_gc.front().is_some_and(|(t, _)| *t <= durable) {
            newest = self.pending_gc.pop_front().map(|(_, id)| id);
        }
        let Some(snap) = newest else { return };
        if let Err(e) = self.remove_obsolete(snap) {
            // Leftovers are harmless: recovery ignores and removes them.
            tracing::warn!(dir = %self.dir.display(), error = %e, "removing obsolete WAL files failed");
        }
    }

    fn remove_obsolete(&mut self, snap: EntryId) -> Result<(), StorageError> {
        let sdir = snap_dir(&self.dir);
        let keep = snapshot_name(snap);
        let names = self
            .fs
            .list_dir(&sdir)
            .map_err(|e| io_err(sdir.display(), e))?;
        let mut removal = Removal::default();
        for name in names {
            let obsolete = parse_snapshot_name(&name).is_some_and(|id| id.index <= snap.index);
            if obsolete && name != keep {
                removal.files.push(sdir.join(&name));
            }
        }
        if !removal.files.is_empty() {
            removal.dirs.push(sdir);
        }
        let mut n = 0;
        while n + 1 < self.segments.len() && self.segments[n].max_index <= snap.index {
            n += 1;
        }
        if n > 0 {
            removal
                .files
                .extend(self.segments.drain(..n).map(|seg| seg.path));
            removal.dirs.push(wal_dir(&self.dir));
        }
        if removal.files.is_empty() {
            return Ok(());
        }
        let removal = match &self.remover {
            Some(r) => match r.send(removal) {
                Ok(()) => return Ok(()),
                Err(back) => back,
            },
            None => removal,
        };
        removal.run(&self.fs)
    }

    fn read_entry(&self, loc: &Loc) -> Result<Entry, StorageError> {
        let active = self.active();
        let mut bytes = vec![0u8; loc.len as usize];
        let path = if loc.seg == active.seq && loc.offset >= self.file_len {
            let at = (loc.offset - self.file_len) as usize;
            bytes.copy_from_slice(&self.buf[at..at + loc.len as usize]);
            &active.path
        } else {
            let i = self
                .segments
                .binary_search_by_key(&loc.seg, |s| s.seq)
                .map_err(|_| StorageError::Corrupt {
                    what: format!("segment {} of a live entry is gone", loc.seg),
                })?;
            let seg = &self.segments[i];
            seg.file
                .read_exact_at(&mut bytes, loc.offset)
                .map_err(|e| io_err(seg.path.display(), e))?;
            &seg.path
        };
        match codec::decode_record(&bytes) {
            Ok((Record::Entry(e), _)) => Ok(e),
            Ok(_) => Err(StorageError::CorruptFile {
                file: path.clone(),
                offset: loc.offset,
                reason: "expected an entry record".into(),
            }),
            Err(e) => Err(StorageError::CorruptFile {
                file: path.clone(),
                offset: loc.offset,
                reason: e.to_string(),
            }),
        }
    }

    fn check_append(&self, entries: &[Entry]) -> Result<(), StorageError> {
        check_append(
            entries,
            self.snapshot_last.index,
            LogStore::last_index(self),
        )?;
        for e in entries {
            let bytes = codec::entry_payload_bytes(e);
            if bytes > RECORD_PAYLOAD_MAX {
                return Err(StorageError::TooLarge {
                    index: e.index,
                    bytes,
                    max: RECORD_PAYLOAD_MAX,
                });
            }
        }
        Ok(())
    }

    fn truncate_locs(&mut self, from: LogIndex) {
        let keep = (from.0 - self.snapshot_last.index.0 - 1) as usize;
        while self.locs.len() > keep {
            let l = self.locs.pop_back().expect("len > keep");
            self.entry_bytes -= l.len as usize;
        }
    }
}

impl<F: Fs> LogStore for DiskStore<F> {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        let cached = self.recovered.lock().ok().and_then(|mut r| r.take());
        let entries = match cached {
            Some(e) => e,
            None => self.entries(
                LogStore::first_index(self),
                LogStore::last_index(self).next(),
            )?,
        };
        Ok(InitialState {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries,
            config: self.identity.bootstrap.clone(),
        })
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.check_usable()?;
        self.check_append(entries)?;
        self.invalidate_recovered();
        self.maybe_roll()?;
        self.truncate_locs(entries[0].index);
        let seg = self.active().seq;
        for e in entries {
            let offset = self.push_record(&Record::Entry(e.clone()))?;
            let len = (codec::RECORD_HEADER_BYTES + codec::entry_payload_bytes(e)) as u32;
            self.locs.push_back(Loc {
                term: e.term,
                seg,
                offset,
                len,
            });
            self.entry_bytes += len as usize;
        }
        let last = entries.last().expect("non-empty").index;
        let active = self.segments.last_mut().expect("a segment");
        active.max_index = active.max_index.max(last);
        Ok(())
    }

    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        self.check_usable()?;
        self.maybe_roll()?;
        self.push_record(&Record::HardState(hard_state))?;
        self.hard_state = hard_state;
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.check_snapshot(snapshot)?;
        let dir = snap_dir(&self.dir);
        let file_bytes = write_snapshot_file(
            &self.fs,
            &dir,
            self.identity.cluster_id,
            snapshot,
            "tmp",
            usize::MAX,
        )
        .map_err(|e| self.poison(e))?;
        self.adopt_snapshot(snapshot, file_bytes)
    }

    fn snapshot_writer(&self) -> crate::log_store::SnapshotWriter {
        let (fs, dir, cluster) = (
            self.fs.clone(),
            snap_dir(&self.dir),
            self.identity.cluster_id,
        );
        Arc::new(move |snapshot| {
            write_snapshot_file(
                &fs,
                &dir,
                cluster,
                snapshot,
                "bg.tmp",
                SNAPSHOT_SYNC_CHUNK_BYTES,
            )
        })
    }

    fn save_written_snapshot(
        &mut self,
        snapshot: &Snapshot,
        file_bytes: usize,
    ) -> Result<(), StorageError> {
        self.check_snapshot(snapshot)?;
        self.adopt_snapshot(snapshot, file_bytes)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        self.flush()?;
        let seg = self.active();
        let res = seg
            .file
            .sync_data()
            .map_err(|e| io_err(seg.path.display(), e));
        if let Err(e) = res {
            self.shared.failed.store(true, Ordering::Release);
            return Err(self.poison(e));
        }
        self.shared
            .durable
            .fetch_max(self.written_ticket, Ordering::AcqRel);
        self.collect_garbage();
        Ok(())
    }

    fn begin_sync(&mut self) -> Result<SyncState, StorageError> {
        let ticket = self.start_sync()?;
        if self.durable_ticket() >= ticket {
            Ok(SyncState::Durable)
        } else {
            Ok(SyncState::Pending(ticket))
        }
    }

    fn first_index(&self) -> LogIndex {
        self.snapshot_last.index.next()
    }

    fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot_last.index.0 + self.locs.len() as u64)
    }

    fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_last.index {
            return Some(self.snapshot_last.term);
        }
        if index < self.snapshot_last.index {
            return None;
        }
        let i = (index.0 - self.snapshot_last.index.0 - 1) as usize;
        self.locs.get(i).map(|l| l.term)
    }

    fn entries(&self, lo: LogIndex, hi: LogIndex) -> Result<Vec<Entry>, StorageError> {
        check_range(
            lo,
            hi,
            LogStore::first_index(self),
            LogStore::last_index(self),
        )?;
        let base = self.snapshot_last.index.0 + 1;
        (lo.0..hi.0)
            .map(|i| self.read_entry(&self.locs[(i - base) as usize]))
            .collect()
    }

    fn log_bytes(&self) -> usize {
        crate::mem::HARD_STATE_BYTES + self.entry_bytes
    }

    fn snapshot_bytes(&self) -> usize {
        self.snapshot_file_bytes
    }
}
