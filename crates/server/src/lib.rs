//! raftkv server: the thin tokio shell around [`replica::Replica`].
//!
//! Module map:
//! - [`admin`]: the admin HTTP endpoint — `/metrics`, `/health`, `/status`, `/cluster`, the
//!   `/events` stream and the live dashboard page — and the telemetry the node loop reports;
//! - [`server`]: [`Server`], one member as `raftkv serve` runs it (node + gRPC client port);
//! - [`services`]: the gRPC services (etcd `KV`, `Cluster`, `Maintenance`; `raftkv.v1.RaftKv`;
//!   the member-to-member `Peer.Forward`);
//! - [`watch`]: etcd's `Watch` service, fed from the node's applied writes;
//! - [`api`]: propose/forward/read under a deadline, the retry rules, etcd's error texts;
//! - [`convert`]: etcd protobuf messages to and from the `kv` crate's types;
//! - [`strict`]: unary requests with a field the API does not define are refused, named;
//! - [`members`]: the member table, member and cluster ids, advertised client URLs;
//! - [`membership`]: MemberAdd/Remove/Promote/Update on the leader, joining an existing
//!   cluster;
//! - [`runtime`]: one driver loop per node (ticks, peer messages, client requests, WAL sync
//!   reports → `Ready` handling → client answers) and the [`runtime::NodeHandle`] clients use;
//! - [`transport`]: Raft messages between nodes over TCP, batched per peer, size-limited;
//! - [`wire`]: the binary encoding of a Raft message on the peer wire.
//!
//! Owns: threads, sockets, timers and shutdown. Must never: contain consensus or state
//! machine logic (that is `raft`, `replica` and `kv`), or block a network task on the disk.

pub mod admin;
pub mod api;
pub mod convert;
pub mod forward;
pub mod members;
pub mod membership;
pub mod runtime;
pub mod server;
pub mod services;
pub mod strict;
pub mod transport;
pub mod watch;
pub mod wire;

pub use runtime::{
    Node, NodeConfig, NodeError, NodeHandle, NodeStatus, ProposeFailure, ReadFailure,
};
pub use server::{Server, ServerConfig, ServerError};
