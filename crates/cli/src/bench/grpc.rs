//! The load tool's unary gRPC calls, on an HTTP/2 connection of the `h2` crate.
//!
//! Owns: one HTTP/2 connection (TCP with nodelay, the handshake, its connection task on the
//! caller's runtime), the gRPC framing of a unary call — request headers, the 5-byte
//! length prefix, the protobuf body in one DATA frame, the response's message and its
//! `grpc-status` (in the trailers, or in the headers of a trailers-only answer) — and
//! giving received bytes back to HTTP/2 flow control.
//!
//! Why not tonic's `Channel`: it spends more CPU per call than the servers under test
//! spend per member (a buffer task hand-off, a spawned body task per request, boxed bodies,
//! header maps built per call). A load tool that costs more than the system it measures
//! shares the machine's cores with it and compresses every ratio. This client speaks the
//! same wire protocol — any gRPC server answers it as it answers tonic or grpc-go — with
//! one stream and two frames per call.
//!
//! Must never: send a compressed message (it sends no `grpc-encoding`), accept a response
//! without a `grpc-status` of 0 as a success, or keep received bytes out of the flow-control
//! window (the connection would stall once 64 KiB were unreleased).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use std::time::Duration;
use tonic::{Code, Status};

/// Largest response message accepted (etcd answers up to its request limit, 1.5 MiB by
/// default, plus framing).
const RESPONSE_BYTES_MAX: usize = 16 << 20;
/// HTTP/2 receive windows: large, so a stream's response never waits for a window update.
const STREAM_WINDOW_BYTES: u32 = 1 << 20;
const CONNECTION_WINDOW_BYTES: u32 = 16 << 20;

/// The etcd v3 KV methods the bench calls.
#[derive(Clone, Copy, Debug)]
pub enum Rpc {
    Put,
    Range,
    Txn,
}

impl Rpc {
    fn path(self) -> &'static str {
        match self {
            Rpc::Put => "/etcdserverpb.KV/Put",
            Rpc::Range => "/etcdserverpb.KV/Range",
            Rpc::Txn => "/etcdserverpb.KV/Txn",
        }
    }
}

/// One HTTP/2 connection to one endpoint; cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct Conn {
    send: h2::client::SendRequest<Bytes>,
    /// The URI of each [`Rpc`], by its index.
    uris: [Uri; 3],
    /// The gRPC request headers (same for every call).
    headers: HeaderMap,
}

impl Conn {
    /// Connect to `url` (`http://host:port`) and spawn the connection's task on the current
    /// runtime.
    pub async fn connect(url: &str, timeout: Duration) -> anyhow::Result<Conn> {
        let authority = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("endpoint {url}: expected http://host:port"))?;
        let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(authority))
            .await
            .map_err(|_| anyhow::anyhow!("no connection in {timeout:?}"))??;
        tcp.set_nodelay(true)?;
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            .handshake::<_, Bytes>(tcp)
            .await?;
        tokio::spawn(async move {
            // Ends when the peer closes or every handle is dropped; calls in flight then
            // fail with the connection's error.
            let _ = connection.await;
        });
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/grpc"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        headers.insert(
            "user-agent",
            HeaderValue::from_static(concat!("raftkv-bench/", env!("CARGO_PKG_VERSION"))),
        );
        let uri = |rpc: Rpc| -> anyhow::Result<Uri> { Ok(format!("{url}{}", rpc.path()).parse()?) };
        Ok(Conn {
            send,
            uris: [uri(Rpc::Put)?, uri(Rpc::Range)?, uri(Rpc::Txn)?],
            headers,
        })
    }

    /// One unary call of `rpc` with `request`: the decoded response or the call's status.
    pub async fn unary<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        rpc: Rpc,
        request: &Req,
    ) -> Result<Resp, Status> {
        let body = frame(request);
        let mut req = Request::new(());
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.uris[rpc as usize].clone();
        *req.headers_mut() = self.headers.clone();
        let mut send = self.send.clone().ready().await.map_err(h2_status)?;
        let (response, mut stream) = send.send_request(req, false).map_err(h2_status)?;
        stream.send_data(body, true).map_err(h2_status)?;
        let response = response.await.map_err(h2_status)?;
        let (head, mut body) = response.into_parts();
        if head.status != http::StatusCode::OK {
            return Err(Status::unknown(format!("HTTP status {}", head.status)));
        }
        if let Some(status) = Status::from_header_map(&head.headers) {
            // A trailers-only answer: the status is in the headers, no message follows.
            return Err(status_or_empty(status));
        }
        let mut message = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(h2_status)?;
            let _ = body.flow_control().release_capacity(chunk.len());
            if message.len() + chunk.len() > RESPONSE_BYTES_MAX {
                return Err(Status::resource_exhausted("response larger than 16 MiB"));
            }
            message.put(chunk);
        }
        let trailers = body.trailers().await.map_err(h2_status)?;
        match trailers.as_ref().and_then(Status::from_header_map) {
            Some(status) if status.code() != Code::Ok => return Err(status),
            Some(_) => {}
            None => return Err(Status::internal("response without grpc-status")),
        }
        unframe(message.freeze())
    }
}

/// A message as gRPC frames it: not compressed (0), its length (u32, big-endian), the bytes.
fn frame(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).expect("request messages are far below 4 GiB"));
    message
        .encode(&mut buf)
        .expect("the buffer has the message's encoded length");
    buf.freeze()
}

/// The one message of a unary response.
fn unframe<Resp: prost::Message + Default>(mut body: Bytes) -> Result<Resp, Status> {
    if body.len() < 5 {
        return Err(Status::internal(format!(
            "response of {} bytes: no gRPC message",
            body.len()
        )));
    }
    let compressed = body.get_u8();
    let len = body.get_u32() as usize;
    if compressed != 0 {
        return Err(Status::internal("compressed response (none was asked for)"));
    }
    if len != body.len() {
        return Err(Status::internal(format!(
            "response message of {len} bytes in a body of {}",
            body.len()
        )));
    }
    Resp::decode(body).map_err(|e| Status::internal(format!("decoding the response: {e}")))
}

/// A trailers-only answer that says OK carries no message: a protocol error for a unary
/// call.
fn status_or_empty(status: Status) -> Status {
    if status.code() == Code::Ok {
        Status::internal("OK without a response message")
    } else {
        status
    }
}

/// An HTTP/2 failure as the gRPC status a gRPC client reports for it.
fn h2_status(e: h2::Error) -> Status {
    let code = if e.is_io() || e.is_go_away() {
        Code::Unavailable
    } else {
        match e.reason() {
            Some(h2::Reason::REFUSED_STREAM) => Code::Unavailable,
            Some(h2::Reason::CANCEL) => Code::Cancelled,
            Some(h2::Reason::ENHANCE_YOUR_CALM) => Code::ResourceExhausted,
            _ => Code::Internal,
        }
    };
    Status::new(code, format!("HTTP/2: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::etcdserverpb::{PutRequest, RangeResponse};

    #[test]
    fn a_message_is_framed_with_flag_and_big_endian_length() {
        let put = PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ..Default::default()
        };
        let f = frame(&put);
        assert_eq!(f[0], 0);
        assert_eq!(
            u32::from_be_bytes([f[1], f[2], f[3], f[4]]) as usize,
            f.len() - 5
        );
        assert_eq!(f.len() - 5, prost::Message::encoded_len(&put));
    }

    #[test]
    fn unframe_decodes_one_message_and_refuses_bad_frames() {
        let resp = RangeResponse {
            count: 7,
            ..Default::default()
        };
        let got: RangeResponse = unframe(frame(&resp)).unwrap();
        assert_eq!(got.count, 7);
        let short = Bytes::from_static(&[0, 0, 0]);
        assert_eq!(
            unframe::<RangeResponse>(short).unwrap_err().code(),
            Code::Internal
        );
        let mut long = BytesMut::from(&frame(&resp)[..]);
        long.put_u8(1);
        assert!(unframe::<RangeResponse>(long.freeze()).is_err());
        let mut compressed = BytesMut::from(&frame(&resp)[..]);
        compressed[0] = 1;
        assert!(unframe::<RangeResponse>(compressed.freeze()).is_err());
    }

    /// A KV service that answers Range with a count, Put with an error status (and
    /// a message tonic sends in a trailers-only answer), and Txn with a large response.
    struct Fake;

    #[tonic::async_trait]
    impl proto::etcdserverpb::kv_server::Kv for Fake {
        async fn range(
            &self,
            req: tonic::Request<proto::etcdserverpb::RangeRequest>,
        ) -> Result<tonic::Response<RangeResponse>, Status> {
            Ok(tonic::Response::new(RangeResponse {
                count: req.into_inner().key.len() as i64,
                ..Default::default()
            }))
        }
        async fn put(
            &self,
            _: tonic::Request<PutRequest>,
        ) -> Result<tonic::Response<proto::etcdserverpb::PutResponse>, Status> {
            Err(Status::resource_exhausted("etcdserver: too many requests"))
        }
        async fn delete_range(
            &self,
            _: tonic::Request<proto::etcdserverpb::DeleteRangeRequest>,
        ) -> Result<tonic::Response<proto::etcdserverpb::DeleteRangeResponse>, Status> {
            Err(Status::unimplemented("no"))
        }
        async fn txn(
            &self,
            _: tonic::Request<proto::etcdserverpb::TxnRequest>,
        ) -> Result<tonic::Response<proto::etcdserverpb::TxnResponse>, Status> {
            // 3 MiB of values: more than the default HTTP/2 windows, so flow control must
            // be given back for the call to finish.
            let kvs = (0..3)
                .map(|i| proto::mvccpb::KeyValue {
                    key: vec![i],
                    value: vec![7; 1 << 20],
                    ..Default::default()
                })
                .collect();
            let range = proto::etcdserverpb::RangeResponse {
                kvs,
                ..Default::default()
            };
            Ok(tonic::Response::new(proto::etcdserverpb::TxnResponse {
                succeeded: true,
                responses: vec![proto::etcdserverpb::ResponseOp {
                    response: Some(proto::etcdserverpb::response_op::Response::ResponseRange(
                        range,
                    )),
                }],
                ..Default::default()
            }))
        }
        async fn compact(
            &self,
            _: tonic::Request<proto::etcdserverpb::CompactionRequest>,
        ) -> Result<tonic::Response<proto::etcdserverpb::CompactionResponse>, Status> {
            Err(Status::unimplemented("no"))
        }
    }

    #[tokio::test]
    async fn calls_a_tonic_server_and_reports_its_statuses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(proto::etcdserverpb::kv_server::KvServer::new(Fake))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let conn = Conn::connect(&format!("http://{addr}"), Duration::from_secs(5))
            .await
            .unwrap();
        for n in 0..3 {
            let req = proto::etcdserverpb::RangeRequest {
                key: vec![b'k'; n],
                ..Default::default()
            };
            let got: RangeResponse = conn.unary(Rpc::Range, &req).await.unwrap();
            assert_eq!(got.count, n as i64);
        }
        let err = conn
            .unary::<_, proto::etcdserverpb::PutResponse>(Rpc::Put, &PutRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(err.message(), "etcdserver: too many requests");
        for _ in 0..4 {
            let txn: proto::etcdserverpb::TxnResponse = conn
                .unary(Rpc::Txn, &proto::etcdserverpb::TxnRequest::default())
                .await
                .unwrap();
            assert!(txn.succeeded);
        }
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_fails() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert!(
            Conn::connect(&format!("http://{addr}"), Duration::from_secs(5))
                .await
                .is_err()
        );
    }
}
