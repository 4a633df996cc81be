//! The generated tonic code end to end, in one process over real loopback sockets: a test-only
//! `KV` server (Range answers from a fixed key, everything else is a default stub) and the
//! generated client. The `#[ignore]`d test points Debian's `etcdctl` (package `etcd-client`,
//! 3.4) at the same server, proving real etcd clients reach our handlers; run it with
//! `cargo test -p proto --test grpc -- --ignored` when `etcdctl` is installed.

use std::net::SocketAddr;

use proto::etcdserverpb::auth_client::AuthClient;
use proto::etcdserverpb::auth_server::{Auth, AuthServer};
use proto::etcdserverpb::kv_client::KvClient;
use proto::etcdserverpb::kv_server::{Kv, KvServer};
use proto::etcdserverpb::{
    AuthUserListRequest, PutRequest, RangeRequest, RangeResponse, ResponseHeader,
};
use proto::mvccpb::KeyValue;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Request, Response, Status};

/// A store holding exactly `foo = bar`; only Range is implemented.
struct OneKey;

#[tonic::async_trait]
impl Kv for OneKey {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let req = req.into_inner();
        let kvs = if req.key == b"foo" {
            vec![KeyValue {
                key: b"foo".to_vec(),
                value: if req.keys_only {
                    Vec::new()
                } else {
                    b"bar".to_vec()
                },
                create_revision: 2,
                mod_revision: 2,
                version: 1,
                lease: 0,
            }]
        } else {
            Vec::new()
        };
        let count = kvs.len() as i64;
        Ok(Response::new(RangeResponse {
            header: Some(ResponseHeader {
                cluster_id: 1,
                member_id: 1,
                revision: 2,
                raft_term: 1,
            }),
            kvs,
            more: false,
            count,
        }))
    }
}

/// No authentication: every Auth method keeps its default (Unimplemented) body.
struct NoAuth;

#[tonic::async_trait]
impl Auth for NoAuth {}

/// A running test server; dropping it stops the server.
struct TestServer {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start() -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KvServer::new(OneKey))
            .add_service(AuthServer::new(NoAuth))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            }),
    );
    TestServer { addr, _stop: stop }
}

#[tokio::test]
async fn generated_client_reaches_range_handler() {
    let server = start().await;
    let mut kv = KvClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();

    let reply = kv
        .range(RangeRequest {
            key: b"foo".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.header.unwrap().revision, 2);
    assert_eq!(reply.count, 1);
    assert_eq!(reply.kvs[0].key, b"foo");
    assert_eq!(reply.kvs[0].value, b"bar");

    let missing = kv
        .range(RangeRequest {
            key: b"nope".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(missing.kvs.is_empty());
}

#[tokio::test]
async fn default_stubs_answer_unimplemented() {
    let server = start().await;
    let endpoint = format!("http://{}", server.addr);
    let mut kv = KvClient::connect(endpoint.clone()).await.unwrap();
    let err = kv
        .put(PutRequest {
            key: b"k".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);

    let mut auth = AuthClient::connect(endpoint).await.unwrap();
    let err = auth.user_list(AuthUserListRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
}

/// Runs `etcdctl` 3.4 (API v3) against `addr` with `args`; returns (success, stdout, stderr).
fn etcdctl(addr: SocketAddr, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={addr}"))
        .args(["--dial-timeout=3s", "--command-timeout=5s"])
        .args(args)
        .output()
        .expect("etcdctl is installed (Debian package etcd-client)");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs etcdctl (Debian package etcd-client)"]
async fn etcdctl_get_reaches_range_handler() {
    let server = start().await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (ok, out, err) = etcdctl(addr, &["get", "foo"]);
        assert!(ok, "etcdctl get failed: {err}");
        assert_eq!(out, "foo\nbar\n");

        let (ok, out, err) = etcdctl(addr, &["get", "foo", "--keys-only"]);
        assert!(ok, "etcdctl get --keys-only failed: {err}");
        assert_eq!(out.trim_end(), "foo");

        let (ok, out, _) = etcdctl(addr, &["get", "nope"]);
        assert!(ok);
        assert_eq!(out, "");

        let (ok, _, err) = etcdctl(addr, &["put", "k", "v"]);
        assert!(!ok);
        assert!(err.contains("code = Unimplemented"), "{err}");

        let (ok, _, err) = etcdctl(addr, &["user", "list"]);
        assert!(!ok);
        assert!(err.contains("code = Unimplemented"), "{err}");
    })
    .await
    .unwrap();
}
