//! The request and response types: etcd v3's `KV` messages as plain Rust, plus raftkv's
//! [`AppendRequest`].
//!
//! Owns: the field-by-field shape of every request and response (same names and meanings as
//! etcd's `rpc.proto` and `kv.proto`, so the server maps them one to one) and small builders.
//! Must never: depend on protobuf (prost types live in `proto`), or hold behaviour beyond
//! construction — the semantics live in [`crate::store`] and [`crate::txn`].
//!
//! Revisions, versions, limits and counts are `i64` like etcd's `int64` fields, so they cross
//! the gRPC edge unchanged. raftkv has no leases: every key's `lease` is 0.

use bytes::Bytes;

/// One key as etcd's `mvccpb.KeyValue` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
    /// Revision of the write that created the key (since its last deletion).
    pub create_revision: i64,
    /// Revision of the last write to the key.
    pub mod_revision: i64,
    /// Writes since creation: 1 on creation, +1 per put or append.
    pub version: i64,
    /// Always 0: raftkv has no leases.
    pub lease: i64,
}

/// Order of a range's results (etcd's `RangeRequest.SortOrder`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortOrder {
    /// Key order; but see [`RangeRequest::sort_target`].
    #[default]
    None,
    Ascend,
    Descend,
}

/// Field a range is sorted by (etcd's `RangeRequest.SortTarget`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortTarget {
    #[default]
    Key,
    Version,
    Create,
    Mod,
    Value,
}

/// etcd's `RangeRequest`: read `[key, range_end)`.
///
/// `range_end` empty: the single key `key`; `"\0"`: every key `>= key`; otherwise every key in
/// `[key, range_end)` (and `range_end` must be greater than `key`). See [`prefix_range_end`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeRequest {
    pub key: Bytes,
    pub range_end: Bytes,
    /// At most this many keys (`<= 0`: no limit); `more` tells whether some were left out.
    pub limit: i64,
    /// Read at this revision (`<= 0`: the current one). Only the current revision is served:
    /// raftkv keeps no history, see [`crate::KvError::Compacted`].
    pub revision: i64,
    pub sort_order: SortOrder,
    /// A target other than `Key` with `sort_order == None` sorts ascending (as etcd does).
    pub sort_target: SortTarget,
    /// Served locally without ReadIndex; a server concern, carried for forwarding.
    pub serializable: bool,
    /// Return keys without values.
    pub keys_only: bool,
    /// Return only `count`.
    pub count_only: bool,
    /// Keep only keys with `mod_revision >=` this (0: no filter).
    pub min_mod_revision: i64,
    /// Keep only keys with `mod_revision <=` this (0: no filter).
    pub max_mod_revision: i64,
    /// Keep only keys with `create_revision >=` this (0: no filter).
    pub min_create_revision: i64,
    /// Keep only keys with `create_revision <=` this (0: no filter).
    pub max_create_revision: i64,
}

/// etcd's `RangeResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    /// Store revision the read saw (the response header's revision).
    pub revision: i64,
    pub kvs: Vec<KeyValue>,
    /// More keys matched than `limit` let through.
    pub more: bool,
    /// Keys in the range, before `limit` and before the revision filters (as etcd counts).
    pub count: i64,
}

/// etcd's `PutRequest` (without `lease`: raftkv has no leases).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutRequest {
    pub key: Bytes,
    pub value: Bytes,
    /// Return the key as it was before the put.
    pub prev_kv: bool,
    /// Keep the current value (the key must exist; `value` must be empty).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist).
    pub ignore_lease: bool,
}

/// etcd's `PutResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutResponse {
    /// Store revision after the put.
    pub revision: i64,
    pub prev_kv: Option<KeyValue>,
}

/// etcd's `DeleteRangeRequest`; `range_end` as in [`RangeRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRangeRequest {
    pub key: Bytes,
    pub range_end: Bytes,
    /// Return the deleted keys.
    pub prev_kv: bool,
}

/// etcd's `DeleteRangeResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRangeResponse {
    /// Store revision after the delete (unchanged if nothing was deleted).
    pub revision: i64,
    pub deleted: i64,
    pub prev_kvs: Vec<KeyValue>,
}

/// raftkv's extension: append `suffix` to the value of `key`, creating the key if absent.
/// Like a put it always writes (and bumps the revision), even with an empty suffix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendRequest {
    pub key: Bytes,
    pub suffix: Bytes,
}

/// Reply to an [`AppendRequest`]: small on purpose (it is kept in session replies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendResponse {
    /// Store revision after the append.
    pub revision: i64,
    /// The key's version after the append.
    pub version: i64,
    /// Length of the value after the append.
    pub value_len: u64,
}

/// How a compare's result must relate to its target (etcd's `Compare.CompareResult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareResult {
    Equal,
    Greater,
    Less,
    NotEqual,
}

/// What a compare looks at, with the value to compare against (etcd's `Compare.target` and
/// its `target_union` in one enum, so they cannot disagree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareTarget {
    Version(i64),
    Create(i64),
    Mod(i64),
    Value(Bytes),
    Lease(i64),
}

/// etcd's `Compare`: `(field of each key in [key, range_end)) <result> target`.
///
/// A range compare holds only if it holds for every key in the range. An empty range (or a
/// missing key) compares as a key whose version, create and mod revisions and lease are 0,
/// except that a `Value` compare on no key always fails (etcd's `applyCompare`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    pub result: CompareResult,
    pub target: CompareTarget,
    pub key: Bytes,
    /// As in [`RangeRequest`].
    pub range_end: Bytes,
}

/// One operation in a txn branch (etcd's `RequestOp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestOp {
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
}

/// The response to one [`RequestOp`] (etcd's `ResponseOp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseOp {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
}

/// etcd's `TxnRequest`: if every compare holds, run `success`, else `failure`, atomically and
/// as one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnRequest {
    pub compare: Vec<Compare>,
    pub success: Vec<RequestOp>,
    pub failure: Vec<RequestOp>,
}

/// etcd's `TxnResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnResponse {
    /// Store revision after the txn (one more than before if anything changed).
    pub revision: i64,
    /// Whether every compare held (and `success` ran).
    pub succeeded: bool,
    /// One response per op of the branch that ran.
    pub responses: Vec<ResponseOp>,
}

/// Any request the store executes: etcd's four `KV` calls plus raftkv's append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    Append(AppendRequest),
}

/// The response to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Append(AppendResponse),
}

impl Request {
    /// Whether the request can change the store (everything but a range).
    pub fn is_write(&self) -> bool {
        !matches!(self, Request::Range(_))
    }
}

impl Response {
    /// The store revision after the request (the response header's revision).
    pub fn revision(&self) -> i64 {
        match self {
            Response::Range(r) => r.revision,
            Response::Put(r) => r.revision,
            Response::DeleteRange(r) => r.revision,
            Response::Txn(r) => r.revision,
            Response::Append(r) => r.revision,
        }
    }
}

/// The `range_end` that makes a range cover every key starting with `prefix` (etcd's
/// `GetPrefixRangeEnd`): `prefix` with its last byte below `0xff` incremented and what follows
/// dropped; `"\0"` (every key from `prefix` on) if `prefix` is empty or all `0xff`.
pub fn prefix_range_end(prefix: &[u8]) -> Bytes {
    match prefix.iter().rposition(|&b| b < 0xff) {
        Some(i) => {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            Bytes::from(end)
        }
        None => Bytes::from_static(b"\0"),
    }
}

impl RangeRequest {
    /// Read one key.
    pub fn key(key: impl Into<Bytes>) -> Self {
        RangeRequest {
            key: key.into(),
            ..Default::default()
        }
    }

    /// Read `[key, range_end)` (`range_end` as documented on the type).
    pub fn range(key: impl Into<Bytes>, range_end: impl Into<Bytes>) -> Self {
        RangeRequest {
            key: key.into(),
            range_end: range_end.into(),
            ..Default::default()
        }
    }

    /// Read every key starting with `prefix` (an empty prefix reads every key, as etcdctl's
    /// `get --prefix ""` does by sending key `"\0"`).
    pub fn prefix(prefix: impl Into<Bytes>) -> Self {
        let prefix: Bytes = prefix.into();
        if prefix.is_empty() {
            return RangeRequest::range(&b"\0"[..], &b"\0"[..]);
        }
        let range_end = prefix_range_end(&prefix);
        RangeRequest::range(prefix, range_end)
    }
}

impl PutRequest {
    /// Put `value` at `key`.
    pub fn new(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        PutRequest {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }
    }
}

impl DeleteRangeRequest {
    /// Delete one key.
    pub fn key(key: impl Into<Bytes>) -> Self {
        DeleteRangeRequest {
            key: key.into(),
            ..Default::default()
        }
    }

    /// Delete `[key, range_end)` (`range_end` as documented on [`RangeRequest`]).
    pub fn range(key: impl Into<Bytes>, range_end: impl Into<Bytes>) -> Self {
        DeleteRangeRequest {
            key: key.into(),
            range_end: range_end.into(),
            ..Default::default()
        }
    }
}

impl AppendRequest {
    /// Append `suffix` to the value at `key`.
    pub fn new(key: impl Into<Bytes>, suffix: impl Into<Bytes>) -> Self {
        AppendRequest {
            key: key.into(),
            suffix: suffix.into(),
        }
    }
}

impl Compare {
    /// Compare one key's `target` with `result`.
    pub fn new(key: impl Into<Bytes>, result: CompareResult, target: CompareTarget) -> Self {
        Compare {
            result,
            target,
            key: key.into(),
            range_end: Bytes::new(),
        }
    }

    /// The same compare over `[key, range_end)`.
    pub fn with_range_end(mut self, range_end: impl Into<Bytes>) -> Self {
        self.range_end = range_end.into();
        self
    }
}

impl From<RangeRequest> for Request {
    fn from(r: RangeRequest) -> Self {
        Request::Range(r)
    }
}
impl From<PutRequest> for Request {
    fn from(r: PutRequest) -> Self {
        Request::Put(r)
    }
}
impl From<DeleteRangeRequest> for Request {
    fn from(r: DeleteRangeRequest) -> Self {
        Request::DeleteRange(r)
    }
}
impl From<TxnRequest> for Request {
    fn from(r: TxnRequest) -> Self {
        Request::Txn(r)
    }
}
impl From<AppendRequest> for Request {
    fn from(r: AppendRequest) -> Self {
        Request::Append(r)
    }
}
impl From<RangeRequest> for RequestOp {
    fn from(r: RangeRequest) -> Self {
        RequestOp::Range(r)
    }
}
impl From<PutRequest> for RequestOp {
    fn from(r: PutRequest) -> Self {
        RequestOp::Put(r)
    }
}
impl From<DeleteRangeRequest> for RequestOp {
    fn from(r: DeleteRangeRequest) -> Self {
        RequestOp::DeleteRange(r)
    }
}
impl From<TxnRequest> for RequestOp {
    fn from(r: TxnRequest) -> Self {
        RequestOp::Txn(r)
    }
}
