//! Membership changes as etcd's `Cluster` API asks for them, and joining an existing
//! cluster.
//!
//! **Changes** (MemberAdd, MemberRemove, MemberPromote, MemberUpdate) run on the leader; a
//! follower forwards the call once to the leader's client URL (marked with the
//! [`FORWARDED_KEY`] metadata, so it is never forwarded again). On the leader:
//! - **add**: the peer URLs are checked (valid, used by no member), a fresh member id is
//!   drawn, the member's [`MemberRecord`] is written to the replicated meta map (so every
//!   member learns where to dial it), then the configuration change (`AddLearner` or
//!   `AddVoter`) is proposed and awaited;
//! - **remove**, **promote**: the configuration change alone (the core refuses removing the
//!   last voter and promoting a learner that is behind);
//! - **update**: a new record with the new peer URLs.
//!
//! With etcd's strict reconfiguration check, adding or removing a voter is refused when the
//! voters that have started (advertised themselves to this member) would not make a quorum
//! of the new configuration.
//!
//! **Joining** (`--initial-cluster-state existing`): the new member asks the other members
//! of its `--initial-cluster` for their directory (on the peer port, see
//! [`crate::transport::query_directory`]), finds itself by its peer URL (MemberAdd ran
//! before), and saves what it learned (its id, the cluster id, the members) in `join` in its
//! data directory before its WAL exists; a restart reads that file instead of asking again.
//!
//! Owns: [`MemberSync`] (the transport's peers follow configuration and records), the
//! leader-side member operations and their etcd errors, the join protocol and its file.
//! Must never: change the configuration other than through the core (one change at a time),
//! forward a forwarded call, or let a member join under an id it was not given.

use crate::api::{Api, LEADER_CHANGED, NOT_LEADER, TIMED_OUT};
use crate::members::{record_key, Directory, Member, MemberRecord, Members};
use crate::runtime::{PeerDirectory, ProposeFailure};
use crate::server::host_port;
use bytes::Bytes;
use kv::{KvStateMachine, MetaCommand};
use proto::etcdserverpb as pb;
use proto::etcdserverpb::cluster_client::ClusterClient;
use raft::{ConfChange, ConfChangeError, Configuration, NodeId};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tonic::Status;

/// gRPC metadata on a member call a follower forwarded to the leader.
pub const FORWARDED_KEY: &str = "raftkv-forwarded";
/// The file in the data directory of a member that joined an existing cluster.
pub const JOIN_FILE: &str = "join";

/// Keeps [`Members`] (and through it the transport's peers) in step with the core's
/// configuration and the member records of the state machine's meta map.
pub struct MemberSync {
    members: Arc<Members>,
    /// The member records at the previous refresh.
    records: Vec<(Bytes, Bytes)>,
    first: bool,
}

impl MemberSync {
    pub fn new(members: Arc<Members>) -> Self {
        MemberSync {
            members,
            records: Vec::new(),
            first: true,
        }
    }
}

/// The member records of a meta map, in key order.
fn member_records(sm: &KvStateMachine) -> impl Iterator<Item = (&Bytes, &Bytes)> {
    sm.meta()
        .range(Bytes::from_static(b"member/")..)
        .take_while(|(k, _)| k.starts_with(b"member/"))
}

impl PeerDirectory<KvStateMachine> for MemberSync {
    fn refresh(
        &mut self,
        sm: &KvStateMachine,
        conf: &Configuration,
        conf_changed: bool,
    ) -> Option<HashMap<NodeId, String>> {
        let same_records = member_records(sm).eq(self.records.iter().map(|(k, v)| (k, v)));
        if same_records && !conf_changed && !self.first {
            return None;
        }
        self.first = false;
        if !same_records {
            self.records = member_records(sm)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            self.members.apply_records(sm.meta());
        }
        self.members.set_conf(conf.clone());
        Some(self.members.peer_addrs(conf))
    }
}

/// One membership operation of the `Cluster` API.
#[derive(Clone, Debug)]
pub enum MemberOp {
    Add {
        peer_urls: Vec<String>,
        learner: bool,
    },
    Remove(NodeId),
    Promote(NodeId),
    Update(NodeId, Vec<String>),
}

/// What an operation answers: the added member (for an add) and the members after it.
pub struct MemberOutcome {
    pub added: Option<pb::Member>,
    pub members: Vec<pb::Member>,
}

/// A member as the etcd API shows it.
pub fn pb_member(members: &Members, m: Member) -> pb::Member {
    pb::Member {
        id: m.id.0,
        is_learner: members.is_learner(m.id),
        name: m.name,
        peer_ur_ls: m.peer_urls,
        client_ur_ls: m.client_urls,
    }
}

fn pb_members(members: &Members) -> Vec<pb::Member> {
    members
        .list()
        .into_iter()
        .map(|m| pb_member(members, m))
        .collect()
}

/// Run `op`: here when this member leads, else forwarded once to the leader.
pub async fn run(api: &Api, op: MemberOp, forwarded: bool) -> Result<MemberOutcome, Status> {
    let deadline = api.deadline();
    loop {
        let st = api.handle().status();
        if st.leader == Some(api.member_id()) {
            return on_leader(api, op, deadline).await;
        }
        if forwarded {
            return Err(api.unavailable(NOT_LEADER));
        }
        if let Some(url) = st.leader.and_then(|l| api.members().client_url(l)) {
            return forward(api, &url, op, deadline).await;
        }
        if Instant::now() >= deadline {
            return Err(api.unavailable(crate::api::NO_LEADER));
        }
        let mut w = api.handle().watch_leadership();
        w.borrow_and_update();
        let until = deadline.min(Instant::now() + Duration::from_millis(100));
        let _ = tokio::time::timeout_at(until, w.changed()).await;
    }
}

async fn forward(
    api: &Api,
    url: &str,
    op: MemberOp,
    deadline: Instant,
) -> Result<MemberOutcome, Status> {
    let mut c = ClusterClient::new(api.channel(url)?);
    fn req<T>(msg: T, deadline: Instant) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.metadata_mut().insert(
            FORWARDED_KEY,
            tonic::metadata::MetadataValue::from_static("1"),
        );
        r.set_timeout(deadline.saturating_duration_since(Instant::now()));
        r
    }
    let out = match op {
        MemberOp::Add { peer_urls, learner } => {
            let r = c
                .member_add(req(
                    pb::MemberAddRequest {
                        peer_ur_ls: peer_urls,
                        is_learner: learner,
                    },
                    deadline,
                ))
                .await?
                .into_inner();
            MemberOutcome {
                added: r.member,
                members: r.members,
            }
        }
        MemberOp::Remove(id) => MemberOutcome {
            added: None,
            members: c
                .member_remove(req(pb::MemberRemoveRequest { id: id.0 }, deadline))
                .await?
                .into_inner()
                .members,
        },
        MemberOp::Promote(id) => MemberOutcome {
            added: None,
            members: c
                .member_promote(req(pb::MemberPromoteRequest { id: id.0 }, deadline))
                .await?
                .into_inner()
                .members,
        },
        MemberOp::Update(id, peer_urls) => MemberOutcome {
            added: None,
            members: c
                .member_update(req(
                    pb::MemberUpdateRequest {
                        id: id.0,
                        peer_ur_ls: peer_urls,
                    },
                    deadline,
                ))
                .await?
                .into_inner()
                .members,
        },
    };
    Ok(out)
}

async fn on_leader(api: &Api, op: MemberOp, deadline: Instant) -> Result<MemberOutcome, Status> {
    let members = api.members();
    let mut added = None;
    match op {
        MemberOp::Add { peer_urls, learner } => {
            check_urls(members, &peer_urls, None)?;
            if !learner {
                check_quorum_after(api, 1)?;
            }
            let id = fresh_id(api, &peer_urls);
            let rec = MemberRecord {
                name: String::new(),
                peer_urls: peer_urls.clone(),
            };
            api.propose_meta(&MetaCommand::Put {
                key: record_key(id),
                value: rec.encode(),
            })
            .await?;
            let change = if learner {
                ConfChange::AddLearner(id)
            } else {
                ConfChange::AddVoter(id)
            };
            conf_change(api, change, deadline).await?;
            tracing::info!(
                member = format_args!("{:x}", id.0),
                ?peer_urls,
                learner,
                "member added"
            );
            added = Some(pb::Member {
                id: id.0,
                name: String::new(),
                peer_ur_ls: peer_urls,
                client_ur_ls: vec![],
                is_learner: learner,
            });
        }
        MemberOp::Remove(id) => {
            if !members.is_member(id) {
                return Err(not_found(id));
            }
            if !members.is_learner(id) {
                check_quorum_after(api, -1)?;
            }
            conf_change(api, ConfChange::Remove(id), deadline).await?;
            tracing::info!(member = format_args!("{:x}", id.0), "member removed");
            // The record is no longer needed; dropping it keeps the meta map small. Best
            // effort (this member may just have removed itself and be stepping down).
            let api2 = api.clone();
            tokio::spawn(async move {
                let _ = api2
                    .propose_meta(&MetaCommand::Delete {
                        key: record_key(id),
                    })
                    .await;
            });
        }
        MemberOp::Promote(id) => {
            if !members.is_member(id) {
                return Err(not_found(id));
            }
            if !members.is_learner(id) {
                return Err(Status::failed_precondition(
                    "etcdserver: can only promote a learner member",
                ));
            }
            conf_change(api, ConfChange::PromoteLearner(id), deadline).await?;
            tracing::info!(member = format_args!("{:x}", id.0), "learner promoted");
        }
        MemberOp::Update(id, peer_urls) => {
            let Some(m) = members.get(id).filter(|_| members.is_member(id)) else {
                return Err(not_found(id));
            };
            check_urls(members, &peer_urls, Some(id))?;
            let rec = MemberRecord {
                name: m.name,
                peer_urls,
            };
            api.propose_meta(&MetaCommand::Put {
                key: record_key(id),
                value: rec.encode(),
            })
            .await?;
        }
    }
    // The configuration took effect here when its entry was appended, and the record
    // applied before the answer: the list is current.
    Ok(MemberOutcome {
        added,
        members: pb_members(members),
    })
}

fn not_found(id: NodeId) -> Status {
    Status::not_found(format!("etcdserver: member not found ({:x})", id.0))
}

/// Peer URLs must parse and be used by no member (but `except`).
fn check_urls(members: &Members, urls: &[String], except: Option<NodeId>) -> Result<(), Status> {
    if urls.is_empty() || urls.iter().any(|u| host_port(u).is_err()) {
        return Err(Status::invalid_argument(format!(
            "etcdserver: given member URLs are invalid ({urls:?}; each must look like http://host:port)"
        )));
    }
    for u in urls {
        if let Some(m) = members.by_peer_url(u).filter(|m| Some(m.id) != except) {
            return Err(Status::failed_precondition(format!(
                "etcdserver: Peer URLs already exists ({u} is member {:x}{})",
                m.id.0,
                if m.name.is_empty() {
                    String::new()
                } else {
                    format!(" {:?}", m.name)
                }
            )));
        }
    }
    Ok(())
}

/// etcd's strict reconfiguration check: after adding (`delta` 1) or removing (-1) a voter,
/// the voters that started — this member, and those that advertised themselves to it —
/// must still make a quorum.
fn check_quorum_after(api: &Api, delta: i64) -> Result<(), Status> {
    let members = api.members();
    let voters: Vec<Member> = members
        .list()
        .into_iter()
        .filter(|m| !members.is_learner(m.id))
        .collect();
    let started = voters
        .iter()
        .filter(|m| m.id == api.member_id() || !m.client_urls.is_empty())
        .count() as i64;
    let after = voters.len() as i64 + delta;
    if after < 1 {
        return Err(last_voter());
    }
    let started_after = if delta < 0 { started - 1 } else { started };
    if started_after < after / 2 + 1 {
        return Err(Status::failed_precondition(format!(
            "etcdserver: re-configuration failed due to not enough started members \
             ({started} of {} voters started; {after} voters would need {})",
            voters.len(),
            after / 2 + 1
        )));
    }
    Ok(())
}

/// The refusal to remove the only voter (the strict check and the core's agree on it).
fn last_voter() -> Status {
    Status::failed_precondition("raftkv: cannot remove the last voting member of the cluster")
}

/// A member id no member has: a hash of the cluster, the peer URLs and the time.
fn fresh_id(api: &Api, urls: &[String]) -> NodeId {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut salt = 0u64;
    loop {
        let seed = format!("{:x}/{}/{nanos}/{salt}", api.cluster_id(), urls.join(","));
        let id = crate::members::member_id("added", &seed);
        if api.members().get(id).is_none() {
            return id;
        }
        salt += 1;
    }
}

/// Propose `change` and wait until it applied here, retrying while the leader is not ready
/// or another change is in progress.
async fn conf_change(api: &Api, change: ConfChange, deadline: Instant) -> Result<(), Status> {
    loop {
        let r = tokio::time::timeout_at(deadline, api.handle().conf_change(change)).await;
        let failure = match r {
            Err(_) => return Err(Status::deadline_exceeded(TIMED_OUT)),
            Ok(Ok(())) => return Ok(()),
            Ok(Err(f)) => f,
        };
        match failure {
            ProposeFailure::TransferInProgress
            | ProposeFailure::Busy
            | ProposeFailure::Lost
            | ProposeFailure::ConfChange(
                ConfChangeError::LeaderNotReady | ConfChangeError::ChangeInProgress { .. },
            ) => {
                let until = deadline.min(Instant::now() + Duration::from_millis(20));
                if Instant::now() >= deadline {
                    return Err(Status::deadline_exceeded(TIMED_OUT));
                }
                tokio::time::sleep_until(until).await;
            }
            ProposeFailure::NotLeader { .. } | ProposeFailure::Unknown => {
                return Err(api.unavailable(LEADER_CHANGED))
            }
            ProposeFailure::Stopped => {
                return Err(Status::unavailable("raftkv: the member is shutting down"))
            }
            ProposeFailure::ConfChange(e) => return Err(conf_error(e)),
        }
    }
}

fn conf_error(e: ConfChangeError) -> Status {
    match e {
        ConfChangeError::AlreadyMember(id) => {
            Status::failed_precondition(format!("etcdserver: member ID already exist ({:x})", id.0))
        }
        ConfChangeError::NotMember(id) => not_found(id),
        ConfChangeError::NotLearner(_) => {
            Status::failed_precondition("etcdserver: can only promote a learner member")
        }
        ConfChangeError::LearnerBehind {
            matched, committed, ..
        } => Status::failed_precondition(format!(
            "etcdserver: can only promote a learner member which is in sync with leader \
             (it has {} of {} committed entries)",
            matched.0, committed.0
        )),
        ConfChangeError::LastVoter(_) => last_voter(),
        ConfChangeError::InvalidId => Status::invalid_argument("raftkv: member id 0 is reserved"),
        e => Status::unavailable(format!("raftkv: {e}")),
    }
}

/// What a joining member learned: its id, the cluster's and the members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    pub name: String,
    pub id: NodeId,
    pub directory: Directory,
}

impl Joined {
    /// The configuration to bootstrap the data directory with: the other members (this one
    /// becomes a member when the entry that added it applies, which is also what tells the
    /// node it may later be removed).
    pub fn bootstrap(&self) -> Configuration {
        let (learners, voters): (Vec<_>, Vec<_>) = self
            .directory
            .members
            .iter()
            .filter(|(m, _)| m.id != self.id)
            .partition(|(_, l)| *l);
        Configuration::with_learners(
            voters.into_iter().map(|(m, _)| m.id),
            learners.into_iter().map(|(m, _)| m.id),
        )
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = b"RKVJ\x01".to_vec();
        out.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&self.id.0.to_le_bytes());
        out.extend_from_slice(&self.directory.encode());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(b: &[u8]) -> Result<Joined, String> {
        if b.len() < 5 + 2 + 8 + 4 || &b[..5] != b"RKVJ\x01" {
            return Err("not a join file of this version".into());
        }
        let (body, crc) = b.split_at(b.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4")) {
            return Err("checksum mismatch".into());
        }
        let n = u16::from_le_bytes([body[5], body[6]]) as usize;
        let rest = &body[7..];
        if rest.len() < n + 8 {
            return Err("truncated".into());
        }
        let name = std::str::from_utf8(&rest[..n])
            .map_err(|_| "name is not utf-8")?
            .to_string();
        let id = NodeId(u64::from_le_bytes(rest[n..n + 8].try_into().expect("8")));
        let directory = Directory::decode(&rest[n + 8..])?;
        Ok(Joined {
            name,
            id,
            directory,
        })
    }

    /// The join file of `data_dir`, if the member joined an existing cluster.
    pub fn load(data_dir: &Path) -> Result<Option<Joined>, String> {
        let path = data_dir.join(JOIN_FILE);
        match std::fs::read(&path) {
            Ok(b) => Joined::decode(&b)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Write the join file durably (temporary file, fsync, rename, fsync of the directory).
    pub fn save(&self, data_dir: &Path) -> Result<(), String> {
        use std::io::Write;
        let err = |e: std::io::Error| format!("{}: {e}", data_dir.display());
        std::fs::create_dir_all(data_dir).map_err(err)?;
        let tmp = data_dir.join(format!("{JOIN_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&self.encode()).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, data_dir.join(JOIN_FILE)).map_err(err)?;
        std::fs::File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(err)
    }
}

/// Ask the members at `peers` (`(name, peer URL)`) who is in the cluster and find the member
/// `name` was added as, by its peer URL `my_url`.
pub async fn join(name: &str, my_url: &str, peers: &[(String, String)]) -> Result<Joined, String> {
    let mut errors = Vec::new();
    for (peer, url) in peers {
        let addr = host_port(url).map_err(|e| e.to_string())?;
        match crate::transport::query_directory(addr, Duration::from_secs(2)).await {
            Ok(d) => return found(name, my_url, d),
            Err(e) => errors.push(format!("{peer} ({url}): {e}")),
        }
    }
    Err(format!(
        "could not reach any member of the existing cluster: {}",
        errors.join("; ")
    ))
}

fn found(name: &str, my_url: &str, directory: Directory) -> Result<Joined, String> {
    let norm = |u: &str| u.trim_end_matches('/').to_string();
    let Some((m, _)) = directory
        .members
        .iter()
        .find(|(m, _)| m.peer_urls.iter().any(|u| norm(u) == norm(my_url)))
    else {
        return Err(format!(
            "no member of the cluster has this member's peer URL {my_url}; add it first \
             (raftkv members add {name} --peer-urls {my_url}, or etcdctl member add)"
        ));
    };
    if !m.name.is_empty() && m.name != name {
        return Err(format!(
            "peer URL {my_url} belongs to member {:?} ({:x}), not {name:?}",
            m.name, m.id.0
        ));
    }
    Ok(Joined {
        name: name.to_string(),
        id: m.id,
        directory,
    })
}

/// How long a member goes without a leader before it asks whether it was removed.
const ORPHAN_CHECK_AFTER: Duration = Duration::from_secs(2);

/// Follow the node's status for the directory it answers (the leader it knows), and find
/// out when this member was removed without learning it from its log: the leader sends a
/// removed member one last append once the change that removes it commits, and nothing
/// after, so a member that missed it (lost, or too far behind) never learns it there. A
/// member that knows no leader for [`ORPHAN_CHECK_AFTER`] asks the others for their
/// directory; when a member that leads answers and does not list this one, it was removed:
/// `removed` is set and `stop` cancelled. Ends when `stop` is cancelled.
pub async fn watch(
    api: Api,
    stop: tokio_util::sync::CancellationToken,
    removed: Arc<std::sync::atomic::AtomicBool>,
) {
    let me = api.member_id();
    let mut w = api.handle().watch_leadership();
    let mut orphan_since: Option<Instant> = None;
    loop {
        let st = *w.borrow_and_update();
        api.members().set_leader(st.leader);
        if st.leader.is_some() {
            orphan_since = None;
        } else {
            let since = *orphan_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= ORPHAN_CHECK_AFTER && removed_per_leader(&api, me).await {
                tracing::warn!("the leader no longer lists this member: it was removed; stopping");
                removed.store(true, std::sync::atomic::Ordering::SeqCst);
                stop.cancel();
                return;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            r = w.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(ORPHAN_CHECK_AFTER) => {}
        }
    }
}

/// Whether some member that leads answers a directory without this member.
async fn removed_per_leader(api: &Api, me: NodeId) -> bool {
    let peers: Vec<String> = api
        .members()
        .list()
        .into_iter()
        .filter(|m| m.id != me)
        .filter_map(|m| Some(host_port(m.peer_urls.first()?).ok()?.to_string()))
        .collect();
    for addr in peers {
        match crate::transport::query_directory(&addr, Duration::from_secs(1)).await {
            Ok(d) if d.from_leader() && d.cluster_id == api.cluster_id() => {
                return !d.members.iter().any(|(m, _)| m.id == me);
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Directory {
        Directory {
            cluster_id: 0xc1,
            from: NodeId(1),
            leader: NodeId(1),
            members: vec![
                (
                    Member {
                        id: NodeId(1),
                        name: "n1".into(),
                        peer_urls: vec!["http://127.0.0.1:2380".into()],
                        client_urls: vec!["http://127.0.0.1:2379".into()],
                    },
                    false,
                ),
                (
                    Member {
                        id: NodeId(4),
                        name: String::new(),
                        peer_urls: vec!["http://127.0.0.1:2480".into()],
                        client_urls: vec![],
                    },
                    true,
                ),
            ],
        }
    }

    #[test]
    fn a_joining_member_finds_itself_by_peer_url_only() {
        let j = found("n4", "http://127.0.0.1:2480/", dir()).unwrap();
        assert_eq!(j.id, NodeId(4));
        assert_eq!(j.bootstrap(), Configuration::new([NodeId(1)]), "not itself");
        let e = found("n4", "http://127.0.0.1:9999", dir()).unwrap_err();
        assert!(e.contains("add it first"), "{e}");
        let e = found("n9", "http://127.0.0.1:2380", dir()).unwrap_err();
        assert!(e.contains("belongs to member \"n1\""), "{e}");
    }

    #[test]
    fn the_join_file_round_trips_and_refuses_corruption() {
        let j = found("n4", "http://127.0.0.1:2480", dir()).unwrap();
        let tmp = std::env::temp_dir().join(format!("raftkv-join-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        assert_eq!(Joined::load(&tmp), Ok(None));
        j.save(&tmp).unwrap();
        assert_eq!(Joined::load(&tmp), Ok(Some(j.clone())));
        let mut b = j.encode();
        for i in 0..b.len() {
            b[i] ^= 1;
            assert!(Joined::decode(&b).is_err(), "flip at {i}");
            b[i] ^= 1;
        }
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
