//! [`SimStore`]: a [`MemStore`] that also keeps an audit trail of every entry ever written,
//! for the Log Matching check.
//!
//! Owns: the audit trail (entry id, term of the entry before it, hash of its payload), and
//! the armed power cut: a sync that fails as if the power went out while it ran, so the
//! simulator can crash a node in the middle of handling a `Ready`.
//! Must never: change what the wrapped store does otherwise — same writes, same durability,
//! same errors.

use crate::hash::{hash_bytes, mix};
use raft::{Entry, EntryId, EntryKind, HardState, InitialState, Snapshot, Term};
use std::cell::Cell;
use std::rc::Rc;
use storage::{LogStore, MemStore, StorageError};

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

/// The simulator's disk: a [`MemStore`] plus an append-only audit trail.
#[derive(Debug)]
pub struct SimStore {
    inner: MemStore,
    audit: Vec<AuditRecord>,
    power: PowerSwitch,
}

/// The simulator's handle on a node's power: shared between the cluster and the store the
/// node's replica owns, so a power cut can be armed without reaching into the replica.
#[derive(Clone, Debug, Default)]
pub struct PowerSwitch {
    /// Syncs left before the power cut (`Some(0)`: the next sync fails).
    cut_in_syncs: Rc<Cell<Option<u32>>>,
    fired: Rc<Cell<bool>>,
}

impl PowerSwitch {
    /// Make the sync after `syncs` more successful ones fail as a power cut (nothing it
    /// would have made durable becomes durable).
    pub fn arm(&self, syncs: u32) {
        self.cut_in_syncs.set(Some(syncs));
        self.fired.set(false);
    }

    /// Whether the armed power cut happened (the node must now be crashed).
    pub fn fired(&self) -> bool {
        self.fired.get()
    }

    /// Disarm and forget (done when the node restarts).
    pub fn reset(&self) {
        self.cut_in_syncs.set(None);
        self.fired.set(false);
    }
}

/// The error text of a simulated power cut.
pub const POWER_CUT: &str = "simulated power cut during sync";

impl SimStore {
    pub fn new(inner: MemStore) -> Self {
        SimStore {
            inner,
            audit: Vec::new(),
            power: PowerSwitch::default(),
        }
    }

    /// This store's power switch.
    pub fn power(&self) -> &PowerSwitch {
        &self.power
    }

    /// Every entry ever appended through this store (across crashes), in order.
    pub fn audit(&self) -> &[AuditRecord] {
        &self.audit
    }

    pub fn mem(&self) -> &MemStore {
        &self.inner
    }

    pub fn mem_mut(&mut self) -> &mut MemStore {
        &mut self.inner
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
        let mut prev_term = self.inner.term_at(head.index.prev());
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

    fn sync(&mut self) -> Result<(), StorageError> {
        match self.power.cut_in_syncs.get() {
            Some(0) => {
                self.power.cut_in_syncs.set(None);
                self.power.fired.set(true);
                Err(StorageError::Io(POWER_CUT.to_string()))
            }
            Some(n) => {
                self.power.cut_in_syncs.set(Some(n - 1));
                self.inner.sync()
            }
            None => self.inner.sync(),
        }
    }

    fn log_bytes(&self) -> usize {
        self.inner.log_bytes()
    }

    fn snapshot_bytes(&self) -> usize {
        self.inner.snapshot_bytes()
    }
}
