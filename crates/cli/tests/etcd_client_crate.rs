//! The Rust `etcd-client` crate (crates.io), unmodified, against a `raftkv dev` cluster: what
//! a Rust program written for etcd does — put with prev_kv, get by prefix, delete, a
//! compare-and-swap txn, a watch (replayed from a past revision, then live, progress,
//! cancel), member list and status — plus a write that survives a SIGKILLed leader.

mod common;
use common::DevCluster;
use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_client_crate_works_unmodified() {
    let c = DevCluster::start(1479, 3);
    let mut client = Client::connect(&c.endpoints, None).await.unwrap();

    let r = client.put("crate/a", "1", None).await.unwrap();
    let rev = r.header().unwrap().revision();
    assert!(rev >= 2);
    let r = client
        .put("crate/a", "2", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(r.prev_key().unwrap().value(), b"1");
    client.put("crate/b", "3", None).await.unwrap();

    let got = client
        .get("crate/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    let kvs: Vec<(&str, &str)> = got
        .kvs()
        .iter()
        .map(|kv| (kv.key_str().unwrap(), kv.value_str().unwrap()))
        .collect();
    assert_eq!(kvs, [("crate/a", "2"), ("crate/b", "3")]);
    assert_eq!(got.kvs()[0].version(), 2);
    assert_eq!(got.kvs()[0].create_revision(), rev);

    let txn = Txn::new()
        .when([Compare::value("crate/a", CompareOp::Equal, "2")])
        .and_then([TxnOp::put("crate/a", "3", None)])
        .or_else([TxnOp::get("crate/a", None)]);
    assert!(client.txn(txn.clone()).await.unwrap().succeeded());
    assert!(!client.txn(txn).await.unwrap().succeeded());

    let d = client.delete("crate/b", None).await.unwrap();
    assert_eq!(d.deleted(), 1);

    // Watch a prefix from a past revision (the member's window replays it), then live; a
    // progress request; cancel.
    let mut watch = client
        .watch(
            "crate/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(rev)
                    .with_prev_key(),
            ),
        )
        .await
        .unwrap();
    let created = watch.message().await.unwrap().unwrap();
    assert!(created.created());
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let r = watch.message().await.unwrap().unwrap();
        for e in r.events() {
            let kv = e.kv().unwrap();
            seen.push((
                e.event_type(),
                kv.key_str().unwrap().to_string(),
                kv.mod_revision(),
            ));
        }
    }
    // put a=1, put a=2, put b=3, txn a=3, delete b.
    let kinds: Vec<_> = seen.iter().map(|(t, k, _)| (*t, k.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (EventType::Put, "crate/a"),
            (EventType::Put, "crate/a"),
            (EventType::Put, "crate/b"),
            (EventType::Put, "crate/a"),
            (EventType::Delete, "crate/b"),
        ]
    );
    assert_eq!(seen[0].2, rev);
    assert!(
        seen.windows(2).all(|w| w[0].2 < w[1].2),
        "in revision order: {seen:?}"
    );
    client.put("crate/c", "live", None).await.unwrap();
    let r = watch.message().await.unwrap().unwrap();
    assert_eq!(r.events()[0].kv().unwrap().value(), b"live");
    assert!(
        r.events()[0].prev_kv().is_none(),
        "a new key has no previous value"
    );
    watch.request_progress().await.unwrap();
    let p = watch.message().await.unwrap().unwrap();
    assert!(p.events().is_empty() && p.watch_id() == -1, "{p:?}");
    watch.cancel(created.watch_id()).await.unwrap();
    let c2 = watch.message().await.unwrap().unwrap();
    assert!(c2.canceled());

    let members = client.member_list().await.unwrap();
    assert_eq!(members.members().len(), 3);
    for m in members.members() {
        assert!(c.names.iter().any(|n| n == m.name()), "{}", m.name());
        assert_eq!(m.client_urls().len(), 1);
    }
    let status = client.status().await.unwrap();
    assert_ne!(status.leader(), 0);
    assert!(status.raft_term() >= 1);

    // Kill the leader; a client on the other members keeps writing.
    let leader = status.leader();
    let leader_idx = members
        .members()
        .iter()
        .find(|m| m.id() == leader)
        .map(|m| c.names.iter().position(|n| n == m.name()).unwrap())
        .unwrap();
    c.kill(leader_idx);
    let rest: Vec<String> = (0..3)
        .filter(|&i| i != leader_idx)
        .map(|i| c.endpoints[i].clone())
        .collect();
    let mut client = Client::connect(&rest, None).await.unwrap();
    // A write that a follower was forwarding to the killed leader has an unknown outcome and
    // is answered UNAVAILABLE "leader changed" (raftkv never retries a session-less write
    // that may have applied); a client retries it, as with etcd, until a new leader serves.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match client.put("crate/after-kill", "ok", None).await {
            Ok(_) => break,
            Err(etcd_client::Error::GRpcStatus(s))
                if s.code() == tonic::Code::Unavailable && std::time::Instant::now() < deadline => {
            }
            Err(e) => panic!("write after the leader's kill: {e:?}"),
        }
    }
    let got = client.get("crate/a", None).await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"3");
}
