//! [`NodeMachine`]: what every simulated node applies its committed entries to — the
//! recorder ([`SimStateMachine`], for the Figure-3 checks and the Raft-level scenarios) and,
//! when the cluster runs the KV service ([`crate::SimConfig::kv`]), the real
//! [`KvStateMachine`] next to it.
//!
//! Every entry goes to both; the reply a waiting client gets is the KV machine's (the
//! recorder's otherwise). A snapshot carries both:
//!
//! ```text
//! recorder only:  <recorder snapshot>                       (unchanged from before)
//! with KV:        recorder_len u32 LE | <recorder snapshot> | <kv snapshot>
//! ```
//!
//! With KV the recorder snapshots in [`Recording::Digest`] form (24 bytes), so the snapshot's
//! size is the KV state's plus a constant — what the 6.824 4B size bounds are about.
//!
//! A KV node also watches every key, as a client keeping a cache would ([`CacheWatch`]):
//! from the events alone it rebuilds the key space, which must equal the store whenever the
//! node snapshots, and the revisions it is told must be consecutive (each revision is one
//! write that changed something, so a gap is a lost event, a repeat a doubled one). A
//! snapshot installed over the state cancels the watch as compacted; the cache then starts
//! again from the restored store.
//!
//! Owns: the pairing of the two machines, the snapshot envelope, the cache watch.
//! Must never: let the two machines see different entries, or interpret command bytes itself.

use crate::app::{Recording, SimStateMachine};
use bytes::{BufMut, Bytes, BytesMut};
use kv::{
    EventKind, KeyRange, KeyValue, KvConfig, KvStateMachine, Registered, WatchHub, WatchNotice,
    WatchSink, WatchSpec,
};
use raft::{Entry, EntryKind, LogIndex, Term};
use replica::StateMachine;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One node's application: the recorder, plus the KV state machine when the cluster runs one.
#[derive(Debug)]
pub struct NodeMachine {
    recorder: SimStateMachine,
    kv: Option<KvStateMachine>,
    watch: Option<CacheWatch>,
}

/// Recent events a simulated KV node keeps for watchers (small: the window's eviction runs).
const SIM_WATCH_WINDOW: usize = 64;

/// What a watcher of every key knows: the keys as its events left them, and the revision of
/// the last event (or where it started).
#[derive(Debug, Default)]
struct Cache {
    kvs: BTreeMap<Bytes, KeyValue>,
    revision: i64,
    /// The watch was canceled (compacted): the cache is stale until started again.
    dropped: bool,
}

struct CacheSink(Arc<Mutex<Cache>>);

impl WatchSink for CacheSink {
    fn notify(&mut self, notice: WatchNotice) -> bool {
        let mut c = self.0.lock().expect("cache lock");
        match notice {
            WatchNotice::Events { revision, events } => {
                assert_eq!(
                    revision,
                    c.revision + 1,
                    "watch: events of revision {revision} after revision {} (lost or doubled)",
                    c.revision
                );
                for e in events {
                    assert_eq!(e.kv.mod_revision, revision, "an event carries its revision");
                    let before = c.kvs.get(&e.kv.key);
                    assert_eq!(
                        e.prev_kv.as_ref(),
                        before,
                        "watch: prev_kv of {:?} is not the key as the events left it",
                        e.kv.key
                    );
                    match e.kind {
                        EventKind::Put => {
                            c.kvs.insert(e.kv.key.clone(), e.kv);
                        }
                        EventKind::Delete => {
                            assert!(before.is_some(), "watch: a delete of an absent key");
                            c.kvs.remove(&e.kv.key);
                        }
                    }
                }
                c.revision = revision;
                true
            }
            WatchNotice::Compacted { .. } => {
                c.dropped = true;
                false
            }
        }
    }
}

/// A KV node's watcher of every key (see the module docs).
#[derive(Debug)]
struct CacheWatch {
    hub: WatchHub,
    cache: Arc<Mutex<Cache>>,
}

impl CacheWatch {
    fn start(kv: &KvStateMachine) -> CacheWatch {
        let hub = kv.watch_hub(SIM_WATCH_WINDOW);
        let cache = Arc::new(Mutex::new(Cache::default()));
        let w = CacheWatch { hub, cache };
        w.restart(kv);
        w
    }

    /// Fill the cache from the store and watch from its revision on.
    fn restart(&self, kv: &KvStateMachine) {
        let store = kv.store();
        *self.cache.lock().expect("cache lock") = Cache {
            kvs: store
                .iter()
                .map(|kv| (kv.key.clone(), kv.clone()))
                .collect(),
            revision: store.revision(),
            dropped: false,
        };
        drop(store);
        let all = Bytes::from_static(b"\0");
        let spec = WatchSpec {
            range: KeyRange::new(&all, &all).expect("every key"),
            start_revision: 0,
            no_put: false,
            no_delete: false,
            prev_kv: true,
        };
        let registered = self
            .hub
            .register(spec, Box::new(CacheSink(self.cache.clone())));
        assert!(
            matches!(registered, Registered::Watching { .. }),
            "{registered:?}"
        );
    }

    /// The cache equals the store.
    fn check(&self, kv: &KvStateMachine) {
        let c = self.cache.lock().expect("cache lock");
        assert!(
            !c.dropped,
            "the cache watch was dropped and not started again"
        );
        let store = kv.store();
        assert_eq!(
            c.revision,
            store.revision(),
            "watch: the cache is behind the store"
        );
        assert!(
            c.kvs.values().eq(store.iter()),
            "watch: the keys rebuilt from events differ from the store"
        );
    }
}

impl NodeMachine {
    /// The recorder alone, with full snapshots (the Raft-level simulator).
    pub fn recording() -> Self {
        NodeMachine {
            recorder: SimStateMachine::new(),
            kv: None,
            watch: None,
        }
    }

    /// The KV state machine, with a digest-snapshot recorder beside it.
    pub fn with_kv(config: KvConfig) -> Self {
        let kv = KvStateMachine::new(config);
        let watch = CacheWatch::start(&kv);
        NodeMachine {
            recorder: SimStateMachine::with_recording(Recording::Digest),
            kv: Some(kv),
            watch: Some(watch),
        }
    }

    /// What `SimConfig::kv` asks for.
    pub fn for_config(kv: Option<KvConfig>) -> Self {
        kv.map_or_else(NodeMachine::recording, NodeMachine::with_kv)
    }

    /// The recorder of every applied entry.
    pub fn recorder(&self) -> &SimStateMachine {
        &self.recorder
    }

    /// The KV state machine, if this node runs one.
    pub fn kv(&self) -> Option<&KvStateMachine> {
        self.kv.as_ref()
    }
}

impl StateMachine for NodeMachine {
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Bytes {
        // Only reached if a driver bypasses `apply_entry`; the term is then unknown.
        self.apply_entry(&Entry {
            term: Term(0),
            index,
            kind: EntryKind::Normal,
            data: Bytes::copy_from_slice(data),
        })
    }

    fn apply_entry(&mut self, entry: &Entry) -> Bytes {
        let recorded = self.recorder.apply_entry(entry);
        match &mut self.kv {
            Some(kv) => kv.apply_entry(entry),
            None => recorded,
        }
    }

    fn snapshot(&self) -> Bytes {
        let Some(kv) = &self.kv else {
            return self.recorder.snapshot();
        };
        if let Some(w) = &self.watch {
            w.check(kv);
        }
        let rec = self.recorder.snapshot();
        let kv = kv.snapshot();
        let mut b = BytesMut::with_capacity(4 + rec.len() + kv.len());
        b.put_u32_le(rec.len() as u32);
        b.put_slice(&rec);
        b.put_slice(&kv);
        b.freeze()
    }

    fn restore(&mut self, data: &[u8]) {
        let Some(kv) = &mut self.kv else {
            return self.recorder.restore(data);
        };
        assert!(
            data.len() >= 4,
            "corrupt node snapshot: {} bytes",
            data.len()
        );
        let (len, rest) = data.split_at(4);
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        assert!(
            len <= rest.len(),
            "corrupt node snapshot: recorder length {len}"
        );
        let (rec, kv_bytes) = rest.split_at(len);
        self.recorder.restore(rec);
        kv.restore(kv_bytes);
        if let Some(w) = &self.watch {
            if w.cache.lock().expect("cache lock").dropped {
                w.restart(kv);
            }
            w.check(kv);
        }
        assert_eq!(
            kv.applied_index(),
            self.recorder.applied_index(),
            "the two machines of a snapshot disagree on the applied index"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv::{decode_result, Command, PutRequest, RangeRequest, Response};

    fn entry(index: u64, data: Bytes) -> Entry {
        Entry {
            term: Term(1),
            index: LogIndex(index),
            kind: EntryKind::Normal,
            data,
        }
    }

    #[test]
    fn kv_replies_and_both_machines_survive_a_snapshot() {
        let mut m = NodeMachine::with_kv(KvConfig::default());
        m.apply_entry(&Entry {
            kind: EntryKind::Noop,
            ..entry(1, Bytes::new())
        });
        let put = Command::with_session(PutRequest::new("k", "v"), 7, 1).encode();
        let reply = m.apply_entry(&entry(2, put));
        assert!(matches!(decode_result(&reply), Ok(Ok(Response::Put(_)))));
        let snap = m.snapshot();
        assert!(
            snap.len() < 200,
            "a one-key snapshot is small: {}",
            snap.len()
        );
        let mut other = NodeMachine::with_kv(KvConfig::default());
        other.restore(&snap);
        assert_eq!(other.recorder().applied_index(), LogIndex(2));
        assert_eq!(other.recorder().chain(), m.recorder().chain());
        let got = other.kv().unwrap().read(&RangeRequest::key("k")).unwrap();
        assert_eq!(got.kvs[0].value, "v");
    }

    #[test]
    fn without_kv_the_snapshot_is_the_recorders() {
        let mut m = NodeMachine::recording();
        m.apply_entry(&entry(1, Bytes::from_static(b"x")));
        let mut rec = SimStateMachine::new();
        rec.apply_entry(&entry(1, Bytes::from_static(b"x")));
        assert_eq!(m.snapshot(), rec.snapshot());
        assert_eq!(m.apply_entry(&entry(2, Bytes::new())).len(), 8);
    }
}
