//! [`Client`]: the calls, each one deadline-bounded, retried and routed to the leader.
//!
//! Owns: the public calls and which gRPC method serves each one — writes go through the
//! `raftkv.v1.RaftKv` session methods (exactly once), reads through etcd's `KV.Range`,
//! membership through `Cluster.MemberList`, health through `Maintenance.Status` — and the
//! write rule around sessions: take one from the pool, repeat its `seq` on every attempt, and
//! start over with a fresh session only when the server says the session expired and no
//! earlier attempt can have been applied.
//! Must never: retry a write with a different `seq` after an attempt that may have been
//! applied, share a session between two writes in flight, or wait past the deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use proto::etcdserverpb::cluster_client::ClusterClient;
use proto::etcdserverpb::kv_client::KvClient;
use proto::etcdserverpb::maintenance_client::MaintenanceClient;
use proto::etcdserverpb::{
    DeleteRangeRequest, DeleteRangeResponse, MemberAddRequest, MemberAddResponse,
    MemberListRequest, MemberListResponse, MemberPromoteRequest, MemberPromoteResponse,
    MemberRemoveRequest, MemberRemoveResponse, MemberUpdateRequest, MemberUpdateResponse,
    MoveLeaderRequest, PutRequest, PutResponse, RangeRequest, RangeResponse, StatusRequest,
    StatusResponse, TxnRequest, TxnResponse,
};
use proto::raftkv_v1::raft_kv_client::RaftKvClient;
use proto::raftkv_v1::{
    AppendRequest, AppendResponse, Session, SessionDeleteRangeRequest, SessionPutRequest,
    SessionTxnRequest,
};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::config::ClientConfig;
use crate::endpoints::Endpoints;
use crate::error::{classify, describe, ClientError, Verdict};
use crate::keys::KeyRange;
use crate::retry::{run, CallState, Stop};
use crate::session::SessionPool;

/// A handle on a raftkv cluster. Cheap to clone; clones share endpoints, the leader hint and
/// the session pool, and may be used from many tasks at once.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: ClientConfig,
    endpoints: Endpoints,
    sessions: SessionPool,
}

impl Client {
    /// A client for `cfg.endpoints`. Connects nothing yet: each endpoint's connection opens on
    /// its first use, so members that are down do not fail this. Fails only on a bad config.
    pub async fn connect(cfg: ClientConfig) -> Result<Client, ClientError> {
        let urls = cfg.validate()?;
        let endpoints = Endpoints::new(&urls, &cfg)?;
        let sessions = SessionPool::new(cfg.idle_sessions_max);
        Ok(Client {
            inner: Arc::new(Inner {
                cfg,
                endpoints,
                sessions,
            }),
        })
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    pub(crate) fn endpoints_ref(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    /// Every endpoint known (configured ones first, then learned ones), as `http://host:port`.
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.endpoints.urls()
    }

    /// Stores `value` under `key`, exactly once.
    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<PutResponse, ClientError> {
        self.put_with(PutRequest {
            key: key.into(),
            value: value.into(),
            ..PutRequest::default()
        })
        .await
    }

    /// etcd's `Put` with every option, exactly once (`RaftKv.SessionPut`).
    pub async fn put_with(&self, req: PutRequest) -> Result<PutResponse, ClientError> {
        let limit = self.inner.cfg.response_bytes_max;
        self.write(|channel, session, budget| {
            let msg = SessionPutRequest {
                session: Some(session),
                request: Some(req.clone()),
            };
            async move { raftkv(channel, limit).session_put(timed(msg, budget)).await }
        })
        .await
    }

    /// The value of `key` (a linearizable read).
    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<RangeResponse, ClientError> {
        self.range(KeyRange::key(key).range_request()).await
    }

    /// etcd's `Range`. Linearizable unless `req.serializable`; retried on transient failures
    /// (a read changes nothing).
    pub async fn range(&self, req: RangeRequest) -> Result<RangeResponse, ClientError> {
        let limit = self.inner.cfg.response_bytes_max;
        self.read(|channel, budget| {
            let msg = req.clone();
            async move {
                KvClient::new(channel)
                    .max_decoding_message_size(limit)
                    .range(timed(msg, budget))
                    .await
            }
        })
        .await
    }

    /// Deletes `key`, exactly once.
    pub async fn delete(
        &self,
        key: impl Into<Vec<u8>>,
    ) -> Result<DeleteRangeResponse, ClientError> {
        self.delete_range(KeyRange::key(key).delete_request()).await
    }

    /// etcd's `DeleteRange`, exactly once (`RaftKv.SessionDeleteRange`).
    pub async fn delete_range(
        &self,
        req: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, ClientError> {
        let limit = self.inner.cfg.response_bytes_max;
        self.write(|channel, session, budget| {
            let msg = SessionDeleteRangeRequest {
                session: Some(session),
                request: Some(req.clone()),
            };
            async move {
                raftkv(channel, limit)
                    .session_delete_range(timed(msg, budget))
                    .await
            }
        })
        .await
    }

    /// Adds `suffix` to the end of `key`'s value (creating the key), exactly once.
    pub async fn append(
        &self,
        key: impl Into<Vec<u8>>,
        suffix: impl Into<Vec<u8>>,
    ) -> Result<AppendResponse, ClientError> {
        self.append_with(AppendRequest {
            key: key.into(),
            suffix: suffix.into(),
            ..AppendRequest::default()
        })
        .await
    }

    /// `RaftKv.Append` with every option, exactly once (`req.session` is set by the client).
    pub async fn append_with(&self, req: AppendRequest) -> Result<AppendResponse, ClientError> {
        let limit = self.inner.cfg.response_bytes_max;
        self.write(|channel, session, budget| {
            let msg = AppendRequest {
                session: Some(session),
                ..req.clone()
            };
            async move { raftkv(channel, limit).append(timed(msg, budget)).await }
        })
        .await
    }

    /// etcd's `Txn`, exactly once (`RaftKv.SessionTxn`).
    pub async fn txn(&self, req: TxnRequest) -> Result<TxnResponse, ClientError> {
        let limit = self.inner.cfg.response_bytes_max;
        self.write(|channel, session, budget| {
            let msg = SessionTxnRequest {
                session: Some(session),
                request: Some(req.clone()),
            };
            async move { raftkv(channel, limit).session_txn(timed(msg, budget)).await }
        })
        .await
    }

    /// The cluster's members (`Cluster.MemberList`), from any member that answers.
    pub async fn member_list(&self) -> Result<MemberListResponse, ClientError> {
        self.read(|channel, budget| async move {
            ClusterClient::new(channel)
                .member_list(timed(MemberListRequest {}, budget))
                .await
        })
        .await
    }

    /// `Cluster.MemberAdd`: a new member (a learner with `learner`) that will start with
    /// `peer_urls`. Any member forwards it to the leader.
    pub async fn member_add(
        &self,
        peer_urls: Vec<String>,
        learner: bool,
    ) -> Result<MemberAddResponse, ClientError> {
        self.read(|channel, budget| {
            let msg = MemberAddRequest {
                peer_ur_ls: peer_urls.clone(),
                is_learner: learner,
            };
            async move {
                ClusterClient::new(channel)
                    .member_add(timed(msg, budget))
                    .await
            }
        })
        .await
    }

    /// `Cluster.MemberRemove` of member `id`.
    ///
    /// When an earlier attempt may have committed the removal (say the leader being removed
    /// stepped down before it could answer) and a retry finds the member gone, the removal
    /// is taken as done and answered with the current member list: the member is not in the
    /// cluster, which is what the caller asked for.
    pub async fn member_remove(&self, id: u64) -> Result<MemberRemoveResponse, ClientError> {
        let (result, maybe_sent) = self
            .read_noting_sent(|channel, budget| async move {
                ClusterClient::new(channel)
                    .member_remove(timed(MemberRemoveRequest { id }, budget))
                    .await
            })
            .await;
        match result {
            Err(ClientError::Status(status))
                if maybe_sent && status.code() == tonic::Code::NotFound =>
            {
                tracing::debug!(id, "member gone on retry: an earlier attempt removed it");
                let list = self.member_list().await?;
                debug_assert!(list.members.iter().all(|m| m.id != id));
                Ok(MemberRemoveResponse {
                    header: list.header,
                    members: list.members,
                })
            }
            r => r,
        }
    }

    /// `Cluster.MemberPromote` of learner `id` (refused while it is behind the leader).
    pub async fn member_promote(&self, id: u64) -> Result<MemberPromoteResponse, ClientError> {
        self.read(|channel, budget| async move {
            ClusterClient::new(channel)
                .member_promote(timed(MemberPromoteRequest { id }, budget))
                .await
        })
        .await
    }

    /// `Cluster.MemberUpdate`: new peer URLs for member `id`.
    pub async fn member_update(
        &self,
        id: u64,
        peer_urls: Vec<String>,
    ) -> Result<MemberUpdateResponse, ClientError> {
        self.read(|channel, budget| {
            let msg = MemberUpdateRequest {
                id,
                peer_ur_ls: peer_urls.clone(),
            };
            async move {
                ClusterClient::new(channel)
                    .member_update(timed(msg, budget))
                    .await
            }
        })
        .await
    }

    /// `Maintenance.MoveLeader`: hand leadership to member `to` (asked of the leader; a
    /// follower's refusal names the leader, and the call goes there).
    pub async fn move_leader(&self, to: u64) -> Result<(), ClientError> {
        self.sync_endpoints().await?;
        self.read(|channel, budget| async move {
            MaintenanceClient::new(channel)
                .move_leader(timed(MoveLeaderRequest { target_id: to }, budget))
                .await
        })
        .await
        .map(|_| ())
    }

    /// The member id of the leader, as the first member that answers sees it (`None` when it
    /// knows no leader).
    pub async fn leader_id(&self) -> Result<Option<u64>, ClientError> {
        let status = self
            .read(|channel, budget| async move {
                MaintenanceClient::new(channel)
                    .status(timed(StatusRequest {}, budget))
                    .await
            })
            .await?;
        Ok((status.leader != 0).then_some(status.leader))
    }

    /// Learns every member's client URLs from the member list and prefers the leader's.
    /// Returns the member list.
    pub async fn sync_endpoints(&self) -> Result<MemberListResponse, ClientError> {
        let members = self.member_list().await?;
        let endpoints = &self.inner.endpoints;
        endpoints.learn(
            members
                .members
                .iter()
                .flat_map(|m| m.client_ur_ls.iter().map(String::as_str)),
        );
        if let Some(leader) = self.leader_id().await? {
            let url = members
                .members
                .iter()
                .find(|m| m.id == leader)
                .and_then(|m| m.client_ur_ls.first());
            if let Some(url) = url {
                endpoints.prefer(url);
            }
        }
        Ok(members)
    }

    /// `Maintenance.Status` of exactly `endpoint` (one attempt, no failover), bounded by the
    /// request timeout. `endpoint` need not be one of the client's endpoints.
    pub async fn status(&self, endpoint: &str) -> Result<StatusResponse, ClientError> {
        let target = self.inner.endpoints.lookup(endpoint)?;
        let timeout = self.inner.cfg.request_timeout;
        let started = tokio::time::Instant::now();
        let mut maintenance = MaintenanceClient::new(target.channel.clone());
        let call = maintenance.status(timed(StatusRequest {}, timeout));
        let status = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(reply)) => return Ok(reply.into_inner()),
            Ok(Err(status)) => status,
            Err(_) => Status::deadline_exceeded(format!("no answer within {timeout:?}")),
        };
        let last = format!("{}: {}", target.url, describe(&status));
        match classify(status, false) {
            Verdict::Fail(err) => Err(err),
            Verdict::Retry { .. } | Verdict::SessionExpired => Err(ClientError::Unavailable {
                tried: vec![target.url.to_string()],
                last,
                maybe_applied: false,
                elapsed: started.elapsed(),
            }),
        }
    }

    /// [`Client::status`] of every known endpoint, asked at once, in [`Client::endpoints`]
    /// order.
    pub async fn status_all(&self) -> Vec<(String, Result<StatusResponse, ClientError>)> {
        let urls = self.endpoints();
        let tasks: Vec<_> = urls
            .iter()
            .map(|url| {
                let client = self.clone();
                let url = url.clone();
                tokio::spawn(async move { client.status(&url).await })
            })
            .collect();
        let mut rows = Vec::with_capacity(urls.len());
        for (url, task) in urls.into_iter().zip(tasks) {
            let result = task.await.unwrap_or_else(|join| {
                Err(ClientError::Status(Status::internal(format!(
                    "status task failed: {join}"
                ))))
            });
            rows.push((url, result));
        }
        rows
    }

    /// Runs an idempotent call with retries.
    async fn read<T, F, Fut>(&self, attempt: F) -> Result<T, ClientError>
    where
        F: FnMut(Channel, Duration) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        self.read_noting_sent(attempt).await.0
    }

    /// [`Client::read`], also telling whether an attempt before the last may have reached
    /// a leader's log.
    async fn read_noting_sent<T, F, Fut>(&self, attempt: F) -> (Result<T, ClientError>, bool)
    where
        F: FnMut(Channel, Duration) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let cfg = &self.inner.cfg;
        let mut state = CallState::new(cfg.request_timeout, cfg.attempt_timeout);
        let result = match run(&self.inner.endpoints, &mut state, false, attempt).await {
            Ok(reply) => Ok(reply.into_inner()),
            Err(Stop::Failed(err)) => Err(err),
            Err(Stop::SessionExpired(msg)) => Err(ClientError::SessionExpired(msg)),
        };
        (result, state.maybe_sent)
    }

    /// Runs a session write: one session, one `seq`, every attempt.
    async fn write<T, F, Fut>(&self, mut attempt: F) -> Result<T, ClientError>
    where
        F: FnMut(Channel, Session, Duration) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let inner = &*self.inner;
        let mut state = CallState::new(inner.cfg.request_timeout, inner.cfg.attempt_timeout);
        let mut lease = inner.sessions.lease();
        let mut renewed = false;
        loop {
            let session = lease.session();
            let result = run(&inner.endpoints, &mut state, true, |ch, budget| {
                attempt(ch, session, budget)
            })
            .await;
            match result {
                Ok(reply) => {
                    lease.confirm();
                    return Ok(reply.into_inner());
                }
                Err(Stop::Failed(err)) => return Err(err),
                Err(Stop::SessionExpired(msg)) => {
                    lease.expire();
                    if state.maybe_sent || renewed {
                        return Err(ClientError::SessionExpired(msg));
                    }
                    // No attempt of this write can have been applied: it is safe to send it
                    // again as the first write of a new session.
                    tracing::debug!(%msg, "session expired before the write was sent; new session");
                    lease = inner.sessions.lease_fresh();
                    renewed = true;
                }
            }
        }
    }
}

fn raftkv(channel: Channel, response_bytes_max: usize) -> RaftKvClient<Channel> {
    RaftKvClient::new(channel).max_decoding_message_size(response_bytes_max)
}

/// A request carrying `budget` as its gRPC timeout, so the server can give up when the client
/// has.
fn timed<T>(msg: T, budget: Duration) -> Request<T> {
    let mut req = Request::new(msg);
    req.set_timeout(budget);
    req
}
