//! The peer wire format of a Raft message: a compact, versioned binary encoding carried in the
//! `payload` of a peer frame.
//!
//! Owns: `encode`/`decode` of [`raft::Message`]. Must never: panic or allocate without bound
//! on hostile input (counts are checked against the bytes present), or accept trailing bytes.

use bytes::{BufMut, Bytes, BytesMut};
use raft::{
    AppendOutcome, AppendRequest, AppendResponse, Configuration, ConflictHint, Entry, EntryId,
    EntryKind, LogIndex, Message, MessageBody, NodeId, SnapshotChunk, SnapshotMeta,
    SnapshotResponse, Term, VoteRequest, VoteResponse,
};
use thiserror::Error;

const VERSION: u8 = 1;

/// Why a peer message did not decode.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("message truncated")]
    Truncated,
    #[error("unsupported wire version {0}")]
    Version(u8),
    #[error("unknown message tag {0}")]
    Tag(u8),
    #[error("malformed {0}")]
    Malformed(&'static str),
}

const T_VOTE: u8 = 1;
const T_VOTE_RESP: u8 = 2;
const T_APPEND: u8 = 3;
const T_APPEND_RESP: u8 = 4;
const T_SNAPSHOT: u8 = 5;
const T_SNAPSHOT_RESP: u8 = 6;
const T_TIMEOUT_NOW: u8 = 7;
const T_READ_INDEX: u8 = 8;
const T_READ_INDEX_RESP: u8 = 9;

fn put_id(b: &mut BytesMut, id: EntryId) {
    b.put_u64_le(id.term.0);
    b.put_u64_le(id.index.0);
}

fn put_opt(b: &mut BytesMut, v: Option<u64>) {
    match v {
        Some(x) => {
            b.put_u8(1);
            b.put_u64_le(x);
        }
        None => b.put_u8(0),
    }
}

fn put_config(b: &mut BytesMut, c: &Configuration) {
    let enc = c.encode();
    b.put_u32_le(enc.len() as u32);
    b.put_slice(&enc);
}

fn kind_byte(k: EntryKind) -> u8 {
    match k {
        EntryKind::Normal => 0,
        EntryKind::Noop => 1,
        EntryKind::Config => 2,
    }
}

/// Encode `msg` for the wire.
pub fn encode(msg: &Message) -> Bytes {
    let mut b = BytesMut::with_capacity(64 + msg.size_bytes());
    b.put_u8(VERSION);
    b.put_u64_le(msg.from.0);
    b.put_u64_le(msg.to.0);
    b.put_u64_le(msg.term.0);
    match &msg.body {
        MessageBody::Vote(v) => {
            b.put_u8(T_VOTE);
            b.put_u8(u8::from(v.pre_vote) | (u8::from(v.transfer) << 1));
            put_id(&mut b, v.last);
        }
        MessageBody::VoteResponse(v) => {
            b.put_u8(T_VOTE_RESP);
            b.put_u8(u8::from(v.pre_vote) | (u8::from(v.granted) << 1));
        }
        MessageBody::Append(a) => {
            b.put_u8(T_APPEND);
            put_id(&mut b, a.prev);
            b.put_u64_le(a.commit.0);
            b.put_u64_le(a.read_seq);
            b.put_u32_le(a.entries.len() as u32);
            for e in &a.entries {
                b.put_u64_le(e.term.0);
                b.put_u64_le(e.index.0);
                b.put_u8(kind_byte(e.kind));
                b.put_u32_le(e.data.len() as u32);
                b.put_slice(&e.data);
            }
        }
        MessageBody::AppendResponse(r) => {
            b.put_u8(T_APPEND_RESP);
            b.put_u64_le(r.commit.0);
            b.put_u64_le(r.read_seq);
            match r.outcome {
                AppendOutcome::Accepted { match_index } => {
                    b.put_u8(0);
                    b.put_u64_le(match_index.0);
                }
                AppendOutcome::Rejected {
                    rejected_prev,
                    hint,
                } => {
                    b.put_u8(1);
                    b.put_u64_le(rejected_prev.0);
                    put_opt(&mut b, hint.term.map(|t| t.0));
                    b.put_u64_le(hint.index.0);
                }
            }
        }
        MessageBody::Snapshot(s) => {
            b.put_u8(T_SNAPSHOT);
            put_id(&mut b, s.meta.last);
            put_config(&mut b, &s.meta.config);
            b.put_u64_le(s.offset);
            b.put_u64_le(s.total_bytes);
            b.put_u64_le(s.read_seq);
            b.put_u32_le(s.data.len() as u32);
            b.put_slice(&s.data);
        }
        MessageBody::SnapshotResponse(r) => {
            b.put_u8(T_SNAPSHOT_RESP);
            b.put_u64_le(r.snapshot_index.0);
            b.put_u64_le(r.next_offset);
            b.put_u8(u8::from(r.installed));
            b.put_u64_le(r.read_seq);
        }
        MessageBody::TimeoutNow => b.put_u8(T_TIMEOUT_NOW),
        MessageBody::ReadIndex { ctx } => {
            b.put_u8(T_READ_INDEX);
            b.put_u64_le(*ctx);
        }
        MessageBody::ReadIndexResponse { ctx, index } => {
            b.put_u8(T_READ_INDEX_RESP);
            b.put_u64_le(*ctx);
            put_opt(&mut b, index.map(|i| i.0));
        }
    }
    b.freeze()
}

struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes, WireError> {
        if self.buf.len() - self.pos < n {
            return Err(WireError::Truncated);
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.take(4)?[..].try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.take(8)?[..].try_into().expect("8")))
    }
    fn id(&mut self) -> Result<EntryId, WireError> {
        Ok(EntryId::new(Term(self.u64()?), LogIndex(self.u64()?)))
    }
    fn opt(&mut self) -> Result<Option<u64>, WireError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            _ => Err(WireError::Malformed("option flag")),
        }
    }
    fn flag(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Malformed("bool")),
        }
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// Decode a message; `buf` is sliced, not copied, for entry and snapshot data.
pub fn decode(buf: Bytes) -> Result<Message, WireError> {
    let mut r = Reader { buf, pos: 0 };
    let v = r.u8()?;
    if v != VERSION {
        return Err(WireError::Version(v));
    }
    let from = NodeId(r.u64()?);
    let to = NodeId(r.u64()?);
    let term = Term(r.u64()?);
    let body = match r.u8()? {
        T_VOTE => {
            let flags = r.u8()?;
            if flags > 3 {
                return Err(WireError::Malformed("vote flags"));
            }
            MessageBody::Vote(VoteRequest {
                pre_vote: flags & 1 != 0,
                transfer: flags & 2 != 0,
                last: r.id()?,
            })
        }
        T_VOTE_RESP => {
            let flags = r.u8()?;
            if flags > 3 {
                return Err(WireError::Malformed("vote response flags"));
            }
            MessageBody::VoteResponse(VoteResponse {
                pre_vote: flags & 1 != 0,
                granted: flags & 2 != 0,
            })
        }
        T_APPEND => decode_append(&mut r)?,
        T_APPEND_RESP => {
            let commit = LogIndex(r.u64()?);
            let read_seq = r.u64()?;
            let outcome = match r.u8()? {
                0 => AppendOutcome::Accepted {
                    match_index: LogIndex(r.u64()?),
                },
                1 => AppendOutcome::Rejected {
                    rejected_prev: LogIndex(r.u64()?),
                    hint: ConflictHint {
                        term: r.opt()?.map(Term),
                        index: LogIndex(r.u64()?),
                    },
                },
                _ => return Err(WireError::Malformed("append outcome")),
            };
            MessageBody::AppendResponse(AppendResponse {
                outcome,
                commit,
                read_seq,
            })
        }
        T_SNAPSHOT => {
            let last = r.id()?;
            let n = r.u32()? as usize;
            let config = Configuration::decode(&r.take(n)?)
                .map_err(|_| WireError::Malformed("configuration"))?;
            let offset = r.u64()?;
            let total_bytes = r.u64()?;
            let read_seq = r.u64()?;
            let n = r.u32()? as usize;
            let data = r.take(n)?;
            MessageBody::Snapshot(SnapshotChunk {
                meta: SnapshotMeta { last, config },
                offset,
                total_bytes,
                data,
                read_seq,
            })
        }
        T_SNAPSHOT_RESP => MessageBody::SnapshotResponse(SnapshotResponse {
            snapshot_index: LogIndex(r.u64()?),
            next_offset: r.u64()?,
            installed: r.flag()?,
            read_seq: r.u64()?,
        }),
        T_TIMEOUT_NOW => MessageBody::TimeoutNow,
        T_READ_INDEX => MessageBody::ReadIndex { ctx: r.u64()? },
        T_READ_INDEX_RESP => MessageBody::ReadIndexResponse {
            ctx: r.u64()?,
            index: r.opt()?.map(LogIndex),
        },
        t => return Err(WireError::Tag(t)),
    };
    if r.remaining() != 0 {
        return Err(WireError::Malformed("trailing bytes"));
    }
    Ok(Message {
        from,
        to,
        term,
        body,
    })
}

fn decode_append(r: &mut Reader) -> Result<MessageBody, WireError> {
    const ENTRY_HEADER: usize = 21;
    let prev = r.id()?;
    let commit = LogIndex(r.u64()?);
    let read_seq = r.u64()?;
    let n = r.u32()? as usize;
    if n.saturating_mul(ENTRY_HEADER) > r.remaining() {
        return Err(WireError::Truncated);
    }
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let term = Term(r.u64()?);
        let index = LogIndex(r.u64()?);
        let kind = match r.u8()? {
            0 => EntryKind::Normal,
            1 => EntryKind::Noop,
            2 => EntryKind::Config,
            _ => return Err(WireError::Malformed("entry kind")),
        };
        let len = r.u32()? as usize;
        let data = r.take(len)?;
        entries.push(Entry {
            term,
            index,
            kind,
            data,
        });
    }
    Ok(MessageBody::Append(AppendRequest {
        prev,
        entries,
        commit,
        read_seq,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: MessageBody) -> Message {
        Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(7),
            body,
        }
    }

    fn samples() -> Vec<Message> {
        let e = |i: u64, k| Entry {
            term: Term(3),
            index: LogIndex(i),
            kind: k,
            data: Bytes::from(vec![i as u8; i as usize]),
        };
        vec![
            msg(MessageBody::Vote(VoteRequest {
                pre_vote: true,
                last: EntryId::new(Term(2), LogIndex(9)),
                transfer: true,
            })),
            msg(MessageBody::VoteResponse(VoteResponse {
                pre_vote: false,
                granted: true,
            })),
            msg(MessageBody::Append(AppendRequest {
                prev: EntryId::new(Term(2), LogIndex(4)),
                entries: vec![
                    e(5, EntryKind::Noop),
                    e(6, EntryKind::Normal),
                    e(7, EntryKind::Config),
                ],
                commit: LogIndex(4),
                read_seq: 11,
            })),
            msg(MessageBody::AppendResponse(AppendResponse {
                outcome: AppendOutcome::Rejected {
                    rejected_prev: LogIndex(9),
                    hint: ConflictHint {
                        term: Some(Term(2)),
                        index: LogIndex(5),
                    },
                },
                commit: LogIndex(3),
                read_seq: 2,
            })),
            msg(MessageBody::AppendResponse(AppendResponse {
                outcome: AppendOutcome::Accepted {
                    match_index: LogIndex(12),
                },
                commit: LogIndex(12),
                read_seq: 0,
            })),
            msg(MessageBody::Snapshot(SnapshotChunk {
                meta: SnapshotMeta {
                    last: EntryId::new(Term(3), LogIndex(100)),
                    config: Configuration::new([NodeId(1), NodeId(2), NodeId(3)]),
                },
                offset: 10,
                total_bytes: 30,
                data: Bytes::from_static(b"0123456789"),
                read_seq: 4,
            })),
            msg(MessageBody::SnapshotResponse(SnapshotResponse {
                snapshot_index: LogIndex(100),
                next_offset: 20,
                installed: false,
                read_seq: 4,
            })),
            msg(MessageBody::TimeoutNow),
            msg(MessageBody::ReadIndex { ctx: 99 }),
            msg(MessageBody::ReadIndexResponse {
                ctx: 99,
                index: None,
            }),
        ]
    }

    #[test]
    fn every_message_roundtrips() {
        for m in samples() {
            assert_eq!(decode(encode(&m)).unwrap(), m);
        }
    }

    #[test]
    fn every_truncation_and_extension_is_an_error() {
        for m in samples() {
            let b = encode(&m);
            for n in 0..b.len() {
                assert!(
                    decode(b.slice(..n)).is_err(),
                    "{} cut at {n}",
                    m.kind_name()
                );
            }
            let mut longer = b.to_vec();
            longer.push(0);
            assert!(decode(longer.into()).is_err());
        }
    }

    #[test]
    fn hostile_counts_do_not_allocate() {
        let mut b = encode(&samples()[2]).to_vec();
        // The entry count sits after version, from, to, term, tag, prev, commit, read_seq.
        let at = 1 + 24 + 1 + 16 + 16;
        b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(b.into()), Err(WireError::Truncated));
    }
}
