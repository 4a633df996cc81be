//! Three `Server`s over real loopback sockets, driven by etcd's gRPC API: writes through a
//! follower (forwarded to the leader), linearizable and serializable reads, txns, exactly-once
//! session retries, MemberList and Status, bad input answered with errors while the cluster
//! keeps serving, leader loss, and a restart of every member keeping every acknowledged write.

mod common;
use common::{channel, leader, put, start_all, Ports};
use proto::etcdserverpb as pb;
use proto::etcdserverpb::cluster_client::ClusterClient;
use proto::etcdserverpb::kv_client::KvClient;
use proto::etcdserverpb::maintenance_client::MaintenanceClient;
use proto::raftkv_v1 as ext;
use proto::raftkv_v1::raft_kv_client::RaftKvClient;
use server::{Server, ServerConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

fn config(dir: &Path, i: usize, p: &Ports) -> ServerConfig {
    let mut c = common::config(dir, i, p);
    c.request_timeout = Duration::from_secs(5);
    c.snapshot_entries = 100;
    // Both ways of serving the client API, side by side in every cluster: the second
    // member serves it on the process's worker pool, the others on their driver thread.
    if i == 1 {
        c.client_api_threads = server::server::ClientApiThreads::Pool;
    }
    c
}

async fn start(dir: &Path, p: &Ports, i: usize) -> Server {
    Server::start(config(dir, i, p)).await.unwrap()
}

fn get(k: &str) -> pb::RangeRequest {
    pb::RangeRequest {
        key: k.into(),
        ..Default::default()
    }
}

/// Wait until every member has advertised its client URL to `member` (peers dial each other
/// once the nodes start; bounded).
async fn all_advertised(c: &mut ClusterClient<Channel>, n: usize) -> pb::MemberListResponse {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = c
            .member_list(pb::MemberListRequest {})
            .await
            .unwrap()
            .into_inner();
        if r.members.len() == n && r.members.iter().all(|m| !m.client_ur_ls.is_empty()) {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "members never advertised: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_api_on_three_members() {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new(3);
    let mut servers = start_all(&p, |i| config(dir.path(), i, &p)).await;
    let l = leader(&servers).await;
    let f1 = (l + 1) % 3;
    let f2 = (l + 2) % 3;
    let cluster_id = servers[l].as_ref().unwrap().cluster_id();

    // Every member knows every member, with client URLs.
    let mut cl = ClusterClient::new(channel(p.client[f1]).await);
    let members = all_advertised(&mut cl, 3).await;
    assert_eq!(members.header.unwrap().cluster_id, cluster_id);
    for (i, addr) in p.client.iter().enumerate() {
        let m = members
            .members
            .iter()
            .find(|m| m.name == format!("n{i}"))
            .unwrap();
        assert_eq!(m.client_ur_ls, vec![format!("http://{addr}")]);
        assert_eq!(m.peer_ur_ls, vec![format!("http://{}", p.peer[i])]);
    }

    // A write through a follower is forwarded to the leader; a linearizable read on the other
    // follower sees it at once.
    let mut kv1 = KvClient::new(channel(p.client[f1]).await);
    let mut kv2 = KvClient::new(channel(p.client[f2]).await);
    let r = kv1
        .put(put("greeting", "hello"))
        .await
        .unwrap()
        .into_inner();
    let h = r.header.unwrap();
    assert_eq!(h.cluster_id, cluster_id);
    assert_eq!(h.member_id, servers[f1].as_ref().unwrap().member_id().0);
    assert!(h.raft_term >= 1);
    assert_eq!(h.revision, 2);
    let got = kv2.range(get("greeting")).await.unwrap().into_inner();
    assert_eq!(got.kvs.len(), 1);
    assert_eq!(got.kvs[0].value, b"hello");
    assert_eq!(got.kvs[0].create_revision, 2);
    assert_eq!(got.header.unwrap().revision, 2);

    // Prefix ranges, prev_kv, counts and deletes.
    for i in 0..10 {
        kv2.put(put(&format!("p/{i}"), &i.to_string()))
            .await
            .unwrap();
    }
    let r = kv1
        .range(pb::RangeRequest {
            key: b"p/".to_vec(),
            range_end: b"p0".to_vec(),
            limit: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.kvs.len(), r.more, r.count), (3, true, 10));
    let r = kv1
        .put(pb::PutRequest {
            prev_kv: true,
            ..put("greeting", "hi")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.prev_kv.unwrap().value, b"hello");
    let d = kv2
        .delete_range(pb::DeleteRangeRequest {
            key: b"p/".to_vec(),
            range_end: b"p0".to_vec(),
            prev_kv: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((d.deleted, d.prev_kvs.len()), (10, 10));

    // A compare-and-set txn: the first succeeds, the repeat fails and runs its failure branch.
    use pb::compare::{CompareResult, CompareTarget, TargetUnion};
    let cas = pb::TxnRequest {
        compare: vec![pb::Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Value as i32,
            key: b"greeting".to_vec(),
            range_end: vec![],
            target_union: Some(TargetUnion::Value(b"hi".to_vec())),
        }],
        success: vec![pb::RequestOp {
            request: Some(pb::request_op::Request::RequestPut(put(
                "greeting", "swapped",
            ))),
        }],
        failure: vec![pb::RequestOp {
            request: Some(pb::request_op::Request::RequestRange(get("greeting"))),
        }],
    };
    assert!(kv1.txn(cas.clone()).await.unwrap().into_inner().succeeded);
    let t = kv2.txn(cas).await.unwrap().into_inner();
    assert!(!t.succeeded);
    match &t.responses[0].response {
        Some(pb::response_op::Response::ResponseRange(r)) => assert_eq!(r.kvs[0].value, b"swapped"),
        other => panic!("unexpected {other:?}"),
    }
    // A txn nested deeper than raftkv's bound is refused as a bad request, not proposed.
    let mut deep = pb::TxnRequest::default();
    for _ in 0..kv::TXN_DEPTH_MAX {
        deep = pb::TxnRequest {
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestTxn(deep)),
            }],
            ..Default::default()
        };
    }
    let e = kv1.txn(deep).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("nested deeper"), "{e:?}");

    // Exactly-once: a retried session write gets the same reply and is not applied again.
    let mut ext1 = RaftKvClient::new(channel(p.client[f1]).await);
    let sp = ext::SessionPutRequest {
        session: Some(ext::Session {
            client_id: 77,
            seq: 1,
        }),
        request: Some(put("once", "1")),
    };
    let first = ext1.session_put(sp.clone()).await.unwrap().into_inner();
    let again = ext1.session_put(sp).await.unwrap().into_inner();
    assert_eq!(
        first.header.unwrap().revision,
        again.header.unwrap().revision
    );
    let append = |seq: u64| ext::AppendRequest {
        key: b"log".to_vec(),
        suffix: b"ab".to_vec(),
        session: Some(ext::Session { client_id: 77, seq }),
        prev_kv: false,
    };
    let a = ext1.append(append(2)).await.unwrap().into_inner();
    assert_eq!(a.value_bytes, 2);
    let stale = ext1.append(append(1)).await.unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition);
    let log = kv2.range(get("log")).await.unwrap().into_inner();
    assert_eq!(log.kvs[0].value, b"ab", "the stale retry was not applied");

    // Bad input: errors, and the cluster keeps serving.
    let big = vec![b'x'; 2 << 20];
    let e = kv1
        .put(pb::PutRequest {
            key: b"big".to_vec(),
            value: big,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.code(),
            Code::InvalidArgument | Code::ResourceExhausted | Code::OutOfRange
        ),
        "{e:?}"
    );
    let e = kv1
        .put(pb::PutRequest {
            key: b"big".to_vec(),
            value: vec![b'x'; 1600 * 1024],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("etcdserver: request is too large"),
        "{e:?}"
    );
    let e = kv1.put(put("", "v")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.message(), "etcdserver: key is not provided");
    let e = kv1
        .range(pb::RangeRequest {
            key: b"a".to_vec(),
            sort_target: 99,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = kv1
        .put(pb::PutRequest {
            lease: 5,
            ..put("k", "v")
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = put_with_unknown_field(p.client[f1]).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message()
            .contains("unknown field 99 in etcdserverpb.PutRequest"),
        "{e:?}"
    );
    kv1.put(put("after-bad-input", "ok")).await.unwrap();

    // Status from every member agrees on the leader.
    let leader_id = servers[l].as_ref().unwrap().member_id().0;
    for addr in &p.client {
        let mut m = MaintenanceClient::new(channel(*addr).await);
        let s = m.status(pb::StatusRequest {}).await.unwrap().into_inner();
        assert_eq!(s.leader, leader_id);
        assert!(s.raft_index >= s.raft_applied_index.min(s.raft_index));
        assert!(s.version.starts_with("3.4."));
    }

    // Serializable reads are local; after a linearizable read on the same member they see
    // the latest value.
    kv2.range(get("after-bad-input")).await.unwrap();
    let s = kv2
        .range(pb::RangeRequest {
            serializable: true,
            ..get("after-bad-input")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.kvs[0].value, b"ok");

    // The leader stops: the others elect a new one, and a write through either succeeds.
    servers[l].take().unwrap().stop().await.unwrap();
    let r = kv1
        .put(put("after-failover", "yes"))
        .await
        .unwrap()
        .into_inner();
    let rev = r.header.unwrap().revision;
    let got = kv2.range(get("after-failover")).await.unwrap().into_inner();
    assert_eq!(got.kvs[0].mod_revision, rev);

    // Everyone restarts from disk: every acknowledged write is there.
    for s in servers.iter_mut() {
        if let Some(s) = s.take() {
            s.stop().await.unwrap();
        }
    }
    let servers = start_all(&p, |i| config(dir.path(), i, &p)).await;
    leader(&servers).await;
    let mut kv = KvClient::new(channel(p.client[l]).await);
    for (k, v) in [
        ("greeting", "swapped"),
        ("once", "1"),
        ("log", "ab"),
        ("after-bad-input", "ok"),
        ("after-failover", "yes"),
    ] {
        let got = kv.range(get(k)).await.unwrap().into_inner();
        assert_eq!(got.kvs.len(), 1, "{k} lost");
        assert_eq!(got.kvs[0].value, v.as_bytes(), "{k}");
    }
    for s in servers.into_iter().flatten() {
        s.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_writes_and_reads_fail_by_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new(3);
    // Only one of three members runs: it can never lead.
    let mut cfg = config(dir.path(), 0, &p);
    cfg.request_timeout = Duration::from_millis(500);
    let s = Server::start(cfg).await.unwrap();
    let mut kv = KvClient::new(channel(p.client[0]).await);
    let t0 = std::time::Instant::now();
    let e = kv.put(put("k", "v")).await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    let e = kv.range(get("k")).await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "answered by the deadline, not hung"
    );
    // A serializable read is still served locally.
    let r = kv
        .range(pb::RangeRequest {
            serializable: true,
            ..get("k")
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.kvs.is_empty());
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_member_catches_up_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new(3);
    let mut servers = start_all(&p, |i| config(dir.path(), i, &p)).await;
    let l = leader(&servers).await;
    let lag = (l + 1) % 3;
    servers[lag].take().unwrap().stop().await.unwrap();

    // 300 writes with snapshots every 100 entries: the leader compacts past what the stopped
    // member has, so only a snapshot can bring it back.
    let mut kv = KvClient::new(channel(p.client[l]).await);
    for i in 0..300 {
        kv.put(put(&format!("k{i:03}"), &i.to_string()))
            .await
            .unwrap();
    }
    let leader_status = servers[l].as_ref().unwrap().handle().status();
    assert!(leader_status.snapshot_index >= 200, "{leader_status:?}");

    servers[lag] = Some(start(dir.path(), &p, lag).await);
    let h = servers[lag].as_ref().unwrap().handle().clone();
    let mut w = h.watch_status();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w.borrow_and_update().applied < leader_status.commit {
        assert!(
            tokio::time::timeout_at(deadline, w.changed()).await.is_ok(),
            "the lagging member did not catch up: {:?}",
            h.status()
        );
    }
    let st = h.status();
    assert!(
        st.snapshot_index >= 200,
        "caught up through an installed snapshot: {st:?}"
    );
    // Linearizable: the leader's published status may trail its last answered put by one
    // loop turn, so `commit` above need not cover the 300th write yet; ReadIndex does.
    let mut lkv = KvClient::new(channel(p.client[lag]).await);
    let r = lkv
        .range(pb::RangeRequest {
            key: b"k".to_vec(),
            range_end: b"l".to_vec(),
            serializable: false,
            count_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.count, 300, "every key is on the caught-up member");
    for s in servers.into_iter().flatten() {
        s.stop().await.unwrap();
    }
}

/// A PutRequest with a field etcd's API does not have (as a newer or buggy client may send).
#[derive(Clone, PartialEq, prost::Message)]
struct PutWithExtra {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(uint64, tag = "99")]
    extra: u64,
}

async fn put_with_unknown_field(addr: SocketAddr) -> Result<pb::PutResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel(addr).await);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<PutWithExtra, pb::PutResponse>::default();
    let path = http::uri::PathAndQuery::from_static("/etcdserverpb.KV/Put");
    let req = tonic::Request::new(PutWithExtra {
        key: b"k".to_vec(),
        extra: 7,
    });
    grpc.unary(req, path, codec).await.map(|r| r.into_inner())
}
