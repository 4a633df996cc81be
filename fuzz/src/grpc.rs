//! Oracle of the `client_grpc_decode` target: a client request as the server receives it.
//!
//! The first byte picks the method — etcd `KV` Range, Put, DeleteRange, Txn or raftkv's
//! Append, SessionPut, SessionDeleteRange, SessionTxn — and the rest is its protobuf message.
//! The request then takes the server's path: the unknown-field check of `server::strict`
//! (a refusal ends it, as it ends the call), prost's decode, `server::convert` into the `kv`
//! request, the [`Command`] the services propose, its log entry bytes, and the reply of a
//! state machine converted back into the etcd response. Nothing on the way may panic, and:
//! - a decoded message survives prost encode → decode unchanged, and its encoding passes the
//!   unknown-field check (prost writes only fields the schema has);
//! - a command's entry decodes back to the command, except a txn nested deeper than
//!   [`kv::TXN_DEPTH_MAX`], which the entry decoder refuses (`DecodeError::TooDeep`);
//! - the reply decodes, and answers a request with a response of the same kind (unless it is
//!   a session's remembered reply to a repeated seq).

use kv::{Command, DecodeError, KvError, Request, Response, TXN_DEPTH_MAX};
use prost::Message;
use prost_reflect::DescriptorPool;
use proto::etcdserverpb as pb;
use proto::raftkv_v1 as ext;
use raft::LogIndex;
use server::convert::{self, Header};
use server::strict::Schema;
use std::fmt::Debug;
use std::sync::OnceLock;

/// The methods the first byte picks from, by protobuf input message.
pub const METHODS: [&str; 8] = [
    "etcdserverpb.RangeRequest",
    "etcdserverpb.PutRequest",
    "etcdserverpb.DeleteRangeRequest",
    "etcdserverpb.TxnRequest",
    "raftkv.v1.AppendRequest",
    "raftkv.v1.SessionPutRequest",
    "raftkv.v1.SessionDeleteRangeRequest",
    "raftkv.v1.SessionTxnRequest",
];

pub fn check(data: &[u8]) {
    let Some((&method, body)) = data.split_first() else {
        return;
    };
    match usize::from(method) % METHODS.len() {
        0 => {
            if let Some(r) = decoded::<pb::RangeRequest>(0, body) {
                range(r);
            }
        }
        1 => {
            if let Some(r) = decoded::<pb::PutRequest>(1, body) {
                put(r, None);
            }
        }
        2 => {
            if let Some(r) = decoded::<pb::DeleteRangeRequest>(2, body) {
                delete(r, None);
            }
        }
        3 => {
            if let Some(r) = decoded::<pb::TxnRequest>(3, body) {
                txn(r, None);
            }
        }
        4 => {
            if let Some(r) = decoded::<ext::AppendRequest>(4, body) {
                append(r);
            }
        }
        5 => {
            if let Some(ext::SessionPutRequest {
                request: Some(r),
                session,
            }) = decoded(5, body)
            {
                put(r, session);
            }
        }
        6 => {
            if let Some(ext::SessionDeleteRangeRequest {
                request: Some(r),
                session,
            }) = decoded(6, body)
            {
                delete(r, session);
            }
        }
        _ => {
            if let Some(ext::SessionTxnRequest {
                request: Some(r),
                session,
            }) = decoded(7, body)
            {
                txn(r, session);
            }
        }
    }
}

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).expect("the descriptor set decodes")
    })
}

/// The message of method `m` in `body`, if the strict check and prost both take it.
fn decoded<M: Message + Default + PartialEq + Debug>(m: usize, body: &[u8]) -> Option<M> {
    let desc = pool()
        .get_message_by_name(METHODS[m])
        .expect("every method's input is in the descriptor set");
    Schema::check(&desc, body).ok()?;
    let msg = M::decode(body).ok()?;
    let again = msg.encode_to_vec();
    assert_eq!(
        M::decode(&again[..]).as_ref().ok(),
        Some(&msg),
        "prost encode → decode changed the message"
    );
    assert_eq!(
        Schema::check(&desc, &again),
        Ok(()),
        "prost's encoding of {msg:?} has an unknown field"
    );
    Some(msg)
}

fn range(r: pb::RangeRequest) {
    let Ok(r) = convert::range_request(r) else {
        return;
    };
    // Served from local state (serializable, or after ReadIndex)...
    if let Ok(got) = crate::command::populated().read(&r) {
        header().range(got);
    }
    // ...or, forwarded, through the log.
    propose(Command::new(Request::Range(r)));
}

fn put(r: pb::PutRequest, s: Option<ext::Session>) {
    if let Ok(r) = convert::put_request(r) {
        propose(command(Request::Put(r), s));
    }
}

fn delete(r: pb::DeleteRangeRequest, s: Option<ext::Session>) {
    propose(command(Request::DeleteRange(convert::delete_request(r)), s));
}

fn txn(r: pb::TxnRequest, s: Option<ext::Session>) {
    if let Ok(r) = convert::txn_request(r) {
        propose(command(Request::Txn(r), s));
    }
}

fn append(r: ext::AppendRequest) {
    if r.prev_kv {
        return; // refused by the service
    }
    let a = kv::AppendRequest {
        key: r.key.into(),
        suffix: r.suffix.into(),
    };
    propose(command(Request::Append(a), r.session));
}

/// The command `services::write` builds.
fn command(request: Request, s: Option<ext::Session>) -> Command {
    match s {
        Some(s) if s.client_id != 0 => Command::with_session(request, s.client_id, s.seq),
        _ => Command::new(request),
    }
}

fn header() -> Header {
    Header {
        cluster_id: 1,
        member_id: 2,
        raft_term: 3,
    }
}

fn txn_depth(t: &kv::TxnRequest) -> u32 {
    let inner = t
        .success
        .iter()
        .chain(&t.failure)
        .filter_map(|op| match op {
            kv::RequestOp::Txn(t) => Some(txn_depth(t)),
            _ => None,
        });
    1 + inner.max().unwrap_or(0)
}

/// Encode `cmd` as the log entry, decode it back, apply it and convert the reply.
fn propose(cmd: Command) {
    let entry = cmd.encode();
    let too_deep = matches!(&cmd.request, Request::Txn(t) if txn_depth(t) > TXN_DEPTH_MAX);
    match Command::decode(&entry) {
        Ok(back) => assert_eq!(back, cmd, "the log entry decodes to another command"),
        Err(DecodeError::TooDeep { .. }) if too_deep => {}
        Err(e) => panic!("the log entry of {cmd:?} does not decode: {e}"),
    }
    let mut sm = crate::command::populated();
    // A write that repeats its session's last seq gets the remembered reply, of whatever
    // request that was (the services answer a kind mismatch with INTERNAL).
    let repeat = cmd.request.is_write()
        && cmd.session.is_some_and(|s| {
            sm.sessions()
                .get(s.client_id)
                .is_some_and(|last| last.last_seq == s.seq)
        });
    let index = LogIndex(sm.applied_index().0 + 1);
    let reply = sm.apply_bytes(index, &entry);
    let h = header();
    match kv::decode_result(&reply).expect("a reply decodes") {
        Err(KvError::Decode(_)) if too_deep => {}
        Err(e) => drop(convert::kv_error(e)),
        Ok(_) if repeat => {}
        Ok(resp) => match (&cmd.request, resp) {
            (Request::Range(_), Response::Range(r)) => drop(h.range(r)),
            (Request::Put(_), Response::Put(r)) => drop(h.put(r)),
            (Request::DeleteRange(_), Response::DeleteRange(r)) => drop(h.delete(r)),
            (Request::Txn(_), Response::Txn(r)) => drop(h.txn(r)),
            (Request::Append(_), Response::Append(_)) => {}
            (req, resp) => panic!("{req:?} answered with {resp:?}"),
        },
    }
}

/// Valid inputs to start mutating from: one request per method.
pub fn seeds() -> Vec<Vec<u8>> {
    use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
    use pb::request_op::Request as Op;
    let put = pb::PutRequest {
        key: b"a".to_vec(),
        value: b"v".to_vec(),
        prev_kv: true,
        ..Default::default()
    };
    let range = pb::RangeRequest {
        key: b"a".to_vec(),
        range_end: b"z".to_vec(),
        limit: 2,
        ..Default::default()
    };
    let delete = pb::DeleteRangeRequest {
        key: b"b".to_vec(),
        range_end: vec![0],
        prev_kv: true,
    };
    let txn = pb::TxnRequest {
        compare: vec![pb::Compare {
            result: R::Equal as i32,
            target: T::Value as i32,
            key: b"a".to_vec(),
            range_end: vec![],
            target_union: Some(U::Value(b"1".to_vec())),
        }],
        success: vec![
            pb::RequestOp {
                request: Some(Op::RequestPut(put.clone())),
            },
            pb::RequestOp {
                request: Some(Op::RequestTxn(pb::TxnRequest {
                    failure: vec![pb::RequestOp {
                        request: Some(Op::RequestRange(range.clone())),
                    }],
                    ..Default::default()
                })),
            },
        ],
        failure: vec![pb::RequestOp {
            request: Some(Op::RequestDeleteRange(delete.clone())),
        }],
    };
    let session = Some(ext::Session {
        client_id: 1,
        seq: 3,
    });
    let bodies = [
        range.encode_to_vec(),
        put.encode_to_vec(),
        delete.encode_to_vec(),
        txn.encode_to_vec(),
        ext::AppendRequest {
            key: b"log".to_vec(),
            suffix: b"line;".to_vec(),
            session,
            ..Default::default()
        }
        .encode_to_vec(),
        ext::SessionPutRequest {
            request: Some(put),
            session,
        }
        .encode_to_vec(),
        ext::SessionDeleteRangeRequest {
            request: Some(delete),
            session,
        }
        .encode_to_vec(),
        ext::SessionTxnRequest {
            request: Some(txn),
            session,
        }
        .encode_to_vec(),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(m, body)| {
            let mut b = vec![m as u8];
            b.extend(body);
            b
        })
        .collect()
}
