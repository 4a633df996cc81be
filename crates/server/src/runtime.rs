//! The node runtime: one driver loop per node that owns the [`Replica`] (consensus core, WAL,
//! state machine) and turns timer ticks, peer messages, client requests and WAL sync reports
//! into `Ready` handling — persist → send → apply → advance — and client answers.
//!
//! The driver runs on a thread of its own (a current-thread tokio runtime), so the WAL's
//! buffered writes never stall the client API's tasks; the peer transport runs on that same
//! runtime (a message crosses no thread between its socket and the driver). Syncs run on the
//! WAL's sync thread and come back as events, so a leader's loop never waits on the disk; a
//! follower that was idle syncs on its loop instead (`SyncPlacement`), which saves two
//! thread wake-ups in series with every write at low load.
//!
//! Owns: the node's request queue, the map from tokens to waiting clients, the published
//! [`NodeStatus`]. Must never: answer a proposal before its entry applied, answer a
//! linearizable read before the read index applied, or keep running after a storage error
//! (the WAL may have lost data it was asked to keep: the node stops).

use crate::admin::telemetry::{FailReason, Tap, Telemetry, TimedFs, Timing};
use crate::members::{Attrs, Members};
use crate::transport::{self, PeerLink, PeerSender, TransportConfig, TransportStats};
use bytes::Bytes;
use raft::{ConfChange, ConfChangeError, Config, Configuration, NodeId, ProposeError, Role};
use replica::{
    Completion, ProposalError, Replica, SnapshotJob, SnapshotPolicy, StateMachine, WrittenSnapshot,
};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use storage::{DiskOptions, DiskStore, Identity, StdFs, StorageError, SyncDone};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub cluster_id: u64,
    pub data_dir: PathBuf,
    /// Peer address of every member (this node included), by id.
    pub peers: HashMap<NodeId, String>,
    /// Where this node accepts peer connections.
    pub peer_listen: SocketAddr,
    pub tick: Duration,
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
    /// Snapshot the state machine and compact the log every this many applied entries.
    pub snapshot_entries: u64,
    pub frame_bytes_max: usize,
    pub peer_queue_msgs_max: usize,
    /// Client requests queued before new ones are refused.
    pub request_queue_max: usize,
    /// What this node advertises to its peers (name, client URLs).
    pub advertise: Attrs,
    /// The member table the transport fills in with what peers advertise.
    pub members: Arc<Members>,
}

/// Why a node could not start or had to stop.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Replica(#[from] replica::ReplicaError),
    #[error("peer listener on {addr}: {err}")]
    Listen {
        addr: SocketAddr,
        err: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not an error of the node: its removal from the configuration applied, so it stopped.
    #[error("this member was removed from the cluster")]
    Removed,
}

/// What keeps the peer transport in step with the membership: called after every loop turn
/// with the state machine and the core's configuration (`conf_changed`: it differs from the
/// previous turn's); returns every member's peer address (`host:port`) when they changed.
pub trait PeerDirectory<M>: Send + 'static {
    fn refresh(
        &mut self,
        sm: &M,
        conf: &Configuration,
        conf_changed: bool,
    ) -> Option<HashMap<NodeId, String>>;
}

/// Why a proposal was not applied.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ProposeFailure {
    #[error("not the leader")]
    NotLeader { leader: Option<NodeId> },
    #[error("leadership transfer in progress; retry")]
    TransferInProgress,
    #[error("too many uncommitted entries; retry later")]
    Busy,
    #[error("the proposal was overwritten by a new leader; retry")]
    Lost,
    #[error("the outcome is unknown (a snapshot replaced the log); retry with the same session")]
    Unknown,
    #[error("the node is shutting down")]
    Stopped,
    #[error("membership change refused: {0}")]
    ConfChange(ConfChangeError),
}

/// Why a linearizable read could not be confirmed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ReadFailure {
    #[error("no leader to confirm the read")]
    NoLeader,
    #[error("leadership changed while confirming the read; retry")]
    Failed,
    #[error("the node is shutting down")]
    Stopped,
}

/// A snapshot of a node's state, published after every loop turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
    pub snapshot_index: u64,
}

impl NodeStatus {
    /// Who leads, as this node sees it: its role, its term and the leader it knows.
    pub fn leadership(&self) -> (Role, u64, Option<NodeId>) {
        (self.role, self.term, self.leader)
    }
}

type ReadFn<M> = Box<dyn FnOnce(Result<&M, ReadFailure>) + Send>;
type LocalFn<M> = Box<dyn FnOnce(&M, &NodeStatus) + Send>;
type InspectFn = Box<dyn FnOnce(&raft::Raft) + Send>;
/// The node's log store: the WAL on the real disk, its `fdatasync`s timed for the metrics.
type Store = DiskStore<TimedFs<StdFs>>;

enum Request<M> {
    Propose {
        data: Bytes,
        reply: oneshot::Sender<Result<Bytes, ProposeFailure>>,
    },
    Read(ReadFn<M>),
    Local(LocalFn<M>),
    Inspect(InspectFn),
    TransferLeader {
        to: NodeId,
        reply: oneshot::Sender<Result<(), String>>,
    },
    ConfChange {
        change: ConfChange,
        reply: oneshot::Sender<Result<Bytes, ProposeFailure>>,
    },
}

/// A cheap, cloneable handle to a running node.
pub struct NodeHandle<M> {
    tx: mpsc::Sender<Request<M>>,
    status: watch::Receiver<NodeStatus>,
    leadership: watch::Receiver<NodeStatus>,
}

impl<M> Clone for NodeHandle<M> {
    fn clone(&self) -> Self {
        NodeHandle {
            tx: self.tx.clone(),
            status: self.status.clone(),
            leadership: self.leadership.clone(),
        }
    }
}

impl<M: StateMachine + Send + 'static> NodeHandle<M> {
    /// Propose a command; resolves with the state machine's result once it applied.
    pub async fn propose(&self, data: Bytes) -> Result<Bytes, ProposeFailure> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Request::Propose { data, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ProposeFailure::Busy,
                mpsc::error::TrySendError::Closed(_) => ProposeFailure::Stopped,
            })?;
        rx.await.unwrap_or(Err(ProposeFailure::Stopped))
    }

    /// Run `f` on the state machine once a linearizable read is confirmed (ReadIndex).
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&M) -> R + Send + 'static,
    ) -> Result<R, ReadFailure> {
        let (tx, rx) = oneshot::channel();
        let serve: ReadFn<M> = Box::new(move |sm| {
            let _ = tx.send(sm.map(f));
        });
        self.tx
            .try_send(Request::Read(serve))
            .map_err(|_| ReadFailure::Stopped)?;
        rx.await.unwrap_or(Err(ReadFailure::Stopped))
    }

    /// Run `f` on the local state machine now (serializable: may be stale).
    pub async fn local<R: Send + 'static>(
        &self,
        f: impl FnOnce(&M, &NodeStatus) -> R + Send + 'static,
    ) -> Result<R, ReadFailure> {
        let (tx, rx) = oneshot::channel();
        let serve: LocalFn<M> = Box::new(move |sm, st| {
            let _ = tx.send(f(sm, st));
        });
        self.tx
            .try_send(Request::Local(serve))
            .map_err(|_| ReadFailure::Stopped)?;
        rx.await.map_err(|_| ReadFailure::Stopped)
    }

    /// Run `f` on the consensus core's observers now (log tail, vote, first index: what the
    /// admin endpoint shows); read-only, in the driver loop, so keep it short.
    pub async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&raft::Raft) -> R + Send + 'static,
    ) -> Result<R, ReadFailure> {
        let (tx, rx) = oneshot::channel();
        let serve: InspectFn = Box::new(move |raft| {
            let _ = tx.send(f(raft));
        });
        self.tx
            .try_send(Request::Inspect(serve))
            .map_err(|_| ReadFailure::Stopped)?;
        rx.await.map_err(|_| ReadFailure::Stopped)
    }

    /// Ask the leader to hand leadership to `to`.
    /// Propose a membership change (leader only) and wait until its entry applied here.
    pub async fn conf_change(&self, change: ConfChange) -> Result<(), ProposeFailure> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::ConfChange { change, reply })
            .await
            .map_err(|_| ProposeFailure::Stopped)?;
        rx.await.map_err(|_| ProposeFailure::Stopped)?.map(|_| ())
    }

    pub async fn transfer_leader(&self, to: NodeId) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Request::TransferLeader { to, reply })
            .map_err(|_| "node busy or stopped".to_string())?;
        rx.await.unwrap_or_else(|_| Err("node stopped".into()))
    }

    /// The latest published status.
    pub fn status(&self) -> NodeStatus {
        *self.status.borrow()
    }

    /// A receiver that sees every status change (the commit index moves with every
    /// write: a task awaiting this wakes once per driver turn that changed anything).
    pub fn watch_status(&self) -> watch::Receiver<NodeStatus> {
        self.status.clone()
    }

    /// A receiver told only when the role, term or leader changes (the status it holds is
    /// the one of that change): for whoever waits for a leader, not for the log.
    pub fn watch_leadership(&self) -> watch::Receiver<NodeStatus> {
        self.leadership.clone()
    }
}

/// A running node: its handle, its tasks, and how to stop it.
pub struct Node<M> {
    pub handle: NodeHandle<M>,
    pub stats: Arc<TransportStats>,
    /// Counters, histograms and the event tap the admin endpoint reads.
    pub telemetry: Arc<Telemetry>,
    pub peer_addr: SocketAddr,
    /// The peer queues and application-frame hook, for layers above the node.
    pub link: Arc<PeerLink>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    driver: Option<std::thread::JoinHandle<Result<(), NodeError>>>,
    /// The driver thread's runtime (its tasks end when the driver stops).
    driver_rt: tokio::runtime::Handle,
}

fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

impl<M: StateMachine + Send + 'static> Node<M> {
    /// Open the data directory (recovering the WAL), bind the peer listener and start the
    /// driver thread and the peer tasks. Must be called inside a tokio runtime.
    ///
    /// `bootstrap`: the configuration a new data directory starts with (the initial
    /// cluster's voters; for a member joining an existing cluster, the members it was told
    /// of — the log then says otherwise). `directory` keeps the transport's peers in step
    /// with membership changes (`None`: the peers of `cfg` forever).
    pub async fn start(
        cfg: NodeConfig,
        sm: M,
        bootstrap: Configuration,
        directory: Option<Box<dyn PeerDirectory<M>>>,
    ) -> Result<Node<M>, NodeError> {
        let identity = Identity {
            cluster_id: cfg.cluster_id,
            node_id: cfg.id,
            bootstrap,
        };
        let telemetry = Arc::new(Telemetry::new(
            cfg.id,
            cfg.peers.keys().copied(),
            Timing {
                tick: cfg.tick,
                election_ticks: cfg.election_ticks,
                heartbeat_ticks: cfg.heartbeat_ticks,
            },
        ));
        let fs = TimedFs::new(StdFs, telemetry.clone());
        let mut store = DiskStore::open(fs, &cfg.data_dir, identity, DiskOptions::default())?;
        let report = store.recovery_report().clone();
        tracing::info!(
            node = cfg.id.0,
            dir = %cfg.data_dir.display(),
            segments = report.segments,
            entries = report.entries,
            "WAL recovered"
        );
        let (sync_tx, sync_rx) = mpsc::unbounded_channel::<SyncDone>();
        store.enable_group_commit(Box::new(move |d| {
            let _ = sync_tx.send(d);
        }))?;
        let mut rc = Config::new(cfg.id);
        rc.election_ticks = cfg.election_ticks;
        rc.heartbeat_ticks = cfg.heartbeat_ticks;
        rc.seed = random_seed();
        let policy = if cfg.snapshot_entries == 0 {
            SnapshotPolicy::never()
        } else {
            SnapshotPolicy::every(cfg.snapshot_entries)
                .in_background()
                .size_aware()
        };
        let mut replica = Replica::new(rc, store, sm, policy)?;
        // The only voter of its cluster has nobody to wait for and nobody to disrupt: it
        // campaigns at once instead of after a random [E, 2E) (etcd fast-forwards the
        // election ticks of a one-member cluster at start the same way). Its first batch then
        // applies the log while the vote and the leader's entry sync.
        let voters = &replica.raft().configuration().voters;
        if voters.len() == 1 && voters.contains(&cfg.id) {
            replica.campaign();
        }

        // The driver's own runtime also runs the peer transport (accept loop, connection
        // readers, outbound senders): a message read from a peer reaches the driver, and a
        // message the driver sends reaches its socket, without waking another thread.
        let rt = DriverRuntime(Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        ));
        let driver_rt = rt.get().handle().clone();
        let net = {
            let _on_driver = rt.get().enter();
            start_transport(&cfg)?
        };
        let (req_tx, req_rx) = mpsc::channel(cfg.request_queue_max);
        let (status_tx, status_rx) = watch::channel(status_of(&replica));
        let (leadership_tx, leadership_rx) = watch::channel(status_of(&replica));
        let (snap_tx, snap_rx) = mpsc::unbounded_channel::<WrittenSnapshot>();
        let driver = Driver {
            snap_tx,
            snap_worker: None,
            member_since: None,
            conf: Configuration::default(),
            directory,
            removed_at: None,
            sync_place: SyncPlacement::new(),
            replica,
            sender: net.sender,
            status_tx,
            leadership_tx,
            tokens: 0,
            proposals: HashMap::new(),
            reads: HashMap::new(),
            tap: Tap::new(telemetry.clone()),
        };
        let tick = cfg.tick;
        let dcancel = net.cancel.clone();
        let inbox = net.inbox;
        let dtracker = net.tracker.clone();
        let thread = std::thread::Builder::new()
            .name(format!("raftkv-node-{}", cfg.id.0))
            .spawn(move || {
                let run = driver.run(tick, req_rx, inbox, sync_rx, snap_rx, dcancel.clone());
                let r = rt.get().block_on(run);
                if let Err(e) = &r {
                    tracing::error!(error = %e, "node stopped");
                }
                dcancel.cancel();
                // The tasks on this thread (transport, and the client API when it shares
                // the thread) end on the token: let them finish — the answers to requests
                // the driver failed go out — then drop the runtime with what is left.
                dtracker.close();
                rt.get().block_on(async {
                    let _ = tokio::time::timeout(DRAIN_TIMEOUT, dtracker.wait()).await;
                });
                drop(rt);
                r
            })?;
        Ok(Node {
            handle: NodeHandle {
                tx: req_tx,
                status: status_rx,
                leadership: leadership_rx,
            },
            stats: net.stats,
            telemetry,
            peer_addr: net.peer_addr,
            link: net.link,
            cancel: net.cancel,
            tracker: net.tracker,
            driver: Some(thread),
            driver_rt,
        })
    }

    /// A token that is cancelled when the node stops (by request or by a fatal error).
    pub fn stopped(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Run `task` on the driver's thread: between it and the driver no thread hand-off
    /// (no futex wake, no context switch). It must end when the node's token is cancelled:
    /// once the driver stopped, its thread runs such tasks for at most [`DRAIN_TIMEOUT`]
    /// more (so that answers to requests the driver failed still go out), then drops them.
    pub fn spawn_on_driver<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn_on(task, &self.driver_rt)
    }

    /// Stop every task and wait for them; returns the driver's outcome.
    pub async fn stop(mut self) -> Result<(), NodeError> {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        match self.driver.take() {
            Some(t) => tokio::task::spawn_blocking(move || t.join())
                .await
                .map_err(|e| NodeError::Io(std::io::Error::other(e)))?
                .unwrap_or_else(|_| Err(NodeError::Io(std::io::Error::other("driver panicked")))),
            None => Ok(()),
        }
    }
}

/// How long the driver's thread goes on running its other tasks after the driver stopped.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The driver thread's runtime. Dropped without waiting for its tasks (they are dropped), so
/// that dropping it is allowed anywhere — also in `Node::start`'s async context when
/// starting fails.
struct DriverRuntime(Option<tokio::runtime::Runtime>);

impl DriverRuntime {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for DriverRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The peer transport of a node, started on the runtime the caller entered.
struct Transport {
    peer_addr: SocketAddr,
    stats: Arc<TransportStats>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    link: Arc<PeerLink>,
    sender: PeerSender,
    /// Messages read from peers, for the driver.
    inbox: mpsc::Receiver<raft::Message>,
}

/// Bind the peer listener and spawn the accept loop and one sender per peer on the current
/// runtime (the driver's: the caller entered it).
fn start_transport(cfg: &NodeConfig) -> Result<Transport, NodeError> {
    let listen = |err| NodeError::Listen {
        addr: cfg.peer_listen,
        err,
    };
    let socket = if cfg.peer_listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(listen)?;
    socket.set_reuseaddr(true).map_err(listen)?;
    socket.bind(cfg.peer_listen).map_err(listen)?;
    let listener: TcpListener = socket.listen(1024).map_err(listen)?;
    let peer_addr = listener.local_addr()?;
    let tcfg = TransportConfig {
        cluster_id: cfg.cluster_id,
        id: cfg.id,
        frame_bytes_max: cfg.frame_bytes_max,
        queue_msgs_max: cfg.peer_queue_msgs_max,
        attrs: cfg.members.encode_attrs(cfg.id, &cfg.advertise),
        local_ip: Some(cfg.peer_listen.ip()).filter(|ip| !ip.is_unspecified()),
    };
    let stats = Arc::new(TransportStats::default());
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (peer_tx, inbox) = mpsc::channel(cfg.peer_queue_msgs_max.max(1024));
    let link = Arc::new(PeerLink::new(cfg.frame_bytes_max));
    tracker.spawn(transport::accept_loop(
        listener,
        tcfg.clone(),
        transport::Inbound {
            members: cfg.members.clone(),
            inbox: peer_tx,
            stats: stats.clone(),
            link: link.clone(),
        },
        cancel.clone(),
        tracker.clone(),
    ));
    let sender = transport::start_senders(
        &tcfg,
        &cfg.peers,
        stats.clone(),
        cancel.clone(),
        &tracker,
        link.clone(),
    );
    Ok(Transport {
        peer_addr,
        stats,
        cancel,
        tracker,
        link,
        sender,
        inbox,
    })
}

fn status_of<M: StateMachine>(r: &Replica<Store, M>) -> NodeStatus {
    let raft = r.raft();
    NodeStatus {
        id: raft.id(),
        role: raft.role(),
        term: raft.term().0,
        leader: raft.leader(),
        commit: raft.commit_index().0,
        applied: r.applied_index().0,
        last_index: raft.last_index().0,
        snapshot_index: r.snapshot_index().0,
    }
}

struct Driver<M: StateMachine + 'static> {
    replica: Replica<Store, M>,
    sender: PeerSender,
    status_tx: watch::Sender<NodeStatus>,
    /// Told only of role, term and leader changes.
    leadership_tx: watch::Sender<NodeStatus>,
    tokens: u64,
    proposals: HashMap<u64, oneshot::Sender<Result<Bytes, ProposeFailure>>>,
    reads: HashMap<u64, ReadFn<M>>,
    tap: Tap,
    /// The configuration at the end of the previous turn.
    conf: Configuration,
    directory: Option<Box<dyn PeerDirectory<M>>>,
    /// Index of the configuration entry (0: bootstrap or snapshot) from which on the
    /// applied configuration included this node; `None` before it ever did.
    member_since: Option<raft::LogIndex>,
    /// When this node saw its own removal apply (it stops a little later, so that its last
    /// messages — the commit, a TimeoutNow to its successor — go out).
    removed_at: Option<tokio::time::Instant>,
    /// Where the snapshot thread reports a finished [`SnapshotJob`].
    snap_tx: mpsc::UnboundedSender<WrittenSnapshot>,
    /// The thread that serializes and writes the latest snapshot (one at a time).
    snap_worker: Option<std::thread::JoinHandle<()>>,
    sync_place: SyncPlacement,
}

/// Where a turn's WAL sync runs: on this loop, or on the WAL's sync thread.
///
/// A follower's part of a put is: receive the append, write it, sync it, answer. With the
/// sync on the sync thread that is two more thread wake-ups in series (the thread's, then
/// the loop's when the sync is reported), ≈ 30 µs each on a small VM. A follower that was
/// idle has nothing to overlap with its sync, so it syncs here. A busy one (the previous
/// sync ended less than its own duration ago, or one is still running) keeps the sync
/// thread: its next batch is written while the sync runs, and group commit covers both. A
/// leader always uses the thread: its appends must reach the followers before it waits on
/// its own disk.
struct SyncPlacement {
    /// When the syncs now running on the sync thread began (`None`: none is).
    thread_since: Option<std::time::Instant>,
    /// When the latest sync ended, and how long it took.
    last_end: std::time::Instant,
    last_took: Duration,
}

impl SyncPlacement {
    fn new() -> Self {
        SyncPlacement {
            thread_since: None,
            last_end: std::time::Instant::now(),
            last_took: Duration::ZERO,
        }
    }

    /// Whether the next turn's sync may run here.
    fn here<M: StateMachine>(&self, r: &Replica<Store, M>) -> bool {
        r.raft().role() == Role::Follower
            && r.unsynced_batches() == 0
            && self.last_end.elapsed() >= self.last_took
    }

    /// After a turn that started at `started`: a sync ran here if `synced_here` grew; note
    /// syncs handed to the thread, or reported back from it.
    fn observe<M: StateMachine>(
        &mut self,
        r: &Replica<Store, M>,
        started: std::time::Instant,
        synced_here_before: u64,
    ) {
        let now = std::time::Instant::now();
        if r.synced_here() > synced_here_before {
            self.last_end = now;
            self.last_took = now - started;
        }
        match (self.thread_since, r.unsynced_batches() > 0) {
            (None, true) => self.thread_since = Some(now),
            (Some(since), false) => {
                self.thread_since = None;
                self.last_end = now;
                self.last_took = now - since;
            }
            _ => {}
        }
    }
}

/// Lower the calling thread's priority (nice +10, about a tenth of a normal thread's share
/// when the cores are contended): a snapshot of a large state takes hundreds of milliseconds
/// of CPU to encode, which should mostly come from idle time, not from the members' event
/// loops — yet still finish on a saturated machine, or the log would never compact. Best
/// effort: refused, the thread runs as is.
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread (its own tid); no memory is passed.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10)
    };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "snapshot thread keeps its priority"
        );
    }
}

/// How long a removed member keeps running after its removal applied.
const REMOVED_GRACE: Duration = Duration::from_millis(500);

/// How many queued events one loop turn takes before handling `Ready` (batching).
const BATCH_EVENTS_MAX: usize = 512;

impl<M: StateMachine + 'static> Driver<M> {
    async fn run(
        mut self,
        tick: Duration,
        mut requests: mpsc::Receiver<Request<M>>,
        mut peers: mpsc::Receiver<raft::Message>,
        mut synced: mpsc::UnboundedReceiver<SyncDone>,
        mut snapshots: mpsc::UnboundedReceiver<WrittenSnapshot>,
        cancel: CancellationToken,
    ) -> Result<(), NodeError> {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.replay()?;
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(d) = synced.recv() => {
                    self.on_synced(d)?;
                    while let Ok(d) = synced.try_recv() {
                        self.on_synced(d)?;
                    }
                }
                Some(w) = snapshots.recv() => self.replica.on_snapshot_written(w)?,
                Some(m) = peers.recv() => {
                    self.receive(m);
                    for _ in 0..BATCH_EVENTS_MAX {
                        match peers.try_recv() {
                            Ok(m) => self.receive(m),
                            Err(_) => break,
                        }
                    }
                }
                Some(r) = requests.recv() => {
                    self.request(r);
                    for _ in 0..BATCH_EVENTS_MAX {
                        match requests.try_recv() {
                            Ok(r) => self.request(r),
                            Err(_) => break,
                        }
                    }
                }
                _ = ticker.tick() => {
                    self.tap.tick();
                    self.replica.tick();
                }
            }
            let started = std::time::Instant::now();
            let synced_here = self.replica.synced_here();
            let here = self.sync_place.here(&self.replica);
            let done = self
                .replica
                .handle_ready_syncing_here(&mut self.tap.transport(&mut self.sender), here)?;
            self.complete(done);
            self.sync_place.observe(&self.replica, started, synced_here);
            if let Some(job) = self.replica.take_snapshot_job() {
                self.start_snapshot(job)?;
            }
            if self.follow_membership() {
                break;
            }
            let st = status_of(&self.replica);
            self.status_tx.send_if_modified(|s| {
                let changed = *s != st;
                *s = st;
                changed
            });
            self.leadership_tx.send_if_modified(|s| {
                let changed = s.leadership() != st.leadership();
                if changed {
                    *s = st;
                }
                changed
            });
            self.tap.turn(&st);
        }
        self.fail_all();
        if let Some(t) = self.snap_worker.take() {
            // Nothing writes to the data directory once the node stopped.
            let _ = t.join();
        }
        if self.removed_at.is_some() {
            return Err(NodeError::Removed);
        }
        Ok(())
    }

    /// Apply what the log holds as committed (a restarted node's replay) before serving
    /// anything, and log how long it took.
    fn replay(&mut self) -> Result<(), NodeError> {
        let started = std::time::Instant::now();
        let from = self.replica.applied_index();
        let done = self
            .replica
            .handle_ready(&mut self.tap.transport(&mut self.sender))?;
        self.complete(done);
        let to = self.replica.applied_index();
        if to > from {
            tracing::info!(
                entries = to.0 - from.0,
                applied = to.0,
                ms = started.elapsed().as_millis() as u64,
                "log replayed into the state machine"
            );
        }
        Ok(())
    }

    /// Keep the transport's peers in step with the configuration and the member records;
    /// true when this node's removal applied a grace period ago (time to stop).
    fn follow_membership(&mut self) -> bool {
        let raft = self.replica.raft();
        let conf = raft.configuration();
        let changed = *conf != self.conf;
        if changed {
            self.conf = conf.clone();
        }
        if let Some(dir) = self.directory.as_mut() {
            if let Some(peers) = dir.refresh(self.replica.state_machine(), &self.conf, changed) {
                self.sender.set_peers(&peers);
                self.tap.telemetry().set_peers(peers.keys().copied());
            }
        }
        self.sender.prune();
        let me = raft.id();
        let at = raft.pending_conf_index();
        let settled = at <= self.replica.applied_index();
        if settled && self.conf.is_member(me) && self.member_since.is_none() {
            self.member_since = Some(at);
        }
        // Removed: a configuration *entry* after the one that made this node a member
        // leaves it out (a snapshot's older configuration installed while catching up does
        // not count).
        let removed = settled
            && !self.conf.is_member(me)
            && self.member_since.is_some_and(|since| at > since);
        if removed && self.removed_at.is_none() {
            tracing::warn!("this member's removal from the cluster applied; stopping");
            self.removed_at = Some(tokio::time::Instant::now());
        }
        self.removed_at
            .is_some_and(|t| t.elapsed() >= REMOVED_GRACE)
    }

    /// Serialize and write a snapshot on its own thread; the driver keeps going, and compacts
    /// the log when the result comes back.
    fn start_snapshot(&mut self, job: SnapshotJob) -> Result<(), NodeError> {
        if let Some(t) = self.snap_worker.take() {
            // The previous job's result came back before this one was handed out: it ended.
            let _ = t.join();
        }
        let tx = self.snap_tx.clone();
        let thread = std::thread::Builder::new()
            .name("raftkv-snapshot".into())
            .spawn(move || {
                lower_priority();
                let started = std::time::Instant::now();
                let index = job.index();
                let written = job.run();
                tracing::debug!(
                    index = index.0,
                    ms = started.elapsed().as_millis() as u64,
                    "snapshot written"
                );
                let _ = tx.send(written);
            })?;
        self.snap_worker = Some(thread);
        Ok(())
    }

    fn on_synced(&mut self, d: SyncDone) -> Result<(), NodeError> {
        if let Err(why) = d.result {
            return Err(NodeError::Storage(StorageError::Io(format!(
                "WAL sync failed: {why}"
            ))));
        }
        let done = self
            .replica
            .on_synced(d.ticket, &mut self.tap.transport(&mut self.sender))?;
        self.complete(done);
        Ok(())
    }

    fn receive(&mut self, m: raft::Message) {
        self.tap.received(&m);
        if let Err(e) = self.replica.receive(m) {
            tracing::warn!(error = %e, "peer message refused by the core");
        }
    }

    fn token(&mut self) -> u64 {
        self.tokens += 1;
        self.tokens
    }

    fn request(&mut self, r: Request<M>) {
        match r {
            Request::Propose { data, reply } => {
                let token = self.token();
                match self.replica.propose(data, token) {
                    Ok(_) => {
                        self.tap.proposed(token);
                        self.proposals.insert(token, reply);
                    }
                    Err(e) => {
                        self.tap.refused(match e {
                            ProposeError::NotLeader { .. } => FailReason::NotLeader,
                            ProposeError::TransferInProgress => FailReason::Transfer,
                            ProposeError::UncommittedLimit { .. } => FailReason::Busy,
                        });
                        let _ = reply.send(Err(match e {
                            ProposeError::NotLeader { leader_hint } => ProposeFailure::NotLeader {
                                leader: leader_hint,
                            },
                            ProposeError::TransferInProgress => ProposeFailure::TransferInProgress,
                            ProposeError::UncommittedLimit { .. } => ProposeFailure::Busy,
                        }));
                    }
                }
            }
            Request::Read(serve) => {
                let token = self.token();
                match self.replica.read(token) {
                    Ok(()) => {
                        self.reads.insert(token, serve);
                    }
                    Err(_) => serve(Err(ReadFailure::NoLeader)),
                }
            }
            Request::Local(f) => f(self.replica.state_machine(), &status_of(&self.replica)),
            Request::Inspect(f) => f(self.replica.raft()),
            Request::ConfChange { change, reply } => {
                let token = self.token();
                match self.replica.propose_conf_change(change, token) {
                    Ok(_) => {
                        self.proposals.insert(token, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(match e {
                            ConfChangeError::NotLeader { leader_hint } => {
                                ProposeFailure::NotLeader {
                                    leader: leader_hint,
                                }
                            }
                            ConfChangeError::TransferInProgress => {
                                ProposeFailure::TransferInProgress
                            }
                            e => ProposeFailure::ConfChange(e),
                        }));
                    }
                }
            }
            Request::TransferLeader { to, reply } => {
                let _ = reply.send(self.replica.transfer_leader(to).map_err(|e| e.to_string()));
            }
        }
    }

    fn complete(&mut self, done: Vec<Completion>) {
        for c in done {
            match c {
                Completion::Applied { token, result, .. } => {
                    self.tap.finished(token, None);
                    if let Some(reply) = self.proposals.remove(&token) {
                        let _ = reply.send(Ok(result));
                    }
                }
                Completion::Failed { token, error } => {
                    self.tap.finished(
                        token,
                        Some(match error {
                            ProposalError::Overwritten { .. } => FailReason::Lost,
                            ProposalError::OutcomeUnknown { .. } => FailReason::Unknown,
                        }),
                    );
                    if let Some(reply) = self.proposals.remove(&token) {
                        let _ = reply.send(Err(match error {
                            ProposalError::Overwritten { .. } => ProposeFailure::Lost,
                            ProposalError::OutcomeUnknown { .. } => ProposeFailure::Unknown,
                        }));
                    }
                }
                Completion::ReadReady { token, .. } => {
                    if let Some(serve) = self.reads.remove(&token) {
                        serve(Ok(self.replica.state_machine()));
                    }
                }
                Completion::ReadFailed { token } => {
                    if let Some(serve) = self.reads.remove(&token) {
                        serve(Err(ReadFailure::Failed));
                    }
                }
            }
        }
    }

    fn fail_all(&mut self) {
        self.tap.finish_all(FailReason::Stopped);
        for (_, reply) in self.proposals.drain() {
            let _ = reply.send(Err(ProposeFailure::Stopped));
        }
        for (_, serve) in self.reads.drain() {
            serve(Err(ReadFailure::Stopped));
        }
    }
}
