//! raftkv's node logic, written once without async: the tokio server and the simulator both
//! drive exactly this code.
//!
//! Module map:
//! - [`traits`]: the seams a node is generic over — [`StateMachine`] (what entries are applied
//!   to) and [`Transport`] (where messages go); storage is `storage::LogStore`;
//! - [`completion`]: [`Completion`], the answers a node owes its waiting clients;
//! - [`waiters`]: proposals and reads waiting for their entry to apply;
//! - [`node`]: [`Replica`], the core plus store plus state machine, and the `Ready` loop.
//!
//! Owns: the order of side effects for one node — persist → sync (if required) → send →
//! restore/apply → reply → advance — the snapshot policy, and matching applied entries to
//! the proposals and reads that wait for them.
//! Must never: block, sleep, read a clock, spawn, or touch sockets and files directly (those
//! live behind `LogStore` and `Transport`); send a durability-promising message before its
//! `Ready` is synced; apply an entry twice or out of order.
//!
//! The loop, on a one-node cluster:
//!
//! ```
//! use raft::{Configuration, Config, NodeId, Message};
//! use replica::{Replica, SnapshotPolicy, StateMachine, Transport, Completion};
//! use storage::MemStore;
//!
//! #[derive(Default)]
//! struct Counter(u64);
//! impl StateMachine for Counter {
//!     fn apply(&mut self, _index: raft::LogIndex, _data: &[u8]) -> bytes::Bytes {
//!         self.0 += 1;
//!         self.0.to_le_bytes().to_vec().into()
//!     }
//!     fn snapshot(&self) -> bytes::Bytes { self.0.to_le_bytes().to_vec().into() }
//!     fn restore(&mut self, data: &[u8]) { self.0 = u64::from_le_bytes(data.try_into().unwrap()) }
//! }
//! struct Nowhere;
//! impl Transport for Nowhere { fn send(&mut self, _msg: Message) {} }
//!
//! let store = MemStore::new(Configuration::new([NodeId(1)]));
//! let mut node = Replica::new(Config::new(NodeId(1)), store, Counter::default(), SnapshotPolicy::never()).unwrap();
//! node.campaign();
//! node.handle_ready(&mut Nowhere).unwrap();
//! node.propose("x".into(), 7).unwrap();
//! let done = node.handle_ready(&mut Nowhere).unwrap();
//! assert!(matches!(done[0], Completion::Applied { token: 7, .. }));
//! ```

pub mod completion;
pub mod node;
pub mod traits;
pub mod waiters;

pub use completion::{Completion, ProposalError};
pub use node::{Replica, ReplicaError, SnapshotJob, SnapshotPolicy, WrittenSnapshot};
pub use traits::{StateMachine, Transport};
