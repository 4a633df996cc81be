//! Wire compatibility with etcd 3.4: bytes written by hand from etcd's field numbers (not by
//! prost) decode into the expected fields, and prost writes the very same bytes back. A wrong
//! field number or wire type in `proto/` fails here, where a round trip would not notice.
//!
//! Encoding reminder: a field starts with the varint `(number << 3) | wire_type`, wire type 0
//! for varints (ints, bools, enums) and 2 for length-delimited (bytes, strings, messages).

use prost::Message;
use proto::etcdserverpb::{
    compare, request_op, Compare, DeleteRangeRequest, Member, PutRequest, PutResponse,
    RangeRequest, RangeResponse, RequestOp, ResponseHeader, StatusResponse, TxnRequest,
};
use proto::mvccpb::KeyValue;

/// Appends a varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a varint field (wire type 0).
fn field_varint(out: &mut Vec<u8>, number: u64, v: u64) {
    varint(out, number << 3);
    varint(out, v);
}

/// Appends a length-delimited field (wire type 2).
fn field_bytes(out: &mut Vec<u8>, number: u64, v: &[u8]) {
    varint(out, (number << 3) | 2);
    varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

/// Decodes `bytes` as `M`, checks it equals `expected`, and that prost re-encodes the same
/// bytes (prost writes fields in number order, as the hand encodings here do).
fn check<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8], expected: &M) {
    let decoded = M::decode(bytes).expect("hand-encoded bytes decode");
    assert_eq!(&decoded, expected);
    assert_eq!(expected.encode_to_vec(), bytes, "prost writes etcd's bytes");
}

#[test]
fn range_request_uses_etcd_field_numbers() {
    let mut b = Vec::new();
    field_bytes(&mut b, 1, b"foo"); // key
    field_bytes(&mut b, 2, b"fop"); // range_end
    field_varint(&mut b, 3, 10); // limit
    field_varint(&mut b, 4, 77); // revision
    field_varint(&mut b, 5, 2); // sort_order = DESCEND
    field_varint(&mut b, 6, 3); // sort_target = MOD
    field_varint(&mut b, 7, 1); // serializable
    field_varint(&mut b, 8, 1); // keys_only
    field_varint(&mut b, 9, 1); // count_only
    field_varint(&mut b, 10, 11); // min_mod_revision
    field_varint(&mut b, 11, 12); // max_mod_revision
    field_varint(&mut b, 12, 13); // min_create_revision
    field_varint(&mut b, 13, 14); // max_create_revision
    check(
        &b,
        &RangeRequest {
            key: b"foo".to_vec(),
            range_end: b"fop".to_vec(),
            limit: 10,
            revision: 77,
            sort_order: 2,
            sort_target: 3,
            serializable: true,
            keys_only: true,
            count_only: true,
            min_mod_revision: 11,
            max_mod_revision: 12,
            min_create_revision: 13,
            max_create_revision: 14,
        },
    );
}

#[test]
fn put_request_uses_etcd_field_numbers() {
    let mut b = Vec::new();
    field_bytes(&mut b, 1, b"k"); // key
    field_bytes(&mut b, 2, b"v"); // value
    field_varint(&mut b, 3, 0x1234_5678); // lease
    field_varint(&mut b, 4, 1); // prev_kv
    field_varint(&mut b, 5, 1); // ignore_value
    field_varint(&mut b, 6, 1); // ignore_lease
    check(
        &b,
        &PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            lease: 0x1234_5678,
            prev_kv: true,
            ignore_value: true,
            ignore_lease: true,
        },
    );
}

#[test]
fn delete_range_request_uses_etcd_field_numbers() {
    let mut b = Vec::new();
    field_bytes(&mut b, 1, b"a");
    field_bytes(&mut b, 2, b"\0");
    field_varint(&mut b, 3, 1); // prev_kv
    check(
        &b,
        &DeleteRangeRequest {
            key: b"a".to_vec(),
            range_end: b"\0".to_vec(),
            prev_kv: true,
        },
    );
}

fn header_bytes() -> Vec<u8> {
    let mut h = Vec::new();
    field_varint(&mut h, 1, 100); // cluster_id
    field_varint(&mut h, 2, 200); // member_id
    field_varint(&mut h, 3, 300); // revision
    field_varint(&mut h, 4, 4); // raft_term
    h
}

fn header() -> ResponseHeader {
    ResponseHeader {
        cluster_id: 100,
        member_id: 200,
        revision: 300,
        raft_term: 4,
    }
}

#[test]
fn range_response_and_key_value_use_etcd_field_numbers() {
    let mut kv = Vec::new();
    field_bytes(&mut kv, 1, b"foo"); // key
    field_varint(&mut kv, 2, 5); // create_revision
    field_varint(&mut kv, 3, 6); // mod_revision
    field_varint(&mut kv, 4, 2); // version
    field_bytes(&mut kv, 5, b"bar"); // value
    field_varint(&mut kv, 6, 9); // lease
    let mut b = Vec::new();
    field_bytes(&mut b, 1, &header_bytes());
    field_bytes(&mut b, 2, &kv); // kvs
    field_varint(&mut b, 3, 1); // more
    field_varint(&mut b, 4, 2); // count
    check(
        &b,
        &RangeResponse {
            header: Some(header()),
            kvs: vec![KeyValue {
                key: b"foo".to_vec(),
                create_revision: 5,
                mod_revision: 6,
                version: 2,
                value: b"bar".to_vec(),
                lease: 9,
            }],
            more: true,
            count: 2,
        },
    );
    let mut put = Vec::new();
    field_bytes(&mut put, 1, &header_bytes());
    field_bytes(&mut put, 2, &kv); // prev_kv
    let decoded = PutResponse::decode(put.as_slice()).unwrap();
    assert_eq!(decoded.prev_kv.unwrap().value, b"bar");
}

#[test]
fn txn_compare_uses_etcd_field_numbers() {
    let mut cmp = Vec::new();
    field_varint(&mut cmp, 1, 3); // result = NOT_EQUAL
    field_varint(&mut cmp, 2, 2); // target = MOD
    field_bytes(&mut cmp, 3, b"k"); // key
    field_varint(&mut cmp, 6, 8); // mod_revision (oneof target_union)
    field_bytes(&mut cmp, 64, b"l"); // range_end: number 64, a two-byte tag
    let mut put = Vec::new();
    field_bytes(&mut put, 1, b"k");
    let mut op = Vec::new();
    field_bytes(&mut op, 2, &put); // request_put
    let mut b = Vec::new();
    field_bytes(&mut b, 1, &cmp); // compare
    field_bytes(&mut b, 3, &op); // failure
    check(
        &b,
        &TxnRequest {
            compare: vec![Compare {
                result: compare::CompareResult::NotEqual as i32,
                target: compare::CompareTarget::Mod as i32,
                key: b"k".to_vec(),
                target_union: Some(compare::TargetUnion::ModRevision(8)),
                range_end: b"l".to_vec(),
            }],
            success: vec![],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: b"k".to_vec(),
                    ..Default::default()
                })),
            }],
        },
    );
}

#[test]
fn member_and_status_use_etcd_field_numbers() {
    let mut m = Vec::new();
    field_varint(&mut m, 1, 0xABCD); // ID
    field_bytes(&mut m, 2, b"n1"); // name
    field_bytes(&mut m, 3, b"http://p"); // peerURLs
    field_bytes(&mut m, 4, b"http://c"); // clientURLs
    field_varint(&mut m, 5, 1); // isLearner
    check(
        &m,
        &Member {
            id: 0xABCD,
            name: "n1".into(),
            peer_ur_ls: vec!["http://p".into()],
            client_ur_ls: vec!["http://c".into()],
            is_learner: true,
        },
    );

    let mut s = Vec::new();
    field_bytes(&mut s, 1, &header_bytes());
    field_bytes(&mut s, 2, b"3.4.0"); // version
    field_varint(&mut s, 3, 4096); // dbSize
    field_varint(&mut s, 4, 0xABCD); // leader
    field_varint(&mut s, 5, 50); // raftIndex
    field_varint(&mut s, 6, 4); // raftTerm
    field_varint(&mut s, 7, 49); // raftAppliedIndex
    field_bytes(&mut s, 8, b"alarm"); // errors
    field_varint(&mut s, 9, 1024); // dbSizeInUse
    field_varint(&mut s, 10, 1); // isLearner
    check(
        &s,
        &StatusResponse {
            header: Some(header()),
            version: "3.4.0".into(),
            db_size: 4096,
            leader: 0xABCD,
            raft_index: 50,
            raft_term: 4,
            raft_applied_index: 49,
            errors: vec!["alarm".into()],
            db_size_in_use: 1024,
            is_learner: true,
        },
    );
}

#[test]
fn unknown_fields_from_newer_clients_are_skipped() {
    // etcd 3.5 clients send MemberListRequest.linearizable = 1; a 3.4 schema must still decode.
    let mut b = Vec::new();
    field_varint(&mut b, 1, 1);
    assert_eq!(
        proto::etcdserverpb::MemberListRequest::decode(b.as_slice()).unwrap(),
        proto::etcdserverpb::MemberListRequest {}
    );
}
