//! Membership changes through etcd's `Cluster` API on real `Server`s over loopback: a
//! learner added, joined with `--initial-cluster-state existing`, caught up by snapshot and
//! promoted; unsafe requests refused with etcd's errors; the leader removed (it stops, the
//! others go on); a joined member restarted from its data directory; shrinking to one.

mod common;
use common::{leader, Ports};
use proto::etcdserverpb as pb;
use proto::etcdserverpb::cluster_client::ClusterClient;
use proto::etcdserverpb::kv_client::KvClient;
use proto::etcdserverpb::maintenance_client::MaintenanceClient;
use server::server::ClusterState;
use server::{Server, ServerConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::Code;

/// Member `i` of the cluster whose initial members are `0..n` of `p`.
fn config(dir: &Path, i: usize, n: usize, p: &Ports) -> ServerConfig {
    let mut c = common::config(dir, i, p);
    c.initial_cluster.truncate(n.max(i + 1));
    c.snapshot_entries = 20;
    c.request_timeout = Duration::from_secs(5);
    c
}

async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

fn url(p: &Ports, i: usize) -> String {
    format!("http://{}", p.peer[i])
}

async fn put(addr: SocketAddr, k: &str, v: &str) -> Result<(), tonic::Status> {
    let req = pb::PutRequest {
        key: k.into(),
        value: v.into(),
        ..Default::default()
    };
    KvClient::new(channel(addr).await)
        .put(req)
        .await
        .map(|_| ())
}

async fn get(addr: SocketAddr, k: &str) -> Option<Vec<u8>> {
    let req = pb::RangeRequest {
        key: k.into(),
        ..Default::default()
    };
    let r = KvClient::new(channel(addr).await)
        .range(req)
        .await
        .unwrap()
        .into_inner();
    r.kvs.into_iter().next().map(|kv| kv.value)
}

async fn cluster(addr: SocketAddr) -> ClusterClient<Channel> {
    ClusterClient::new(channel(addr).await)
}

async fn list(addr: SocketAddr) -> Vec<pb::Member> {
    cluster(addr)
        .await
        .member_list(pb::MemberListRequest {})
        .await
        .unwrap()
        .into_inner()
        .members
}

/// `Maintenance.Status`'s `is_learner` of the member at `addr`.
async fn is_learner(addr: SocketAddr) -> bool {
    MaintenanceClient::new(channel(addr).await)
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .is_learner
}

/// Wait (on status events, bounded) until `s` applied at least `index`.
async fn applied(s: &Server, index: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut w = s.handle().watch_status();
    while w.borrow_and_update().applied < index {
        assert!(
            tokio::time::timeout_at(deadline, w.changed()).await.is_ok(),
            "member never applied {index}: {:?}",
            s.handle().status()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_by_a_learner_promote_it_remove_the_leader_and_shrink() {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new(5);
    let mut s: Vec<Option<Server>> = Vec::new();
    for i in 0..3 {
        s.push(Some(
            Server::start(config(dir.path(), i, 3, &p)).await.unwrap(),
        ));
    }
    let l = leader(&s).await;
    let follower = (l + 1) % 3;
    for i in 0..60 {
        put(p.client[follower], &format!("k{i}"), &format!("v{i}"))
            .await
            .unwrap();
    }

    // A learner, added through a follower (forwarded to the leader).
    let added = cluster(p.client[follower])
        .await
        .member_add(pb::MemberAddRequest {
            peer_ur_ls: vec![url(&p, 3)],
            is_learner: true,
        })
        .await
        .unwrap()
        .into_inner();
    let m3 = added.member.clone().unwrap();
    assert!(m3.is_learner && m3.name.is_empty(), "{m3:?}");
    assert_eq!(added.members.len(), 4);

    // The same peer URL again, and an invalid one: refused.
    let dup = cluster(p.client[l])
        .await
        .member_add(pb::MemberAddRequest {
            peer_ur_ls: vec![url(&p, 3)],
            is_learner: true,
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::FailedPrecondition, "{dup:?}");
    assert!(
        dup.message().contains("Peer URLs already exists"),
        "{dup:?}"
    );
    let bad = cluster(p.client[l])
        .await
        .member_add(pb::MemberAddRequest {
            peer_ur_ls: vec!["not a url".into()],
            is_learner: false,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");

    // A learner that never started is behind: promoting it is refused.
    let ghost = cluster(p.client[l])
        .await
        .member_add(pb::MemberAddRequest {
            peer_ur_ls: vec![url(&p, 4)],
            is_learner: true,
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    let behind = cluster(p.client[l])
        .await
        .member_promote(pb::MemberPromoteRequest { id: ghost.id })
        .await
        .unwrap_err();
    assert_eq!(behind.code(), Code::FailedPrecondition, "{behind:?}");
    assert!(
        behind.message().contains("in sync with leader"),
        "{behind:?}"
    );
    cluster(p.client[l])
        .await
        .member_remove(pb::MemberRemoveRequest { id: ghost.id })
        .await
        .unwrap();
    assert_eq!(list(p.client[l]).await.len(), 4);

    // The learner joins and catches up (by snapshot: the log was compacted).
    let mut c3 = config(dir.path(), 3, 4, &p);
    c3.initial_cluster_state = ClusterState::Existing;
    let s3 = Server::start(c3.clone()).await.unwrap();
    assert_eq!(s3.member_id().0, m3.id, "joined under the id it was given");
    assert_eq!(s3.cluster_id(), s[l].as_ref().unwrap().cluster_id());
    let commit = s[l].as_ref().unwrap().handle().status().commit;
    applied(&s3, commit).await;
    assert!(
        s3.handle().status().snapshot_index > 0,
        "caught up by snapshot"
    );
    s.push(Some(s3));
    assert!(
        is_learner(p.client[3]).await,
        "Status says a learner is one"
    );

    let promoted = cluster(p.client[3])
        .await
        .member_promote(pb::MemberPromoteRequest { id: m3.id })
        .await
        .unwrap()
        .into_inner();
    assert!(
        promoted.members.iter().all(|m| !m.is_learner),
        "{promoted:?}"
    );
    assert!(!is_learner(p.client[3]).await, "a promoted member votes");
    let again = cluster(p.client[l])
        .await
        .member_promote(pb::MemberPromoteRequest { id: m3.id })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(get(p.client[3], "k59").await.as_deref(), Some(&b"v59"[..]));
    let named = list(p.client[l]).await;
    assert!(named.iter().any(|m| m.id == m3.id), "{named:?}");

    // Remove the leader: it answers, steps down and stops; the other three go on.
    let old = s[l].as_ref().unwrap();
    let (old_id, old_stopped) = (old.member_id(), old.stopped());
    let r = cluster(p.client[l])
        .await
        .member_remove(pb::MemberRemoveRequest { id: old_id.0 })
        .await
        .unwrap()
        .into_inner();
    assert!(r.members.iter().all(|m| m.id != old_id.0), "{r:?}");
    assert!(
        tokio::time::timeout(Duration::from_secs(10), old_stopped.cancelled())
            .await
            .is_ok(),
        "a removed leader stops"
    );
    let err = s[l].take().unwrap().stop().await.unwrap_err();
    assert!(err.to_string().contains("removed"), "{err}");
    let l2 = leader(&s).await;
    assert_ne!(l2, l);
    put(p.client[3], "after", "removal").await.unwrap();
    assert_eq!(list(p.client[l2]).await.len(), 3);
    let gone = cluster(p.client[l2])
        .await
        .member_remove(pb::MemberRemoveRequest { id: old_id.0 })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);

    // The joined member restarts from its data directory (its join file).
    s[3].take().unwrap().stop().await.unwrap();
    let s3 = Server::start(c3).await.unwrap();
    assert_eq!(s3.member_id().0, m3.id);
    s[3] = Some(s3);
    put(p.client[3], "joined", "restarted").await.unwrap();
    assert_eq!(
        get(p.client[3], "joined").await.as_deref(),
        Some(&b"restarted"[..])
    );

    // Shrink to one member, then the last voter cannot go.
    let rest: Vec<usize> = (0..4).filter(|&i| s[i].is_some()).collect();
    for &i in &rest[..2] {
        let l = leader(&s).await;
        let id = s[i].as_ref().unwrap().member_id().0;
        cluster(p.client[l])
            .await
            .member_remove(pb::MemberRemoveRequest { id })
            .await
            .unwrap();
        let stopped = s[i].as_ref().unwrap().stopped();
        assert!(
            tokio::time::timeout(Duration::from_secs(10), stopped.cancelled())
                .await
                .is_ok(),
            "member {i} stops once removed"
        );
        s[i].take();
    }
    let last = rest[2];
    let l = leader(&s).await;
    assert_eq!(l, last);
    put(p.client[last], "alone", "yes").await.unwrap();
    let id = s[last].as_ref().unwrap().member_id().0;
    let refused = cluster(p.client[last])
        .await
        .member_remove(pb::MemberRemoveRequest { id })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("last voting member"),
        "the refusal names the reason, not a quorum count: {refused:?}"
    );
    assert_eq!(get(p.client[last], "k0").await.as_deref(), Some(&b"v0"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_without_being_added_is_refused_with_the_command_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new(2);
    let s0 = Server::start(config(dir.path(), 0, 1, &p)).await.unwrap();
    let mut c1 = config(dir.path(), 1, 2, &p);
    c1.initial_cluster_state = ClusterState::Existing;
    let err = match Server::start(c1).await {
        Ok(_) => panic!("joined without MemberAdd"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("add it first"), "{err}");
    assert!(
        !dir.path().join("n1").join("wal").exists(),
        "no data directory"
    );
    s0.stop().await.unwrap();
}
