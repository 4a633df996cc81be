//! [`Store`]: the ordered key space with etcd v3 revisions, without MVCC history.
//!
//! Owns: the keys (an ordered map, so ranges come out in key order; persistent — a clone
//! shares every node until one side changes it, so a snapshot copies the store in O(1)), the global revision and
//! the per-key `create_revision`/`mod_revision`/`version`, and the single write path
//! (`Write`) every mutation goes through, which is what makes "one write request = at most
//! one revision" hold for puts, deletes, appends and whole txns alike.
//! Must never: keep old revisions (a read at any revision but the current one is refused),
//! read a clock or a random source, iterate a hash map, or half-apply a request — every check
//! runs before the first change.
//!
//! Revision rules (etcd's): an empty store is at revision 1; a put or append always bumps it by
//! one; a delete bumps it only if it deleted something; a txn bumps it by one if any of its ops
//! changed something, and every key it writes gets that one revision.

use crate::keys::KeyRange;
use crate::txn;
use crate::types::*;
use crate::watch::{Event, EventKind, Unreplicated};
use crate::KvError;
use bytes::{Bytes, BytesMut};
use std::cmp::Ordering;

/// The key space: key → its value and metadata, in key order.
pub(crate) type KeyMap = imbl::OrdMap<Bytes, KeyValue>;

/// The revision of an empty store (etcd starts at 1, too).
pub const INITIAL_REVISION: i64 = 1;

/// The key/value state: keys in order, each with its etcd metadata, and the global revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    kvs: KeyMap,
    revision: i64,
    journal: Unreplicated<Journal>,
}

/// The events of the writes since the last [`Store::swap_events`], kept only while
/// recording (for watchers).
#[derive(Debug, Default)]
struct Journal {
    on: bool,
    events: Vec<Event>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// An empty store at revision [`INITIAL_REVISION`].
    pub fn new() -> Self {
        Store {
            kvs: KeyMap::new(),
            revision: INITIAL_REVISION,
            journal: Unreplicated::default(),
        }
    }

    /// Record from now on the [`Event`] of every change (or stop), for
    /// [`Store::swap_events`].
    pub fn record_events(&mut self, on: bool) {
        self.journal.on = on;
        if !on {
            self.journal.events.clear();
        }
    }

    /// The events recorded since the last call, in the order the changes were made, swapped
    /// into `buf` (which must be empty: its capacity becomes the next recording's).
    pub fn swap_events(&mut self, buf: &mut Vec<Event>) {
        debug_assert!(buf.is_empty(), "events would be lost");
        std::mem::swap(&mut self.journal.events, buf);
    }

    /// The current revision: the revision of the last write that changed something.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.kvs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kvs.is_empty()
    }

    /// One key, if present.
    pub fn get(&self, key: &[u8]) -> Option<&KeyValue> {
        self.kvs.get(key)
    }

    /// Every key, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &KeyValue> {
        self.kvs.values()
    }

    /// The keys of `kr`, in key order.
    pub fn scan<'a>(&'a self, kr: &KeyRange) -> impl Iterator<Item = &'a KeyValue> + 'a {
        kr.scan(&self.kvs).map(|(_, kv)| kv)
    }

    /// Execute any request; writes change the store, a range only reads it.
    pub fn execute(&mut self, req: &Request) -> Result<Response, KvError> {
        Ok(match req {
            Request::Range(r) => Response::Range(self.range(r)?),
            Request::Put(r) => Response::Put(self.put(r)?),
            Request::DeleteRange(r) => Response::DeleteRange(self.delete_range(r)?),
            Request::Txn(r) => Response::Txn(self.txn(r)?),
            Request::Append(r) => Response::Append(self.append(r)?),
        })
    }

    /// [`Store::execute`] of a request the caller gives up: a put's value moves into the
    /// store instead of being shared with the request.
    pub fn execute_owned(&mut self, req: Request) -> Result<Response, KvError> {
        match req {
            Request::Put(r) => Ok(Response::Put(self.put_owned(r)?)),
            req => self.execute(&req),
        }
    }

    /// etcd's Range. `revision` must be 0 (or negative) or the current revision.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, KvError> {
        let kr = KeyRange::new(&req.key, &req.range_end)?;
        self.check_read_revision(req.revision)?;
        Ok(self.read(&kr, req, self.revision))
    }

    /// etcd's Put: always writes, always bumps the revision.
    pub fn put(&mut self, req: &PutRequest) -> Result<PutResponse, KvError> {
        check_put(req)?;
        self.check_put_target(req)?;
        let mut w = Write::begin(self);
        let resp = w.put(req);
        w.commit();
        Ok(resp)
    }

    /// [`Store::put`] taking the request's value.
    pub fn put_owned(&mut self, mut req: PutRequest) -> Result<PutResponse, KvError> {
        check_put(&req)?;
        self.check_put_target(&req)?;
        let value = std::mem::take(&mut req.value);
        let mut w = Write::begin(self);
        let resp = w.put_value(&req, value);
        w.commit();
        Ok(resp)
    }

    /// etcd's DeleteRange: bumps the revision only if a key was deleted.
    pub fn delete_range(
        &mut self,
        req: &DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, KvError> {
        let kr = KeyRange::new(&req.key, &req.range_end)?;
        let mut w = Write::begin(self);
        let resp = w.delete_range(&kr, req.prev_kv);
        w.commit();
        Ok(resp)
    }

    /// raftkv's Append: like a put of `old value ++ suffix` (creating the key if absent).
    pub fn append(&mut self, req: &AppendRequest) -> Result<AppendResponse, KvError> {
        if req.key.is_empty() {
            return Err(KvError::EmptyKey);
        }
        let mut w = Write::begin(self);
        let resp = w.append(req);
        w.commit();
        Ok(resp)
    }

    /// etcd's Txn: validated and checked as a whole first, then applied as one revision.
    pub fn txn(&mut self, req: &TxnRequest) -> Result<TxnResponse, KvError> {
        txn::validate(req)?;
        let path = txn::plan(self, req)?;
        let mut w = Write::begin(self);
        let resp = txn::run(&mut w, req, path);
        w.commit();
        Ok(resp)
    }

    /// Refuse a read at a revision this store cannot serve (it keeps only the current one).
    pub(crate) fn check_read_revision(&self, requested: i64) -> Result<(), KvError> {
        let current = self.revision;
        match requested.cmp(&current) {
            _ if requested <= 0 => Ok(()),
            Ordering::Equal => Ok(()),
            Ordering::Less => Err(KvError::Compacted { requested, current }),
            Ordering::Greater => Err(KvError::FutureRev { requested, current }),
        }
    }

    /// etcd's `checkPut`: `ignore_value`/`ignore_lease` need an existing key.
    pub(crate) fn check_put_target(&self, req: &PutRequest) -> Result<(), KvError> {
        if (req.ignore_value || req.ignore_lease) && !self.kvs.contains_key(&req.key) {
            return Err(KvError::KeyNotFound {
                key: req.key.clone(),
            });
        }
        Ok(())
    }

    /// The keys of `kr` as `req` asks for them, reported at `revision` (etcd's `Range` in
    /// `apply.go`: fetch, filter, sort, limit, strip values).
    pub(crate) fn read(&self, kr: &KeyRange, req: &RangeRequest, revision: i64) -> RangeResponse {
        let filtered = req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        // etcd fetches everything when it must sort or filter, else one past the limit.
        let fetch_max = if req.sort_order != SortOrder::None || filtered || req.limit <= 0 {
            usize::MAX
        } else {
            usize::try_from(req.limit)
                .unwrap_or(usize::MAX)
                .saturating_add(1)
        };
        let mut count: i64 = 0;
        let mut kvs = Vec::new();
        for (_, kv) in kr.scan(&self.kvs) {
            count += 1;
            if !req.count_only && kvs.len() < fetch_max {
                kvs.push(kv.clone());
            }
        }
        if filtered {
            kvs.retain(|kv| passes_filters(req, kv));
        }
        sort_kvs(&mut kvs, req.sort_order, req.sort_target);
        let mut more = false;
        if let Ok(limit) = usize::try_from(req.limit) {
            if limit > 0 && kvs.len() > limit {
                kvs.truncate(limit);
                more = true;
            }
        }
        if req.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value = Bytes::new());
        }
        RangeResponse {
            revision,
            kvs,
            more,
            count,
        }
    }

    /// Replace the whole state (snapshot restore). The caller has checked the invariants that
    /// [`Store::check_invariants`] asserts.
    pub(crate) fn from_parts(kvs: KeyMap, revision: i64) -> Store {
        let store = Store {
            kvs,
            revision,
            journal: Unreplicated::default(),
        };
        store.check_invariants();
        store
    }

    /// What must hold of every key: its map key is its key, `1 <= create <= mod <= revision`,
    /// `version >= 1`, no lease.
    pub(crate) fn check_invariants(&self) {
        assert!(
            self.revision >= INITIAL_REVISION,
            "revision {} < 1",
            self.revision
        );
        for (k, kv) in &self.kvs {
            assert_eq!(k, &kv.key, "map key differs from the key it holds");
            assert!(
                kv_is_valid(kv, self.revision),
                "invalid key {kv:?} at revision {}",
                self.revision
            );
        }
    }
}

/// Whether a key's metadata is consistent with a store at `revision`.
pub(crate) fn kv_is_valid(kv: &KeyValue, revision: i64) -> bool {
    !kv.key.is_empty()
        && kv.create_revision > INITIAL_REVISION
        && kv.create_revision <= kv.mod_revision
        && kv.mod_revision <= revision
        && kv.version >= 1
        && kv.lease == 0
}

/// etcd's `checkPutRequest`.
pub(crate) fn check_put(req: &PutRequest) -> Result<(), KvError> {
    if req.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(KvError::ValueProvided);
    }
    Ok(())
}

fn passes_filters(req: &RangeRequest, kv: &KeyValue) -> bool {
    (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
        && (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
        && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
        && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
}

/// etcd's sort: a target other than `Key` with no order sorts ascending. The sort is stable,
/// so equal targets stay in key order (etcd's is unstable; ours must be deterministic).
fn sort_kvs(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    let order = match (order, target) {
        (SortOrder::None, SortTarget::Key) => return,
        (SortOrder::None, _) => SortOrder::Ascend,
        (o, _) => o,
    };
    let cmp = |a: &KeyValue, b: &KeyValue| match target {
        SortTarget::Key => a.key.cmp(&b.key),
        SortTarget::Version => a.version.cmp(&b.version),
        SortTarget::Create => a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => a.value.cmp(&b.value),
    };
    match order {
        SortOrder::Descend => kvs.sort_by(|a, b| cmp(b, a)),
        _ => kvs.sort_by(cmp),
    }
}

/// What [`Write::write`] did to a key.
struct Written {
    /// The key as it was, when asked for and present.
    prev: Option<KeyValue>,
    /// The key's version and value length now.
    version: i64,
    value_len: usize,
}

/// One write request in progress: every change it makes carries revision `rev`, and the store
/// moves to `rev` on [`Write::commit`] only if something changed. Operations here cannot fail:
/// everything that could refuse the request was checked before [`Write::begin`].
pub(crate) struct Write<'a> {
    store: &'a mut Store,
    rev: i64,
    changed: bool,
}

impl<'a> Write<'a> {
    pub(crate) fn begin(store: &'a mut Store) -> Self {
        let rev = store
            .revision
            .checked_add(1)
            .expect("revision overflow: i64 exhausted");
        Write {
            store,
            rev,
            changed: false,
        }
    }

    /// The revision a read sees now: the new one once something changed.
    pub(crate) fn visible_revision(&self) -> i64 {
        if self.changed {
            self.rev
        } else {
            self.rev - 1
        }
    }

    pub(crate) fn store(&self) -> &Store {
        self.store
    }

    pub(crate) fn commit(self) {
        assert_eq!(self.rev, self.store.revision + 1, "one write, one revision");
        if self.changed {
            self.store.revision = self.rev;
        }
    }

    /// Write `value` at `key` as this request's revision. One map lookup when the key exists
    /// (the common case: a replayed log mostly overwrites), and its previous state is cloned
    /// only when `want_prev`.
    fn write(&mut self, key: &Bytes, value: Bytes, want_prev: bool) -> Written {
        self.changed = true;
        let rev = self.rev;
        let recording = self.store.journal.on;
        if let Some(kv) = self.store.kvs.get_mut(key) {
            assert!(kv.mod_revision < rev, "a key is written once per revision");
            let mut prev = (want_prev || recording).then(|| kv.clone());
            kv.value = value;
            kv.mod_revision = rev;
            kv.version += 1;
            let (version, value_len) = (kv.version, kv.value.len());
            if recording {
                let event = Event {
                    kind: EventKind::Put,
                    kv: kv.clone(),
                    prev_kv: if want_prev { prev.clone() } else { prev.take() },
                };
                self.store.journal.events.push(event);
            }
            return Written {
                prev,
                version,
                value_len,
            };
        }
        let value_len = value.len();
        let kv = KeyValue {
            key: key.clone(),
            value,
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            lease: 0,
        };
        if recording {
            self.store.journal.events.push(Event {
                kind: EventKind::Put,
                kv: kv.clone(),
                prev_kv: None,
            });
        }
        self.store.kvs.insert(key.clone(), kv);
        Written {
            prev: None,
            version: 1,
            value_len,
        }
    }

    pub(crate) fn put(&mut self, req: &PutRequest) -> PutResponse {
        self.put_value(req, req.value.clone())
    }

    /// [`Write::put`] of `value` (the request's, taken from it).
    fn put_value(&mut self, req: &PutRequest, value: Bytes) -> PutResponse {
        let value = if req.ignore_value {
            let kv = self.store.kvs.get(&req.key);
            kv.expect("ignore_value on a missing key is refused before the write")
                .value
                .clone()
        } else {
            value
        };
        let written = self.write(&req.key, value, req.prev_kv);
        PutResponse {
            revision: self.visible_revision(),
            prev_kv: written.prev,
        }
    }

    pub(crate) fn append(&mut self, req: &AppendRequest) -> AppendResponse {
        let value = match self.store.kvs.get(&req.key) {
            Some(kv) if !req.suffix.is_empty() => {
                let mut v = BytesMut::with_capacity(kv.value.len() + req.suffix.len());
                v.extend_from_slice(&kv.value);
                v.extend_from_slice(&req.suffix);
                v.freeze()
            }
            Some(kv) => kv.value.clone(),
            None => req.suffix.clone(),
        };
        let written = self.write(&req.key, value, false);
        AppendResponse {
            revision: self.visible_revision(),
            version: written.version,
            value_len: written.value_len as u64,
        }
    }

    pub(crate) fn delete_range(&mut self, kr: &KeyRange, prev_kv: bool) -> DeleteRangeResponse {
        let keys: Vec<Bytes> = kr.scan(&self.store.kvs).map(|(k, _)| k.clone()).collect();
        let mut prev_kvs = Vec::new();
        for k in &keys {
            let kv = self.store.kvs.remove(k).expect("scanned key is present");
            if self.store.journal.on {
                let event = Event::deleted(kv.clone(), self.rev);
                self.store.journal.events.push(event);
            }
            if prev_kv {
                prev_kvs.push(kv);
            }
        }
        if !keys.is_empty() {
            self.changed = true;
        }
        DeleteRangeResponse {
            revision: self.visible_revision(),
            deleted: keys.len() as i64,
            prev_kvs,
        }
    }
}

#[cfg(test)]
mod tests;
