//! raftkv's consensus core: Raft as the paper (Ongaro & Ousterhout) and MIT 6.824 teach it,
//! written sans-I/O in the etcd-raft / raft-rs model.
//!
//! The core owns terms, roles, the in-memory log, votes, replication progress, snapshots,
//! ReadIndex, leadership transfer and membership changes (one server at a time, learners). It never touches a clock, a thread, a socket, a file or
//! an unseeded RNG: time is `tick()`, input is `step(message)`, and everything to do comes back
//! as a [`Ready`] batch.
//!
//! Module map:
//! - [`types`]: typed ids, entries, hard state, snapshots, configuration (voters and
//!   learners) and [`ConfChange`];
//! - [`message`]: the RPCs as enums;
//! - [`config`]: timing, switches, limits, seed;
//! - [`ready`]: the output batch and roles;
//! - [`observe`]: what observers publish about a node (message kinds and summaries, log
//!   tails, timer readings, the dashboard schema's names);
//! - `log`: the in-memory log and what is stable/applied;
//! - `progress`: per-follower replication state and in-flight windows;
//! - `node`: the [`Raft`] state machine (dispatch by role), with `election`, `replication`,
//!   `snapshot`, `read_only`, `transfer` and `membership` handlers beside it.
//!
//! The driver loop (persist → send → apply → advance):
//!
//! ```
//! use raft::{Config, Configuration, InitialState, NodeId, Raft};
//! let cfg = Config::new(NodeId(1));
//! let mut node = Raft::new(cfg, InitialState::bootstrap(Configuration::new([NodeId(1)]))).unwrap();
//! node.campaign();
//! let id = loop {
//!     if node.has_ready() {
//!         let rd = node.ready();
//!         // 1. persist rd.hard_state / rd.snapshot / rd.entries (fsync if rd.must_sync)
//!         // 2. send rd.messages, then rd.persisted_messages
//!         // 3. apply rd.committed_entries, serve rd.read_states
//!         node.advance(rd);
//!     } else if node.is_leader() {
//!         break node.propose("hello".into()).unwrap();
//!     }
//! };
//! while node.has_ready() {
//!     let rd = node.ready();
//!     node.advance(rd);
//! }
//! assert_eq!(node.applied_index(), id.index);
//! ```

pub mod config;
pub mod error;
pub mod message;
pub mod observe;
pub mod ready;
pub mod types;

mod election;
mod log;
mod membership;
mod node;
mod progress;
mod read_only;
mod replication;
mod rng;
mod snapshot;
mod transfer;

pub use config::Config;
pub use error::{CompactError, ConfChangeError, Error, ProposeError, ReadError, TransferError};
pub use message::{
    AppendOutcome, AppendRequest, AppendResponse, ConflictHint, Message, MessageBody,
    SnapshotChunk, SnapshotResponse, VoteRequest, VoteResponse,
};
pub use node::{InitialState, Raft, Status};
pub use observe::{LogTail, MsgKind, MsgSummary};
pub use ready::{ReadFailure, ReadState, Ready, Role, SoftState};
pub use types::{
    ConfChange, Configuration, Entry, EntryId, EntryKind, HardState, LogIndex, NodeId, Snapshot,
    SnapshotMeta, Term,
};
