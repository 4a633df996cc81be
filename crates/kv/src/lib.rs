//! raftkv's replicated state machine: etcd v3 key/value semantics without MVCC history,
//! exactly-once client sessions, and a checksummed snapshot — pure and deterministic.
//!
//! Module map:
//! - [`types`]: the requests and responses, field for field etcd's `KV` messages
//!   ([`RangeRequest`], [`PutRequest`], [`DeleteRangeRequest`], [`TxnRequest`]) plus raftkv's
//!   [`AppendRequest`];
//! - [`keys`]: [`KeyRange`], what etcd's `(key, range_end)` means;
//! - [`store`]: [`Store`], the ordered keys and the revision rules;
//! - [`txn`]: etcd's txn validation, duplicate-key rule, compares and branch choice;
//! - [`session`]: [`Sessions`], the exactly-once table and its deterministic expiry;
//! - [`command`]: [`Command`] (the bytes of a log entry) and [`CommandResult`] (of a reply);
//! - `codec` (private): the binary layout of everything;
//! - [`machine`]: [`KvStateMachine`], `replica`'s [`replica::StateMachine`], and the snapshot;
//! - [`watch`]: [`Event`]s of writes and the [`WatchHub`] of a node's watchers;
//! - [`error`]: [`KvError`] and [`DecodeError`].
//!
//! Owns: the meaning of every key/value request and the bytes it travels and rests in.
//! Must never: read a clock, use randomness, spawn threads, touch sockets or files, iterate a
//! hash map, or panic on bytes from outside (entries, results, snapshots via `try_restore`);
//! keep more than the current revision for reads (a read at an older revision is refused as
//! [`KvError::Compacted`]: there is no MVCC history; watchers get a bounded window of recent
//! events, and a start before it is a compaction to them).
//!
//! A command's life, as the server and the simulator drive it:
//!
//! ```
//! use kv::{Command, KvConfig, KvStateMachine, PutRequest, RangeRequest, Response, decode_result};
//! use raft::LogIndex;
//! use replica::StateMachine;
//!
//! let mut sm = KvStateMachine::new(KvConfig::default());
//! // The leader proposes the encoded command; every node applies the committed entry.
//! let entry = Command::with_session(PutRequest::new("greeting", "hello"), 42, 1).encode();
//! let reply = sm.apply(LogIndex(1), &entry);
//! let Ok(Response::Put(put)) = decode_result(&reply).unwrap() else { panic!() };
//! assert_eq!(put.revision, 2); // an empty store is at revision 1
//!
//! // A retry of the same (client, seq) is not applied again and gets the same bytes.
//! assert_eq!(sm.apply(LogIndex(2), &entry), reply);
//! assert_eq!(sm.revision(), 2);
//!
//! // Reads are served from the applied state (after ReadIndex, or serializable).
//! let got = sm.read(&RangeRequest::key("greeting")).unwrap();
//! assert_eq!(got.kvs[0].value, "hello");
//!
//! // A snapshot carries keys, revision, sessions and the applied index.
//! let mut other = KvStateMachine::default();
//! other.restore(&sm.snapshot());
//! assert_eq!(other, sm);
//! ```

mod codec;
pub mod command;
pub mod error;
pub mod keys;
pub mod machine;
pub mod meta;
pub mod session;
pub mod store;
pub mod txn;
pub mod types;
pub mod watch;

pub use command::{
    decode_result, encode_result, ClientSeq, Command, CommandResult, COMMAND_FORMAT, RESULT_FORMAT,
};
pub use error::{DecodeError, KvError};
pub use keys::KeyRange;
pub use machine::{
    KvConfig, KvReader, KvStateMachine, SESSIONS_MAX_DEFAULT, SNAPSHOT_FORMAT, SNAPSHOT_MAGIC,
};
pub use meta::{MetaCommand, META_ENTRIES_MAX, META_FORMAT};
pub use session::{Admission, Session, Sessions};
pub use store::{Store, INITIAL_REVISION};
pub use txn::{TXN_DEPTH_MAX, TXN_OPS_MAX};
pub use types::*;
pub use watch::{
    Event, EventKind, Registered, WatchHub, WatchNotice, WatchSink, WatchSpec, WatcherId,
    WATCH_HISTORY_DEFAULT,
};
