//! The on-disk format: file headers, record framing and record payloads, with no I/O.
//!
//! A segment file is a [`SEGMENT_HEADER_BYTES`]-byte header followed by records. A record is
//! `[len: u32 LE][crc32c: u32 LE][kind: u8][payload: len bytes]`; the CRC covers kind and
//! payload. A snapshot file and the identity file are one header plus a body and a trailing
//! CRC. All integers are little-endian.
//!
//! Owns: encoding and decoding of every byte the storage crate writes. Must never: panic on
//! any input (decoders return [`DecodeError`]), or accept a record whose CRC does not match.

use bytes::Bytes;
use raft::{Configuration, Entry, EntryId, EntryKind, HardState, LogIndex, NodeId, Term};
use thiserror::Error;

/// Version of every file format in this module. Bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;
pub const SEGMENT_MAGIC: &[u8; 8] = b"RKVWAL\0\x01";
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"RKVSNAP\x01";
pub const IDENTITY_MAGIC: &[u8; 8] = b"RKVID\0\0\x01";
/// Segment header: magic, version, reserved, segment sequence, cluster id, node id, CRC, pad.
pub const SEGMENT_HEADER_BYTES: usize = 48;
/// Record frame before the payload: length, CRC, kind.
pub const RECORD_HEADER_BYTES: usize = 9;
/// Largest record payload accepted (an entry bigger than this is refused at append).
pub const RECORD_PAYLOAD_MAX: usize = 64 << 20;

/// Why bytes did not decode.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("bad magic")]
    BadMagic,
    #[error("unsupported format version {found} (this build reads version {FORMAT_VERSION})")]
    Version { found: u32 },
    #[error("checksum mismatch")]
    Checksum,
    #[error("record length {len} is out of range")]
    Length { len: usize },
    #[error("unknown record kind {kind}")]
    Kind { kind: u8 },
    #[error("malformed {what}")]
    Malformed { what: &'static str },
}

/// Who a data directory belongs to: written once at creation, checked at every open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub cluster_id: u64,
    pub node_id: NodeId,
    /// Membership the cluster was bootstrapped with (used until a snapshot or configuration
    /// entry says otherwise).
    pub bootstrap: Configuration,
}

/// One WAL record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A log entry; an entry at or below the current last index replaces that suffix.
    Entry(Entry),
    /// The latest hard state.
    HardState(HardState),
    /// A snapshot covering the log up to `last` became current. `keep_suffix`: the entries
    /// after it stay (the log held `last`); otherwise the whole log is dropped.
    Snapshot { last: EntryId, keep_suffix: bool },
}

const KIND_ENTRY: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_SNAPSHOT: u8 = 3;

/// A little-endian reader that never panics.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let have = self.buf.len() - self.pos;
        if n > have {
            return Err(DecodeError::Truncated { need: n, have });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.bytes(4)?.try_into().expect("4")))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().expect("8")))
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }
    pub(crate) fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

fn entry_kind_byte(k: EntryKind) -> u8 {
    match k {
        EntryKind::Normal => 0,
        EntryKind::Noop => 1,
        EntryKind::Config => 2,
    }
}

fn entry_kind(b: u8) -> Result<EntryKind, DecodeError> {
    match b {
        0 => Ok(EntryKind::Normal),
        1 => Ok(EntryKind::Noop),
        2 => Ok(EntryKind::Config),
        _ => Err(DecodeError::Malformed { what: "entry kind" }),
    }
}

/// Payload bytes of an entry record (for size limits before encoding).
pub fn entry_payload_bytes(e: &Entry) -> usize {
    17 + e.data.len()
}

/// Append the framed record to `out`.
pub fn encode_record(rec: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_BYTES]);
    let kind = match rec {
        Record::Entry(e) => {
            out.extend_from_slice(&e.term.0.to_le_bytes());
            out.extend_from_slice(&e.index.0.to_le_bytes());
            out.push(entry_kind_byte(e.kind));
            out.extend_from_slice(&e.data);
            KIND_ENTRY
        }
        Record::HardState(hs) => {
            out.extend_from_slice(&hs.term.0.to_le_bytes());
            out.extend_from_slice(&hs.vote.0.to_le_bytes());
            out.extend_from_slice(&hs.commit.0.to_le_bytes());
            KIND_HARD_STATE
        }
        Record::Snapshot { last, keep_suffix } => {
            out.extend_from_slice(&last.term.0.to_le_bytes());
            out.extend_from_slice(&last.index.0.to_le_bytes());
            out.push(u8::from(*keep_suffix));
            KIND_SNAPSHOT
        }
    };
    let payload_len = out.len() - start - RECORD_HEADER_BYTES;
    debug_assert!(payload_len <= RECORD_PAYLOAD_MAX);
    out[start + 8] = kind;
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decode one record at the start of `buf`; returns it and its framed length.
pub fn decode_record(buf: &[u8]) -> Result<(Record, usize), DecodeError> {
    let mut r = Reader::new(buf);
    let len = r.u32()? as usize;
    let crc = r.u32()?;
    if len == 0 || len > RECORD_PAYLOAD_MAX {
        return Err(DecodeError::Length { len });
    }
    let body = r.bytes(len + 1)?;
    if crc32c::crc32c(body) != crc {
        return Err(DecodeError::Checksum);
    }
    let rec = decode_payload(body[0], &body[1..])?;
    Ok((rec, RECORD_HEADER_BYTES + len))
}

/// Like [`decode_record`] on `buf[at..]`, but an entry's data is a zero-copy slice of `buf`.
pub fn decode_record_in(buf: &Bytes, at: usize) -> Result<(Record, usize), DecodeError> {
    let (mut rec, n) = decode_record(&buf[at..])?;
    if let Record::Entry(e) = &mut rec {
        let start = at + RECORD_HEADER_BYTES + 17;
        e.data = buf.slice(start..at + n);
    }
    Ok((rec, n))
}

fn decode_payload(kind: u8, payload: &[u8]) -> Result<Record, DecodeError> {
    let mut r = Reader::new(payload);
    let rec = match kind {
        KIND_ENTRY => {
            let term = Term(r.u64()?);
            let index = LogIndex(r.u64()?);
            let kind = entry_kind(r.u8()?)?;
            let data = Bytes::copy_from_slice(r.rest());
            Record::Entry(Entry {
                term,
                index,
                kind,
                data,
            })
        }
        KIND_HARD_STATE => Record::HardState(HardState {
            term: Term(r.u64()?),
            vote: NodeId(r.u64()?),
            commit: LogIndex(r.u64()?),
        }),
        KIND_SNAPSHOT => {
            let last = EntryId::new(Term(r.u64()?), LogIndex(r.u64()?));
            let keep_suffix = match r.u8()? {
                0 => false,
                1 => true,
                _ => {
                    return Err(DecodeError::Malformed {
                        what: "snapshot flag",
                    })
                }
            };
            Record::Snapshot { last, keep_suffix }
        }
        kind => return Err(DecodeError::Kind { kind }),
    };
    if !r.done() {
        return Err(DecodeError::Malformed {
            what: "record with trailing bytes",
        });
    }
    Ok(rec)
}

/// The header of segment `seq`.
pub fn encode_segment_header(seq: u64, id: &Identity) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEGMENT_HEADER_BYTES);
    out.extend_from_slice(SEGMENT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&id.cluster_id.to_le_bytes());
    out.extend_from_slice(&id.node_id.0.to_le_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    debug_assert_eq!(out.len(), SEGMENT_HEADER_BYTES);
    out
}

/// A decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub seq: u64,
    pub cluster_id: u64,
    pub node_id: NodeId,
}

pub fn decode_segment_header(buf: &[u8]) -> Result<SegmentHeader, DecodeError> {
    let mut r = Reader::new(buf);
    if r.bytes(8)? != SEGMENT_MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = r.u32()?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::Version { found: version });
    }
    let _reserved = r.u32()?;
    let seq = r.u64()?;
    let cluster_id = r.u64()?;
    let node_id = NodeId(r.u64()?);
    let crc = r.u32()?;
    if crc32c::crc32c(&buf[..40]) != crc {
        return Err(DecodeError::Checksum);
    }
    Ok(SegmentHeader {
        seq,
        cluster_id,
        node_id,
    })
}

/// Check magic, version and trailing CRC of a whole-file format; returns the body.
fn open_checked<'a>(buf: &'a [u8], magic: &[u8; 8]) -> Result<Reader<'a>, DecodeError> {
    if buf.len() < 16 {
        return Err(DecodeError::Truncated {
            need: 16,
            have: buf.len(),
        });
    }
    let mut r = Reader::new(buf);
    if r.bytes(8)? != magic {
        return Err(DecodeError::BadMagic);
    }
    let version = r.u32()?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::Version { found: version });
    }
    let (body, tail) = buf.split_at(buf.len() - 4);
    let crc = u32::from_le_bytes(tail.try_into().expect("4"));
    if crc32c::crc32c(body) != crc {
        return Err(DecodeError::Checksum);
    }
    Ok(Reader::new(&body[12..]))
}

fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn encode_config(c: &Configuration, out: &mut Vec<u8>) {
    let b = c.encode();
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(&b);
}

fn decode_config(r: &mut Reader<'_>) -> Result<Configuration, DecodeError> {
    let n = r.u32()? as usize;
    Configuration::decode(r.bytes(n)?).map_err(|_| DecodeError::Malformed {
        what: "configuration",
    })
}

pub fn encode_identity(id: &Identity) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(IDENTITY_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&id.cluster_id.to_le_bytes());
    out.extend_from_slice(&id.node_id.0.to_le_bytes());
    encode_config(&id.bootstrap, &mut out);
    seal(out)
}

pub fn decode_identity(buf: &[u8]) -> Result<Identity, DecodeError> {
    let mut r = open_checked(buf, IDENTITY_MAGIC)?;
    let cluster_id = r.u64()?;
    let node_id = NodeId(r.u64()?);
    let bootstrap = decode_config(&mut r)?;
    if !r.done() {
        return Err(DecodeError::Malformed { what: "identity" });
    }
    Ok(Identity {
        cluster_id,
        node_id,
        bootstrap,
    })
}

/// A snapshot file: identity of the writer, metadata, state-machine bytes.
pub fn encode_snapshot(cluster_id: u64, snap: &raft::Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(snap.data.len() + 64);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&cluster_id.to_le_bytes());
    out.extend_from_slice(&snap.meta.last.term.0.to_le_bytes());
    out.extend_from_slice(&snap.meta.last.index.0.to_le_bytes());
    encode_config(&snap.meta.config, &mut out);
    out.extend_from_slice(&(snap.data.len() as u64).to_le_bytes());
    out.extend_from_slice(&snap.data);
    seal(out)
}

/// Decode a snapshot file; returns the cluster id it was written for and the snapshot.
pub fn decode_snapshot(buf: &[u8]) -> Result<(u64, raft::Snapshot), DecodeError> {
    let mut r = open_checked(buf, SNAPSHOT_MAGIC)?;
    let cluster_id = r.u64()?;
    let last = EntryId::new(Term(r.u64()?), LogIndex(r.u64()?));
    let config = decode_config(&mut r)?;
    let n = r.u64()?;
    let data = r.bytes(usize::try_from(n).map_err(|_| DecodeError::Length { len: usize::MAX })?)?;
    if !r.done() {
        return Err(DecodeError::Malformed { what: "snapshot" });
    }
    Ok((
        cluster_id,
        raft::Snapshot {
            meta: raft::SnapshotMeta { last, config },
            data: Bytes::copy_from_slice(data),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_entry() -> impl Strategy<Value = Entry> {
        (
            any::<u64>(),
            any::<u64>(),
            0u8..3,
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(t, i, k, d)| Entry {
                term: Term(t),
                index: LogIndex(i),
                kind: entry_kind(k).unwrap(),
                data: d.into(),
            })
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        prop_oneof![
            arb_entry().prop_map(Record::Entry),
            (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(t, v, c)| {
                Record::HardState(HardState {
                    term: Term(t),
                    vote: NodeId(v),
                    commit: LogIndex(c),
                })
            }),
            (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(t, i, k)| Record::Snapshot {
                last: EntryId::new(Term(t), LogIndex(i)),
                keep_suffix: k
            }),
        ]
    }

    proptest! {
        #[test]
        fn records_roundtrip(recs in proptest::collection::vec(arb_record(), 0..20)) {
            let mut buf = Vec::new();
            for r in &recs {
                encode_record(r, &mut buf);
            }
            let mut at = 0;
            let mut out = Vec::new();
            while at < buf.len() {
                let (r, n) = decode_record(&buf[at..]).unwrap();
                out.push(r);
                at += n;
            }
            prop_assert_eq!(out, recs);
        }

        #[test]
        fn any_single_bit_flip_is_detected(rec in arb_record(), bit in any::<usize>()) {
            let mut buf = Vec::new();
            encode_record(&rec, &mut buf);
            let bit = bit % (buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            match decode_record(&buf) {
                Err(_) => {}
                Ok((r, _)) => prop_assert!(false, "flip of bit {bit} decoded as {r:?}"),
            }
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_record(&bytes);
            let _ = decode_segment_header(&bytes);
            let _ = decode_identity(&bytes);
            let _ = decode_snapshot(&bytes);
        }
    }

    #[test]
    fn zeros_are_not_a_record() {
        assert_eq!(
            decode_record(&[0u8; 64]),
            Err(DecodeError::Length { len: 0 })
        );
    }

    #[test]
    fn headers_and_files_roundtrip() {
        let id = Identity {
            cluster_id: 7,
            node_id: NodeId(3),
            bootstrap: Configuration::new([NodeId(1), NodeId(2), NodeId(3)]),
        };
        let h = encode_segment_header(42, &id);
        assert_eq!(
            decode_segment_header(&h).unwrap(),
            SegmentHeader {
                seq: 42,
                cluster_id: 7,
                node_id: NodeId(3)
            }
        );
        assert_eq!(decode_identity(&encode_identity(&id)).unwrap(), id);
        let snap = raft::Snapshot {
            meta: raft::SnapshotMeta {
                last: EntryId::new(Term(2), LogIndex(9)),
                config: id.bootstrap.clone(),
            },
            data: Bytes::from_static(b"state"),
        };
        assert_eq!(
            decode_snapshot(&encode_snapshot(7, &snap)).unwrap(),
            (7, snap)
        );
        let mut v2 = encode_identity(&id);
        v2[8] = 2;
        assert_eq!(decode_identity(&v2), Err(DecodeError::Version { found: 2 }));
    }
}
