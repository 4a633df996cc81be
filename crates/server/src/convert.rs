//! The gRPC edge: etcd's protobuf messages to and from the `kv` crate's plain types, and
//! `kv` errors to gRPC statuses with etcd's codes and texts.
//!
//! Owns: every field mapping between `proto::etcdserverpb` and `kv` (one to one, etcd's
//! meaning), and the refusal of what raftkv does not have (leases). Must never: hold request
//! semantics (those live in `kv`), or turn an invalid enum value into a default silently.

use bytes::Bytes;
use kv::KvError;
use proto::etcdserverpb as pb;
use proto::mvccpb;
use tonic::{Code, Status};

fn bytes(v: Vec<u8>) -> Bytes {
    Bytes::from(v)
}

fn invalid(what: &str, v: i32) -> Status {
    Status::invalid_argument(format!("etcdserver: invalid {what} {v}"))
}

/// raftkv has no leases: a request naming one names a lease that does not exist.
fn no_lease(lease: i64) -> Result<(), Status> {
    if lease == 0 {
        Ok(())
    } else {
        Err(Status::not_found(format!(
            "etcdserver: requested lease not found (raftkv has no leases; lease {lease:#x})"
        )))
    }
}

pub fn range_request(r: pb::RangeRequest) -> Result<kv::RangeRequest, Status> {
    use pb::range_request::{SortOrder, SortTarget};
    let sort_order = match SortOrder::try_from(r.sort_order) {
        Ok(SortOrder::None) => kv::SortOrder::None,
        Ok(SortOrder::Ascend) => kv::SortOrder::Ascend,
        Ok(SortOrder::Descend) => kv::SortOrder::Descend,
        Err(_) => return Err(invalid("sort_order", r.sort_order)),
    };
    let sort_target = match SortTarget::try_from(r.sort_target) {
        Ok(SortTarget::Key) => kv::SortTarget::Key,
        Ok(SortTarget::Version) => kv::SortTarget::Version,
        Ok(SortTarget::Create) => kv::SortTarget::Create,
        Ok(SortTarget::Mod) => kv::SortTarget::Mod,
        Ok(SortTarget::Value) => kv::SortTarget::Value,
        Err(_) => return Err(invalid("sort_target", r.sort_target)),
    };
    Ok(kv::RangeRequest {
        key: bytes(r.key),
        range_end: bytes(r.range_end),
        limit: r.limit,
        revision: r.revision,
        sort_order,
        sort_target,
        serializable: r.serializable,
        keys_only: r.keys_only,
        count_only: r.count_only,
        min_mod_revision: r.min_mod_revision,
        max_mod_revision: r.max_mod_revision,
        min_create_revision: r.min_create_revision,
        max_create_revision: r.max_create_revision,
    })
}

pub fn put_request(r: pb::PutRequest) -> Result<kv::PutRequest, Status> {
    no_lease(r.lease)?;
    Ok(kv::PutRequest {
        key: bytes(r.key),
        value: bytes(r.value),
        prev_kv: r.prev_kv,
        ignore_value: r.ignore_value,
        ignore_lease: r.ignore_lease,
    })
}

pub fn delete_request(r: pb::DeleteRangeRequest) -> kv::DeleteRangeRequest {
    kv::DeleteRangeRequest {
        key: bytes(r.key),
        range_end: bytes(r.range_end),
        prev_kv: r.prev_kv,
    }
}

fn compare(c: pb::Compare) -> Result<kv::Compare, Status> {
    use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
    let result = match R::try_from(c.result) {
        Ok(R::Equal) => kv::CompareResult::Equal,
        Ok(R::Greater) => kv::CompareResult::Greater,
        Ok(R::Less) => kv::CompareResult::Less,
        Ok(R::NotEqual) => kv::CompareResult::NotEqual,
        Err(_) => return Err(invalid("compare result", c.result)),
    };
    // As etcd's getters do: a union holding another field than the target reads as zero.
    let u = c.target_union;
    let target = match T::try_from(c.target) {
        Ok(T::Version) => kv::CompareTarget::Version(match u {
            Some(U::Version(v)) => v,
            _ => 0,
        }),
        Ok(T::Create) => kv::CompareTarget::Create(match u {
            Some(U::CreateRevision(v)) => v,
            _ => 0,
        }),
        Ok(T::Mod) => kv::CompareTarget::Mod(match u {
            Some(U::ModRevision(v)) => v,
            _ => 0,
        }),
        Ok(T::Value) => kv::CompareTarget::Value(match u {
            Some(U::Value(v)) => bytes(v),
            _ => Bytes::new(),
        }),
        Ok(T::Lease) => kv::CompareTarget::Lease(match u {
            Some(U::Lease(v)) => v,
            _ => 0,
        }),
        Err(_) => return Err(invalid("compare target", c.target)),
    };
    Ok(kv::Compare {
        result,
        target,
        key: bytes(c.key),
        range_end: bytes(c.range_end),
    })
}

fn request_op(op: pb::RequestOp) -> Result<kv::RequestOp, Status> {
    use pb::request_op::Request as R;
    Ok(match op.request {
        Some(R::RequestRange(r)) => kv::RequestOp::Range(range_request(r)?),
        Some(R::RequestPut(r)) => kv::RequestOp::Put(put_request(r)?),
        Some(R::RequestDeleteRange(r)) => kv::RequestOp::DeleteRange(delete_request(r)),
        Some(R::RequestTxn(r)) => kv::RequestOp::Txn(txn_request(r)?),
        None => {
            return Err(Status::invalid_argument(
                "etcdserver: a txn operation holds no request",
            ))
        }
    })
}

pub fn txn_request(r: pb::TxnRequest) -> Result<kv::TxnRequest, Status> {
    Ok(kv::TxnRequest {
        compare: r
            .compare
            .into_iter()
            .map(compare)
            .collect::<Result<_, _>>()?,
        success: r
            .success
            .into_iter()
            .map(request_op)
            .collect::<Result<_, _>>()?,
        failure: r
            .failure
            .into_iter()
            .map(request_op)
            .collect::<Result<_, _>>()?,
    })
}

pub fn key_value(kv: kv::KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key.into(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value.into(),
        lease: kv.lease,
    }
}

/// Builds response headers: what every response of this member carries.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub cluster_id: u64,
    pub member_id: u64,
    pub raft_term: u64,
}

impl Header {
    pub fn at(&self, revision: i64) -> Option<pb::ResponseHeader> {
        Some(pb::ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.member_id,
            revision,
            raft_term: self.raft_term,
        })
    }

    pub fn range(&self, r: kv::RangeResponse) -> pb::RangeResponse {
        pb::RangeResponse {
            header: self.at(r.revision),
            kvs: r.kvs.into_iter().map(key_value).collect(),
            more: r.more,
            count: r.count,
        }
    }

    pub fn put(&self, r: kv::PutResponse) -> pb::PutResponse {
        pb::PutResponse {
            header: self.at(r.revision),
            prev_kv: r.prev_kv.map(key_value),
        }
    }

    pub fn delete(&self, r: kv::DeleteRangeResponse) -> pb::DeleteRangeResponse {
        pb::DeleteRangeResponse {
            header: self.at(r.revision),
            deleted: r.deleted,
            prev_kvs: r.prev_kvs.into_iter().map(key_value).collect(),
        }
    }

    pub fn txn(&self, r: kv::TxnResponse) -> pb::TxnResponse {
        use pb::response_op::Response as R;
        let responses = r
            .responses
            .into_iter()
            .map(|op| pb::ResponseOp {
                response: Some(match op {
                    kv::ResponseOp::Range(r) => R::ResponseRange(self.range(r)),
                    kv::ResponseOp::Put(r) => R::ResponsePut(self.put(r)),
                    kv::ResponseOp::DeleteRange(r) => R::ResponseDeleteRange(self.delete(r)),
                    kv::ResponseOp::Txn(r) => R::ResponseTxn(self.txn(r)),
                }),
            })
            .collect();
        pb::TxnResponse {
            header: self.at(r.revision),
            succeeded: r.succeeded,
            responses,
        }
    }
}

/// A refused request as a gRPC status: etcd's code and text where etcd has the error.
pub fn kv_error(e: KvError) -> Status {
    let code = match &e {
        KvError::EmptyKey
        | KvError::InvalidRange { .. }
        | KvError::DuplicateKey { .. }
        | KvError::TooManyOps { .. }
        | KvError::TxnTooDeep { .. }
        | KvError::KeyNotFound { .. }
        | KvError::ValueProvided => Code::InvalidArgument,
        KvError::Compacted { .. } | KvError::FutureRev { .. } => Code::OutOfRange,
        KvError::StaleSequence { .. }
        | KvError::SessionExpired { .. }
        | KvError::InvalidSequence { .. } => Code::FailedPrecondition,
        KvError::Decode(_) => Code::Internal,
        KvError::MetaFull { .. } => Code::ResourceExhausted,
    };
    let prefix = match &e {
        KvError::Compacted { .. } | KvError::FutureRev { .. } => "etcdserver: mvcc: ",
        KvError::StaleSequence { .. }
        | KvError::SessionExpired { .. }
        | KvError::InvalidSequence { .. } => "raftkv: ",
        _ => "etcdserver: ",
    };
    Status::new(code, format!("{prefix}{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_txn_with_every_kind_of_op_and_compare_converts() {
        use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
        use pb::request_op::Request as Op;
        let txn = pb::TxnRequest {
            compare: vec![
                pb::Compare {
                    result: R::Equal as i32,
                    target: T::Value as i32,
                    key: b"k".to_vec(),
                    range_end: vec![],
                    target_union: Some(U::Value(b"v".to_vec())),
                },
                pb::Compare {
                    result: R::Greater as i32,
                    target: T::Mod as i32,
                    key: b"k".to_vec(),
                    range_end: vec![],
                    // A union naming another field than the target reads as 0, as in etcd.
                    target_union: Some(U::Version(5)),
                },
            ],
            success: vec![
                pb::RequestOp {
                    request: Some(Op::RequestPut(pb::PutRequest {
                        key: b"k".to_vec(),
                        value: b"w".to_vec(),
                        ..Default::default()
                    })),
                },
                pb::RequestOp {
                    request: Some(Op::RequestTxn(pb::TxnRequest::default())),
                },
            ],
            failure: vec![pb::RequestOp {
                request: Some(Op::RequestRange(pb::RangeRequest {
                    key: b"k".to_vec(),
                    ..Default::default()
                })),
            }],
        };
        let t = txn_request(txn).unwrap();
        assert_eq!(t.compare[0].target, kv::CompareTarget::Value("v".into()));
        assert_eq!(t.compare[1].target, kv::CompareTarget::Mod(0));
        assert_eq!(t.compare[1].result, kv::CompareResult::Greater);
        assert!(matches!(t.success[1], kv::RequestOp::Txn(_)));
        assert!(matches!(t.failure[0], kv::RequestOp::Range(_)));
    }

    #[test]
    fn invalid_enums_empty_ops_and_leases_are_refused() {
        let r = pb::RangeRequest {
            sort_order: 7,
            ..Default::default()
        };
        assert_eq!(range_request(r).unwrap_err().code(), Code::InvalidArgument);
        let op = pb::TxnRequest {
            success: vec![pb::RequestOp { request: None }],
            ..Default::default()
        };
        assert_eq!(txn_request(op).unwrap_err().code(), Code::InvalidArgument);
        let p = pb::PutRequest {
            key: b"k".to_vec(),
            lease: 42,
            ..Default::default()
        };
        assert_eq!(put_request(p).unwrap_err().code(), Code::NotFound);
    }

    #[test]
    fn kv_errors_keep_etcds_codes_and_texts() {
        let s = kv_error(KvError::EmptyKey);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "etcdserver: key is not provided");
        let s = kv_error(KvError::Compacted {
            requested: 1,
            current: 5,
        });
        assert_eq!(s.code(), Code::OutOfRange);
        assert!(s
            .message()
            .starts_with("etcdserver: mvcc: required revision 1 has been compacted"));
        let s = kv_error(KvError::SessionExpired {
            client_id: 1,
            seq: 2,
        });
        assert_eq!(s.code(), Code::FailedPrecondition);
    }
}
