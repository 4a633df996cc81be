//! raftkv's wire types: prost messages and tonic clients/servers for everything raftkv says
//! on the network. Nothing here has behaviour; it is the edge where protobuf lives, so the
//! core crates (`raft`, `kv`, `replica`) never see a generated type.
//!
//! Module map (one module per protobuf package, generated at build time from `proto/`):
//! - [`etcdserverpb`], [`mvccpb`], [`authpb`]: etcd 3.4's client API, with etcd's package,
//!   service, method and message names and field numbers, so `etcdctl` and the etcd client
//!   libraries work unmodified. Services: `KV`, `Watch`, `Lease`, `Cluster`, `Maintenance`,
//!   `Auth`.
//! - [`raftkv::v1`] (also [`raftkv_v1`]): the raftkv extension service `RaftKv` — `Append`,
//!   exactly-once writes through a [`Session`](raftkv_v1::Session) (client id + sequence
//!   number), and `TransferLeader`.
//! - [`raftkv::peer::v1`] (also [`peer`]): member-to-member RPCs on the client port:
//!   `Peer.Forward` carries a follower's write (an opaque, server-encoded command) to the
//!   leader. (Raft messages travel on the peer port's own framed TCP transport.)
//! - [`FILE_DESCRIPTOR_SET`]: every file above as an encoded `FileDescriptorSet`, for gRPC
//!   reflection.
//!
//! Each package module holds the messages, plus `<service>_client` (e.g.
//! [`etcdserverpb::kv_client::KvClient`]) and `<service>_server` (e.g.
//! [`etcdserverpb::kv_server::KvServer`] wrapping an implementation of
//! [`etcdserverpb::kv_server::Kv`]). Every server trait method has a default body answering
//! `Unimplemented`, so a server implements only what it supports — an `impl Auth for S {}`
//! makes every auth call fail cleanly, which is what etcdctl expects from a server without
//! authentication.
//!
//! Field names are etcd's too (they show in JSON and reflection), and prost snake-cases them:
//! `ID` becomes `id`, `TTL` `ttl`, `dbSizeInUse` `db_size_in_use`, and — oddly —
//! `peerURLs`/`clientURLs` become `peer_ur_ls`/`client_ur_ls`. `bytes` fields are `Vec<u8>`,
//! except the peer package's payloads, which are `bytes::Bytes` (handed on without copying).
//!
//! This crate must never: hold logic beyond what prost/tonic generate, depend on another raftkv
//! crate, or change a name or field number of the etcd packages (etcd clients would break
//! silently; `tests/wire.rs` pins the numbers that matter).
//!
//! A server and a client, in one process:
//!
//! ```no_run
//! use proto::etcdserverpb::kv_client::KvClient;
//! use proto::etcdserverpb::kv_server::{Kv, KvServer};
//! use proto::etcdserverpb::{RangeRequest, RangeResponse};
//! use tonic::{Request, Response, Status};
//!
//! struct Store;
//!
//! #[tonic::async_trait]
//! impl Kv for Store {
//!     async fn range(&self, _req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
//!         Ok(Response::new(RangeResponse::default()))
//!     }
//!     // Put, DeleteRange, Txn and Compact answer Unimplemented by default.
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let addr = "127.0.0.1:2379".parse()?;
//! tokio::spawn(tonic::transport::Server::builder().add_service(KvServer::new(Store)).serve(addr));
//! let mut client = KvClient::connect("http://127.0.0.1:2379").await?;
//! let reply = client.range(RangeRequest { key: b"foo".to_vec(), ..Default::default() }).await?;
//! assert!(reply.into_inner().kvs.is_empty());
//! # Ok(())
//! # }
//! ```

/// etcd's key-value records: `KeyValue` and watch `Event` (package `mvccpb`).
pub mod mvccpb {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/mvccpb.rs"));
}

/// etcd's authentication records (package `authpb`); raftkv only declares them.
pub mod authpb {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/authpb.rs"));
}

/// etcd 3.4's client API (package `etcdserverpb`): the `KV`, `Watch`, `Lease`, `Cluster`,
/// `Maintenance` and `Auth` services and their messages.
pub mod etcdserverpb {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}

/// raftkv's own packages (`raftkv.v1`, `raftkv.peer.v1`).
pub mod raftkv {
    /// The raftkv extension API (package `raftkv.v1`): `Append`, exactly-once `Session*`
    /// writes and `TransferLeader`.
    pub mod v1 {
        #![allow(missing_docs)]
        include!(concat!(env!("OUT_DIR"), "/raftkv.v1.rs"));
    }

    /// The node-to-node protocol (package `raftkv.peer.v1`).
    pub mod peer {
        /// Version 1: `Peer.Forward`, a follower's write proposed by the leader.
        pub mod v1 {
            #![allow(missing_docs)]
            include!(concat!(env!("OUT_DIR"), "/raftkv.peer.v1.rs"));
        }
    }
}

pub use raftkv::peer::v1 as peer;
pub use raftkv::v1 as raftkv_v1;

/// Every `.proto` file of this crate (with imports and source info) as an encoded
/// `google.protobuf.FileDescriptorSet`, for a gRPC reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"));
