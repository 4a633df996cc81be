//! The binary encoding of requests, responses and errors: compact, deterministic, strict.
//!
//! Owns: the wire primitives ([`Writer`], [`Reader`]: LEB128 varints, zigzag for signed
//! integers, length-prefixed bytes, strict 0/1 booleans and flag bytes) and the layout of every
//! type, field by field in declaration order. Versioning is done by the callers (a leading
//! version byte in [`crate::command`] and the snapshot header in [`crate::machine`]).
//! Must never: panic or allocate more than the input can hold on any input (counts are checked
//! against the bytes left, nesting against [`crate::TXN_DEPTH_MAX`]); accept a byte string that
//! two different values encode to (unknown tags and flag bits are errors); or change a layout
//! without bumping the version that covers it — these bytes are Raft log entries and
//! snapshots, and outlive the binary that wrote them.

use crate::error::DecodeError;
use crate::types::*;
use crate::{KvError, TXN_DEPTH_MAX};
use bytes::{BufMut, Bytes, BytesMut};

type Result<T> = std::result::Result<T, DecodeError>;

/// Appends encoded values to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    buf: BytesMut,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Writer::default()
    }

    pub(crate) fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.put_u8(v);
    }

    pub(crate) fn u32_le(&mut self, v: u32) {
        self.buf.put_u32_le(v);
    }

    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.buf.put_slice(v);
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.u8(v as u8);
    }

    pub(crate) fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.varint(v.len() as u64);
        self.raw(v);
    }

    pub(crate) fn len(&mut self, n: usize) {
        self.varint(n as u64);
    }
}

/// Reads encoded values from a byte slice; every read checks the bytes left.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fail unless every byte was read.
    pub(crate) fn finish(self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::Trailing {
                extra: extra as u64,
                offset: self.offset(),
            }),
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated {
            offset: self.offset(),
        })?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn raw(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.buf.len() as u64,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u32_le(&mut self) -> Result<u32> {
        let s = self.raw(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// A tag byte that must be below `variants`.
    pub(crate) fn tag(&mut self, variants: u8) -> Result<u8> {
        let offset = self.offset();
        let tag = self.u8()?;
        if tag >= variants {
            return Err(DecodeError::BadTag { tag, offset });
        }
        Ok(tag)
    }

    pub(crate) fn bool(&mut self) -> Result<bool> {
        Ok(self.tag(2)? == 1)
    }

    /// A flag byte with no bits outside `mask`.
    pub(crate) fn flags(&mut self, mask: u8) -> Result<u8> {
        let offset = self.offset();
        let f = self.u8()?;
        if f & !mask != 0 {
            return Err(DecodeError::BadTag { tag: f, offset });
        }
        Ok(f)
    }

    pub(crate) fn varint(&mut self) -> Result<u64> {
        let offset = self.offset();
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return Err(DecodeError::Varint { offset });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                // Canonical only: a last byte of 0 after others is an overlong encoding.
                if i > 0 && b == 0 {
                    return Err(DecodeError::Varint { offset });
                }
                return Ok(v);
            }
        }
        Err(DecodeError::Varint { offset })
    }

    pub(crate) fn u32_varint(&mut self) -> Result<u32> {
        let offset = self.offset();
        u32::try_from(self.varint()?).map_err(|_| DecodeError::Varint { offset })
    }

    pub(crate) fn zigzag(&mut self) -> Result<i64> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A count of items that take at least one byte each (so it cannot exceed the input).
    pub(crate) fn count(&mut self) -> Result<usize> {
        let offset = self.offset();
        let n = self.varint()?;
        if n > self.remaining() as u64 {
            return Err(DecodeError::Length { len: n, offset });
        }
        Ok(n as usize)
    }

    pub(crate) fn bytes(&mut self) -> Result<Bytes> {
        let offset = self.offset();
        let n = self.varint()?;
        if n > self.remaining() as u64 {
            return Err(DecodeError::Length { len: n, offset });
        }
        Ok(Bytes::copy_from_slice(self.raw(n as usize)?))
    }

    fn depth(&self, depth: u32) -> Result<()> {
        if depth > TXN_DEPTH_MAX {
            return Err(DecodeError::TooDeep {
                max: TXN_DEPTH_MAX,
                offset: self.offset(),
            });
        }
        Ok(())
    }
}

fn list<T>(
    r: &mut Reader<'_>,
    mut item: impl FnMut(&mut Reader<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = r.count()?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(item(r)?);
    }
    Ok(v)
}

// ---- requests ----

const RANGE_SERIALIZABLE: u8 = 1;
const RANGE_KEYS_ONLY: u8 = 2;
const RANGE_COUNT_ONLY: u8 = 4;
const PUT_PREV_KV: u8 = 1;
const PUT_IGNORE_VALUE: u8 = 2;
const PUT_IGNORE_LEASE: u8 = 4;
const DELETE_PREV_KV: u8 = 1;

fn flag(on: bool, bit: u8) -> u8 {
    if on {
        bit
    } else {
        0
    }
}

pub(crate) fn put_request(w: &mut Writer, req: &Request) {
    match req {
        Request::Range(r) => {
            w.u8(0);
            put_range(w, r);
        }
        Request::Put(p) => {
            w.u8(1);
            put_put(w, p);
        }
        Request::DeleteRange(d) => {
            w.u8(2);
            put_delete(w, d);
        }
        Request::Txn(t) => {
            w.u8(3);
            put_txn(w, t);
        }
        Request::Append(a) => {
            w.u8(4);
            w.bytes(&a.key);
            w.bytes(&a.suffix);
        }
    }
}

pub(crate) fn get_request(r: &mut Reader<'_>) -> Result<Request> {
    Ok(match r.tag(5)? {
        0 => Request::Range(get_range(r)?),
        1 => Request::Put(get_put(r)?),
        2 => Request::DeleteRange(get_delete(r)?),
        3 => Request::Txn(get_txn(r, 1)?),
        _ => Request::Append(AppendRequest {
            key: r.bytes()?,
            suffix: r.bytes()?,
        }),
    })
}

fn put_range(w: &mut Writer, r: &RangeRequest) {
    w.bytes(&r.key);
    w.bytes(&r.range_end);
    w.zigzag(r.limit);
    w.zigzag(r.revision);
    w.u8(r.sort_order as u8);
    w.u8(r.sort_target as u8);
    w.u8(flag(r.serializable, RANGE_SERIALIZABLE)
        | flag(r.keys_only, RANGE_KEYS_ONLY)
        | flag(r.count_only, RANGE_COUNT_ONLY));
    w.zigzag(r.min_mod_revision);
    w.zigzag(r.max_mod_revision);
    w.zigzag(r.min_create_revision);
    w.zigzag(r.max_create_revision);
}

fn get_range(r: &mut Reader<'_>) -> Result<RangeRequest> {
    let key = r.bytes()?;
    let range_end = r.bytes()?;
    let limit = r.zigzag()?;
    let revision = r.zigzag()?;
    let sort_order = [SortOrder::None, SortOrder::Ascend, SortOrder::Descend][r.tag(3)? as usize];
    let sort_target = [
        SortTarget::Key,
        SortTarget::Version,
        SortTarget::Create,
        SortTarget::Mod,
        SortTarget::Value,
    ][r.tag(5)? as usize];
    let f = r.flags(RANGE_SERIALIZABLE | RANGE_KEYS_ONLY | RANGE_COUNT_ONLY)?;
    Ok(RangeRequest {
        key,
        range_end,
        limit,
        revision,
        sort_order,
        sort_target,
        serializable: f & RANGE_SERIALIZABLE != 0,
        keys_only: f & RANGE_KEYS_ONLY != 0,
        count_only: f & RANGE_COUNT_ONLY != 0,
        min_mod_revision: r.zigzag()?,
        max_mod_revision: r.zigzag()?,
        min_create_revision: r.zigzag()?,
        max_create_revision: r.zigzag()?,
    })
}

fn put_put(w: &mut Writer, p: &PutRequest) {
    w.bytes(&p.key);
    w.bytes(&p.value);
    w.u8(flag(p.prev_kv, PUT_PREV_KV)
        | flag(p.ignore_value, PUT_IGNORE_VALUE)
        | flag(p.ignore_lease, PUT_IGNORE_LEASE));
}

fn get_put(r: &mut Reader<'_>) -> Result<PutRequest> {
    let key = r.bytes()?;
    let value = r.bytes()?;
    let f = r.flags(PUT_PREV_KV | PUT_IGNORE_VALUE | PUT_IGNORE_LEASE)?;
    Ok(PutRequest {
        key,
        value,
        prev_kv: f & PUT_PREV_KV != 0,
        ignore_value: f & PUT_IGNORE_VALUE != 0,
        ignore_lease: f & PUT_IGNORE_LEASE != 0,
    })
}

fn put_delete(w: &mut Writer, d: &DeleteRangeRequest) {
    w.bytes(&d.key);
    w.bytes(&d.range_end);
    w.u8(flag(d.prev_kv, DELETE_PREV_KV));
}

fn get_delete(r: &mut Reader<'_>) -> Result<DeleteRangeRequest> {
    Ok(DeleteRangeRequest {
        key: r.bytes()?,
        range_end: r.bytes()?,
        prev_kv: r.flags(DELETE_PREV_KV)? != 0,
    })
}

fn put_compare(w: &mut Writer, c: &Compare) {
    w.u8(match c.result {
        CompareResult::Equal => 0,
        CompareResult::Greater => 1,
        CompareResult::Less => 2,
        CompareResult::NotEqual => 3,
    });
    w.bytes(&c.key);
    w.bytes(&c.range_end);
    match &c.target {
        CompareTarget::Version(v) => {
            w.u8(0);
            w.zigzag(*v);
        }
        CompareTarget::Create(v) => {
            w.u8(1);
            w.zigzag(*v);
        }
        CompareTarget::Mod(v) => {
            w.u8(2);
            w.zigzag(*v);
        }
        CompareTarget::Value(v) => {
            w.u8(3);
            w.bytes(v);
        }
        CompareTarget::Lease(v) => {
            w.u8(4);
            w.zigzag(*v);
        }
    }
}

fn get_compare(r: &mut Reader<'_>) -> Result<Compare> {
    let result = [
        CompareResult::Equal,
        CompareResult::Greater,
        CompareResult::Less,
        CompareResult::NotEqual,
    ][r.tag(4)? as usize];
    let key = r.bytes()?;
    let range_end = r.bytes()?;
    let target = match r.tag(5)? {
        0 => CompareTarget::Version(r.zigzag()?),
        1 => CompareTarget::Create(r.zigzag()?),
        2 => CompareTarget::Mod(r.zigzag()?),
        3 => CompareTarget::Value(r.bytes()?),
        _ => CompareTarget::Lease(r.zigzag()?),
    };
    Ok(Compare {
        result,
        target,
        key,
        range_end,
    })
}

fn put_txn(w: &mut Writer, t: &TxnRequest) {
    w.len(t.compare.len());
    t.compare.iter().for_each(|c| put_compare(w, c));
    for branch in [&t.success, &t.failure] {
        w.len(branch.len());
        for op in branch {
            match op {
                RequestOp::Range(r) => {
                    w.u8(0);
                    put_range(w, r);
                }
                RequestOp::Put(p) => {
                    w.u8(1);
                    put_put(w, p);
                }
                RequestOp::DeleteRange(d) => {
                    w.u8(2);
                    put_delete(w, d);
                }
                RequestOp::Txn(t) => {
                    w.u8(3);
                    put_txn(w, t);
                }
            }
        }
    }
}

fn get_txn(r: &mut Reader<'_>, depth: u32) -> Result<TxnRequest> {
    r.depth(depth)?;
    let compare = list(r, get_compare)?;
    let mut op = |r: &mut Reader<'_>| -> Result<RequestOp> {
        Ok(match r.tag(4)? {
            0 => RequestOp::Range(get_range(r)?),
            1 => RequestOp::Put(get_put(r)?),
            2 => RequestOp::DeleteRange(get_delete(r)?),
            _ => RequestOp::Txn(get_txn(r, depth + 1)?),
        })
    };
    let success = list(r, &mut op)?;
    let failure = list(r, &mut op)?;
    Ok(TxnRequest {
        compare,
        success,
        failure,
    })
}

// ---- responses ----

pub(crate) fn put_kv(w: &mut Writer, kv: &KeyValue) {
    w.bytes(&kv.key);
    w.bytes(&kv.value);
    w.zigzag(kv.create_revision);
    w.zigzag(kv.mod_revision);
    w.zigzag(kv.version);
    w.zigzag(kv.lease);
}

pub(crate) fn get_kv(r: &mut Reader<'_>) -> Result<KeyValue> {
    Ok(KeyValue {
        key: r.bytes()?,
        value: r.bytes()?,
        create_revision: r.zigzag()?,
        mod_revision: r.zigzag()?,
        version: r.zigzag()?,
        lease: r.zigzag()?,
    })
}

fn put_kvs(w: &mut Writer, kvs: &[KeyValue]) {
    w.len(kvs.len());
    kvs.iter().for_each(|kv| put_kv(w, kv));
}

pub(crate) fn put_response(w: &mut Writer, resp: &Response) {
    match resp {
        Response::Range(r) => {
            w.u8(0);
            put_range_response(w, r);
        }
        Response::Put(p) => {
            w.u8(1);
            put_put_response(w, p);
        }
        Response::DeleteRange(d) => {
            w.u8(2);
            put_delete_response(w, d);
        }
        Response::Txn(t) => {
            w.u8(3);
            put_txn_response(w, t);
        }
        Response::Append(a) => {
            w.u8(4);
            w.zigzag(a.revision);
            w.zigzag(a.version);
            w.varint(a.value_len);
        }
    }
}

pub(crate) fn get_response(r: &mut Reader<'_>) -> Result<Response> {
    Ok(match r.tag(5)? {
        0 => Response::Range(get_range_response(r)?),
        1 => Response::Put(get_put_response(r)?),
        2 => Response::DeleteRange(get_delete_response(r)?),
        3 => Response::Txn(get_txn_response(r, 1)?),
        _ => Response::Append(AppendResponse {
            revision: r.zigzag()?,
            version: r.zigzag()?,
            value_len: r.varint()?,
        }),
    })
}

fn put_range_response(w: &mut Writer, r: &RangeResponse) {
    w.zigzag(r.revision);
    put_kvs(w, &r.kvs);
    w.bool(r.more);
    w.zigzag(r.count);
}

fn get_range_response(r: &mut Reader<'_>) -> Result<RangeResponse> {
    Ok(RangeResponse {
        revision: r.zigzag()?,
        kvs: list(r, get_kv)?,
        more: r.bool()?,
        count: r.zigzag()?,
    })
}

fn put_put_response(w: &mut Writer, p: &PutResponse) {
    w.zigzag(p.revision);
    w.bool(p.prev_kv.is_some());
    if let Some(kv) = &p.prev_kv {
        put_kv(w, kv);
    }
}

fn get_put_response(r: &mut Reader<'_>) -> Result<PutResponse> {
    let revision = r.zigzag()?;
    let prev_kv = if r.bool()? { Some(get_kv(r)?) } else { None };
    Ok(PutResponse { revision, prev_kv })
}

fn put_delete_response(w: &mut Writer, d: &DeleteRangeResponse) {
    w.zigzag(d.revision);
    w.zigzag(d.deleted);
    put_kvs(w, &d.prev_kvs);
}

fn get_delete_response(r: &mut Reader<'_>) -> Result<DeleteRangeResponse> {
    Ok(DeleteRangeResponse {
        revision: r.zigzag()?,
        deleted: r.zigzag()?,
        prev_kvs: list(r, get_kv)?,
    })
}

fn put_txn_response(w: &mut Writer, t: &TxnResponse) {
    w.zigzag(t.revision);
    w.bool(t.succeeded);
    w.len(t.responses.len());
    for op in &t.responses {
        match op {
            ResponseOp::Range(r) => {
                w.u8(0);
                put_range_response(w, r);
            }
            ResponseOp::Put(p) => {
                w.u8(1);
                put_put_response(w, p);
            }
            ResponseOp::DeleteRange(d) => {
                w.u8(2);
                put_delete_response(w, d);
            }
            ResponseOp::Txn(t) => {
                w.u8(3);
                put_txn_response(w, t);
            }
        }
    }
}

fn get_txn_response(r: &mut Reader<'_>, depth: u32) -> Result<TxnResponse> {
    r.depth(depth)?;
    let revision = r.zigzag()?;
    let succeeded = r.bool()?;
    let responses = list(r, |r| {
        Ok(match r.tag(4)? {
            0 => ResponseOp::Range(get_range_response(r)?),
            1 => ResponseOp::Put(get_put_response(r)?),
            2 => ResponseOp::DeleteRange(get_delete_response(r)?),
            _ => ResponseOp::Txn(get_txn_response(r, depth + 1)?),
        })
    })?;
    Ok(TxnResponse {
        revision,
        succeeded,
        responses,
    })
}

// ---- errors ----

pub(crate) fn put_error(w: &mut Writer, e: &KvError) {
    match e {
        KvError::EmptyKey => w.u8(0),
        KvError::InvalidRange { key, range_end } => {
            w.u8(1);
            w.bytes(key);
            w.bytes(range_end);
        }
        KvError::DuplicateKey { key } => {
            w.u8(2);
            w.bytes(key);
        }
        KvError::TooManyOps { ops, max } => {
            w.u8(3);
            w.varint(*ops);
            w.varint(*max);
        }
        KvError::TxnTooDeep { max } => {
            w.u8(4);
            w.varint(u64::from(*max));
        }
        KvError::KeyNotFound { key } => {
            w.u8(5);
            w.bytes(key);
        }
        KvError::ValueProvided => w.u8(6),
        KvError::Compacted { requested, current } => {
            w.u8(7);
            w.zigzag(*requested);
            w.zigzag(*current);
        }
        KvError::FutureRev { requested, current } => {
            w.u8(8);
            w.zigzag(*requested);
            w.zigzag(*current);
        }
        KvError::StaleSequence {
            client_id,
            seq,
            last_seq,
        } => {
            w.u8(9);
            w.varint(*client_id);
            w.varint(*seq);
            w.varint(*last_seq);
        }
        KvError::SessionExpired { client_id, seq } => {
            w.u8(10);
            w.varint(*client_id);
            w.varint(*seq);
        }
        KvError::InvalidSequence { client_id } => {
            w.u8(11);
            w.varint(*client_id);
        }
        KvError::Decode(d) => {
            w.u8(12);
            put_decode_error(w, d);
        }
        KvError::MetaFull { max } => {
            w.u8(13);
            w.varint(*max);
        }
    }
}

pub(crate) fn get_error(r: &mut Reader<'_>) -> Result<KvError> {
    Ok(match r.tag(14)? {
        0 => KvError::EmptyKey,
        1 => KvError::InvalidRange {
            key: r.bytes()?,
            range_end: r.bytes()?,
        },
        2 => KvError::DuplicateKey { key: r.bytes()? },
        3 => KvError::TooManyOps {
            ops: r.varint()?,
            max: r.varint()?,
        },
        4 => KvError::TxnTooDeep {
            max: r.u32_varint()?,
        },
        5 => KvError::KeyNotFound { key: r.bytes()? },
        6 => KvError::ValueProvided,
        7 => KvError::Compacted {
            requested: r.zigzag()?,
            current: r.zigzag()?,
        },
        8 => KvError::FutureRev {
            requested: r.zigzag()?,
            current: r.zigzag()?,
        },
        9 => KvError::StaleSequence {
            client_id: r.varint()?,
            seq: r.varint()?,
            last_seq: r.varint()?,
        },
        10 => KvError::SessionExpired {
            client_id: r.varint()?,
            seq: r.varint()?,
        },
        11 => KvError::InvalidSequence {
            client_id: r.varint()?,
        },
        12 => KvError::Decode(get_decode_error(r)?),
        _ => KvError::MetaFull { max: r.varint()? },
    })
}

fn put_decode_error(w: &mut Writer, d: &DecodeError) {
    match *d {
        DecodeError::Truncated { offset } => {
            w.u8(0);
            w.varint(offset);
        }
        DecodeError::Version { found } => {
            w.u8(1);
            w.u8(found);
        }
        DecodeError::Magic => w.u8(2),
        DecodeError::BadTag { tag, offset } => {
            w.u8(3);
            w.u8(tag);
            w.varint(offset);
        }
        DecodeError::Varint { offset } => {
            w.u8(4);
            w.varint(offset);
        }
        DecodeError::Length { len, offset } => {
            w.u8(5);
            w.varint(len);
            w.varint(offset);
        }
        DecodeError::Trailing { extra, offset } => {
            w.u8(6);
            w.varint(extra);
            w.varint(offset);
        }
        DecodeError::TooDeep { max, offset } => {
            w.u8(7);
            w.varint(u64::from(max));
            w.varint(offset);
        }
        DecodeError::Invalid { offset } => {
            w.u8(8);
            w.varint(offset);
        }
        DecodeError::Checksum { stored, computed } => {
            w.u8(9);
            w.u32_le(stored);
            w.u32_le(computed);
        }
    }
}

fn get_decode_error(r: &mut Reader<'_>) -> Result<DecodeError> {
    Ok(match r.tag(10)? {
        0 => DecodeError::Truncated {
            offset: r.varint()?,
        },
        1 => DecodeError::Version { found: r.u8()? },
        2 => DecodeError::Magic,
        3 => DecodeError::BadTag {
            tag: r.u8()?,
            offset: r.varint()?,
        },
        4 => DecodeError::Varint {
            offset: r.varint()?,
        },
        5 => DecodeError::Length {
            len: r.varint()?,
            offset: r.varint()?,
        },
        6 => DecodeError::Trailing {
            extra: r.varint()?,
            offset: r.varint()?,
        },
        7 => DecodeError::TooDeep {
            max: r.u32_varint()?,
            offset: r.varint()?,
        },
        8 => DecodeError::Invalid {
            offset: r.varint()?,
        },
        _ => DecodeError::Checksum {
            stored: r.u32_le()?,
            computed: r.u32_le()?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut w = Writer::new();
            w.varint(v);
            let b = w.finish();
            let mut r = Reader::new(&b);
            assert_eq!(r.varint(), Ok(v));
            r.finish().unwrap();
        }
        for v in [0, 1, -1, 63, -64, 64, i64::MIN, i64::MAX] {
            let mut w = Writer::new();
            w.zigzag(v);
            let b = w.finish();
            assert_eq!(Reader::new(&b).zigzag(), Ok(v));
        }
    }

    #[test]
    fn overlong_varints_and_huge_lengths_are_refused() {
        let eleven = [0xffu8; 11];
        assert!(matches!(
            Reader::new(&eleven).varint(),
            Err(DecodeError::Varint { .. })
        ));
        // 10th byte above 1 overflows 64 bits.
        let mut over = [0xffu8; 10];
        over[9] = 0x02;
        assert!(matches!(
            Reader::new(&over).varint(),
            Err(DecodeError::Varint { .. })
        ));
        // An overlong zero: two encodings of one value would break canonical bytes.
        assert!(matches!(
            Reader::new(&[0x80, 0x00]).varint(),
            Err(DecodeError::Varint { .. })
        ));
        // A length far beyond the input: refused before any allocation.
        let mut w = Writer::new();
        w.varint(u64::MAX);
        let b = w.finish();
        assert!(matches!(
            Reader::new(&b).bytes(),
            Err(DecodeError::Length { .. })
        ));
        assert!(matches!(
            Reader::new(&b).count(),
            Err(DecodeError::Length { .. })
        ));
    }

    #[test]
    fn unknown_flag_bits_and_non_boolean_bytes_are_refused() {
        assert!(matches!(
            Reader::new(&[0x08]).flags(0x07),
            Err(DecodeError::BadTag { tag: 8, offset: 0 })
        ));
        assert!(matches!(
            Reader::new(&[2]).bool(),
            Err(DecodeError::BadTag { .. })
        ));
    }
}
