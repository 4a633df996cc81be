//! etcd's Watch service on three `Server`s over loopback: every member's watchers see every
//! write in revision order with etcd's event fields; a start revision inside the window is
//! replayed and one before it is answered as compacted; cancel, progress requests, periodic
//! progress notifications, duplicate and invalid requests; a half-closed stream still
//! getting events; and a member that stops ends its streams instead of hanging.

mod common;
use common::{channel, leader, put, start_all, Ports};
use proto::etcdserverpb as pb;
use proto::etcdserverpb::kv_client::KvClient;
use proto::etcdserverpb::watch_client::WatchClient;
use proto::mvccpb;
use server::ServerConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::Streaming;

fn config(dir: &Path, i: usize, p: &Ports) -> ServerConfig {
    let mut c = common::config(dir, i, p);
    c.watch_history_events = 50;
    c.watch_progress_interval = Duration::from_millis(200);
    if i == 1 {
        c.client_api_threads = server::server::ClientApiThreads::Pool;
    }
    c
}

/// One open watch stream: requests go in, responses come out.
struct Stream {
    tx: mpsc::Sender<pb::WatchRequest>,
    rx: Streaming<pb::WatchResponse>,
}

impl Stream {
    async fn open(addr: SocketAddr) -> Stream {
        let (tx, rx) = mpsc::channel(16);
        let out =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
            );
        let rx = WatchClient::new(channel(addr).await)
            .watch(out)
            .await
            .unwrap()
            .into_inner();
        Stream { tx, rx }
    }

    async fn send(&self, r: pb::watch_request::RequestUnion) {
        self.tx
            .send(pb::WatchRequest {
                request_union: Some(r),
            })
            .await
            .unwrap();
    }

    async fn create(&self, c: pb::WatchCreateRequest) {
        self.send(pb::watch_request::RequestUnion::CreateRequest(c))
            .await;
    }

    /// The next response (bounded wait).
    async fn next(&mut self) -> pb::WatchResponse {
        tokio::time::timeout(Duration::from_secs(10), self.rx.message())
            .await
            .expect("a watch response within 10 s")
            .expect("the stream is healthy")
            .expect("the stream is open")
    }

    /// The created response of the watcher just asked for.
    async fn created(&mut self) -> pb::WatchResponse {
        let r = self.next().await;
        assert!(r.created, "expected a created response, got {r:?}");
        r
    }

    /// Events until `n` arrived (responses of other kinds are refused).
    async fn events(&mut self, n: usize) -> Vec<(i64, mvccpb::Event)> {
        let mut out = Vec::new();
        while out.len() < n {
            let r = self.next().await;
            assert!(
                !r.created && !r.canceled && !r.events.is_empty(),
                "expected events, got {r:?}"
            );
            for e in r.events {
                out.push((r.watch_id, e));
            }
        }
        assert_eq!(out.len(), n, "more events than written");
        out
    }
}

fn watch_prefix(prefix: &str) -> pb::WatchCreateRequest {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().unwrap() += 1;
    pb::WatchCreateRequest {
        key: prefix.into(),
        range_end: end,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_streams_every_write_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new(3);
    let mut servers = start_all(&p, |i| config(dir.path(), i, &p)).await;
    let l = leader(&servers).await;

    let mut streams = Vec::new();
    for addr in &p.client {
        let mut s = Stream::open(*addr).await;
        s.create(pb::WatchCreateRequest {
            prev_kv: true,
            ..watch_prefix("w/")
        })
        .await;
        assert_eq!(
            s.created().await.watch_id,
            0,
            "etcd counts watch ids from 0"
        );
        streams.push(s);
    }

    // Writes through every member; what each answered is what the watchers must see.
    let mut expect = Vec::new(); // (revision, type, key, value, prev value)
    let mut kvs = Vec::new();
    for addr in &p.client {
        kvs.push(KvClient::new(channel(*addr).await));
    }
    let outside = kvs[0]
        .put(put("x/outside", "no"))
        .await
        .unwrap()
        .into_inner();
    let mut last: std::collections::HashMap<String, String> = Default::default();
    for i in 0..30 {
        let k = format!("w/{}", i % 7);
        let v = format!("v{i}");
        let r = kvs[i % 3].put(put(&k, &v)).await.unwrap().into_inner();
        let rev = r.header.unwrap().revision;
        expect.push((rev, 0, k.clone(), v.clone(), last.insert(k, v)));
    }
    let del = kvs[l]
        .delete_range(pb::DeleteRangeRequest {
            key: "w/3".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    expect.push((
        del.header.unwrap().revision,
        1,
        "w/3".into(),
        String::new(),
        last.remove("w/3"),
    ));

    for s in &mut streams {
        let got = s.events(expect.len()).await;
        for ((watch_id, e), want) in got.iter().zip(&expect) {
            assert_eq!(*watch_id, 0);
            let kv = e.kv.as_ref().unwrap();
            let got = (
                kv.mod_revision,
                e.r#type,
                String::from_utf8(kv.key.clone()).unwrap(),
                String::from_utf8(kv.value.clone()).unwrap(),
                e.prev_kv
                    .as_ref()
                    .map(|p| String::from_utf8(p.value.clone()).unwrap()),
            );
            assert_eq!(&got, want);
            assert!(kv.mod_revision > outside.header.as_ref().unwrap().revision);
            // Versions and create revisions as etcd keeps them.
            let key = &want.2;
            let puts: Vec<i64> = expect
                .iter()
                .filter(|x| &x.2 == key && x.1 == 0 && x.0 <= want.0)
                .map(|x| x.0)
                .collect();
            if e.r#type == 0 {
                assert_eq!(kv.version, puts.len() as i64, "{key}");
                assert_eq!(kv.create_revision, puts[0], "{key}");
            } else {
                assert_eq!((kv.version, kv.create_revision), (0, 0));
                assert_eq!(e.prev_kv.as_ref().unwrap().version, puts.len() as i64);
            }
        }
    }

    for s in servers.iter_mut() {
        s.take().unwrap().stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_revisions_cancel_progress_and_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new(3);
    let mut servers = start_all(&p, |i| config(dir.path(), i, &p)).await;
    let l = leader(&servers).await;
    let f = (l + 1) % 3;
    let mut kv = KvClient::new(channel(p.client[l]).await);
    let mut revs = Vec::new();
    for i in 0..5 {
        let r = kv
            .put(put("k", &format!("{i}")))
            .await
            .unwrap()
            .into_inner();
        revs.push(r.header.unwrap().revision);
    }
    // Reads on the follower, so that it applied them too.
    let mut fkv = KvClient::new(channel(p.client[f]).await);
    fkv.range(pb::RangeRequest {
        key: "k".into(),
        ..Default::default()
    })
    .await
    .unwrap();

    let mut s = Stream::open(p.client[f]).await;
    // From the third put's revision: the window replays it and the two after it.
    s.create(pb::WatchCreateRequest {
        key: "k".into(),
        start_revision: revs[2],
        ..Default::default()
    })
    .await;
    let created = s.created().await;
    assert_eq!(created.header.unwrap().revision, revs[4]);
    let got = s.events(3).await;
    let values: Vec<_> = got
        .iter()
        .map(|(_, e)| String::from_utf8(e.kv.as_ref().unwrap().value.clone()).unwrap())
        .collect();
    assert_eq!(values, ["2", "3", "4"]);

    // A second watcher on the same stream gets the next id; a client-chosen id is kept.
    s.create(watch_prefix("k")).await;
    assert_eq!(s.created().await.watch_id, 1);
    s.create(pb::WatchCreateRequest {
        watch_id: 7,
        ..watch_prefix("k")
    })
    .await;
    assert_eq!(s.created().await.watch_id, 7);
    // The same id again: created, then canceled with etcd's reason.
    s.create(pb::WatchCreateRequest {
        watch_id: 7,
        ..watch_prefix("k")
    })
    .await;
    s.created().await;
    let dup = s.next().await;
    assert!(dup.canceled && dup.watch_id == 7, "{dup:?}");
    assert!(dup.cancel_reason.contains("duplicate watch ID"), "{dup:?}");
    // An empty key is refused the same way.
    s.create(pb::WatchCreateRequest::default()).await;
    let created = s.created().await;
    let bad = s.next().await;
    assert!(bad.canceled && bad.watch_id == created.watch_id, "{bad:?}");
    assert!(bad.cancel_reason.contains("key is not provided"), "{bad:?}");

    // Cancel watcher 1: the next write reaches watchers 0 and 7 only.
    s.send(pb::watch_request::RequestUnion::CancelRequest(
        pb::WatchCancelRequest { watch_id: 1 },
    ))
    .await;
    let c = s.next().await;
    assert!(
        c.canceled && c.watch_id == 1 && c.compact_revision == 0,
        "{c:?}"
    );
    let r = kv.put(put("k", "5")).await.unwrap().into_inner();
    let rev5 = r.header.unwrap().revision;
    let mut ids: Vec<i64> = s.events(2).await.iter().map(|(id, _)| *id).collect();
    ids.sort();
    assert_eq!(ids, [0, 7]);

    // A progress request: watch id -1, at a revision covering everything delivered.
    s.send(pb::watch_request::RequestUnion::ProgressRequest(
        pb::WatchProgressRequest {},
    ))
    .await;
    let pr = s.next().await;
    assert_eq!(pr.watch_id, -1);
    assert!(pr.events.is_empty() && !pr.created && !pr.canceled);
    assert!(pr.header.unwrap().revision >= rev5);

    // Before the window (50 events here): created, then canceled as compacted, with the
    // first revision that may be watched.
    for i in 0..60 {
        kv.put(put("filler", &format!("{i}"))).await.unwrap();
    }
    let mut s2 = Stream::open(p.client[l]).await;
    s2.create(pb::WatchCreateRequest {
        key: "k".into(),
        start_revision: revs[0],
        ..Default::default()
    })
    .await;
    s2.created().await;
    let comp = s2.next().await;
    assert!(comp.canceled, "{comp:?}");
    assert!(comp.compact_revision > revs[0], "{comp:?}");
    assert_eq!(
        comp.cancel_reason,
        "etcdserver: mvcc: required revision has been compacted"
    );
    // From the compact revision it is accepted.
    s2.create(pb::WatchCreateRequest {
        key: "k".into(),
        start_revision: comp.compact_revision,
        ..Default::default()
    })
    .await;
    s2.created().await;

    // Periodic progress (200 ms here) for a watcher that asked.
    let mut s3 = Stream::open(p.client[f]).await;
    s3.create(pb::WatchCreateRequest {
        progress_notify: true,
        ..watch_prefix("quiet/")
    })
    .await;
    let created = s3.created().await;
    let note = s3.next().await;
    assert_eq!(note.watch_id, created.watch_id);
    assert!(note.events.is_empty() && !note.canceled, "{note:?}");

    for s in servers.iter_mut() {
        s.take().unwrap().stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_closed_stream_still_gets_events_and_a_stopping_member_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new(3);
    let mut servers = start_all(&p, |i| config(dir.path(), i, &p)).await;
    leader(&servers).await;
    let mut s = Stream::open(p.client[0]).await;
    s.create(watch_prefix("a/")).await;
    s.created().await;
    // The client closes its side of the stream: like etcd, the member goes on sending.
    let Stream { tx, rx } = s;
    drop(tx);
    let mut s = Stream {
        tx: mpsc::channel(1).0,
        rx,
    };
    let mut kv = KvClient::new(channel(p.client[1]).await);
    kv.put(put("a/1", "x")).await.unwrap();
    let got = s.events(1).await;
    assert_eq!(got[0].1.kv.as_ref().unwrap().key, b"a/1");

    let stop = servers[0].take().unwrap().stop();
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("a member with an open watch stops")
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), s.rx.message())
        .await
        .expect("the stream ends");
    assert!(
        !matches!(end, Ok(Some(_))),
        "no more responses after stop: {end:?}"
    );
    for s in servers.iter_mut() {
        if let Some(s) = s.take() {
            s.stop().await.unwrap();
        }
    }
}
