//! Watching the applied key space: the events each write makes, the watchers of one node,
//! and a bounded window of the latest events so that a watcher may start a little in the
//! past (a client resuming after a reconnect, or one that read at revision R on another
//! member and now watches from R + 1 here).
//!
//! Owns: [`Event`] (what one write did to one key: etcd's `mvccpb.Event`), the [`WatchHub`]
//! (the watchers registered on this node, the window, the revision it has seen), and the
//! rules of delivery: a watcher gets every event in its key range that its filters keep,
//! from its start revision on, in revision order, one [`WatchNotice::Events`] per revision.
//! Must never: block the applying thread (a sink that cannot keep up says so and is
//! dropped), deliver an event twice, skip one without telling (a gap — the window does not
//! reach back to the start, or a snapshot replaced the state — is a
//! [`WatchNotice::Compacted`], after which the watcher is gone), or touch replicated state:
//! the hub is this node's alone, and two nodes with different watchers apply the same.

use crate::keys::KeyRange;
use crate::types::KeyValue;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Per-node state kept beside the replicated state (a store's event journal, a machine's
/// watch hub): two stores or machines that differ only in it are equal, and a clone starts
/// it afresh (a snapshot's copy records and serves nothing).
#[derive(Debug, Default)]
pub(crate) struct Unreplicated<T>(pub(crate) T);

impl<T: Default> Clone for Unreplicated<T> {
    fn clone(&self) -> Self {
        Unreplicated::default()
    }
}

impl<T> PartialEq for Unreplicated<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for Unreplicated<T> {}

impl<T> std::ops::Deref for Unreplicated<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Unreplicated<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// Default size of the window of recent events, in events.
pub const WATCH_HISTORY_DEFAULT: usize = 10_000;

/// What a write did to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One key changed by one write (etcd's `mvccpb.Event`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// A put: the key as it is now. A delete: the key, with `mod_revision` the deletion's
    /// revision and every other field zero (as etcd reports it).
    pub kv: KeyValue,
    /// The key before this write, when it existed.
    pub prev_kv: Option<KeyValue>,
}

impl Event {
    pub(crate) fn deleted(prev: KeyValue, revision: i64) -> Event {
        Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: prev.key.clone(),
                value: Default::default(),
                create_revision: 0,
                mod_revision: revision,
                version: 0,
                lease: 0,
            },
            prev_kv: Some(prev),
        }
    }
}

/// What a watcher asks for.
#[derive(Clone, Debug)]
pub struct WatchSpec {
    pub range: KeyRange,
    /// First revision to report; 0 (or negative) for "the next one": from now on.
    pub start_revision: i64,
    /// Leave out puts.
    pub no_put: bool,
    /// Leave out deletes.
    pub no_delete: bool,
    /// Include each event's previous key/value.
    pub prev_kv: bool,
}

impl WatchSpec {
    fn wants(&self, e: &Event) -> bool {
        let kind_ok = match e.kind {
            EventKind::Put => !self.no_put,
            EventKind::Delete => !self.no_delete,
        };
        kind_ok && self.range.contains(&e.kv.key)
    }

    fn filter<'a>(&self, events: impl IntoIterator<Item = &'a Event>) -> Vec<Event> {
        events
            .into_iter()
            .filter(|e| self.wants(e))
            .map(|e| Event {
                kind: e.kind,
                kv: e.kv.clone(),
                prev_kv: if self.prev_kv {
                    e.prev_kv.clone()
                } else {
                    None
                },
            })
            .collect()
    }
}

/// What a watcher is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchNotice {
    /// The events of one revision that the watcher wants, in the order they were applied.
    Events { revision: i64, events: Vec<Event> },
    /// Events the watcher needs are gone (before `compact_revision`); it is no longer
    /// registered, and may watch again from `compact_revision`.
    Compacted { compact_revision: i64 },
}

/// Where a watcher's notices go. Called on the applying thread: it must not block.
pub trait WatchSink: Send {
    /// Take `notice`; false when the receiver is gone or cannot keep up, which drops the
    /// watcher (the sink tells its receiver why, if it can).
    fn notify(&mut self, notice: WatchNotice) -> bool;
}

/// A registered watcher, for [`WatchHub::unregister`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WatcherId(u64);

/// The answer to [`WatchHub::register`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// Watching; the events from the start revision up to `revision` (the node's current
    /// one) were already handed to the sink.
    Watching { id: WatcherId, revision: i64 },
    /// The start revision is before the window: nothing was registered.
    Compacted {
        compact_revision: i64,
        revision: i64,
    },
    /// The sink refused the events of the window: nothing is registered.
    Gone { revision: i64 },
}

struct Watcher {
    id: WatcherId,
    spec: WatchSpec,
    /// First revision still to deliver.
    next: i64,
    sink: Box<dyn WatchSink>,
}

struct Hub {
    watchers: Vec<Watcher>,
    next_id: u64,
    /// The store's revision after the last published write.
    revision: i64,
    /// Every event with a revision ≥ `window_from` is in `window`, oldest first (an event's
    /// revision is its `kv.mod_revision`).
    window_from: i64,
    window: VecDeque<Event>,
    window_max: usize,
}

/// The watchers of one node and its window of recent events. Cheap to clone (shared).
#[derive(Clone)]
pub struct WatchHub {
    inner: Arc<Mutex<Hub>>,
    /// Copies of the hub's counts, kept under its lock and read without it.
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    watchers: AtomicUsize,
    window_from: AtomicI64,
}

impl std::fmt::Debug for WatchHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hub = self.lock();
        f.debug_struct("WatchHub")
            .field("watchers", &hub.watchers.len())
            .field("revision", &hub.revision)
            .field("window_from", &hub.window_from)
            .finish()
    }
}

impl WatchHub {
    /// A hub for a store at `revision`, keeping up to `window_max` recent events.
    pub fn new(revision: i64, window_max: usize) -> Self {
        let counts = Counts::default();
        counts.window_from.store(revision + 1, Ordering::Relaxed);
        WatchHub {
            counts: Arc::new(counts),
            inner: Arc::new(Mutex::new(Hub {
                watchers: Vec::new(),
                next_id: 1,
                revision,
                window_from: revision + 1,
                window: VecDeque::new(),
                window_max,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Hub> {
        self.inner.lock().expect("watch hub lock poisoned")
    }

    /// Publish the counts of `hub` for [`WatchHub::watchers`] and [`WatchHub::window_from`].
    fn count(&self, hub: &Hub) {
        self.counts
            .watchers
            .store(hub.watchers.len(), Ordering::Relaxed);
        self.counts
            .window_from
            .store(hub.window_from, Ordering::Relaxed);
    }

    /// The revision of the last write published here.
    pub fn revision(&self) -> i64 {
        self.lock().revision
    }

    /// The oldest revision a new watcher may start at. Reads without the hub's lock (for
    /// metrics); exact between two changes to the hub.
    pub fn window_from(&self) -> i64 {
        self.counts.window_from.load(Ordering::Relaxed)
    }

    /// Watchers registered now, read without the hub's lock like [`WatchHub::window_from`].
    pub fn watchers(&self) -> usize {
        self.counts.watchers.load(Ordering::Relaxed)
    }

    /// Register a watcher. Call it where writes are applied (between two applies), so that
    /// no write falls between the revision it starts from and its registration.
    pub fn register(&self, spec: WatchSpec, mut sink: Box<dyn WatchSink>) -> Registered {
        let mut hub = self.lock();
        let revision = hub.revision;
        let start = if spec.start_revision <= 0 {
            revision + 1
        } else {
            spec.start_revision
        };
        if start < hub.window_from {
            return Registered::Compacted {
                compact_revision: hub.window_from,
                revision,
            };
        }
        // The window's events from `start` on, one revision at a time.
        let mut i = hub.window.partition_point(|e| e.kv.mod_revision < start);
        while i < hub.window.len() {
            let rev = hub.window[i].kv.mod_revision;
            let end = i + hub
                .window
                .range(i..)
                .take_while(|e| e.kv.mod_revision == rev)
                .count();
            let events = spec.filter(hub.window.range(i..end));
            if !events.is_empty()
                && !sink.notify(WatchNotice::Events {
                    revision: rev,
                    events,
                })
            {
                return Registered::Gone { revision };
            }
            i = end;
        }
        let id = WatcherId(hub.next_id);
        hub.next_id += 1;
        hub.watchers.push(Watcher {
            id,
            spec,
            next: start.max(revision + 1),
            sink,
        });
        self.count(&hub);
        Registered::Watching { id, revision }
    }

    /// Remove a watcher; false if it was not registered (any more).
    pub fn unregister(&self, id: WatcherId) -> bool {
        let mut hub = self.lock();
        let before = hub.watchers.len();
        hub.watchers.retain(|w| w.id != id);
        self.count(&hub);
        hub.watchers.len() != before
    }

    /// Run `f` where writes are applied, with the current revision: a notice it hands to a
    /// sink comes after every event of that revision and before any later one.
    pub fn at_revision<R>(&self, f: impl FnOnce(i64) -> R) -> R {
        let hub = self.lock();
        f(hub.revision)
    }

    /// The applying thread: one write took the store to `revision` with `events` (none when
    /// it changed nothing), which this takes (leaving `events` empty, its capacity kept).
    pub(crate) fn publish(&self, revision: i64, events: &mut Vec<Event>) {
        let mut hub = self.lock();
        if events.is_empty() {
            debug_assert!(revision >= hub.revision, "revision went back");
            hub.revision = hub.revision.max(revision);
            return;
        }
        assert!(
            revision > hub.revision,
            "events of revision {revision} after revision {}",
            hub.revision
        );
        debug_assert!(
            events.iter().all(|e| e.kv.mod_revision == revision),
            "a write's events carry its revision"
        );
        hub.revision = revision;
        hub.watchers.retain_mut(|w| {
            if revision < w.next {
                return true;
            }
            w.next = revision + 1;
            let events = w.spec.filter(events.iter());
            events.is_empty() || w.sink.notify(WatchNotice::Events { revision, events })
        });
        if hub.window_max == 0 {
            hub.window_from = revision + 1;
            events.clear();
            self.count(&hub);
            return;
        }
        hub.window.extend(events.drain(..));
        // Whole revisions leave the window: a watcher starting inside it gets all of one.
        while hub.window.len() > hub.window_max {
            let rev = hub.window[0].kv.mod_revision;
            while hub.window.front().is_some_and(|e| e.kv.mod_revision == rev) {
                hub.window.pop_front();
            }
            hub.window_from = rev + 1;
        }
        self.count(&hub);
    }

    /// The store was replaced (a snapshot restored) at `revision`. If that moved the
    /// revision, every watcher missed what lies between: each is told so and dropped, and
    /// the window starts again.
    pub(crate) fn replaced(&self, revision: i64) {
        let mut hub = self.lock();
        if revision == hub.revision {
            return;
        }
        let compact_revision = revision + 1;
        for mut w in hub.watchers.drain(..) {
            w.sink.notify(WatchNotice::Compacted { compact_revision });
        }
        hub.window.clear();
        hub.window_from = compact_revision;
        hub.revision = revision;
        self.count(&hub);
    }
}

#[cfg(test)]
mod tests;
