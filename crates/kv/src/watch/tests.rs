use super::*;
use crate::machine::{KvConfig, KvStateMachine};
use crate::types::*;
use crate::{Command, Request};
use bytes::Bytes;
use raft::LogIndex;

/// A sink that keeps what it is told, and refuses once `accept` runs out.
#[derive(Clone, Default)]
struct Collect {
    got: Arc<Mutex<Vec<WatchNotice>>>,
    accept: Option<usize>,
}

impl Collect {
    fn taking(n: usize) -> Self {
        Collect {
            accept: Some(n),
            ..Collect::default()
        }
    }

    fn notices(&self) -> Vec<WatchNotice> {
        self.got.lock().unwrap().clone()
    }

    /// (revision, kind, key, value) of every event received.
    fn events(&self) -> Vec<(i64, EventKind, String, String)> {
        let mut out = Vec::new();
        for n in self.notices() {
            if let WatchNotice::Events { revision, events } = n {
                for e in events {
                    assert_eq!(e.kv.mod_revision, revision, "an event carries its revision");
                    out.push((
                        revision,
                        e.kind,
                        String::from_utf8(e.kv.key.to_vec()).unwrap(),
                        String::from_utf8(e.kv.value.to_vec()).unwrap(),
                    ));
                }
            }
        }
        out
    }
}

impl WatchSink for Collect {
    fn notify(&mut self, notice: WatchNotice) -> bool {
        if let Some(n) = self.accept.as_mut() {
            if *n == 0 {
                return false;
            }
            *n -= 1;
        }
        self.got.lock().unwrap().push(notice);
        true
    }
}

fn spec(key: &str, end: &str, start: i64) -> WatchSpec {
    WatchSpec {
        range: KeyRange::new(&Bytes::from(key.to_string()), &Bytes::from(end.to_string())).unwrap(),
        start_revision: start,
        no_put: false,
        no_delete: false,
        prev_kv: false,
    }
}

struct Node {
    sm: KvStateMachine,
    hub: WatchHub,
    index: u64,
}

impl Node {
    fn new(window: usize) -> Self {
        let sm = KvStateMachine::new(KvConfig::default());
        let hub = sm.watch_hub(window);
        Node { sm, hub, index: 0 }
    }

    fn apply(&mut self, req: Request) -> Bytes {
        self.index += 1;
        let data = Command::new(req).encode();
        self.sm.apply_bytes(LogIndex(self.index), &data)
    }

    fn put(&mut self, k: &str, v: &str) {
        self.apply(Request::Put(PutRequest::new(k.to_string(), v.to_string())));
    }

    fn delete(&mut self, k: &str, end: &str) {
        let mut d = DeleteRangeRequest::key(k.to_string());
        d.range_end = Bytes::from(end.to_string());
        self.apply(Request::DeleteRange(d));
    }

    fn watch(&self, spec: WatchSpec, sink: &Collect) -> Registered {
        self.hub.register(spec, Box::new(sink.clone()))
    }
}

use EventKind::{Delete, Put};

fn ev(rev: i64, kind: EventKind, k: &str, v: &str) -> (i64, EventKind, String, String) {
    (rev, kind, k.to_string(), v.to_string())
}

#[test]
fn a_watcher_gets_the_writes_in_its_range_from_now_on() {
    let mut n = Node::new(100);
    n.put("a", "0"); // revision 2, before the watch
    let sink = Collect::default();
    let Registered::Watching { revision, .. } = n.watch(spec("a", "c", 0), &sink) else {
        panic!("not watching");
    };
    assert_eq!(revision, 2);
    n.put("a", "1"); // 3
    n.put("c", "x"); // 4: outside [a, c)
    n.put("b", "2"); // 5
    n.delete("a", "b"); // 6
    n.delete("zz", ""); // deletes nothing: no revision, no event
    assert_eq!(
        sink.events(),
        vec![
            ev(3, Put, "a", "1"),
            ev(5, Put, "b", "2"),
            ev(6, Delete, "a", "")
        ]
    );
}

#[test]
fn events_carry_etcd_metadata_and_prev_kv_only_when_asked() {
    let mut n = Node::new(100);
    let (plain, with_prev) = (Collect::default(), Collect::default());
    n.watch(spec("k", "", 0), &plain);
    n.watch(
        WatchSpec {
            prev_kv: true,
            ..spec("k", "", 0)
        },
        &with_prev,
    );
    n.put("k", "v1"); // 2: created
    n.put("k", "v2"); // 3
    n.delete("k", ""); // 4
    let events = |c: &Collect| -> Vec<Event> {
        c.notices()
            .into_iter()
            .flat_map(|n| match n {
                WatchNotice::Events { events, .. } => events,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let p = events(&plain);
    assert_eq!(p.len(), 3);
    assert_eq!(
        (
            p[0].kv.create_revision,
            p[0].kv.mod_revision,
            p[0].kv.version
        ),
        (2, 2, 1)
    );
    assert_eq!(
        (
            p[1].kv.create_revision,
            p[1].kv.mod_revision,
            p[1].kv.version
        ),
        (2, 3, 2)
    );
    assert_eq!(p[2].kind, Delete);
    assert_eq!(
        (
            p[2].kv.create_revision,
            p[2].kv.mod_revision,
            p[2].kv.version
        ),
        (0, 4, 0)
    );
    assert!(p.iter().all(|e| e.prev_kv.is_none()));
    let w = events(&with_prev);
    assert_eq!(w[0].prev_kv, None, "a created key had no previous value");
    assert_eq!(w[1].prev_kv.as_ref().unwrap().value, "v1");
    assert_eq!(w[2].prev_kv.as_ref().unwrap().value, "v2");
    assert_eq!(w[2].prev_kv.as_ref().unwrap().mod_revision, 3);
}

#[test]
fn filters_leave_out_puts_or_deletes() {
    let mut n = Node::new(100);
    let (no_put, no_delete) = (Collect::default(), Collect::default());
    n.watch(
        WatchSpec {
            no_put: true,
            ..spec("k", "", 0)
        },
        &no_put,
    );
    n.watch(
        WatchSpec {
            no_delete: true,
            ..spec("k", "", 0)
        },
        &no_delete,
    );
    n.put("k", "1");
    n.delete("k", "");
    assert_eq!(no_put.events(), vec![ev(3, Delete, "k", "")]);
    assert_eq!(no_delete.events(), vec![ev(2, Put, "k", "1")]);
}

#[test]
fn a_txn_is_one_revision_with_all_its_events_in_order() {
    let mut n = Node::new(100);
    n.put("b", "old");
    let sink = Collect::default();
    n.watch(spec("\0", "\0", 0), &sink);
    n.apply(Request::Txn(TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::Put(PutRequest::new("a", "1")),
            RequestOp::DeleteRange(DeleteRangeRequest::key("b")),
            RequestOp::Put(PutRequest::new("c", "3")),
        ],
        failure: vec![],
    }));
    assert_eq!(sink.notices().len(), 1, "one notice per revision");
    assert_eq!(
        sink.events(),
        vec![
            ev(3, Put, "a", "1"),
            ev(3, Delete, "b", ""),
            ev(3, Put, "c", "3")
        ]
    );
}

#[test]
fn a_start_inside_the_window_replays_then_goes_live() {
    let mut n = Node::new(100);
    for i in 0..5 {
        n.put("k", &i.to_string()); // revisions 2..=6
    }
    let sink = Collect::default();
    assert!(matches!(
        n.watch(spec("k", "", 4), &sink),
        Registered::Watching { revision: 6, .. }
    ));
    n.put("k", "5"); // 7
    assert_eq!(
        sink.events(),
        vec![
            ev(4, Put, "k", "2"),
            ev(5, Put, "k", "3"),
            ev(6, Put, "k", "4"),
            ev(7, Put, "k", "5")
        ]
    );
}

#[test]
fn a_start_before_the_window_is_a_compaction() {
    let mut n = Node::new(3);
    for i in 0..6 {
        n.put(&format!("k{i}"), "v"); // revisions 2..=7; the window keeps 5, 6, 7
    }
    assert_eq!(n.hub.window_from(), 5);
    let sink = Collect::default();
    assert_eq!(
        n.watch(spec("k", "", 4), &sink),
        Registered::Compacted {
            compact_revision: 5,
            revision: 7
        }
    );
    assert_eq!(n.hub.watchers(), 0);
    assert!(sink.notices().is_empty());
    // From the compact revision on, it works.
    assert!(matches!(
        n.watch(spec("\0", "\0", 5), &sink),
        Registered::Watching { .. }
    ));
    assert_eq!(sink.events().len(), 3);
}

#[test]
fn without_a_window_only_the_future_can_be_watched() {
    let mut n = Node::new(0);
    n.put("k", "1"); // 2
    let sink = Collect::default();
    assert!(matches!(
        n.watch(spec("k", "", 2), &sink),
        Registered::Compacted {
            compact_revision: 3,
            ..
        }
    ));
    assert!(matches!(
        n.watch(spec("k", "", 3), &sink),
        Registered::Watching { .. }
    ));
    n.put("k", "2");
    assert_eq!(sink.events(), vec![ev(3, Put, "k", "2")]);
}

#[test]
fn a_future_start_skips_the_revisions_before_it() {
    let mut n = Node::new(100);
    let sink = Collect::default();
    n.watch(spec("k", "", 4), &sink);
    n.put("k", "a"); // 2
    n.put("k", "b"); // 3
    n.put("k", "c"); // 4
    assert_eq!(sink.events(), vec![ev(4, Put, "k", "c")]);
}

#[test]
fn a_sink_that_refuses_is_dropped_and_unregister_removes() {
    let mut n = Node::new(100);
    let slow = Collect::taking(1);
    let fine = Collect::default();
    n.watch(spec("k", "", 0), &slow);
    let Registered::Watching { id, .. } = n.watch(spec("k", "", 0), &fine) else {
        panic!()
    };
    n.put("k", "1");
    n.put("k", "2");
    assert_eq!(n.hub.watchers(), 1, "the refusing sink is gone");
    assert_eq!(slow.events().len(), 1);
    assert!(n.hub.unregister(id));
    assert!(!n.hub.unregister(id));
    n.put("k", "3");
    assert_eq!(fine.events().len(), 2);
}

#[test]
fn a_restored_snapshot_that_moves_the_revision_compacts_every_watcher() {
    let mut source = KvStateMachine::new(KvConfig::default());
    for i in 1..=3 {
        let data = Command::new(Request::Put(PutRequest::new("k", i.to_string()))).encode();
        source.apply_bytes(LogIndex(i), &data);
    }
    let mut n = Node::new(100);
    let sink = Collect::default();
    n.watch(spec("k", "", 0), &sink);
    use replica::StateMachine;
    n.sm.restore(&source.snapshot());
    assert_eq!(
        sink.notices(),
        vec![WatchNotice::Compacted {
            compact_revision: 5
        }]
    );
    assert_eq!(n.hub.watchers(), 0);
    assert_eq!(n.hub.revision(), 4);
    // Recording goes on in the restored store.
    let sink = Collect::default();
    n.watch(spec("k", "", 0), &sink);
    n.index = 3;
    n.put("k", "after");
    assert_eq!(sink.events(), vec![ev(5, Put, "k", "after")]);
}

#[test]
fn watching_changes_no_result_and_no_snapshot() {
    let mut plain = KvStateMachine::new(KvConfig::default());
    let mut watched = Node::new(2);
    let sink = Collect::default();
    watched.watch(spec("\0", "\0", 0), &sink);
    for i in 1..=20u64 {
        let req = if i % 3 == 0 {
            Request::DeleteRange(DeleteRangeRequest::key(format!("k{}", i % 5)))
        } else {
            let mut p = PutRequest::new(format!("k{}", i % 5), i.to_string());
            p.prev_kv = i % 2 == 0;
            Request::Put(p)
        };
        let data = Command::new(req.clone()).encode();
        let a = plain.apply_bytes(LogIndex(i), &data);
        assert_eq!(watched.apply(req), a, "entry {i}: the same reply");
    }
    assert_eq!(plain, watched.sm);
    use replica::StateMachine;
    assert_eq!(plain.snapshot(), watched.sm.snapshot());
}
