//! [`KvError`] and [`DecodeError`]: what a request or a byte string can do wrong.
//!
//! Owns: the error vocabulary of the crate. Every variant carries only plain data (integers and
//! bytes), so an error is itself part of an encoded apply result and decodes back equal.
//! Must never: carry anything that differs between nodes (no OS error codes, no addresses), or
//! wrap a foreign error type whose text could change under us.

use bytes::Bytes;
use thiserror::Error;

/// Why a request was refused, or why its command could not run. Returned by the [`crate::Store`]
/// operations and carried in the encoded apply result of a log entry. A refused request changes
/// nothing: no key, no revision.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// etcd's `ErrEmptyKey`: a request, compare or op named no key.
    #[error("key is not provided")]
    EmptyKey,
    /// `range_end` is neither empty, nor `"\0"`, nor greater than `key`. (etcd answers such a
    /// range with nothing; raftkv refuses it so the caller's mistake is visible.)
    #[error("range_end {range_end:?} must be greater than key {key:?} (or empty, or \"\\0\")")]
    InvalidRange { key: Bytes, range_end: Bytes },
    /// etcd's `ErrDuplicateKey`: one txn writes a key twice (two puts, or a put inside a
    /// deleted range), counting nested txns as etcd's `checkIntervals` does.
    #[error("duplicate key given in txn request: {key:?}")]
    DuplicateKey { key: Bytes },
    /// etcd's `ErrTooManyOps`: more than [`crate::TXN_OPS_MAX`] compares, success ops or
    /// failure ops (nested txns share the budget of their parent, as in etcd).
    #[error("too many operations in txn request: {ops} > {max}")]
    TooManyOps { ops: u64, max: u64 },
    /// Txns nested deeper than [`crate::TXN_DEPTH_MAX`].
    #[error("txn nested deeper than {max} levels")]
    TxnTooDeep { max: u32 },
    /// etcd's `ErrKeyNotFound`: a put with `ignore_value` or `ignore_lease` on a missing key.
    #[error("key not found: {key:?}")]
    KeyNotFound { key: Bytes },
    /// etcd's `ErrValueProvided`: a put with `ignore_value` and a non-empty value.
    #[error("value is provided with ignore_value")]
    ValueProvided,
    /// A range at a revision below the current one. raftkv keeps no MVCC history: only the
    /// current revision can be read, so every older revision counts as compacted.
    #[error(
        "required revision {requested} has been compacted (raftkv keeps no history; current revision is {current})"
    )]
    Compacted { requested: i64, current: i64 },
    /// A range at a revision above the current one (etcd's `ErrFutureRev`).
    #[error("required revision {requested} is a future revision (current revision is {current})")]
    FutureRev { requested: i64, current: i64 },
    /// The session already applied a higher sequence number; this command is an old retry
    /// whose reply is no longer kept. Not applied.
    #[error("stale sequence {seq} for client {client_id}: the session has applied {last_seq}")]
    StaleSequence {
        client_id: u64,
        seq: u64,
        last_seq: u64,
    },
    /// The client's session is unknown but the command is not its first (`seq > 1`): the
    /// session expired (was evicted) or never existed. Not applied, because an earlier try of
    /// it may have been; the client must start a new session and treat the outcome as unknown.
    #[error("session of client {client_id} expired or unknown (seq {seq}); start a new session")]
    SessionExpired { client_id: u64, seq: u64 },
    /// Sequence numbers start at 1; 0 is refused.
    #[error("sequence number 0 is invalid for client {client_id}; sequences start at 1")]
    InvalidSequence { client_id: u64 },
    /// The entry or snapshot bytes do not decode.
    #[error("undecodable bytes: {0}")]
    Decode(#[from] DecodeError),
    /// A meta put of a new key when the meta map holds [`crate::META_ENTRIES_MAX`] already.
    #[error("the replicated metadata map is full ({max} entries)")]
    MetaFull { max: u64 },
}

/// Why bytes did not decode. Offsets count bytes from the start of the input.
#[derive(Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("input truncated at byte {offset}")]
    Truncated { offset: u64 },
    /// The format version byte is not one this build reads.
    #[error("unknown format version {found}")]
    Version { found: u8 },
    /// The snapshot does not start with the raftkv snapshot magic.
    #[error("not a raftkv snapshot (bad magic)")]
    Magic,
    /// A tag, enum value or flag byte holds a value no variant has.
    #[error("invalid tag {tag} at byte {offset}")]
    BadTag { tag: u8, offset: u64 },
    /// A varint is longer than 10 bytes, overflows 64 bits, or is overlong (not canonical).
    #[error("varint overflow at byte {offset}")]
    Varint { offset: u64 },
    /// A length runs past the end of the input.
    #[error("length {len} at byte {offset} runs past the end of the input")]
    Length { len: u64, offset: u64 },
    /// Bytes are left over after the value.
    #[error("{extra} trailing bytes at byte {offset}")]
    Trailing { extra: u64, offset: u64 },
    /// Txns nested deeper than [`crate::TXN_DEPTH_MAX`].
    #[error("nesting deeper than {max} at byte {offset}")]
    TooDeep { max: u32, offset: u64 },
    /// The value decoded but breaks an invariant of the state (keys out of order, a
    /// revision above the store revision, a duplicate session...).
    #[error("invalid value at byte {offset}")]
    Invalid { offset: u64 },
    /// The crc32c trailer does not match the contents.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
}
