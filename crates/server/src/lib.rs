//! raftkv server: the thin tokio shell around [`replica::Replica`].
//!
//! Module map:
//! - [`runtime`]: one driver loop per node (ticks, peer messages, client requests, WAL sync
//!   reports → `Ready` handling → client answers) and the [`runtime::NodeHandle`] clients use;
//! - [`transport`]: Raft messages between nodes over TCP, batched per peer, size-limited;
//! - [`wire`]: the binary encoding of a Raft message on the peer wire.
//!
//! Owns: threads, sockets, timers and shutdown. Must never: contain consensus or state
//! machine logic (that is `raft`, `replica` and `kv`), or block a network task on the disk.

pub mod runtime;
pub mod transport;
pub mod wire;

pub use runtime::{
    Node, NodeConfig, NodeError, NodeHandle, NodeStatus, ProposeFailure, ReadFailure,
};
