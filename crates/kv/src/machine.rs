//! [`KvStateMachine`]: the [`Store`] plus [`Sessions`] behind `replica`'s [`StateMachine`].
//!
//! Owns: turning a committed entry into a reply (decode → session admission → execute →
//! encode), the applied index, the [`KvReader`]s that read the applied store from other
//! threads (the store sits behind a read-write lock: the applying thread writes, readers
//! never wait for more than one entry's apply), and the snapshot format:
//!
//! ```text
//! "RKVS" | format u8 (=1) | applied_index varint | revision zigzag
//!        | key count varint | key*  (key, value, create, mod, version, lease)
//!        | session count varint | session* (client_id, last_seq, last_index, reply)
//!        | meta count varint | meta* (key, value)            (format 2 only)
//!        | crc32c u32 LE of everything before it
//! ```
//!
//! Format 1 (no meta section) is still restored; new snapshots are format 2.
//!
//! Keys come in key order and sessions in client-id order, so two machines that applied the
//! same entries produce byte-identical snapshots.
//! Must never: panic on entry bytes (an undecodable entry gets an encoded
//! [`KvError::Decode`] reply, the same on every node); panic on a snapshot except in
//! [`StateMachine::restore`], which has no other way to refuse one ([`KvStateMachine::try_restore`]
//! is the refusing variant); change state on a refused restore.

use crate::codec::{self, Reader, Writer};
use crate::command::{encode_result, ClientSeq, Command};
use crate::error::DecodeError;
use crate::meta::{MetaCommand, META_ENTRIES_MAX, META_KEY_BYTES_MAX, META_VALUE_BYTES_MAX};
use crate::session::{Admission, Session, Sessions};
use crate::store::{kv_is_valid, Store, INITIAL_REVISION};
use crate::types::{RangeRequest, RangeResponse, Response};
use crate::watch::{Event, Unreplicated, WatchHub};
use crate::KvError;
use bytes::Bytes;
use raft::{Entry, EntryKind, LogIndex};
use replica::StateMachine;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// First bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"RKVS";
/// Format version of the snapshot layout (1 is still read: it has no meta section).
pub const SNAPSHOT_FORMAT: u8 = 2;
/// Default bound on the session table.
pub const SESSIONS_MAX_DEFAULT: usize = 10_000;

/// Settings of the state machine. Must be identical on every node: they decide results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvConfig {
    /// Most client sessions kept; beyond it the least recently used is evicted.
    pub sessions_max: usize,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            sessions_max: SESSIONS_MAX_DEFAULT,
        }
    }
}

/// The store behind a lock, so that [`KvReader`]s serve reads on other threads while the
/// applying thread owns the machine. Cloning copies the contents (a clone is a separate
/// machine); only [`KvStateMachine::reader`] shares them.
struct SharedStore(Arc<RwLock<Store>>);

impl SharedStore {
    fn new(store: Store) -> Self {
        SharedStore(Arc::new(RwLock::new(store)))
    }

    fn get(&self) -> RwLockReadGuard<'_, Store> {
        read_lock(&self.0)
    }

    fn get_mut(&mut self) -> RwLockWriteGuard<'_, Store> {
        self.0.write().expect("kv store lock poisoned")
    }
}

fn read_lock(store: &RwLock<Store>) -> RwLockReadGuard<'_, Store> {
    store.read().expect("kv store lock poisoned")
}

impl Clone for SharedStore {
    fn clone(&self) -> Self {
        SharedStore::new(self.get().clone())
    }
}

impl PartialEq for SharedStore {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.get() == *other.get()
    }
}

impl Eq for SharedStore {}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// Reads of one machine's applied state from any thread: what a serializable read sees,
/// and what a linearizable one sees once ReadIndex confirmed it and the machine applied
/// that far (the state only moves forward, so reading later is still linearizable).
#[derive(Clone)]
pub struct KvReader {
    store: Arc<RwLock<Store>>,
}

impl KvReader {
    /// A range over the latest applied state.
    pub fn read(&self, req: &RangeRequest) -> Result<RangeResponse, KvError> {
        read_lock(&self.store).range(req)
    }

    /// The latest applied revision.
    pub fn revision(&self) -> i64 {
        read_lock(&self.store).revision()
    }
}

/// The replicated key/value state machine of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvStateMachine {
    store: SharedStore,
    sessions: Sessions,
    applied_index: LogIndex,
    /// Replicated metadata of the service above (see [`crate::meta`]).
    meta: BTreeMap<Bytes, Bytes>,
    /// This node's watchers, when it serves any (not replicated state).
    watch: Unreplicated<LocalWatch>,
}

/// The watch hub of one machine (a clone has none).
#[derive(Debug, Default)]
struct LocalWatch {
    hub: OnceLock<WatchHub>,
    /// The buffer the store records the next write's events into, once these are published.
    spare: Vec<Event>,
}

impl Default for KvStateMachine {
    fn default() -> Self {
        KvStateMachine::new(KvConfig::default())
    }
}

impl KvStateMachine {
    /// An empty machine: no keys, revision 1, nothing applied.
    pub fn new(config: KvConfig) -> Self {
        KvStateMachine {
            store: SharedStore::new(Store::new()),
            sessions: Sessions::new(config.sessions_max),
            applied_index: LogIndex(0),
            meta: BTreeMap::new(),
            watch: Unreplicated::default(),
        }
    }

    /// This machine's watch hub, created on the first call with a window of `window_max`
    /// recent events: from then on every write's events are recorded and published to it.
    /// Call it where entries are applied (between two applies), like every registration.
    pub fn watch_hub(&self, window_max: usize) -> WatchHub {
        self.watch
            .hub
            .get_or_init(|| {
                let mut store = self.store.0.write().expect("kv store lock poisoned");
                store.record_events(true);
                WatchHub::new(store.revision(), window_max)
            })
            .clone()
    }

    /// After an entry applied: hand its events to the watchers.
    fn publish_events(&mut self) {
        let LocalWatch { hub, spare } = &mut *self.watch;
        if let Some(hub) = hub.get() {
            let mut store = self.store.0.write().expect("kv store lock poisoned");
            store.swap_events(spare);
            let revision = store.revision();
            drop(store);
            hub.publish(revision, spare);
        }
    }

    /// The replicated meta map (see [`crate::meta`]), in key order.
    pub fn meta(&self) -> &BTreeMap<Bytes, Bytes> {
        &self.meta
    }

    /// The store (read-locked while the guard lives: do not hold it across an apply).
    pub fn store(&self) -> RwLockReadGuard<'_, Store> {
        self.store.get()
    }

    /// A handle that reads this machine's applied state from any thread.
    pub fn reader(&self) -> KvReader {
        KvReader {
            store: self.store.0.clone(),
        }
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Last log index applied (or restored from a snapshot).
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    /// Current store revision.
    pub fn revision(&self) -> i64 {
        self.store.get().revision()
    }

    /// A read served from the local state (after ReadIndex, or `serializable`).
    pub fn read(&self, req: &RangeRequest) -> Result<RangeResponse, KvError> {
        self.store.get().range(req)
    }

    /// Apply the encoded command at `index` and return its encoded [`crate::CommandResult`].
    pub fn apply_bytes(&mut self, index: LogIndex, data: &[u8]) -> Bytes {
        let reply = self.apply_bytes_quietly(index, data);
        self.publish_events();
        reply
    }

    fn apply_bytes_quietly(&mut self, index: LogIndex, data: &[u8]) -> Bytes {
        self.advance(index);
        if MetaCommand::is_meta(data) {
            return match MetaCommand::decode(data) {
                Ok(cmd) => self.apply_meta(cmd),
                Err(e) => encode_result(&Err(KvError::Decode(e))),
            };
        }
        match Command::decode(data) {
            Ok(cmd) => self.execute_owned(index, cmd),
            Err(e) => encode_result(&Err(KvError::Decode(e))),
        }
    }

    /// Apply the encoded command at `index` when nobody waits for its reply (a restarted
    /// node replaying its log, a follower): the same state change as
    /// [`KvStateMachine::apply_bytes`], without encoding a reply that would be dropped (a
    /// command with a session still records its reply: a retry may ask for it).
    pub fn apply_bytes_unobserved(&mut self, index: LogIndex, data: &[u8]) {
        if MetaCommand::is_meta(data) {
            self.apply_bytes(index, data);
            return;
        }
        self.advance(index);
        if let Ok(cmd) = Command::decode(data) {
            match cmd.session {
                Some(_) if cmd.request.is_write() => {
                    self.execute_owned(index, cmd);
                }
                _ => {
                    let _ = self.store.get_mut().execute_owned(cmd.request);
                }
            }
        }
        self.publish_events();
    }

    /// Apply `cmd` as the entry at `index` and return its encoded [`crate::CommandResult`].
    pub fn apply_command(&mut self, index: LogIndex, cmd: &Command) -> Bytes {
        self.advance(index);
        let reply = self.execute(index, cmd);
        self.publish_events();
        reply
    }

    /// Empty on success; an encoded error result when the map is full.
    fn apply_meta(&mut self, cmd: MetaCommand) -> Bytes {
        match cmd {
            MetaCommand::Put { key, value } => {
                if self.meta.len() >= META_ENTRIES_MAX && !self.meta.contains_key(&key) {
                    return encode_result(&Err(KvError::MetaFull {
                        max: META_ENTRIES_MAX as u64,
                    }));
                }
                self.meta.insert(key, value);
            }
            MetaCommand::Delete { key } => {
                self.meta.remove(&key);
            }
        }
        Bytes::new()
    }

    fn advance(&mut self, index: LogIndex) {
        assert!(
            index > self.applied_index,
            "entry {index:?} applied after {:?}: entries apply once, in order",
            self.applied_index
        );
        self.applied_index = index;
    }

    fn execute(&mut self, index: LogIndex, cmd: &Command) -> Bytes {
        let write_session = cmd.session.filter(|_| cmd.request.is_write());
        self.run(index, write_session, |store| store.execute(&cmd.request))
    }

    /// [`KvStateMachine::execute`] of a decoded command: its values move into the store.
    fn execute_owned(&mut self, index: LogIndex, cmd: Command) -> Bytes {
        let write_session = cmd.session.filter(|_| cmd.request.is_write());
        self.run(index, write_session, move |store| {
            store.execute_owned(cmd.request)
        })
    }

    /// Runs `exec` on the store — once per session sequence number when `session` is set —
    /// and returns the encoded result.
    fn run(
        &mut self,
        index: LogIndex,
        session: Option<ClientSeq>,
        exec: impl FnOnce(&mut Store) -> Result<Response, KvError>,
    ) -> Bytes {
        let Some(session) = session else {
            return encode_result(&exec(&mut self.store.get_mut()));
        };
        let (client_id, seq) = (session.client_id, session.seq);
        match self.sessions.admit(client_id, seq, index) {
            Admission::Apply => {
                let reply = encode_result(&exec(&mut self.store.get_mut()));
                self.sessions.record(client_id, seq, index, reply.clone());
                reply
            }
            Admission::Duplicate(reply) => reply,
            Admission::Stale { last_seq } => encode_result(&Err(KvError::StaleSequence {
                client_id,
                seq,
                last_seq,
            })),
            Admission::Expired => encode_result(&Err(KvError::SessionExpired { client_id, seq })),
            Admission::Invalid => encode_result(&Err(KvError::InvalidSequence { client_id })),
        }
    }

    /// The whole state as snapshot bytes.
    pub fn encode_snapshot(&self) -> Bytes {
        let store = self.store.get();
        encode_state(self.applied_index, &store, &self.sessions, &self.meta)
    }

    /// Replace the whole state with a snapshot's, or refuse it and change nothing.
    pub fn try_restore(&mut self, data: &[u8]) -> Result<(), KvError> {
        let (body, format) = check_envelope(data)?;
        let mut r = Reader::new(body);
        r.raw(SNAPSHOT_MAGIC.len() + 1)?;
        let applied_index = LogIndex(r.varint()?);
        let revision = r.zigzag()?;
        if revision < INITIAL_REVISION {
            return Err(DecodeError::Invalid { offset: r.offset() }.into());
        }
        let kvs = read_keys(&mut r, revision)?;
        let mut sessions = Sessions::new(self.sessions.sessions_max());
        read_sessions(&mut r, applied_index, &mut sessions)?;
        let meta = if format >= 2 {
            read_meta(&mut r)?
        } else {
            BTreeMap::new()
        };
        r.finish()?;
        sessions.enforce_bound();
        let mut store = Store::from_parts(kvs, revision);
        store.record_events(self.watch.hub.get().is_some());
        *self.store.get_mut() = store;
        self.sessions = sessions;
        self.applied_index = applied_index;
        self.meta = meta;
        if let Some(hub) = self.watch.hub.get() {
            hub.replaced(revision);
        }
        Ok(())
    }
}

/// Check magic, checksum and version; return the bytes before the checksum and the format.
fn check_envelope(data: &[u8]) -> Result<(&[u8], u8), DecodeError> {
    let header = SNAPSHOT_MAGIC.len() + 1;
    if data.len() < header + 4 {
        return Err(DecodeError::Truncated {
            offset: data.len() as u64,
        });
    }
    if data[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
        return Err(DecodeError::Magic);
    }
    let (body, trailer) = data.split_at(data.len() - 4);
    let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    let found = body[SNAPSHOT_MAGIC.len()];
    if !(1..=SNAPSHOT_FORMAT).contains(&found) {
        return Err(DecodeError::Version { found });
    }
    Ok((body, found))
}

/// Meta entries, in strictly increasing key order, within the bounds of [`crate::meta`].
fn read_meta(r: &mut Reader<'_>) -> Result<BTreeMap<Bytes, Bytes>, DecodeError> {
    let n = r.count()?;
    let mut meta = BTreeMap::new();
    for _ in 0..n {
        let offset = r.offset();
        let key = crate::meta::bounded(r, META_KEY_BYTES_MAX)?;
        let value = crate::meta::bounded(r, META_VALUE_BYTES_MAX)?;
        let ordered = meta.last_key_value().is_none_or(|(l, _)| *l < key);
        if !ordered || meta.len() >= META_ENTRIES_MAX {
            return Err(DecodeError::Invalid { offset });
        }
        meta.insert(key, value);
    }
    Ok(meta)
}

/// Keys, which must come in strictly increasing order and be valid at `revision`.
fn read_keys(r: &mut Reader<'_>, revision: i64) -> Result<crate::store::KeyMap, DecodeError> {
    let n = r.count()?;
    let mut kvs = crate::store::KeyMap::new();
    let mut last: Option<Bytes> = None;
    for _ in 0..n {
        let offset = r.offset();
        let kv = codec::get_kv(r)?;
        let ordered = !matches!(&last, Some(l) if *l >= kv.key);
        if !ordered || !kv_is_valid(&kv, revision) {
            return Err(DecodeError::Invalid { offset });
        }
        last = Some(kv.key.clone());
        kvs.insert(kv.key.clone(), kv);
    }
    Ok(kvs)
}

/// Sessions, in strictly increasing client order, none applied after `applied_index`.
fn read_sessions(
    r: &mut Reader<'_>,
    applied_index: LogIndex,
    sessions: &mut Sessions,
) -> Result<(), DecodeError> {
    let n = r.count()?;
    let mut last: Option<u64> = None;
    for _ in 0..n {
        let offset = r.offset();
        let client_id = r.varint()?;
        let s = Session {
            last_seq: r.varint()?,
            last_index: LogIndex(r.varint()?),
            reply: r.bytes()?,
        };
        let valid = !matches!(last, Some(l) if l >= client_id)
            && s.last_seq >= 1
            && s.last_index > LogIndex(0)
            && s.last_index <= applied_index
            && crate::command::decode_result(&s.reply).is_ok()
            && sessions.insert_restored(client_id, s);
        if !valid {
            return Err(DecodeError::Invalid { offset });
        }
        last = Some(client_id);
    }
    Ok(())
}

impl StateMachine for KvStateMachine {
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Bytes {
        self.apply_bytes(index, data)
    }

    /// Every entry advances the applied index; only normal entries carry commands.
    fn apply_entry(&mut self, entry: &Entry) -> Bytes {
        match entry.kind {
            EntryKind::Normal => self.apply_bytes(entry.index, &entry.data),
            EntryKind::Noop | EntryKind::Config => {
                self.advance(entry.index);
                Bytes::new()
            }
        }
    }

    fn apply_entry_unobserved(&mut self, entry: &Entry) {
        match entry.kind {
            EntryKind::Normal => self.apply_bytes_unobserved(entry.index, &entry.data),
            EntryKind::Noop | EntryKind::Config => self.advance(entry.index),
        }
    }

    fn snapshot(&self) -> Bytes {
        self.encode_snapshot()
    }

    /// A copy of the state, encoded when the closure runs. The key map is persistent: the
    /// copy shares its nodes, and the ones a later write touches are copied then.
    fn snapshot_later(&self) -> Box<dyn FnOnce() -> Bytes + Send> {
        let store = self.store.get().clone();
        let (applied, sessions, meta) =
            (self.applied_index, self.sessions.clone(), self.meta.clone());
        Box::new(move || encode_state(applied, &store, &sessions, &meta))
    }

    fn restore(&mut self, data: &[u8]) {
        if let Err(e) = self.try_restore(data) {
            panic!("refusing a corrupt kv snapshot ({} bytes): {e}", data.len());
        }
    }
}

/// The snapshot format: the state at `applied` (see [`KvStateMachine::encode_snapshot`]).
fn encode_state(
    applied: LogIndex,
    store: &Store,
    sessions: &Sessions,
    meta: &BTreeMap<Bytes, Bytes>,
) -> Bytes {
    let mut w = Writer::new();
    w.raw(&SNAPSHOT_MAGIC);
    w.u8(SNAPSHOT_FORMAT);
    w.varint(applied.0);
    w.zigzag(store.revision());
    w.len(store.len());
    store.iter().for_each(|kv| codec::put_kv(&mut w, kv));
    w.len(sessions.len());
    for (client_id, s) in sessions.iter() {
        w.varint(client_id);
        w.varint(s.last_seq);
        w.varint(s.last_index.0);
        w.bytes(&s.reply);
    }
    w.len(meta.len());
    for (k, v) in meta {
        w.bytes(k);
        w.bytes(v);
    }
    let crc = crc32c::crc32c(w.as_slice());
    w.u32_le(crc);
    w.finish()
}

#[cfg(test)]
mod tests;
