//! One raftkv member as a user runs it: the node (consensus, WAL, state machine, peer
//! transport) plus the gRPC client port serving every service of [`crate::services`].
//!
//! Owns: [`ServerConfig`] (validated: the member is in the initial cluster, URLs parse,
//! timings are consistent), member and cluster ids, the client listener and shutdown.
//! Must never: start serving clients on a data directory of another cluster or member (the
//! WAL's identity check refuses it), or block the caller's runtime on the disk.

use crate::api::{Api, ApiLimits};
use crate::members::{cluster_id, member_id, Attrs, Member, Members};
use crate::membership::{Joined, MemberSync};
use crate::runtime::{Node, NodeConfig, NodeError};
use crate::services::Services;
use crate::watch::WatchService;
use kv::{KvConfig, KvStateMachine};
use proto::etcdserverpb::cluster_server::ClusterServer;
use proto::etcdserverpb::kv_server::KvServer;
use proto::etcdserverpb::maintenance_server::MaintenanceServer;
use proto::etcdserverpb::watch_server::WatchServer;
use proto::peer::peer_server::PeerServer;
use proto::raftkv_v1::raft_kv_server::RaftKvServer;
use raft::Configuration;
use raft::NodeId;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// etcd's default `--max-request-bytes`.
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 1536 * 1024;
/// Extra room a gRPC message may take beyond the request limit (etcd's `grpcOverheadBytes`),
/// so an oversized request is refused by raftkv with etcd's error, not by the transport.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// Whether a member starts a new cluster or joins a running one (etcd's
/// `--initial-cluster-state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClusterState {
    /// Bootstrap the cluster of `initial_cluster` (every member starts this way).
    #[default]
    New,
    /// Join the running cluster the other members of `initial_cluster` belong to; this
    /// member was added first (MemberAdd with its peer URL).
    Existing,
}

/// Recent events a member keeps for watchers by default.
pub const WATCH_HISTORY_EVENTS_DEFAULT: usize = kv::WATCH_HISTORY_DEFAULT;

/// Everything `raftkv serve` needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// This member's name; must appear in `initial_cluster`.
    pub name: String,
    /// `(name, peer URL)` of every member.
    pub initial_cluster: Vec<(String, String)>,
    /// Distinguishes clusters built from the same names (etcd's `--initial-cluster-token`).
    pub cluster_token: String,
    pub data_dir: PathBuf,
    /// Where clients connect (gRPC).
    pub listen_client: SocketAddr,
    /// Client URLs advertised to peers (empty: `http://<listen_client>`, with an unspecified
    /// address replaced by 127.0.0.1).
    pub advertise_client_urls: Vec<String>,
    /// Where peers connect (empty: the port of this member's URL in `initial_cluster`).
    pub listen_peer: Option<SocketAddr>,
    pub heartbeat: Duration,
    /// E: a follower waits a random time in [E, 2E) without a leader before campaigning.
    pub election_timeout: Duration,
    /// Snapshot and compact the log every this many applied entries (0: never).
    pub snapshot_entries: u64,
    pub request_timeout: Duration,
    pub request_bytes_max: usize,
    /// Where the admin endpoint listens (metrics, health, status, events, the dashboard;
    /// see [`crate::admin`]); `None`: no admin endpoint.
    pub listen_admin: Option<SocketAddr>,
    /// Only read when the data directory is new: a member that ran before keeps the
    /// cluster it belongs to.
    pub initial_cluster_state: ClusterState,
    /// Which threads serve the client API (gRPC).
    pub client_api_threads: ClientApiThreads,
    /// How many recent events the member keeps for watchers to start in the past.
    pub watch_history_events: usize,
    /// How often a watcher that asked for progress notifications gets one.
    pub watch_progress_interval: Duration,
}

/// Which threads serve the client API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientApiThreads {
    /// The member's driver thread (with the peer transport): a request, its proposal and
    /// its answer cross no thread; only the WAL's fsync runs elsewhere. The client API and
    /// the consensus loop then share one core at most.
    #[default]
    Driver,
    /// The process's worker pool (one thread per core): for more client load than one
    /// core serves, at the cost of a thread hand-off each way per request.
    Pool,
}

impl ServerConfig {
    /// A one-member cluster named `name` with defaults, for tests and examples.
    pub fn single(
        name: &str,
        data_dir: PathBuf,
        listen_client: SocketAddr,
        peer_url: &str,
    ) -> Self {
        ServerConfig {
            name: name.into(),
            initial_cluster: vec![(name.into(), peer_url.into())],
            cluster_token: "raftkv".into(),
            data_dir,
            listen_client,
            advertise_client_urls: vec![],
            listen_peer: None,
            heartbeat: Duration::from_millis(50),
            election_timeout: Duration::from_millis(300),
            snapshot_entries: 10_000,
            request_timeout: Duration::from_secs(5),
            request_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            listen_admin: None,
            initial_cluster_state: ClusterState::New,
            client_api_threads: ClientApiThreads::default(),
            watch_history_events: WATCH_HISTORY_EVENTS_DEFAULT,
            watch_progress_interval: Duration::from_secs(600),
        }
    }
}

/// Why a server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Node(#[from] NodeError),
    #[error("client listener on {addr}: {err}")]
    Listen {
        addr: SocketAddr,
        err: std::io::Error,
    },
    #[error("admin listener on {addr}: {err}")]
    AdminListen {
        addr: SocketAddr,
        err: std::io::Error,
    },
}

/// `host:port` of a URL such as `http://127.0.0.1:2380` (or of a bare `host:port`).
pub fn host_port(url: &str) -> Result<&str, ServerError> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let hp = rest.trim_end_matches('/');
    if hp.is_empty() || !hp.contains(':') || hp.contains('/') {
        return Err(ServerError::Config(format!(
            "URL {url:?} must look like http://host:port"
        )));
    }
    Ok(hp)
}

/// `a` with an unspecified IP (0.0.0.0, ::) replaced by 127.0.0.1, for advertising.
fn loopback_if_unspecified(mut a: SocketAddr) -> SocketAddr {
    if a.ip().is_unspecified() {
        a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    a
}

/// The timing of the core in ticks: one tick is at most 10 ms, and divides the heartbeat.
fn ticks(cfg: &ServerConfig) -> Result<(Duration, u32, u32), ServerError> {
    let hb = cfg.heartbeat.as_millis() as u64;
    let el = cfg.election_timeout.as_millis() as u64;
    if hb == 0 || el <= hb {
        return Err(ServerError::Config(format!(
            "the election timeout ({el} ms) must be greater than the heartbeat ({hb} ms, > 0)"
        )));
    }
    let per_hb = hb.div_ceil(10);
    let tick_ms = hb / per_hb;
    let election_ticks = (el / tick_ms).max(per_hb + 1);
    Ok((
        Duration::from_millis(tick_ms),
        election_ticks as u32,
        per_hb as u32,
    ))
}

/// Who this member is: `(member id, cluster id, members, bootstrap configuration)`.
///
/// A data directory that holds a join file (the member joined a running cluster) says so
/// itself; one that holds a WAL keeps its cluster id even when `--initial-cluster` changed
/// since (members were added or removed); a new directory with
/// [`ClusterState::Existing`] joins by asking the other members (see
/// [`crate::membership`]); else the cluster is the initial one.
async fn identity(
    cfg: &ServerConfig,
    initial: Vec<Member>,
    my_peer_url: &str,
) -> Result<(NodeId, u64, Vec<Member>, Configuration), ServerError> {
    let joined = Joined::load(&cfg.data_dir).map_err(ServerError::Config)?;
    let stored = storage::read_identity(&storage::StdFs, &cfg.data_dir)
        .map_err(|e| ServerError::Node(NodeError::Storage(e)))?;
    let joined = match joined {
        Some(j) if j.name != cfg.name => {
            return Err(ServerError::Config(format!(
                "the data directory {} belongs to member {:?}, not {:?}",
                cfg.data_dir.display(),
                j.name,
                cfg.name
            )))
        }
        Some(j) => Some(j),
        None if cfg.initial_cluster_state == ClusterState::Existing && stored.is_none() => {
            let others: Vec<(String, String)> = cfg
                .initial_cluster
                .iter()
                .filter(|(n, _)| *n != cfg.name)
                .cloned()
                .collect();
            if others.is_empty() {
                return Err(ServerError::Config(
                    "--initial-cluster-state existing: --initial-cluster must list members \
                     of the running cluster besides this one"
                        .into(),
                ));
            }
            let j = crate::membership::join(&cfg.name, my_peer_url, &others)
                .await
                .map_err(ServerError::Config)?;
            j.save(&cfg.data_dir).map_err(ServerError::Config)?;
            tracing::info!(
                member = format_args!("{:x}", j.id.0),
                cluster = format_args!("{:x}", j.directory.cluster_id),
                "joining an existing cluster"
            );
            Some(j)
        }
        None => None,
    };
    if let Some(j) = joined {
        let mut members: Vec<Member> = j.directory.members.iter().map(|(m, _)| m.clone()).collect();
        if let Some(m) = members.iter_mut().find(|m| m.id == j.id) {
            m.name = cfg.name.clone();
        }
        return Ok((j.id, j.directory.cluster_id, members, j.bootstrap()));
    }
    let me = member_id(&cfg.cluster_token, &cfg.name);
    let computed = cluster_id(&cfg.cluster_token, initial.iter().map(|m| m.id));
    let cluster = match stored {
        Some(id) if id.cluster_id != computed && id.node_id == me => {
            tracing::info!(
                stored = format_args!("{:x}", id.cluster_id),
                "the data directory's cluster id differs from the one of --initial-cluster \
                 (membership changed since it was created); keeping the stored one"
            );
            id.cluster_id
        }
        _ => computed,
    };
    let bootstrap = Configuration::new(initial.iter().map(|m| m.id));
    Ok((me, cluster, initial, bootstrap))
}

/// A running member.
pub struct Server {
    node: Node<KvStateMachine>,
    api: Api,
    client_addr: SocketAddr,
    cancel: CancellationToken,
    grpc: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    admin: Option<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)>,
    /// Set when this member learned from the leader that it was removed.
    removed: Arc<std::sync::atomic::AtomicBool>,
}

impl Server {
    /// Recover the data directory and start serving peers and clients.
    pub async fn start(cfg: ServerConfig) -> Result<Server, ServerError> {
        let token = &cfg.cluster_token;
        let mut members = Vec::new();
        for (name, url) in &cfg.initial_cluster {
            host_port(url)?;
            let id = member_id(token, name);
            if members.iter().any(|m: &Member| m.id == id) {
                return Err(ServerError::Config(format!(
                    "member name {name:?} appears twice in the initial cluster"
                )));
            }
            members.push(Member {
                id,
                name: name.clone(),
                peer_urls: vec![url.clone()],
                client_urls: vec![],
            });
        }
        let Some(my_peer_url) = members
            .iter()
            .find(|m| m.name == cfg.name)
            .map(|m| m.peer_urls[0].clone())
        else {
            return Err(ServerError::Config(format!(
                "this member's name {:?} is not in the initial cluster ({})",
                cfg.name,
                cfg.initial_cluster
                    .iter()
                    .map(|(n, u)| format!("{n}={u}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )));
        };
        let (me, cluster, mut members, bootstrap) = identity(&cfg, members, &my_peer_url).await?;
        let listen_peer = match cfg.listen_peer {
            Some(a) => a,
            None => {
                let hp = host_port(&my_peer_url)?;
                tokio::net::lookup_host(hp)
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| {
                        ServerError::Config(format!("cannot resolve peer URL {my_peer_url}"))
                    })?
            }
        };
        let client_listener = tokio::net::TcpListener::bind(cfg.listen_client)
            .await
            .map_err(|err| ServerError::Listen {
                addr: cfg.listen_client,
                err,
            })?;
        let client_addr = client_listener
            .local_addr()
            .map_err(|err| ServerError::Listen {
                addr: cfg.listen_client,
                err,
            })?;
        let advertise = if cfg.advertise_client_urls.is_empty() {
            let mut a = client_addr;
            if a.ip().is_unspecified() {
                a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            vec![format!("http://{a}")]
        } else {
            cfg.advertise_client_urls.clone()
        };
        let peers = members
            .iter()
            .filter_map(|m| Some((m.id, m.peer_urls.first()?)))
            .map(|(id, url)| Ok((id, host_port(url)?.to_string())))
            .collect::<Result<_, ServerError>>()?;
        if let Some(m) = members.iter_mut().find(|m| m.id == me) {
            m.client_urls = advertise.clone();
        }
        let members = Arc::new(Members::new(members));
        let admin_listener = match cfg.listen_admin {
            None => None,
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|err| ServerError::AdminListen { addr, err })?;
                let a = l
                    .local_addr()
                    .map_err(|err| ServerError::AdminListen { addr, err })?;
                members.set_admin_url(me, format!("http://{}", loopback_if_unspecified(a)));
                Some((l, a))
            }
        };
        let (tick, election_ticks, heartbeat_ticks) = ticks(&cfg)?;
        let msg_bytes_max = 1 << 20;
        let ncfg = NodeConfig {
            id: me,
            cluster_id: cluster,
            data_dir: cfg.data_dir.clone(),
            peers,
            peer_listen: listen_peer,
            tick,
            election_ticks,
            heartbeat_ticks,
            snapshot_entries: cfg.snapshot_entries,
            frame_bytes_max: msg_bytes_max + cfg.request_bytes_max + (1 << 20),
            peer_queue_msgs_max: 4096,
            request_queue_max: 65536,
            advertise: Attrs {
                name: cfg.name.clone(),
                client_urls: advertise,
            },
            members: members.clone(),
        };
        let sm = KvStateMachine::new(KvConfig::default());
        let reader = sm.reader();
        let node = Node::start(
            ncfg,
            sm,
            bootstrap,
            Some(Box::new(MemberSync::new(members.clone()))),
        )
        .await?;
        let api = Api::new(
            node.handle.clone(),
            reader,
            members.clone(),
            cluster,
            ApiLimits {
                request_timeout: cfg.request_timeout,
                request_bytes_max: cfg.request_bytes_max,
                leader_change_grace: 2 * cfg.election_timeout,
            },
            Some(client_addr.ip()).filter(|ip| !ip.is_unspecified()),
            node.link.clone(),
        );
        let cancel = node.stopped();
        let removed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        tokio::spawn(crate::membership::watch(
            api.clone(),
            cancel.clone(),
            removed.clone(),
        ));
        // Watching starts once the log is replayed: a restart does not record the events
        // of its replay (they are old news, and the replay stays as fast as it was).
        let window = cfg.watch_history_events;
        let watch_hub = match node.handle.local(move |sm, _| sm.watch_hub(window)).await {
            Ok(hub) => hub,
            Err(_) => {
                node.stop().await?;
                return Err(ServerError::Config(
                    "the node stopped while starting".into(),
                ));
            }
        };
        let watch = WatchService::new(
            api.clone(),
            watch_hub.clone(),
            cancel.clone(),
            cfg.watch_progress_interval,
        );
        let serve = serve_grpc(
            client_listener,
            Services::new(api.clone()),
            watch,
            cfg.request_bytes_max + GRPC_OVERHEAD_BYTES,
            cancel.clone(),
        );
        let grpc = match cfg.client_api_threads {
            ClientApiThreads::Driver => node.spawn_on_driver(serve),
            ClientApiThreads::Pool => tokio::spawn(serve),
        };
        let admin = admin_listener.map(|(listener, addr)| {
            let a = crate::admin::Admin::new(
                cfg.name.clone(),
                members.admin_url(me).unwrap_or_default(),
                node.handle.clone(),
                members.clone(),
                node.telemetry.clone(),
                node.stats.clone(),
                cancel.clone(),
            )
            .with_watch(watch_hub.clone());
            (addr, tokio::spawn(crate::admin::serve(listener, a)))
        });
        tracing::info!(
            name = %cfg.name,
            member = format_args!("{:x}", me.0),
            cluster = format_args!("{cluster:x}"),
            client = %client_addr,
            peer = %node.peer_addr,
            admin = ?admin.as_ref().map(|a| a.0),
            "raftkv member serving"
        );
        Ok(Server {
            node,
            api,
            client_addr,
            cancel,
            grpc,
            admin,
            removed,
        })
    }

    /// Where the admin endpoint listens, if it was asked for.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.0)
    }

    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.node.peer_addr
    }

    pub fn member_id(&self) -> NodeId {
        self.api.member_id()
    }

    pub fn cluster_id(&self) -> u64 {
        self.api.cluster_id()
    }

    pub fn handle(&self) -> &crate::runtime::NodeHandle<KvStateMachine> {
        &self.node.handle
    }

    /// A token cancelled when the member stops (asked to, or after a fatal error).
    pub fn stopped(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stop serving and wait for every task; returns the node's outcome.
    pub async fn stop(self) -> Result<(), ServerError> {
        self.cancel.cancel();
        let _ = self.grpc.await;
        if let Some((_, task)) = self.admin {
            // Its event streams end on the token; do not let a stuck browser hold the stop.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let r = self.node.stop().await;
        if self.removed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ServerError::Node(NodeError::Removed));
        }
        Ok(r?)
    }
}

async fn serve_grpc(
    listener: tokio::net::TcpListener,
    services: Services,
    watch: WatchService,
    message_bytes_max: usize,
    cancel: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let s = services;
    let schema = crate::strict::Schema::new(&[
        "etcdserverpb.KV",
        "etcdserverpb.Cluster",
        "etcdserverpb.Maintenance",
        "raftkv.v1.RaftKv",
        "raftkv.peer.v1.Peer",
    ]);
    tonic::transport::Server::builder()
        .layer(crate::strict::StrictLayer::new(schema, message_bytes_max))
        .add_service(KvServer::new(s.clone()).max_decoding_message_size(message_bytes_max))
        .add_service(RaftKvServer::new(s.clone()).max_decoding_message_size(message_bytes_max))
        .add_service(ClusterServer::new(s.clone()))
        .add_service(MaintenanceServer::new(s.clone()))
        .add_service(WatchServer::new(watch).max_decoding_message_size(message_bytes_max))
        .add_service(
            PeerServer::new(s)
                .max_decoding_message_size(message_bytes_max)
                .max_encoding_message_size(usize::MAX),
        )
        .serve_with_incoming_shutdown(incoming, cancel.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_accepts_urls_and_bare_addresses() {
        assert_eq!(
            host_port("http://127.0.0.1:2380").unwrap(),
            "127.0.0.1:2380"
        );
        assert_eq!(host_port("127.0.0.1:2380/").unwrap(), "127.0.0.1:2380");
        assert!(host_port("http://nohost").is_err());
        assert!(host_port("http://h:1/path").is_err());
    }

    #[test]
    fn ticks_divide_the_heartbeat_and_keep_the_election_timeout() {
        let mut c = ServerConfig::single(
            "a",
            "/tmp".into(),
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:1",
        );
        c.heartbeat = Duration::from_millis(50);
        c.election_timeout = Duration::from_millis(300);
        assert_eq!(ticks(&c).unwrap(), (Duration::from_millis(10), 30, 5));
        c.heartbeat = Duration::from_millis(100);
        c.election_timeout = Duration::from_millis(1000);
        assert_eq!(ticks(&c).unwrap(), (Duration::from_millis(10), 100, 10));
        c.election_timeout = Duration::from_millis(100);
        assert!(ticks(&c).is_err());
    }
}
