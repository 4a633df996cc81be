//! Strict requests: a unary gRPC request whose protobuf carries a field this server's API
//! does not define is refused with INVALID_ARGUMENT naming the field, instead of being
//! silently half-understood (protobuf's default is to drop unknown fields, so a client
//! expecting a newer etcd's behaviour would get the old one without noticing).
//!
//! A tower layer around the whole gRPC server: for methods of the services raftkv
//! implements, it collects the (bounded) request body, walks the protobuf wire format
//! against the method's input descriptor (from `proto::FILE_DESCRIPTOR_SET`), recursing into
//! nested messages, and either forwards the bytes untouched or answers the error.
//!
//! Owns: which methods are checked and the wire walk. Must never: decode values (prost does
//! that), buffer a streaming method's body, or refuse bytes prost would accept for any
//! reason other than an unknown field number (malformed bytes are left to prost's error).

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use prost_reflect::{DescriptorPool, Kind, MessageDescriptor};
use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::Status;

/// Nesting depth beyond which the walk stops looking (prost's own recursion limit is 100).
const DEPTH_MAX: u32 = 64;

/// Method path → input message, for every unary method of the services raftkv serves.
#[derive(Clone, Debug)]
pub struct Schema {
    inputs: Arc<HashMap<String, MessageDescriptor>>,
}

impl Schema {
    /// Unary methods of `services` (full protobuf service names).
    pub fn new(services: &[&str]) -> Schema {
        let pool = DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET)
            .expect("the compiled descriptor set decodes");
        let mut inputs = HashMap::new();
        for name in services {
            let svc = pool
                .get_service_by_name(name)
                .unwrap_or_else(|| panic!("service {name} is in the descriptor set"));
            for m in svc.methods() {
                if !m.is_client_streaming() && !m.is_server_streaming() {
                    inputs.insert(format!("/{}/{}", svc.full_name(), m.name()), m.input());
                }
            }
        }
        Schema {
            inputs: Arc::new(inputs),
        }
    }

    /// The first unknown field in `msg` (an encoded `desc`), as a readable error.
    pub fn check(desc: &MessageDescriptor, msg: &[u8]) -> Result<(), String> {
        walk(desc, msg, 0).map(|_| ())
    }
}

fn varint(b: &mut &[u8]) -> Option<u64> {
    prost::encoding::decode_varint(b).ok()
}

/// `Ok(false)`: malformed (left to prost); `Err`: an unknown field.
fn walk(desc: &MessageDescriptor, mut b: &[u8], depth: u32) -> Result<bool, String> {
    if depth > DEPTH_MAX {
        return Ok(true);
    }
    while !b.is_empty() {
        let Some(key) = varint(&mut b) else {
            return Ok(false);
        };
        let (number, wire) = ((key >> 3) as u32, key & 7);
        let field = desc.get_field(number);
        if field.is_none() {
            return Err(format!(
                "raftkv: unknown field {number} in {} (this server speaks etcd 3.4's API; \
                 the field is not part of it)",
                desc.full_name()
            ));
        }
        match wire {
            0 => {
                if varint(&mut b).is_none() {
                    return Ok(false);
                }
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if b.len() < n {
                    return Ok(false);
                }
                b.advance(n);
            }
            2 => {
                let Some(len) = varint(&mut b) else {
                    return Ok(false);
                };
                let Ok(len) = usize::try_from(len) else {
                    return Ok(false);
                };
                if b.len() < len {
                    return Ok(false);
                }
                let (payload, rest) = b.split_at(len);
                if let Some(Kind::Message(inner)) = field.map(|f| f.kind()) {
                    if !walk(&inner, payload, depth + 1)? {
                        return Ok(false);
                    }
                }
                b = rest;
            }
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// The layer: wraps the gRPC server's routes.
#[derive(Clone, Debug)]
pub struct StrictLayer {
    schema: Schema,
    body_bytes_max: usize,
}

impl StrictLayer {
    pub fn new(schema: Schema, body_bytes_max: usize) -> Self {
        StrictLayer {
            schema,
            body_bytes_max,
        }
    }
}

impl<S> tower::Layer<S> for StrictLayer {
    type Service = Strict<S>;
    fn layer(&self, inner: S) -> Strict<S> {
        Strict {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Strict<S> {
    inner: S,
    layer: StrictLayer,
}

fn refuse(status: Status) -> http::Response<Body> {
    status.into_http()
}

/// Check one collected unary body: gRPC frames of `[compressed u8][len u32 BE][message]`.
fn check_body(desc: &MessageDescriptor, body: &[u8]) -> Result<(), Status> {
    let mut b = body;
    while b.len() >= 5 {
        let compressed = b[0] != 0;
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        if compressed || b.len() < 5 + len {
            return Ok(()); // compressed or malformed: tonic answers it
        }
        Schema::check(desc, &b[5..5 + len]).map_err(Status::invalid_argument)?;
        b = &b[5 + len..];
    }
    Ok(())
}

impl<S> tower::Service<http::Request<Body>> for Strict<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let Some(desc) = self.layer.schema.inputs.get(req.uri().path()).cloned() else {
            return Box::pin(self.inner.call(req));
        };
        // The service that was polled ready serves this call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.layer.body_bytes_max;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let limited = http_body_util::Limited::new(body, limit);
            let bytes: Bytes = match limited.collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) => {
                    let too_large = e
                        .downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some();
                    return Ok(refuse(if too_large {
                        Status::invalid_argument(format!(
                            "{} (over {limit} bytes)",
                            crate::api::TOO_LARGE
                        ))
                    } else {
                        Status::cancelled(format!("reading the request failed: {e}"))
                    }));
                }
            };
            if let Err(s) = check_body(&desc, &bytes) {
                return Ok(refuse(s));
            }
            let req = http::Request::from_parts(parts, Body::new(http_body_util::Full::new(bytes)));
            inner.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use proto::etcdserverpb as pb;

    fn schema() -> Schema {
        Schema::new(&["etcdserverpb.KV", "raftkv.v1.RaftKv"])
    }

    fn input(s: &Schema, path: &str) -> MessageDescriptor {
        s.inputs.get(path).unwrap().clone()
    }

    #[test]
    fn known_messages_pass_including_nested_txns() {
        let s = schema();
        let put = pb::PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            prev_kv: true,
            ..Default::default()
        };
        assert!(Schema::check(&input(&s, "/etcdserverpb.KV/Put"), &put.encode_to_vec()).is_ok());
        let txn = pb::TxnRequest {
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestTxn(pb::TxnRequest {
                    success: vec![pb::RequestOp {
                        request: Some(pb::request_op::Request::RequestPut(put)),
                    }],
                    ..Default::default()
                })),
            }],
            ..Default::default()
        };
        assert!(Schema::check(&input(&s, "/etcdserverpb.KV/Txn"), &txn.encode_to_vec()).is_ok());
    }

    #[test]
    fn an_unknown_field_is_named_at_any_depth() {
        let s = schema();
        let mut put = pb::PutRequest {
            key: b"k".to_vec(),
            ..Default::default()
        }
        .encode_to_vec();
        // Field 99, varint 1.
        prost::encoding::encode_key(99, prost::encoding::WireType::Varint, &mut put);
        prost::encoding::encode_varint(1, &mut put);
        let e = Schema::check(&input(&s, "/etcdserverpb.KV/Put"), &put).unwrap_err();
        assert!(
            e.contains("unknown field 99 in etcdserverpb.PutRequest"),
            "{e}"
        );

        // The same PutRequest inside a txn op.
        let mut op = Vec::new();
        prost::encoding::encode_key(2, prost::encoding::WireType::LengthDelimited, &mut op);
        prost::encoding::encode_varint(put.len() as u64, &mut op);
        op.extend_from_slice(&put);
        let mut txn = Vec::new();
        prost::encoding::encode_key(2, prost::encoding::WireType::LengthDelimited, &mut txn);
        prost::encoding::encode_varint(op.len() as u64, &mut txn);
        txn.extend_from_slice(&op);
        let e = Schema::check(&input(&s, "/etcdserverpb.KV/Txn"), &txn).unwrap_err();
        assert!(e.contains("etcdserverpb.PutRequest"), "{e}");
    }

    #[test]
    fn malformed_bytes_are_left_to_prost() {
        let s = schema();
        let d = input(&s, "/etcdserverpb.KV/Put");
        for bad in [&[0x0a, 0x05, b'k'][..], &[0xff][..], &[0x0b][..]] {
            assert!(Schema::check(&d, bad).is_ok());
        }
    }

    #[test]
    fn framed_bodies_are_checked_frame_by_frame() {
        let s = schema();
        let d = input(&s, "/etcdserverpb.KV/Range");
        let msg = pb::RangeRequest {
            key: b"a".to_vec(),
            ..Default::default()
        }
        .encode_to_vec();
        let mut body = vec![0u8];
        body.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        body.extend_from_slice(&msg);
        assert!(check_body(&d, &body).is_ok());
        let mut bad = msg.clone();
        prost::encoding::encode_key(50, prost::encoding::WireType::Varint, &mut bad);
        prost::encoding::encode_varint(0, &mut bad);
        let mut body = vec![0u8];
        body.extend_from_slice(&(bad.len() as u32).to_be_bytes());
        body.extend_from_slice(&bad);
        assert_eq!(
            check_body(&d, &body).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
