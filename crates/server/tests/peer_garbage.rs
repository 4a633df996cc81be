//! Hostile or confused peers: a connection to a member's peer port with a wrong magic, a
//! wrong cluster id, a wrong receiver, garbage after a good hello, an oversized frame, or a
//! well-formed message of a stale term. Each is refused (the connection closed, or the message
//! answered by the core's term rules), and the cluster keeps serving writes throughout.

mod common;
use common::free_addrs;
use proto::etcdserverpb as pb;
use proto::etcdserverpb::kv_client::KvClient;
use raft::{AppendRequest, EntryId, LogIndex, Message, MessageBody, NodeId, Role, Term};
use server::{Server, ServerConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The peer hello of `crates/server/src/transport.rs`, with no advertised attributes.
fn hello(magic: &[u8; 4], cluster: u64, from: u64, to: u64) -> Vec<u8> {
    let mut b = magic.to_vec();
    b.push(2);
    b.extend_from_slice(&cluster.to_le_bytes());
    b.extend_from_slice(&from.to_le_bytes());
    b.extend_from_slice(&to.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut b = (payload.len() as u32).to_le_bytes().to_vec();
    b.extend_from_slice(payload);
    b
}

/// Send `bytes` and report whether the member closed the connection (bounded wait).
async fn closed_after(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false, // a peer connection never answers on the same socket
        Err(_) => false,
    }
}

async fn put(kv: &mut KvClient<tonic::transport::Channel>, k: &str) {
    kv.put(pb::PutRequest {
        key: k.into(),
        value: b"v".to_vec(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("the cluster stopped serving after {k}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_peers_is_refused_and_the_cluster_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let peer = free_addrs(3);
    let client = free_addrs(3);
    let mut servers = Vec::new();
    for (i, &listen) in client.iter().enumerate() {
        let mut c = ServerConfig::single(
            &format!("n{i}"),
            dir.path().join(format!("n{i}")),
            listen,
            "x",
        );
        c.initial_cluster = (0..3)
            .map(|j| (format!("n{j}"), format!("http://{}", peer[j])))
            .collect();
        servers.push(Server::start(c).await.unwrap());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let leader = loop {
        if let Some(i) = servers
            .iter()
            .position(|s| s.handle().status().role == Role::Leader)
        {
            break i;
        }
        let mut w = servers[0].handle().watch_status();
        assert!(
            tokio::time::timeout_at(deadline, w.changed()).await.is_ok(),
            "no leader"
        );
    };
    let target = (leader + 1) % 3;
    let t = &servers[target];
    let (cluster, me) = (t.cluster_id(), t.member_id().0);
    let other = servers[(leader + 2) % 3].member_id().0;
    let addr = t.peer_addr();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", client[target]))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut kv = KvClient::new(channel);
    put(&mut kv, "before").await;

    assert!(
        closed_after(addr, &hello(b"XXXX", cluster, other, me)).await,
        "wrong magic"
    );
    put(&mut kv, "after-magic").await;
    assert!(
        closed_after(addr, &hello(b"RKVP", cluster ^ 1, other, me)).await,
        "wrong cluster id"
    );
    put(&mut kv, "after-cluster").await;
    assert!(
        closed_after(addr, &hello(b"RKVP", cluster, other, me ^ 1)).await,
        "wrong receiver"
    );
    put(&mut kv, "after-receiver").await;

    let mut bytes = hello(b"RKVP", cluster, other, me);
    bytes.extend_from_slice(&frame(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]));
    assert!(closed_after(addr, &bytes).await, "undecodable frame");
    put(&mut kv, "after-garbage").await;

    let mut bytes = hello(b"RKVP", cluster, other, me);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(closed_after(addr, &bytes).await, "oversized frame");
    put(&mut kv, "after-oversized").await;

    // A well-formed append of a stale term, claiming to come from the other follower: the
    // core's term rules answer it (§5.1); it changes nothing.
    let stale = Message {
        from: NodeId(other),
        to: NodeId(me),
        term: Term(0),
        body: MessageBody::Append(AppendRequest {
            prev: EntryId::new(Term(0), LogIndex(0)),
            entries: vec![],
            commit: LogIndex(0),
            read_seq: 0,
        }),
    };
    let mut bytes = hello(b"RKVP", cluster, other, me);
    bytes.extend_from_slice(&frame(&server::wire::encode(&stale)));
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&bytes).await.unwrap();
    put(&mut kv, "after-stale-term").await;
    let st = servers[target].handle().status();
    assert!(st.term >= 1 && st.leader.is_some(), "{st:?}");

    let r = kv
        .range(pb::RangeRequest {
            key: b"a".to_vec(),
            range_end: b"c".to_vec(),
            count_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.count, 7, "every write between the attacks applied");
    for s in servers {
        s.stop().await.unwrap();
    }
}
