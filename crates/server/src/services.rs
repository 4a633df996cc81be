//! The gRPC services one member serves on its client port: etcd's `KV`, `Cluster`
//! (MemberList, MemberAdd, MemberRemove, MemberUpdate, MemberPromote; see
//! [`crate::membership`]), `Maintenance` (Status, Alarm, MoveLeader), raftkv's `RaftKv` extension, and
//! the member-to-member `Peer.Forward` (`Watch` is [`crate::watch`]). Every other etcd method
//! answers UNIMPLEMENTED.
//!
//! Owns: request validation at the edge, the mapping of each call onto [`Api`], and response
//! headers. Must never: apply anything itself (writes go through the log via [`Api`]), or
//! answer a linearizable read from local state without ReadIndex.

use crate::api::Api;
use crate::convert;
use crate::membership::{MemberOp, MemberOutcome, FORWARDED_KEY};
use kv::{Command, Request, Response};
use proto::etcdserverpb as pb;
use proto::etcdserverpb::cluster_server::Cluster;
use proto::etcdserverpb::kv_server::Kv;
use proto::etcdserverpb::maintenance_server::Maintenance;
use proto::peer::peer_server::Peer;
use proto::peer::{ForwardRequest, ForwardResponse};
use proto::raftkv_v1 as ext;
use proto::raftkv_v1::raft_kv_server::RaftKv;
use raft::{NodeId, Role};
use tonic::{Request as Req, Response as Resp, Status};

/// The version `Maintenance.Status` reports: the etcd API version raftkv speaks, with
/// raftkv's own version as semver build metadata.
pub const VERSION: &str = concat!("3.4.0+raftkv.", env!("CARGO_PKG_VERSION"));

/// One member's services; clone it into each tonic server.
#[derive(Clone)]
pub struct Services {
    api: Api,
}

impl Services {
    pub fn new(api: Api) -> Self {
        Services { api }
    }

    async fn write(
        &self,
        request: Request,
        session: Option<ext::Session>,
    ) -> Result<Response, Status> {
        let cmd = match session {
            Some(s) if s.client_id != 0 => Command::with_session(request, s.client_id, s.seq),
            _ => Command::new(request),
        };
        self.api.propose(&cmd, true).await
    }

    async fn put_(
        &self,
        r: pb::PutRequest,
        s: Option<ext::Session>,
    ) -> Result<pb::PutResponse, Status> {
        let req = convert::put_request(r)?;
        match self.write(Request::Put(req), s).await? {
            Response::Put(r) => Ok(self.api.header().put(r)),
            other => Err(mismatch("put", &other)),
        }
    }

    async fn delete_(
        &self,
        r: pb::DeleteRangeRequest,
        s: Option<ext::Session>,
    ) -> Result<pb::DeleteRangeResponse, Status> {
        let req = convert::delete_request(r);
        match self.write(Request::DeleteRange(req), s).await? {
            Response::DeleteRange(r) => Ok(self.api.header().delete(r)),
            other => Err(mismatch("delete", &other)),
        }
    }

    async fn txn_(
        &self,
        r: pb::TxnRequest,
        s: Option<ext::Session>,
    ) -> Result<pb::TxnResponse, Status> {
        let req = convert::txn_request(r)?;
        // Refused before it is proposed: a txn nested deeper than the log entry decoder
        // takes would otherwise come back as an undecodable entry (INTERNAL).
        kv::txn::validate(&req).map_err(convert::kv_error)?;
        match self.write(Request::Txn(req), s).await? {
            Response::Txn(r) => Ok(self.api.header().txn(r)),
            other => Err(mismatch("txn", &other)),
        }
    }

    fn member(&self, m: crate::members::Member) -> pb::Member {
        crate::membership::pb_member(self.api.members(), m)
    }

    async fn member_op<T>(&self, req: &Req<T>, op: MemberOp) -> Result<MemberOutcome, Status> {
        let forwarded = req.metadata().get(FORWARDED_KEY).is_some();
        crate::membership::run(&self.api, op, forwarded).await
    }
}

/// A member id of a request (0 is never one).
fn member_id_of(id: u64) -> Result<NodeId, Status> {
    if id == 0 {
        return Err(Status::invalid_argument(
            "etcdserver: member ID 0 is invalid",
        ));
    }
    Ok(NodeId(id))
}

fn mismatch(what: &str, got: &Response) -> Status {
    Status::internal(format!(
        "raftkv: a {what} was answered with another response kind ({got:?})"
    ))
}

fn session_required<T>(r: Option<T>, what: &str) -> Result<T, Status> {
    r.ok_or_else(|| Status::invalid_argument(format!("raftkv: {what} carries no request")))
}

#[tonic::async_trait]
impl Kv for Services {
    async fn range(&self, req: Req<pb::RangeRequest>) -> Result<Resp<pb::RangeResponse>, Status> {
        let r = convert::range_request(req.into_inner())?;
        let got = self.api.range(r).await?;
        Ok(Resp::new(self.api.header().range(got)))
    }

    async fn put(&self, req: Req<pb::PutRequest>) -> Result<Resp<pb::PutResponse>, Status> {
        Ok(Resp::new(self.put_(req.into_inner(), None).await?))
    }

    async fn delete_range(
        &self,
        req: Req<pb::DeleteRangeRequest>,
    ) -> Result<Resp<pb::DeleteRangeResponse>, Status> {
        Ok(Resp::new(self.delete_(req.into_inner(), None).await?))
    }

    async fn txn(&self, req: Req<pb::TxnRequest>) -> Result<Resp<pb::TxnResponse>, Status> {
        Ok(Resp::new(self.txn_(req.into_inner(), None).await?))
    }

    /// raftkv keeps no history, so there is nothing to compact: a compaction at or below the
    /// current revision succeeds at once; above it is etcd's future-revision error.
    async fn compact(
        &self,
        req: Req<pb::CompactionRequest>,
    ) -> Result<Resp<pb::CompactionResponse>, Status> {
        let rev = req.into_inner().revision;
        let current = self.api.reader().revision();
        if rev > current {
            return Err(Status::out_of_range(
                "etcdserver: mvcc: required revision is a future revision",
            ));
        }
        Ok(Resp::new(pb::CompactionResponse {
            header: self.api.header().at(current),
        }))
    }
}

#[tonic::async_trait]
impl RaftKv for Services {
    async fn append(
        &self,
        req: Req<ext::AppendRequest>,
    ) -> Result<Resp<ext::AppendResponse>, Status> {
        let r = req.into_inner();
        if r.prev_kv {
            return Err(Status::invalid_argument(
                "raftkv: Append does not return prev_kv; read the key in a txn instead",
            ));
        }
        let a = kv::AppendRequest {
            key: r.key.into(),
            suffix: r.suffix.into(),
        };
        match self.write(Request::Append(a), r.session).await? {
            Response::Append(a) => Ok(Resp::new(ext::AppendResponse {
                header: self.api.header().at(a.revision),
                prev_kv: None,
                value_bytes: a.value_len,
            })),
            other => Err(mismatch("append", &other)),
        }
    }

    async fn session_put(
        &self,
        req: Req<ext::SessionPutRequest>,
    ) -> Result<Resp<pb::PutResponse>, Status> {
        let r = req.into_inner();
        let put = session_required(r.request, "SessionPut")?;
        Ok(Resp::new(self.put_(put, r.session).await?))
    }

    async fn session_delete_range(
        &self,
        req: Req<ext::SessionDeleteRangeRequest>,
    ) -> Result<Resp<pb::DeleteRangeResponse>, Status> {
        let r = req.into_inner();
        let del = session_required(r.request, "SessionDeleteRange")?;
        Ok(Resp::new(self.delete_(del, r.session).await?))
    }

    async fn session_txn(
        &self,
        req: Req<ext::SessionTxnRequest>,
    ) -> Result<Resp<pb::TxnResponse>, Status> {
        let r = req.into_inner();
        let txn = session_required(r.request, "SessionTxn")?;
        Ok(Resp::new(self.txn_(txn, r.session).await?))
    }

    async fn transfer_leader(
        &self,
        req: Req<ext::TransferLeaderRequest>,
    ) -> Result<Resp<ext::TransferLeaderResponse>, Status> {
        let to = NodeId(req.into_inner().target_member_id);
        self.api.transfer_leader(to).await?;
        Ok(Resp::new(ext::TransferLeaderResponse {
            header: self.api.header().at(0),
            leader_member_id: to.0,
        }))
    }
}

#[tonic::async_trait]
impl Cluster for Services {
    async fn member_list(
        &self,
        _req: Req<pb::MemberListRequest>,
    ) -> Result<Resp<pb::MemberListResponse>, Status> {
        let members = self
            .api
            .members()
            .list()
            .into_iter()
            .map(|m| self.member(m))
            .collect();
        Ok(Resp::new(pb::MemberListResponse {
            header: self.api.header().at(0),
            members,
        }))
    }

    async fn member_add(
        &self,
        req: Req<pb::MemberAddRequest>,
    ) -> Result<Resp<pb::MemberAddResponse>, Status> {
        let op = MemberOp::Add {
            peer_urls: req.get_ref().peer_ur_ls.clone(),
            learner: req.get_ref().is_learner,
        };
        let out = self.member_op(&req, op).await?;
        Ok(Resp::new(pb::MemberAddResponse {
            header: self.api.header().at(0),
            member: out.added,
            members: out.members,
        }))
    }

    async fn member_remove(
        &self,
        req: Req<pb::MemberRemoveRequest>,
    ) -> Result<Resp<pb::MemberRemoveResponse>, Status> {
        let id = member_id_of(req.get_ref().id)?;
        let out = self.member_op(&req, MemberOp::Remove(id)).await?;
        Ok(Resp::new(pb::MemberRemoveResponse {
            header: self.api.header().at(0),
            members: out.members,
        }))
    }

    async fn member_update(
        &self,
        req: Req<pb::MemberUpdateRequest>,
    ) -> Result<Resp<pb::MemberUpdateResponse>, Status> {
        let id = member_id_of(req.get_ref().id)?;
        let op = MemberOp::Update(id, req.get_ref().peer_ur_ls.clone());
        let out = self.member_op(&req, op).await?;
        Ok(Resp::new(pb::MemberUpdateResponse {
            header: self.api.header().at(0),
            members: out.members,
        }))
    }

    async fn member_promote(
        &self,
        req: Req<pb::MemberPromoteRequest>,
    ) -> Result<Resp<pb::MemberPromoteResponse>, Status> {
        let id = member_id_of(req.get_ref().id)?;
        let out = self.member_op(&req, MemberOp::Promote(id)).await?;
        Ok(Resp::new(pb::MemberPromoteResponse {
            header: self.api.header().at(0),
            members: out.members,
        }))
    }
}

#[tonic::async_trait]
impl Maintenance for Services {
    async fn status(
        &self,
        _req: Req<pb::StatusRequest>,
    ) -> Result<Resp<pb::StatusResponse>, Status> {
        let (revision, db_size, st) = self
            .api
            .handle()
            .local(|sm, st| {
                let bytes: usize = sm
                    .store()
                    .iter()
                    .map(|kv| kv.key.len() + kv.value.len())
                    .sum();
                (sm.revision(), bytes as i64, *st)
            })
            .await
            .map_err(|_| Status::unavailable("raftkv: the member is shutting down"))?;
        let mut errors = Vec::new();
        if st.leader.is_none() {
            errors.push(crate::api::NO_LEADER.to_string());
        }
        Ok(Resp::new(pb::StatusResponse {
            header: self.api.header().at(revision),
            version: VERSION.to_string(),
            db_size,
            leader: st.leader.map(|l| l.0).unwrap_or(0),
            raft_index: st.commit,
            raft_term: st.term,
            raft_applied_index: st.applied,
            errors,
            db_size_in_use: db_size,
            is_learner: self.api.members().is_learner(self.api.member_id()),
        }))
    }

    /// raftkv raises no alarms: a GET lists none; ACTIVATE and DEACTIVATE are refused.
    async fn alarm(&self, req: Req<pb::AlarmRequest>) -> Result<Resp<pb::AlarmResponse>, Status> {
        use pb::alarm_request::AlarmAction;
        match AlarmAction::try_from(req.into_inner().action) {
            Ok(AlarmAction::Get) => Ok(Resp::new(pb::AlarmResponse {
                header: self.api.header().at(0),
                alarms: vec![],
            })),
            _ => Err(Status::unimplemented(
                "raftkv: alarms cannot be raised or cleared (raftkv has no space quota alarms)",
            )),
        }
    }

    async fn move_leader(
        &self,
        req: Req<pb::MoveLeaderRequest>,
    ) -> Result<Resp<pb::MoveLeaderResponse>, Status> {
        self.api
            .transfer_leader(NodeId(req.into_inner().target_id))
            .await?;
        Ok(Resp::new(pb::MoveLeaderResponse {
            header: self.api.header().at(0),
        }))
    }
}

#[tonic::async_trait]
impl Peer for Services {
    async fn forward(&self, req: Req<ForwardRequest>) -> Result<Resp<ForwardResponse>, Status> {
        let (result, raft_term) = self.api.serve_forward(req.into_inner()).await?;
        let leader = match self.api.handle().status().role {
            Role::Leader => self.api.member_id().0,
            _ => 0,
        };
        Ok(Resp::new(ForwardResponse {
            result,
            raft_term,
            leader,
        }))
    }
}
