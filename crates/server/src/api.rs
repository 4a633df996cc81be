//! What every client-facing service does underneath: propose a command and wait for its
//! result, forward a follower's write to the leader, serve a linearizable or serializable
//! read — each bounded by the request deadline.
//!
//! Retry rules (a retry never applies a write twice):
//! - not the leader, leader known: forward the encoded command to it, once per attempt —
//!   as a frame on the peer transport ([`crate::forward`]), or by `Peer.Forward` on its
//!   client URL when the transport does not reach it; a forwarded command is never
//!   forwarded again;
//! - no leader: wait for one (status change events), then try again;
//! - the entry was overwritten by a new leader (`Lost`): it never applied, so propose again;
//! - the outcome is unknown (`Unknown`, the forwarding connection broke mid-flight, or the
//!   leader changed while a forwarded command waited for its answer and the old leader
//!   did not answer within the grace period that follows): propose
//!   again only for a command with a session (the state machine drops the duplicate); else
//!   answer "etcdserver: leader changed";
//! - the deadline passed: "etcdserver: request timed out" (DEADLINE_EXCEEDED).
//!
//! Owns: the deadline, the retry loop, the forwarding channels, the errors' gRPC metadata
//! (`raftkv-leader-endpoint`). Must never: answer a write before its entry applied, answer
//! a linearizable read before ReadIndex confirmed it, or retry a write without a session
//! whose earlier try may have applied.

use crate::convert::{self, Header};
use crate::forward::{self, Forwarder, Outcome};
use crate::members::Members;
use crate::runtime::{NodeHandle, ProposeFailure, ReadFailure};
use bytes::Bytes;
use kv::{Command, KvStateMachine, Response};
use proto::peer::peer_client::PeerClient;
use proto::peer::ForwardRequest;
use raft::NodeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// gRPC metadata key naming the leader's client URL on UNAVAILABLE errors.
pub const LEADER_ENDPOINT_KEY: &str = "raftkv-leader-endpoint";
/// etcd's texts, which etcd clients match on.
pub const NO_LEADER: &str = "etcdserver: no leader";
pub const LEADER_CHANGED: &str = "etcdserver: leader changed";
pub const TIMED_OUT: &str = "etcdserver: request timed out";
pub const TOO_LARGE: &str = "etcdserver: request is too large";
/// Answered by `Peer.Forward` on a member that is not the leader (nothing was proposed).
pub const NOT_LEADER: &str = "raftkv: not the leader";

/// Limits of the client API.
#[derive(Clone, Copy, Debug)]
pub struct ApiLimits {
    /// Deadline of one request, retries included.
    pub request_timeout: Duration,
    /// Largest encoded command (etcd's `--max-request-bytes`, 1.5 MiB by default).
    pub request_bytes_max: usize,
    /// How long a forwarded write still waits for the old leader's answer after another
    /// leader appeared (or none is known): a deposed leader that is alive answers soon —
    /// applied, or "not the leader" once its entry was overwritten (then it is retried
    /// safely) — so the client is not told "leader changed" about a write that committed.
    pub leader_change_grace: Duration,
}

/// The shared state of every service of one member. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

struct Inner {
    handle: NodeHandle<KvStateMachine>,
    members: Arc<Members>,
    cluster_id: u64,
    me: NodeId,
    limits: ApiLimits,
    /// Source address of forwarding connections (the client-listen IP when specific).
    local_ip: Option<std::net::IpAddr>,
    channels: Mutex<HashMap<String, Channel>>,
    forwarder: Arc<Forwarder>,
    reader: kv::KvReader,
}

/// How one forwarding attempt ended.
enum Forwarded {
    Done(Bytes),
    /// The target was not the leader: nothing was proposed.
    NotLeader,
    /// The call broke after it may have been proposed.
    Unknown(Status),
}

impl Api {
    pub fn new(
        handle: NodeHandle<KvStateMachine>,
        reader: kv::KvReader,
        members: Arc<Members>,
        cluster_id: u64,
        limits: ApiLimits,
        local_ip: Option<std::net::IpAddr>,
        link: Arc<crate::transport::PeerLink>,
    ) -> Api {
        let me = handle.status().id;
        let forwarder = Forwarder::install(link);
        let api = Api {
            inner: Arc::new(Inner {
                handle,
                members,
                cluster_id,
                me,
                limits,
                local_ip,
                channels: Mutex::new(HashMap::new()),
                forwarder: forwarder.clone(),
                reader,
            }),
        };
        // Weak: the link (owned by the node) must not keep the API alive.
        let weak = Arc::downgrade(&api.inner);
        // Frames arrive on the node driver's runtime and are served there: the proposal, its
        // answer and the reply frame then never wake another thread.
        forwarder.serve_with(Box::new(move |from, req| {
            if let Some(inner) = weak.upgrade() {
                tokio::spawn(Api { inner }.serve_forward_frame(from, req));
            }
        }));
        api
    }

    pub fn handle(&self) -> &NodeHandle<KvStateMachine> {
        &self.inner.handle
    }

    pub fn members(&self) -> &Members {
        &self.inner.members
    }

    pub fn cluster_id(&self) -> u64 {
        self.inner.cluster_id
    }

    pub fn member_id(&self) -> NodeId {
        self.inner.me
    }

    pub fn limits(&self) -> ApiLimits {
        self.inner.limits
    }

    /// The header of a response sent now.
    pub fn header(&self) -> Header {
        Header {
            cluster_id: self.inner.cluster_id,
            member_id: self.inner.me.0,
            raft_term: self.inner.handle.status().term,
        }
    }

    pub fn deadline(&self) -> Instant {
        Instant::now() + self.inner.limits.request_timeout
    }

    /// An UNAVAILABLE status, with the leader's client URL when this member knows it.
    pub fn unavailable(&self, msg: impl Into<String>) -> Status {
        let mut s = Status::unavailable(msg);
        let leader = self.inner.handle.status().leader;
        if let Some(url) = leader.and_then(|l| self.inner.members.client_url(l)) {
            if let Ok(v) = url.parse() {
                s.metadata_mut().insert(LEADER_ENDPOINT_KEY, v);
            }
        }
        s
    }

    /// Wait until the status changes (a leader may have appeared), at most until `deadline`
    /// and at most 100 ms (then the caller looks again).
    async fn await_change(&self, deadline: Instant) -> Result<(), Status> {
        if Instant::now() >= deadline {
            return Err(Status::deadline_exceeded(TIMED_OUT));
        }
        // Any change: a new leader, or its first commit (a read it refused may go now).
        let mut w = self.inner.handle.watch_status();
        w.borrow_and_update();
        let until = deadline.min(Instant::now() + Duration::from_millis(100));
        let _ = tokio::time::timeout_at(until, w.changed()).await;
        Ok(())
    }

    /// Propose `cmd` and return its response once it applied. A forwarded command
    /// (`may_forward == false`) is only ever proposed here.
    pub async fn propose(&self, cmd: &Command, may_forward: bool) -> Result<Response, Status> {
        let data = cmd.encode();
        if data.len() > self.inner.limits.request_bytes_max {
            return Err(Status::invalid_argument(format!(
                "{TOO_LARGE} ({} bytes, limit {})",
                data.len(),
                self.inner.limits.request_bytes_max
            )));
        }
        let result = self
            .propose_bytes(data, cmd.session.is_some(), may_forward)
            .await?;
        decode_response(&result)
    }

    /// Propose a change of the replicated meta map (forwarded to the leader like any write;
    /// a meta put or delete is idempotent, so a retry is harmless).
    pub async fn propose_meta(&self, cmd: &kv::MetaCommand) -> Result<(), Status> {
        let result = self.propose_bytes(cmd.encode(), true, true).await?;
        if result.is_empty() {
            return Ok(());
        }
        decode_response(&result).map(|_| ())
    }

    async fn propose_bytes(
        &self,
        data: Bytes,
        exactly_once: bool,
        may_forward: bool,
    ) -> Result<Bytes, Status> {
        self.propose_until(data, exactly_once, may_forward, self.deadline())
            .await
    }

    async fn propose_until(
        &self,
        data: Bytes,
        exactly_once: bool,
        may_forward: bool,
        deadline: Instant,
    ) -> Result<Bytes, Status> {
        loop {
            let failure = match self.known_leader_elsewhere() {
                // A follower that knows the leader forwards at once: asking its own driver
                // first would cost two thread hand-offs to learn the same thing. (A stale
                // status only costs a NOT_LEADER answer from the old leader and a retry.)
                Some(leader) if may_forward => ProposeFailure::NotLeader {
                    leader: Some(leader),
                },
                _ => {
                    let attempt =
                        tokio::time::timeout_at(deadline, self.inner.handle.propose(data.clone()))
                            .await;
                    match attempt {
                        Err(_) => return Err(Status::deadline_exceeded(TIMED_OUT)),
                        Ok(Ok(result)) => return Ok(result),
                        Ok(Err(f)) => f,
                    }
                }
            };
            match failure {
                ProposeFailure::NotLeader { leader: Some(l) } if l != self.inner.me => {
                    if !may_forward {
                        return Err(self.unavailable(NOT_LEADER));
                    }
                    match self.forward(l, &data, deadline).await? {
                        Forwarded::Done(result) => return Ok(result),
                        Forwarded::NotLeader => self.await_change(deadline).await?,
                        Forwarded::Unknown(s) if !exactly_once => return Err(s),
                        Forwarded::Unknown(_) => self.await_change(deadline).await?,
                    }
                }
                ProposeFailure::NotLeader { .. } => {
                    if !may_forward {
                        return Err(self.unavailable(NOT_LEADER));
                    }
                    self.await_change(deadline).await?;
                }
                ProposeFailure::Lost => {}
                ProposeFailure::Unknown if exactly_once => {}
                ProposeFailure::Unknown => return Err(self.unavailable(LEADER_CHANGED)),
                ProposeFailure::Busy | ProposeFailure::TransferInProgress => {
                    let until = deadline.min(Instant::now() + Duration::from_millis(10));
                    tokio::time::sleep_until(until).await;
                }
                ProposeFailure::Stopped => {
                    return Err(Status::unavailable("raftkv: the member is shutting down"))
                }
                ProposeFailure::ConfChange(e) => {
                    return Err(Status::internal(format!("raftkv: {e}")))
                }
            }
        }
    }

    /// The leader the latest published status names, when it is another member and this
    /// member does not lead.
    fn known_leader_elsewhere(&self) -> Option<NodeId> {
        let st = self.inner.handle.status();
        match st.leader {
            Some(l) if l != self.inner.me && st.role != raft::Role::Leader => Some(l),
            _ => None,
        }
    }

    /// A (lazily connected, cached) channel to a member's client URL.
    pub fn channel(&self, url: &str) -> Result<Channel, Status> {
        let mut chans = self.inner.channels.lock().expect("channels lock");
        if let Some(c) = chans.get(url) {
            return Ok(c.clone());
        }
        let ep = Endpoint::from_shared(url.to_string())
            .map_err(|e| Status::internal(format!("bad leader URL {url}: {e}")))?
            .connect_timeout(Duration::from_secs(1))
            .local_address(self.inner.local_ip)
            .tcp_nodelay(true);
        let c = ep.connect_lazy();
        chans.insert(url.to_string(), c.clone());
        Ok(c)
    }

    /// Forward `data` to `leader`: a frame on the peer transport when it reaches the
    /// leader, else a `Peer.Forward` call.
    async fn forward(
        &self,
        leader: NodeId,
        data: &Bytes,
        deadline: Instant,
    ) -> Result<Forwarded, Status> {
        let fwd = &self.inner.forwarder;
        if !fwd.reaches(leader) {
            return self.forward_grpc(leader, data, deadline).await;
        }
        let timeout = deadline.saturating_duration_since(Instant::now());
        let mut status = self.inner.handle.watch_leadership();
        let grace = self.inner.limits.leader_change_grace;
        let leader_changed = async {
            loop {
                if status.borrow_and_update().leader != Some(leader) {
                    break;
                }
                if status.changed().await.is_err() {
                    break;
                }
            }
            tokio::time::sleep(grace).await;
        };
        // The answer may never come once the leader changed (the old one is cut off from
        // us, or its entry's index is never reached again): a grace period after the
        // change, stop waiting. (A broken connection ends the wait at once.)
        let outcome = tokio::select! {
            o = fwd.call(leader, data, timeout, leader_changed) => o,
            _ = tokio::time::sleep_until(deadline) => {
                return Err(Status::deadline_exceeded(TIMED_OUT))
            }
        };
        match outcome {
            Outcome::Done(result) => Ok(Forwarded::Done(result)),
            Outcome::NotSent => Ok(Forwarded::NotLeader),
            Outcome::Lost => Ok(Forwarded::Unknown(self.unavailable(LEADER_CHANGED))),
            Outcome::Failed(s) => self.classify_forward_error(s),
        }
    }

    async fn forward_grpc(
        &self,
        leader: NodeId,
        data: &Bytes,
        deadline: Instant,
    ) -> Result<Forwarded, Status> {
        let Some(url) = self.inner.members.client_url(leader) else {
            // The leader has not connected to us yet; it will (every member dials every peer).
            return Ok(Forwarded::NotLeader);
        };
        let mut client = PeerClient::new(self.channel(&url)?)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let mut req = tonic::Request::new(ForwardRequest {
            cluster_id: self.inner.cluster_id,
            from: self.inner.me.0,
            command: data.clone(),
        });
        req.set_timeout(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout_at(deadline, client.forward(req)).await {
            Err(_) => Err(Status::deadline_exceeded(TIMED_OUT)),
            Ok(Ok(r)) => Ok(Forwarded::Done(r.into_inner().result)),
            Ok(Err(s)) => self.classify_forward_error(s),
        }
    }

    /// What a forwarding error from the leader (or the way to it) means for a retry.
    fn classify_forward_error(&self, s: Status) -> Result<Forwarded, Status> {
        match s.code() {
            Code::Unavailable if s.message().starts_with(NOT_LEADER) => Ok(Forwarded::NotLeader),
            // A refused connection never reached the leader: nothing was proposed.
            Code::Unavailable if is_connect_error(&s) => Ok(Forwarded::NotLeader),
            Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled => {
                Ok(Forwarded::Unknown(self.unavailable(LEADER_CHANGED)))
            }
            _ => Err(s),
        }
    }

    /// A forwarding frame from `from`: propose here (never forwarded again) and answer it.
    async fn serve_forward_frame(self, from: NodeId, req: forward::Request) {
        let result = if req.command.len() > self.inner.limits.request_bytes_max {
            Err(Status::invalid_argument(TOO_LARGE))
        } else {
            let deadline = Instant::now() + req.timeout.min(self.inner.limits.request_timeout);
            let exactly_once = is_exactly_once(&req.command);
            self.propose_until(req.command, exactly_once, false, deadline)
                .await
        };
        self.inner.forwarder.reply(from, req.id, result).await;
    }

    /// `Peer.Forward` on this member: propose here or answer NOT_LEADER.
    pub async fn serve_forward(&self, req: ForwardRequest) -> Result<(Bytes, u64), Status> {
        if req.cluster_id != self.inner.cluster_id {
            return Err(Status::failed_precondition(format!(
                "raftkv: forwarded write from cluster {:#x}, this is cluster {:#x}",
                req.cluster_id, self.inner.cluster_id
            )));
        }
        if req.command.len() > self.inner.limits.request_bytes_max {
            return Err(Status::invalid_argument(TOO_LARGE));
        }
        let exactly_once = is_exactly_once(&req.command);
        let result = self.propose_bytes(req.command, exactly_once, false).await?;
        Ok((result, self.inner.handle.status().term))
    }

    /// A range: linearizable (ReadIndex, on this member) unless `serializable`. Either is
    /// read from the applied state on this task (the driver only confirms a linearizable
    /// read: its loop never runs the range itself).
    pub async fn range(&self, req: kv::RangeRequest) -> Result<kv::RangeResponse, Status> {
        if !req.serializable {
            self.confirm_read().await?;
        }
        self.inner.reader.read(&req).map_err(convert::kv_error)
    }

    /// Wait until a linearizable read may be served here: ReadIndex confirmed this
    /// member's leader's commit index and this member applied at least that far.
    async fn confirm_read(&self) -> Result<(), Status> {
        let deadline = self.deadline();
        loop {
            let read = self.inner.handle.read(|_| ());
            match tokio::time::timeout_at(deadline, read).await {
                Err(_) => return Err(Status::deadline_exceeded(TIMED_OUT)),
                Ok(Ok(())) => return Ok(()),
                Ok(Err(ReadFailure::Stopped)) => {
                    return Err(Status::unavailable("raftkv: the member is shutting down"))
                }
                Ok(Err(ReadFailure::NoLeader | ReadFailure::Failed)) => {
                    self.await_change(deadline).await?
                }
            }
        }
    }

    /// Reads of this member's applied state (any thread, no driver round trip).
    pub fn reader(&self) -> &kv::KvReader {
        &self.inner.reader
    }

    /// Hand leadership to `to` (from the leader) and wait until `to` leads.
    pub async fn transfer_leader(&self, to: NodeId) -> Result<(), Status> {
        if !self.inner.members.is_member(to) {
            return Err(Status::not_found(format!(
                "etcdserver: member not found ({:#x})",
                to.0
            )));
        }
        let deadline = self.deadline();
        let st = self.inner.handle.status();
        if st.leader == Some(to) {
            return Ok(());
        }
        if st.leader != Some(self.inner.me) {
            return Err(self.unavailable(format!(
                "etcdserver: not leader (leadership transfer must be asked of the leader, {})",
                st.leader
                    .map(|l| format!("{:#x}", l.0))
                    .unwrap_or_else(|| "none now".into())
            )));
        }
        self.inner
            .handle
            .transfer_leader(to)
            .await
            .map_err(|e| Status::failed_precondition(format!("raftkv: {e}")))?;
        let mut w = self.inner.handle.watch_leadership();
        loop {
            if w.borrow_and_update().leader == Some(to) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, w.changed())
                .await
                .is_err()
            {
                return Err(Status::deadline_exceeded(TIMED_OUT));
            }
        }
    }
}

/// Whether a retry of this encoded command after an unknown outcome is safe (it has a
/// session, or it is an idempotent meta change).
fn is_exactly_once(command: &[u8]) -> bool {
    kv::MetaCommand::is_meta(command)
        || Command::decode(command)
            .map(|c| c.session.is_some())
            .unwrap_or(false)
}

fn is_connect_error(s: &Status) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(s);
    while let Some(e) = src {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        if e.to_string().contains("tcp connect error") {
            return true;
        }
        src = e.source();
    }
    false
}

/// The response in an encoded apply result (an error becomes its gRPC status).
pub fn decode_response(result: &[u8]) -> Result<Response, Status> {
    match kv::decode_result(result) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(convert::kv_error(e)),
        Err(e) => Err(Status::internal(format!(
            "raftkv: undecodable apply result: {e}"
        ))),
    }
}
