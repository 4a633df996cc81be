//! Round trips: every message kind we build survives encode → decode unchanged, including
//! nested oneofs (transactions inside transactions), the raftkv session wrappers and the
//! forwarded commands of the peer package.

use prost::Message;
use proto::etcdserverpb::{
    compare, request_op, response_op, Compare, Member, MemberListResponse, PutRequest,
    RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp, StatusResponse, TxnRequest,
    TxnResponse,
};
use proto::mvccpb::KeyValue;
use proto::peer::{ForwardRequest, ForwardResponse};
use proto::raftkv_v1::{AppendRequest, AppendResponse, Session, SessionTxnRequest};

fn roundtrip<M: Message + Default + PartialEq + std::fmt::Debug>(msg: &M) {
    let bytes = msg.encode_to_vec();
    assert_eq!(bytes.len(), msg.encoded_len());
    let back = M::decode(bytes.as_slice()).expect("decodes what it encoded");
    assert_eq!(&back, msg);
}

fn header() -> Option<ResponseHeader> {
    Some(ResponseHeader {
        cluster_id: 0xC1,
        member_id: 0xA1,
        revision: 42,
        raft_term: 7,
    })
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.into(),
        create_revision: 3,
        mod_revision: 9,
        version: 2,
        lease: 0,
    }
}

#[test]
fn range_request_and_response_roundtrip() {
    roundtrip(&RangeRequest {
        key: b"a".to_vec(),
        range_end: b"b".to_vec(),
        limit: 10,
        revision: 5,
        sort_order: proto::etcdserverpb::range_request::SortOrder::Descend as i32,
        sort_target: proto::etcdserverpb::range_request::SortTarget::Mod as i32,
        serializable: true,
        keys_only: true,
        count_only: false,
        min_mod_revision: 1,
        max_mod_revision: 2,
        min_create_revision: 3,
        max_create_revision: 4,
    });
    roundtrip(&RangeResponse {
        header: header(),
        kvs: vec![kv("a", "1"), kv("ab", "2")],
        more: true,
        count: 3,
    });
}

#[test]
fn nested_txn_roundtrip() {
    let inner = TxnRequest {
        compare: vec![Compare {
            result: compare::CompareResult::NotEqual as i32,
            target: compare::CompareTarget::Value as i32,
            key: b"k".to_vec(),
            range_end: b"l".to_vec(),
            target_union: Some(compare::TargetUnion::Value(b"v".to_vec())),
        }],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: b"k".to_vec(),
                value: b"w".to_vec(),
                prev_kv: true,
                ..Default::default()
            })),
        }],
        failure: vec![],
    };
    let outer = TxnRequest {
        compare: vec![Compare {
            target: compare::CompareTarget::Mod as i32,
            key: b"k".to_vec(),
            target_union: Some(compare::TargetUnion::ModRevision(0)),
            ..Default::default()
        }],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestTxn(inner)),
        }],
        failure: vec![RequestOp {
            request: Some(request_op::Request::RequestRange(RangeRequest {
                key: b"k".to_vec(),
                ..Default::default()
            })),
        }],
    };
    roundtrip(&outer);
    roundtrip(&SessionTxnRequest {
        session: Some(Session {
            client_id: u64::MAX,
            seq: 1,
        }),
        request: Some(outer),
    });
    roundtrip(&TxnResponse {
        header: header(),
        succeeded: false,
        responses: vec![ResponseOp {
            response: Some(response_op::Response::ResponseRange(RangeResponse {
                header: header(),
                kvs: vec![kv("k", "v")],
                more: false,
                count: 1,
            })),
        }],
    });
}

#[test]
fn cluster_and_status_roundtrip() {
    roundtrip(&MemberListResponse {
        header: header(),
        members: vec![Member {
            id: 1,
            name: "n1".into(),
            peer_ur_ls: vec!["http://127.0.0.1:2380".into()],
            client_ur_ls: vec!["http://127.0.0.1:2379".into()],
            is_learner: false,
        }],
    });
    roundtrip(&StatusResponse {
        header: header(),
        version: "3.4.0".into(),
        db_size: 4096,
        leader: 1,
        raft_index: 100,
        raft_term: 7,
        raft_applied_index: 99,
        errors: vec!["NOSPACE".into()],
        db_size_in_use: 2048,
        is_learner: false,
    });
}

#[test]
fn raftkv_append_roundtrip() {
    roundtrip(&AppendRequest {
        key: b"log".to_vec(),
        suffix: b"x".to_vec(),
        session: Some(Session {
            client_id: 7,
            seq: 3,
        }),
        prev_kv: true,
    });
    roundtrip(&AppendResponse {
        header: header(),
        prev_kv: Some(kv("log", "abc")),
        value_bytes: 4,
    });
}

#[test]
fn forwarded_commands_and_results_keep_their_bytes() {
    let req = ForwardRequest {
        cluster_id: 9,
        from: 1,
        command: vec![0xFF; 1024].into(),
    };
    roundtrip(&req);
    let back = ForwardRequest::decode(req.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back.command.len(), 1024);
    roundtrip(&ForwardResponse {
        result: vec![1u8, 0, 3].into(),
        raft_term: 4,
        leader: 2,
    });
}
