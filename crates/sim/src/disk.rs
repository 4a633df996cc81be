//! [`SimStore`]: a node's disk in the simulator — the real write-ahead log
//! ([`DiskStore`]) over a [`FaultFs`] that can lose power — plus an audit trail of every
//! entry ever written, for the Log Matching check.
//!
//! A crash is a power cycle ([`SimStore::power_cycle`]): the power goes out, the store is
//! dropped, the file system comes back keeping what a [`Restart`] mode (drawn by
//! [`restart_mode`]) says survived, and the WAL is opened again — recovery runs exactly as
//! it does on a real restart (torn tail cut off, obsolete files removed). Syncs block by
//! default: `begin_sync` syncs at once. With deferred syncs ([`SimStore::defer_syncs`]) it
//! hands the writes to the file and answers `Pending`, as the server's WAL with its sync
//! thread does; the cluster completes the sync later as an event. The WAL's sync thread is
//! never started, so a seed replays identically.
//!
//! Owns: the node's [`FaultFs`] (its data directory is `/node{id}`), the audit trail (entry
//! id, term of the entry before it, hash of its payload), and the armed power cut
//! ([`PowerSwitch`]): after a number of syncs, the power goes out a number of file
//! operations later — in the middle of a `Ready`'s writes, its sync, or the segment and
//! snapshot clean-up after it.
//! Must never: change what the WAL does otherwise — same writes, same durability, same
//! errors — or draw randomness (every choice comes from the cluster's seeded RNG).

use crate::hash::{hash_bytes, mix};
use raft::{Entry, EntryId, EntryKind, HardState, InitialState, LogIndex, Snapshot, Term};
use rand::Rng;
use std::cell::Cell;
use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;
use storage::{
    DiskOptions, DiskStore, FaultFs, Identity, LogStore, Restart, SnapshotWriter, StorageError,
    SyncState,
};

/// One entry as written: Log Matching says the same id always comes with the same payload
/// and the same previous term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: EntryId,
    /// Term of the entry at `id.index - 1` in the log it was appended to (`None` when that
    /// entry was compacted away, which a well-behaved core never asks for).
    pub prev_term: Option<Term>,
    pub hash: u64,
}

/// Hash of an entry's kind and payload.
pub fn entry_hash(kind: EntryKind, data: &[u8]) -> u64 {
    mix(hash_bytes(data), kind as u64)
}

/// Largest torn prefix drawn for the write in flight at a power cut (bytes).
pub const TORN_BYTES_MAX: usize = 128;

/// What survives a crash, drawn from the cluster's RNG. With `keep_unsynced` off a crash
/// keeps exactly what was synced. With it on: a quarter of the crashes keep only what was
/// synced, a quarter keep every completed write (an OS that flushed its cache before the
/// power went) and tear the write in flight at a random byte, possibly zero-filling the rest
/// of it, and half keep a seeded-random prefix of each file's unsynced writes and of each
/// directory's unsynced changes (the last write torn or zero-filled).
pub fn restart_mode(rng: &mut impl Rng, keep_unsynced: bool) -> Restart {
    if !keep_unsynced {
        return Restart::LoseUnsynced;
    }
    match rng.gen_range(0..4) {
        0 => Restart::LoseUnsynced,
        1 => Restart::KeepCompleted {
            torn_bytes: rng.gen_range(0..=TORN_BYTES_MAX),
            zero_fill: rng.gen_bool(0.25),
        },
        _ => Restart::Random { seed: rng.gen() },
    }
}

/// A short code for a restart mode, for the trace.
pub fn restart_digest(mode: Restart) -> u64 {
    match mode {
        Restart::LoseUnsynced => 0,
        Restart::KeepCompleted {
            torn_bytes,
            zero_fill,
        } => mix(1 + zero_fill as u64, torn_bytes as u64),
        Restart::Random { seed } => mix(3, seed),
    }
}

/// The simulator's disk: the WAL over a power-cuttable file system, plus an append-only
/// audit trail that survives crashes.
pub struct SimStore {
    inner: DiskStore<FaultFs>,
    fs: FaultFs,
    dir: PathBuf,
    opts: DiskOptions,
    audit: Vec<AuditRecord>,
    power: PowerSwitch,
    /// `begin_sync` answers `Pending`; the sync runs when the driver completes it.
    deferred: bool,
}

impl fmt::Debug for SimStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimStore")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .field("first_index", &self.inner.first_index())
            .field("last_index", &self.inner.last_index())
            .field("segments", &self.inner.segment_count())
            .field("audit_records", &self.audit.len())
            .finish()
    }
}

/// The simulator's handle on a node's power: shared between the cluster and the store the
/// node's replica owns, so a power cut can be armed without reaching into the replica.
#[derive(Clone, Debug)]
pub struct PowerSwitch {
    fs: FaultFs,
    /// Armed: (syncs still to complete, then file operations before the cut).
    armed: Rc<Cell<Option<(u32, u64)>>>,
}

impl PowerSwitch {
    fn new(fs: FaultFs) -> Self {
        PowerSwitch {
            fs,
            armed: Rc::new(Cell::new(None)),
        }
    }

    /// Cut the power once `syncs` more syncs completed and then `ops` more file operations
    /// (writes, syncs, creations, renames, removals) succeeded: the one after fails, and so
    /// does everything after it.
    pub fn arm(&self, syncs: u32, ops: u64) {
        self.disarm();
        if syncs == 0 {
            self.fs.cut_power_after(self.fs.ops() + ops);
        } else {
            self.armed.set(Some((syncs, ops)));
        }
    }

    /// Called after each successful sync: counts down an armed cut.
    fn synced(&self) {
        if let Some((syncs, ops)) = self.armed.get() {
            self.armed.set(None);
            self.arm(syncs - 1, ops);
        }
    }

    /// Whether the power is out (the node must now be crashed).
    pub fn fired(&self) -> bool {
        self.fs.is_dead()
    }

    /// Disarm a cut that has not happened yet.
    pub fn disarm(&self) {
        self.armed.set(None);
        if !self.fs.is_dead() {
            self.fs.cut_power_after(u64::MAX);
        }
    }
}

impl SimStore {
    /// Open (creating it if new) the WAL of node `identity.node_id` on `fs`, in `/node{id}`.
    pub fn open(fs: FaultFs, identity: Identity, opts: DiskOptions) -> Result<Self, StorageError> {
        let dir = PathBuf::from(format!("/node{}", identity.node_id.0));
        let inner = DiskStore::open(fs.clone(), dir.clone(), identity, opts)?;
        Ok(SimStore {
            inner,
            power: PowerSwitch::new(fs.clone()),
            fs,
            dir,
            opts,
            audit: Vec::new(),
            deferred: false,
        })
    }

    /// Defer syncs (see the module doc); kept across power cycles.
    pub fn defer_syncs(&mut self, deferred: bool) {
        self.deferred = deferred;
    }

    /// A crash: cut the power (if an armed cut has not already), drop the WAL, bring the
    /// file system back keeping what `mode` says survived, and recover the WAL from it. The
    /// audit trail carries over; an armed cut does not.
    pub fn power_cycle(self, mode: Restart) -> Result<Self, StorageError> {
        let SimStore {
            inner,
            fs,
            dir,
            opts,
            audit,
            power,
            deferred,
        } = self;
        fs.cut_power();
        let identity = inner.identity().clone();
        drop(inner);
        power.armed.set(None);
        fs.restart(mode);
        let inner = DiskStore::open(fs.clone(), dir.clone(), identity, opts)?;
        Ok(SimStore {
            inner,
            fs,
            dir,
            opts,
            audit,
            power,
            deferred,
        })
    }

    /// This store's power switch.
    pub fn power(&self) -> &PowerSwitch {
        &self.power
    }

    /// Every entry ever appended through this store (across crashes), in order.
    pub fn audit(&self) -> &[AuditRecord] {
        &self.audit
    }

    /// The write-ahead log.
    pub fn wal(&self) -> &DiskStore<FaultFs> {
        &self.inner
    }

    /// The node's file system.
    pub fn fs(&self) -> &FaultFs {
        &self.fs
    }
}

impl LogStore for SimStore {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        self.inner.initial_state()
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(head) = entries.first() else {
            return Ok(());
        };
        let mut prev_term = self.inner.term(head.index.prev());
        self.inner.append(entries)?;
        for e in entries {
            let hash = entry_hash(e.kind, &e.data);
            self.audit.push(AuditRecord {
                id: e.id(),
                prev_term,
                hash,
            });
            prev_term = Some(e.term);
        }
        Ok(())
    }

    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        self.inner.set_hard_state(hard_state)
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.inner.save_snapshot(snapshot)
    }

    fn snapshot_writer(&self) -> SnapshotWriter {
        self.inner.snapshot_writer()
    }

    fn save_written_snapshot(
        &mut self,
        snapshot: &Snapshot,
        file_bytes: usize,
    ) -> Result<(), StorageError> {
        self.inner.save_written_snapshot(snapshot, file_bytes)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.inner.sync()?;
        self.power.synced();
        Ok(())
    }

    fn begin_sync(&mut self) -> Result<SyncState, StorageError> {
        if !self.deferred {
            self.sync()?;
            return Ok(SyncState::Durable);
        }
        let ticket = self.inner.write_out()?;
        Ok(if self.inner.durable_ticket() >= ticket {
            SyncState::Durable
        } else {
            SyncState::Pending(ticket)
        })
    }

    fn first_index(&self) -> LogIndex {
        self.inner.first_index()
    }

    fn last_index(&self) -> LogIndex {
        self.inner.last_index()
    }

    fn term(&self, index: LogIndex) -> Option<Term> {
        self.inner.term(index)
    }

    fn entries(&self, lo: LogIndex, hi: LogIndex) -> Result<Vec<Entry>, StorageError> {
        self.inner.entries(lo, hi)
    }

    fn log_bytes(&self) -> usize {
        self.inner.log_bytes()
    }

    fn snapshot_bytes(&self) -> usize {
        self.inner.snapshot_bytes()
    }
}
