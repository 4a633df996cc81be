//! raftkv's Rust client: talk to a raftkv cluster like `etcd-client` talks to etcd, with
//! leader discovery, bounded retries and exactly-once writes.
//!
//! Module map:
//! - [`config`]: [`ClientConfig`] (endpoints, timeouts, limits) and [`normalize_endpoint`];
//! - [`client`]: [`Client`] and its calls (`put`, `get`/`range`, `delete`/`delete_range`,
//!   `append`, `txn`, `member_list`, `status`, `status_all`, `sync_endpoints`);
//! - [`error`]: [`ClientError`], and which server errors are transient;
//! - `endpoints` (private): a lazy gRPC channel per member and which member to ask next;
//! - `retry` (private): the attempt loop — deadline, failover, backoff;
//! - `session` (private): the pool of exactly-once sessions;
//! - [`keys`]: [`KeyRange`] and [`prefix_range_end`], etcd's `(key, range_end)` spellings;
//! - [`watch`]: [`Watcher`], a watch that resumes on another member from where it was;
//! - [`display`]: etcdctl-style text and JSON renderings of responses.
//!
//! How a call runs: it goes to the member believed to be the leader (learned from the
//! `raftkv-leader-endpoint` metadata a member adds to its errors, or from
//! [`Client::sync_endpoints`]), else to the last member that answered. A transient failure
//! (no leader, leader changed, timed out, connection refused or broken) moves to the named
//! leader or the next member and tries again — at once while untried members remain, after a
//! 20–200 ms backoff once all were asked — until [`ClientConfig::request_timeout`] passes.
//! Final errors (invalid argument, too large, session problems) return at once.
//!
//! Writes are exactly once. Each write takes a session `(client_id, seq)` from a pool — so two
//! writes in flight never share one — and every retry repeats the same `seq`: the server
//! applies it once and answers repeats with the stored reply, so a write retried after
//! "leader changed" or a lost answer is not applied twice.
//!
//! Owns: everything between a Rust caller and the cluster's gRPC ports.
//! Must never: apply a write twice (no retry with a new `seq` after an attempt that may have
//! been applied), loop without sleeping, or block past a call's deadline.
//!
//! ```no_run
//! use client::{Client, ClientConfig, KeyRange};
//!
//! # async fn demo() -> Result<(), client::ClientError> {
//! let client = Client::connect(ClientConfig::new([
//!     "127.0.0.1:2379",
//!     "127.0.0.1:22379",
//!     "127.0.0.1:32379",
//! ]))
//! .await?;
//! client.put("greeting", "hello").await?;
//! let appended = client.append("greeting", ", world").await?;
//! assert_eq!(appended.value_bytes, 12);
//!
//! let got = client.get("greeting").await?;
//! assert_eq!(got.kvs[0].value, b"hello, world");
//!
//! let users = client.range(KeyRange::prefix("users/").range_request()).await?;
//! println!("{} users", users.count);
//! client.delete_range(KeyRange::prefix("users/").delete_request()).await?;
//!
//! for (endpoint, status) in client.status_all().await {
//!     match status {
//!         Ok(s) => println!("{endpoint}: term {} applied {}", s.raft_term, s.raft_applied_index),
//!         Err(e) => println!("{endpoint}: {e}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod config;
pub mod display;
mod endpoints;
pub mod error;
pub mod keys;
mod retry;
mod session;
pub mod watch;

pub use client::Client;
pub use config::{normalize_endpoint, ClientConfig};
pub use endpoints::ENDPOINTS_MAX;
pub use error::{ClientError, LEADER_ENDPOINT_METADATA};
pub use keys::{prefix_range_end, KeyRange};
pub use watch::{WatchOptions, Watcher};

/// The wire types, for requests and responses (etcd's `etcdserverpb`/`mvccpb`, raftkv's
/// `raftkv.v1`).
pub use proto;
pub use proto::etcdserverpb::WatchResponse;
pub use proto::etcdserverpb::{
    compare, request_op, response_op, Compare, DeleteRangeRequest, DeleteRangeResponse, Member,
    MemberListResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp,
    ResponseHeader, ResponseOp, StatusResponse, TxnRequest, TxnResponse,
};
pub use proto::mvccpb::{Event, KeyValue};
pub use proto::raftkv_v1::{AppendRequest, AppendResponse, Session};
