//! A scripted raftkv member for the client's tests: a real tonic server on 127.0.0.1:0
//! serving `KV`, `RaftKv`, `Maintenance` and `Cluster`, whose answer to each call is decided
//! by a script, and which records every call it sees (method and session).
//!
//! It is not a mock of the client: the client under test talks real gRPC over real sockets,
//! with its real channels, timeouts and retries.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use proto::etcdserverpb::cluster_server::{Cluster, ClusterServer};
use proto::etcdserverpb::kv_server::{Kv, KvServer};
use proto::etcdserverpb::maintenance_server::{Maintenance, MaintenanceServer};
use proto::etcdserverpb::{
    DeleteRangeResponse, Member, MemberListRequest, MemberListResponse, MemberRemoveRequest,
    MemberRemoveResponse, PutResponse, RangeRequest, RangeResponse, ResponseHeader, StatusRequest,
    StatusResponse, TxnResponse,
};
use proto::mvccpb::KeyValue;
use proto::raftkv_v1::raft_kv_server::{RaftKv, RaftKvServer};
use proto::raftkv_v1::{
    AppendRequest, AppendResponse, Session, SessionDeleteRangeRequest, SessionPutRequest,
    SessionTxnRequest,
};
use tokio::sync::Barrier;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

/// One call the fake saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: &'static str,
    pub session: Option<(u64, u64)>,
    pub serializable: bool,
}

/// What the fake does with a call.
pub enum Action {
    /// Answer with the default reply.
    Ok,
    /// Answer with this error.
    Fail(Status),
    /// Wait at the barrier (until as many calls arrived as it counts), then answer Ok.
    Meet(Arc<Barrier>),
}

/// Decides the answer to a call; gets the call and how many calls this fake saw before it.
pub type Script = Arc<dyn Fn(&Seen, usize) -> Action + Send + Sync>;

/// A running fake member; stops when dropped.
pub struct Fake {
    pub id: u64,
    /// `http://127.0.0.1:port`.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    /// A member that answers everything.
    pub async fn healthy(id: u64) -> Fake {
        Fake::spawn(id, Arc::new(|_, _| Action::Ok), State::default()).await
    }

    /// A member following `script`.
    pub async fn scripted(
        id: u64,
        script: impl Fn(&Seen, usize) -> Action + Send + Sync + 'static,
    ) -> Fake {
        Fake::spawn(id, Arc::new(script), State::default()).await
    }

    /// A member following `script` whose Status and MemberList answer from `state`.
    pub async fn spawn(id: u64, script: Script, state: State) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let svc = Svc {
            id,
            script,
            state: Arc::new(state),
            seen: seen.clone(),
        };
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(KvServer::new(svc.clone()))
                .add_service(RaftKvServer::new(svc.clone()))
                .add_service(MaintenanceServer::new(svc.clone()))
                .add_service(ClusterServer::new(svc))
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        Fake {
            id,
            url,
            seen,
            task,
        }
    }

    /// Every call seen, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The sessions of every write seen, in order.
    pub fn sessions(&self) -> Vec<(u64, u64)> {
        self.seen().iter().filter_map(|s| s.session).collect()
    }

    /// How many calls of `method` were seen.
    pub fn count(&self, method: &str) -> usize {
        self.seen().iter().filter(|s| s.method == method).count()
    }
}

/// What Status and MemberList report.
#[derive(Default, Clone)]
pub struct State {
    pub leader: u64,
    pub members: Vec<Member>,
}

/// An address nobody listens on (bound once, then released).
pub fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("127.0.0.1:{}", addr.port())
}

/// An UNAVAILABLE error naming `leader` in the metadata, as a raftkv member sends it.
pub fn unavailable_with_leader(msg: &str, leader: &str) -> Status {
    let mut status = Status::unavailable(msg);
    status
        .metadata_mut()
        .insert(client::LEADER_ENDPOINT_METADATA, leader.parse().unwrap());
    status
}

#[derive(Clone)]
struct Svc {
    id: u64,
    script: Script,
    state: Arc<State>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Svc {
    /// Records the call and runs the script.
    async fn handle(
        &self,
        method: &'static str,
        session: Option<Session>,
        serializable: bool,
    ) -> Result<(), Status> {
        let call = Seen {
            method,
            session: session.map(|s| (s.client_id, s.seq)),
            serializable,
        };
        let before = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(call.clone());
            seen.len() - 1
        };
        match (self.script)(&call, before) {
            Action::Ok => Ok(()),
            Action::Fail(status) => Err(status),
            Action::Meet(barrier) => {
                barrier.wait().await;
                Ok(())
            }
        }
    }

    fn header(&self) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            cluster_id: 1,
            member_id: self.id,
            revision: self.seen.lock().unwrap().len() as i64,
            raft_term: 1,
        })
    }
}

#[tonic::async_trait]
impl Kv for Svc {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let req = req.into_inner();
        self.handle("Range", None, req.serializable).await?;
        Ok(Response::new(RangeResponse {
            header: self.header(),
            kvs: vec![KeyValue {
                key: req.key,
                value: b"value".to_vec(),
                ..KeyValue::default()
            }],
            more: false,
            count: 1,
        }))
    }
}

#[tonic::async_trait]
impl RaftKv for Svc {
    async fn append(
        &self,
        req: Request<AppendRequest>,
    ) -> Result<Response<AppendResponse>, Status> {
        let req = req.into_inner();
        self.handle("Append", req.session, false).await?;
        Ok(Response::new(AppendResponse {
            header: self.header(),
            prev_kv: None,
            value_bytes: req.suffix.len() as u64,
        }))
    }

    async fn session_put(
        &self,
        req: Request<SessionPutRequest>,
    ) -> Result<Response<PutResponse>, Status> {
        self.handle("SessionPut", req.into_inner().session, false)
            .await?;
        Ok(Response::new(PutResponse {
            header: self.header(),
            prev_kv: None,
        }))
    }

    async fn session_delete_range(
        &self,
        req: Request<SessionDeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        self.handle("SessionDeleteRange", req.into_inner().session, false)
            .await?;
        Ok(Response::new(DeleteRangeResponse {
            header: self.header(),
            deleted: 1,
            prev_kvs: Vec::new(),
        }))
    }

    async fn session_txn(
        &self,
        req: Request<SessionTxnRequest>,
    ) -> Result<Response<TxnResponse>, Status> {
        self.handle("SessionTxn", req.into_inner().session, false)
            .await?;
        Ok(Response::new(TxnResponse {
            header: self.header(),
            succeeded: true,
            responses: Vec::new(),
        }))
    }
}

#[tonic::async_trait]
impl Maintenance for Svc {
    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        self.handle("Status", None, false).await?;
        Ok(Response::new(StatusResponse {
            header: self.header(),
            version: "3.4.0".into(),
            leader: self.state.leader,
            raft_term: 1,
            ..StatusResponse::default()
        }))
    }
}

#[tonic::async_trait]
impl Cluster for Svc {
    async fn member_list(
        &self,
        _req: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        self.handle("MemberList", None, false).await?;
        Ok(Response::new(MemberListResponse {
            header: self.header(),
            members: self.state.members.clone(),
        }))
    }

    async fn member_remove(
        &self,
        req: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        self.handle("MemberRemove", None, false).await?;
        let id = req.into_inner().id;
        Ok(Response::new(MemberRemoveResponse {
            header: self.header(),
            members: self
                .state
                .members
                .iter()
                .filter(|m| m.id != id)
                .cloned()
                .collect(),
        }))
    }
}
