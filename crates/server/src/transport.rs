//! The peer transport: Raft messages between nodes over TCP, one connection per direction
//! and peer.
//!
//! A connection starts with a [`Hello`] (magic, version, cluster id, sender, receiver, then the
//! sender's advertised attributes — name and client URLs — as `[len: u16 LE][bytes]`, see
//! [`crate::members::Attrs`]); then each frame is `[len: u32 LE][payload]`, the payload a
//! [`crate::wire`] message. Each peer has an
//! outbound task with a bounded queue that writes every queued frame before one flush
//! (batching) and reconnects with backoff — at once when the peer closes the connection (a
//! peer that restarted gets the next message on a new connection instead of losing it in
//! the dead one); when the queue is full, messages are dropped — Raft retransmits.
//!
//! Owns: dialing, accepting, the hello check, frame limits, the per-peer queues.
//! Must never: block the node's driver loop (sends are `try_send`), deliver a message from a
//! connection whose hello named another cluster or node, or read a frame larger than the
//! limit (the connection is closed instead).
//!
//! Besides Raft messages a connection carries *application frames* (payload's first byte
//! `>=` [`APP_FRAME_MIN`]; a Raft message starts with its wire version, below it): they go to
//! the [`AppFrames`] handler installed on the node's [`PeerLink`] instead of the driver, and
//! the handler hears of every connection to or from a peer that ended (frames in flight on
//! it may be lost). The client API forwards followers' writes this way ([`crate::forward`]).

use crate::members::{Directory, Members, ATTRS_BYTES_MAX};
use crate::wire;
use bytes::{Bytes, BytesMut};
use raft::{Message, NodeId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const MAGIC: &[u8; 4] = b"RKVP";
/// A joining member's question "who is in this cluster?" (instead of a hello); the answer
/// is `[len: u32 LE][`[`Directory`]`]` and the connection closes.
pub const QUERY_MAGIC: &[u8; 4] = b"RKVQ";
const VERSION: u8 = 3;
/// First byte of an application frame's payload (Raft messages start lower).
pub const APP_FRAME_MIN: u8 = 0x80;
const HELLO_BYTES: usize = 4 + 1 + 8 + 8 + 8;

/// Limits and identity of a node's peer transport.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    pub cluster_id: u64,
    pub id: NodeId,
    /// Largest frame accepted or sent.
    pub frame_bytes_max: usize,
    /// Messages queued per peer before new ones are dropped.
    pub queue_msgs_max: usize,
    /// This node's advertised attributes, encoded ([`crate::members::Members::encode_attrs`]).
    pub attrs: Vec<u8>,
    /// Source address of outgoing peer connections: the node's own peer-listen IP when it
    /// listens on a specific one, so that traffic between two members is identifiable by
    /// address (firewall rules, packet captures, the partition tests).
    pub local_ip: Option<std::net::IpAddr>,
}

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub struct TransportStats {
    pub sent: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_oversize: AtomicU64,
    pub received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub bad_frames: AtomicU64,
}

/// The fixed part of a connection's hello; the sender's attribute block follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    pub cluster_id: u64,
    pub from: NodeId,
    pub to: NodeId,
}

/// Why the fixed part of a hello was refused before its ids were compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum HelloError {
    #[error("wrong magic {0:02x?}")]
    Magic([u8; 4]),
    #[error("unsupported transport version {0}")]
    Version(u8),
}

impl Hello {
    /// Bytes of the fixed part: magic, version, cluster id, sender, receiver.
    pub const BYTES: usize = HELLO_BYTES;

    /// The whole hello: the fixed part, then `[len: u16 LE][attrs]`.
    pub fn encode(&self, attrs: &[u8]) -> Vec<u8> {
        debug_assert!(attrs.len() <= ATTRS_BYTES_MAX);
        let mut b = Vec::with_capacity(HELLO_BYTES + 2 + attrs.len());
        b.extend_from_slice(MAGIC);
        b.push(VERSION);
        b.extend_from_slice(&self.cluster_id.to_le_bytes());
        b.extend_from_slice(&self.from.0.to_le_bytes());
        b.extend_from_slice(&self.to.0.to_le_bytes());
        debug_assert_eq!(b.len(), HELLO_BYTES);
        b.extend_from_slice(&(attrs.len() as u16).to_le_bytes());
        b.extend_from_slice(attrs);
        b
    }

    /// The fixed part of a hello; whether its ids are this node's is the caller's check.
    pub fn decode(h: &[u8; HELLO_BYTES]) -> Result<Hello, HelloError> {
        let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8"));
        if &h[..4] != MAGIC {
            return Err(HelloError::Magic(h[..4].try_into().expect("4")));
        }
        if h[4] != VERSION {
            return Err(HelloError::Version(h[4]));
        }
        Ok(Hello {
            cluster_id: u64_at(5),
            from: NodeId(u64_at(13)),
            to: NodeId(u64_at(21)),
        })
    }
}

fn hello(cfg: &TransportConfig, to: NodeId) -> Vec<u8> {
    let h = Hello {
        cluster_id: cfg.cluster_id,
        from: cfg.id,
        to,
    };
    h.encode(&cfg.attrs)
}

/// What a node's application layer receives from peers besides Raft messages.
///
/// What happened to each application frame sent is told precisely, so that the layer above
/// knows whether the peer may have acted on it: [`AppFrames::written`] before it goes into
/// a connection (which may veto it: a frame nobody waits for any more is not written),
/// [`AppFrames::unsent`] when it was dropped without ever being written (no connection, or
/// the peer had closed it before the write), and
/// [`AppFrames::connection_lost`] when a connection ended — frames written to it may or
/// may not have been read. All are called on transport tasks: none may block.
pub trait AppFrames: Send + Sync {
    /// An application frame from `from`.
    fn frame(&self, from: NodeId, frame: Bytes);
    /// `frame` is about to be written to the connection to `to`; false: drop it instead.
    fn written(&self, to: NodeId, frame: &[u8]) -> bool;
    /// `frame` for `to` was dropped unwritten: the peer never saw it.
    fn unsent(&self, to: NodeId, frame: &[u8]);
    /// A connection to or from `peer` ended.
    fn connection_lost(&self, peer: NodeId);
}

/// The peer queues as the rest of the process sees them (the driver owns the authoritative
/// set and mirrors it here), and the application-frame handler.
pub struct PeerLink {
    frame_bytes_max: usize,
    queues: std::sync::Mutex<HashMap<NodeId, mpsc::Sender<Bytes>>>,
    app: std::sync::OnceLock<Arc<dyn AppFrames>>,
}

impl PeerLink {
    /// A link whose application frames are at most `frame_bytes_max` long.
    pub fn new(frame_bytes_max: usize) -> PeerLink {
        PeerLink {
            frame_bytes_max,
            queues: Default::default(),
            app: Default::default(),
        }
    }

    /// Largest application frame [`PeerLink::send`] takes.
    pub fn frame_bytes_max(&self) -> usize {
        self.frame_bytes_max
    }

    /// Install the application-frame handler (once; later calls are ignored).
    pub fn set_app(&self, app: Arc<dyn AppFrames>) {
        let _ = self.app.set(app);
    }

    /// Whether `to` has an outbound queue (is a peer this node sends to).
    pub fn has_peer(&self, to: NodeId) -> bool {
        self.queues
            .lock()
            .expect("peer link lock")
            .contains_key(&to)
    }

    /// Queue an application frame for `to`, waiting while its queue is full (application
    /// frames are not retransmitted by Raft, so they are not dropped on a full queue).
    /// False when `to` is not a peer or the frame is over the limit (nothing was sent).
    pub async fn send(&self, to: NodeId, frame: Bytes) -> bool {
        debug_assert!(frame.first().is_some_and(|b| *b >= APP_FRAME_MIN));
        if frame.len() > self.frame_bytes_max {
            return false;
        }
        let q = self
            .queues
            .lock()
            .expect("peer link lock")
            .get(&to)
            .cloned();
        match q {
            Some(q) => q.send(frame).await.is_ok(),
            None => false,
        }
    }

    #[cfg(test)]
    pub(crate) fn set_queue_for_test(&self, to: NodeId, q: mpsc::Sender<Bytes>) {
        self.queues.lock().expect("peer link lock").insert(to, q);
    }

    fn mirror(&self, queues: &HashMap<NodeId, (mpsc::Sender<Bytes>, String)>) {
        *self.queues.lock().expect("peer link lock") =
            queues.iter().map(|(id, (q, _))| (*id, q.clone())).collect();
    }

    fn deliver(&self, from: NodeId, frame: Bytes) {
        if let Some(app) = self.app.get() {
            app.frame(from, frame);
        }
    }

    fn lost(&self, peer: NodeId) {
        if let Some(app) = self.app.get() {
            app.connection_lost(peer);
        }
    }

    fn written(&self, to: NodeId, frame: &[u8]) -> bool {
        match self.app.get().filter(|_| is_app_frame(frame)) {
            Some(app) => app.written(to, frame),
            None => true,
        }
    }

    fn unsent(&self, to: NodeId, frame: &[u8]) {
        if let Some(app) = self.app.get().filter(|_| is_app_frame(frame)) {
            app.unsent(to, frame);
        }
    }
}

fn is_app_frame(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| *b >= APP_FRAME_MIN)
}

/// The sending side, used by the driver loop as a [`replica::Transport`].
pub struct PeerSender {
    /// Queue and address of each peer's outbound task.
    queues: HashMap<NodeId, (mpsc::Sender<Bytes>, String)>,
    cfg: TransportConfig,
    stats: Arc<TransportStats>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// Peers that left the configuration, with when their task stops.
    leaving: HashMap<NodeId, tokio::time::Instant>,
    link: Arc<PeerLink>,
}

/// How long a peer that left the configuration is still sent to: a member appends the
/// change that removes the leader before that change commits, and must go on answering
/// the leader until it does (and the removed member may need the commit to learn it).
pub const PEER_LINGER: Duration = Duration::from_secs(5);

impl PeerSender {
    /// Make the outbound tasks match `peers` (membership or addresses changed): start one
    /// for each new peer, stop those of peers that left ([`PEER_LINGER`] later), restart
    /// those whose address changed. This node itself is skipped.
    pub fn set_peers(&mut self, peers: &HashMap<NodeId, String>) {
        let now = tokio::time::Instant::now();
        let mut moved = Vec::new();
        for (id, (_, addr)) in &self.queues {
            match peers.get(id) {
                Some(a) if a == addr => {
                    self.leaving.remove(id);
                }
                Some(_) => moved.push(*id),
                None => {
                    self.leaving.entry(*id).or_insert(now + PEER_LINGER);
                }
            }
        }
        for id in moved {
            self.queues.remove(&id);
            self.leaving.remove(&id);
        }
        for (&id, addr) in peers {
            if id == self.cfg.id || self.queues.contains_key(&id) {
                continue;
            }
            tracing::info!(peer = format_args!("{:x}", id.0), %addr, "peer added");
            let (tx, rx) = mpsc::channel(self.cfg.queue_msgs_max);
            self.queues.insert(id, (tx, addr.clone()));
            self.tracker.spawn(run_sender(
                self.cfg.clone(),
                id,
                addr.clone(),
                rx,
                self.cancel.clone(),
                self.link.clone(),
            ));
        }
        self.link.mirror(&self.queues);
    }

    /// Stop the tasks of peers whose linger after leaving is over (cheap when none left).
    pub fn prune(&mut self) {
        if self.leaving.is_empty() {
            return;
        }
        let now = tokio::time::Instant::now();
        let queues = &mut self.queues;
        self.leaving.retain(|id, until| {
            let keep = *until > now;
            if !keep {
                tracing::info!(peer = format_args!("{:x}", id.0), "peer removed");
                queues.remove(id);
            }
            keep
        });
        self.link.mirror(&self.queues);
    }

    /// The peers this node sends to.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.queues.keys().copied()
    }
}

impl replica::Transport for PeerSender {
    fn send(&mut self, msg: Message) {
        let Some((q, _)) = self.queues.get(&msg.to) else {
            tracing::debug!(to = ?msg.to, "message to an unknown peer dropped");
            return;
        };
        let frame = wire::encode(&msg);
        if frame.len() > self.cfg.frame_bytes_max {
            self.stats.dropped_oversize.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(to = ?msg.to, bytes = frame.len(), "message over the frame limit dropped");
            return;
        }
        match q.try_send(frame) {
            Ok(()) => {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.stats
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Start one outbound task per peer; returns the sender the driver uses.
pub fn start_senders(
    cfg: &TransportConfig,
    peers: &HashMap<NodeId, String>,
    stats: Arc<TransportStats>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
    link: Arc<PeerLink>,
) -> PeerSender {
    let mut s = PeerSender {
        queues: HashMap::new(),
        cfg: cfg.clone(),
        stats,
        cancel,
        tracker: tracker.clone(),
        leaving: HashMap::new(),
        link,
    };
    s.set_peers(peers);
    s
}

async fn run_sender(
    cfg: TransportConfig,
    to: NodeId,
    addr: String,
    mut rx: mpsc::Receiver<Bytes>,
    cancel: CancellationToken,
    link: Arc<PeerLink>,
) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let conn = tokio::select! {
            _ = cancel.cancelled() => return,
            c = dial(&addr, cfg.local_ip) => c,
        };
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(peer = ?to, %addr, error = %e, "peer unreachable");
                // Drop what queued up meanwhile: stale Raft messages are useless.
                while let Ok(f) = rx.try_recv() {
                    link.unsent(to, &f);
                }
                if rx.is_closed() {
                    return; // the peer left the configuration
                }
                if !pause(&cancel, &mut backoff).await {
                    return;
                }
                continue;
            }
        };
        let connected = tokio::time::Instant::now();
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let mut w = BufWriter::with_capacity(256 << 10, wr);
        // Flushed at once: the hello carries this node's client URLs, which the peer needs
        // even while no Raft message goes its way.
        if w.write_all(&hello(&cfg, to)).await.is_err() || w.flush().await.is_err() {
            continue;
        }
        let pumped = pump(rd, w, &mut rx, &cancel, &link, to).await;
        link.lost(to);
        match pumped {
            Pumped::Stop => return,
            Pumped::WriteFailed => {
                tracing::debug!(peer = ?to, "peer connection lost; reconnecting");
                backoff = Duration::from_millis(20);
            }
            // A connection the peer closes right after the hello (it refused it, or is
            // shutting down) is retried with backoff, not in a tight loop.
            Pumped::PeerClosed if connected.elapsed() < PEER_CLOSED_QUICKLY => {
                tracing::debug!(peer = ?to, "peer closed a new connection; retrying later");
                if !pause(&cancel, &mut backoff).await {
                    return;
                }
            }
            Pumped::PeerClosed => {
                tracing::debug!(peer = ?to, "peer closed the connection; reconnecting");
                backoff = Duration::from_millis(20);
            }
        }
    }
}

/// A connection the peer closes sooner than this after it was opened counts as refused.
const PEER_CLOSED_QUICKLY: Duration = Duration::from_secs(1);

/// Longest pause between two dials of an unreachable peer. A restarted peer hears from
/// us (the leader's appends, a vote) at most this long after it listens again; etcd's peer
/// streams redial every 100 ms too.
const REDIAL_MAX: Duration = Duration::from_millis(100);

/// Sleeps `backoff` (doubling it, up to [`REDIAL_MAX`]); false when cancelled meanwhile.
async fn pause(cancel: &CancellationToken, backoff: &mut Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => return false,
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(REDIAL_MAX);
    true
}

/// How one connection's life ended.
enum Pumped {
    /// Cancelled, or the queue closed (the peer left the configuration).
    Stop,
    /// The peer closed the connection (it stopped or restarted).
    PeerClosed,
    /// A write or flush failed.
    WriteFailed,
}

/// Most frames one batch takes from the queue before its flush.
const BATCH_FRAMES_MAX: usize = 1024;

/// Writes queued frames to one connection — each batch of what is queued, then one flush —
/// until it ends.
async fn pump(
    mut rd: tokio::net::tcp::OwnedReadHalf,
    mut w: BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    rx: &mut mpsc::Receiver<Bytes>,
    cancel: &CancellationToken,
    link: &PeerLink,
    to: NodeId,
) -> Pumped {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Pumped::Stop,
            // The peer never writes on this connection: readable means it closed. Reconnect
            // now — a frame written into the dead connection would be lost, and the first
            // message to a peer after its restart is often a vote or a vote grant (losing
            // it costs the cluster another election timeout).
            _ = closed_by_peer(&mut rd) => return Pumped::PeerClosed,
            m = rx.recv() => match m { Some(m) => m, None => return Pumped::Stop },
        };
        batch.push(first);
        while batch.len() < BATCH_FRAMES_MAX {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        // A peer that already closed never reads what is written now: an application frame
        // it never saw is reported unsent (its sender may safely retry elsewhere), not lost.
        if batch.iter().any(|f| is_app_frame(f)) && closed_now(&rd) {
            for f in batch.drain(..) {
                link.unsent(to, &f);
            }
            return Pumped::PeerClosed;
        }
        let mut ok = true;
        for f in batch.drain(..) {
            if !ok {
                link.unsent(to, &f);
            } else if link.written(to, &f) {
                ok = write_frame(&mut w, &f).await.is_ok();
            }
        }
        if !ok || w.flush().await.is_err() {
            return Pumped::WriteFailed;
        }
    }
}

/// Whether the peer has closed (or reset) the connection, asked of the socket itself
/// now (a non-blocking peek), not of the readiness the runtime has seen so far.
fn closed_now(rd: &tokio::net::tcp::OwnedReadHalf) -> bool {
    let sock = socket2::SockRef::from(rd.as_ref());
    let mut b = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match sock.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

async fn dial(addr: &str, local_ip: Option<std::net::IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = local_ip else {
        return TcpStream::connect(addr).await;
    };
    let mut last = None;
    for remote in tokio::net::lookup_host(addr).await? {
        let socket = match remote {
            SocketAddr::V4(_) if ip.is_ipv4() => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) if ip.is_ipv6() => tokio::net::TcpSocket::new_v6()?,
            _ => continue,
        };
        socket.bind(SocketAddr::new(ip, 0))?;
        match socket.connect(remote).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("{addr} has no address of the family of {ip}"),
        )
    }))
}

/// Resolves once the peer closed (or reset) the connection; bytes it sends are ignored.
async fn closed_by_peer(rd: &mut tokio::net::tcp::OwnedReadHalf) {
    let mut sink = [0u8; 64];
    while let Ok(n) = rd.read(&mut sink).await {
        if n == 0 {
            return;
        }
    }
}

async fn write_frame(
    w: &mut BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    frame: &[u8],
) -> std::io::Result<()> {
    w.write_all(&(frame.len() as u32).to_le_bytes()).await?;
    w.write_all(frame).await
}

/// Where what arrives on accepted connections goes.
#[derive(Clone)]
pub struct Inbound {
    /// What a peer advertises in its hello.
    pub members: Arc<Members>,
    /// Raft messages for this node (dropped when it is full).
    pub inbox: mpsc::Sender<Message>,
    pub stats: Arc<TransportStats>,
    /// Application frames, and word of connections that ended.
    pub link: Arc<PeerLink>,
}

/// Accept peer connections on `listener` and serve each (see [`Inbound`]).
pub async fn accept_loop(
    listener: TcpListener,
    cfg: TransportConfig,
    inbound: Inbound,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (stream, remote) = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a peer connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (cfg, inbound, cancel) = (cfg.clone(), inbound.clone(), cancel.clone());
        tracker.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = serve_conn(stream, remote, &cfg, &inbound) => {
                    if let Err(why) = r {
                        tracing::debug!(%remote, %why, "peer connection closed");
                    }
                }
            }
        });
    }
}

async fn serve_conn(
    mut stream: TcpStream,
    remote: SocketAddr,
    cfg: &TransportConfig,
    inbound: &Inbound,
) -> Result<(), String> {
    let Inbound {
        members,
        stats,
        link,
        ..
    } = inbound;
    let _ = stream.set_nodelay(true);
    let mut h = [0u8; HELLO_BYTES];
    stream
        .read_exact(&mut h[..4])
        .await
        .map_err(|e| e.to_string())?;
    if &h[..4] == QUERY_MAGIC {
        let d = Directory::of(cfg.cluster_id, cfg.id, members).encode();
        stream
            .write_all(&(d.len() as u32).to_le_bytes())
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(&d).await.map_err(|e| e.to_string())?;
        tracing::info!(%remote, "answered a cluster directory query");
        return Ok(());
    }
    stream
        .read_exact(&mut h[4..])
        .await
        .map_err(|e| e.to_string())?;
    let Hello {
        cluster_id: cluster,
        from,
        to,
    } = Hello::decode(&h).map_err(|why| {
        stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%remote, %why, "rejected a peer connection: bad hello");
        format!("bad hello: {why}")
    })?;
    if cluster != cfg.cluster_id || to != cfg.id {
        stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            %remote,
            cluster = format_args!("{cluster:#x}"),
            expected_cluster = format_args!("{:#x}", cfg.cluster_id),
            ?to,
            "rejected a peer connection: wrong cluster id or node id"
        );
        return Err("bad hello".into());
    }
    let mut n = [0u8; 2];
    stream.read_exact(&mut n).await.map_err(|e| e.to_string())?;
    let n = u16::from_le_bytes(n) as usize;
    if n > ATTRS_BYTES_MAX {
        stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        return Err(format!("hello attributes of {n} bytes over the limit"));
    }
    let mut attrs = vec![0u8; n];
    stream
        .read_exact(&mut attrs)
        .await
        .map_err(|e| e.to_string())?;
    match members.learn_encoded(from, &attrs) {
        Ok(()) => {}
        Err(why) => {
            stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%remote, %why, "rejected a peer connection: bad hello attributes");
            return Err(why);
        }
    }
    // Many frames arrive per segment under load: read them from a buffer, not one
    // `read` syscall per length prefix and payload.
    let mut stream = tokio::io::BufReader::with_capacity(64 << 10, stream);
    let r = serve_frames(&mut stream, remote, from, cfg, inbound).await;
    link.lost(from);
    r
}

async fn serve_frames(
    stream: &mut tokio::io::BufReader<TcpStream>,
    remote: SocketAddr,
    from: NodeId,
    cfg: &TransportConfig,
    inbound: &Inbound,
) -> Result<(), String> {
    let Inbound {
        inbox, stats, link, ..
    } = inbound;
    let mut buf = BytesMut::with_capacity(64 << 10);
    loop {
        let mut len = [0u8; 4];
        stream
            .read_exact(&mut len)
            .await
            .map_err(|e| e.to_string())?;
        let len = u32::from_le_bytes(len) as usize;
        if len > cfg.frame_bytes_max {
            stats.bad_frames.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%remote, bytes = len, limit = cfg.frame_bytes_max, "peer frame over the limit; closing");
            return Err("oversized frame".into());
        }
        buf.resize(len, 0);
        stream
            .read_exact(&mut buf[..])
            .await
            .map_err(|e| e.to_string())?;
        let frame = buf.split().freeze();
        if frame.first().is_some_and(|b| *b >= APP_FRAME_MIN) {
            stats.received.fetch_add(1, Ordering::Relaxed);
            link.deliver(from, frame);
            continue;
        }
        match wire::decode(frame) {
            Ok(msg) if msg.from == from && msg.to == cfg.id => {
                stats.received.fetch_add(1, Ordering::Relaxed);
                let _ = inbox.try_send(msg);
            }
            Ok(msg) => {
                stats.bad_frames.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%remote, from = ?msg.from, to = ?msg.to, "peer message with wrong sender or receiver dropped");
            }
            Err(e) => {
                stats.bad_frames.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%remote, error = %e, "undecodable peer message; closing");
                return Err(e.to_string());
            }
        }
    }
}

/// Ask the member at `addr` (`host:port` of its peer URL) for its cluster directory — what a
/// member joining an existing cluster does first.
pub async fn query_directory(addr: &str, timeout: Duration) -> Result<Directory, String> {
    let ask = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(QUERY_MAGIC).await.map_err(|e| e.to_string())?;
        let mut n = [0u8; 4];
        s.read_exact(&mut n).await.map_err(|e| e.to_string())?;
        let n = u32::from_le_bytes(n) as usize;
        if n > 1 << 20 {
            return Err(format!("a directory of {n} bytes is over the limit"));
        }
        let mut b = vec![0u8; n];
        s.read_exact(&mut b).await.map_err(|e| e.to_string())?;
        Directory::decode(&b)
    };
    tokio::time::timeout(timeout, ask)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use replica::Transport;

    /// Accepts one connection on `l` and reads its hello; panics after 2 s.
    async fn accept_hello(l: &TcpListener) -> TcpStream {
        let wait = Duration::from_secs(2);
        let (mut s, _) = tokio::time::timeout(wait, l.accept())
            .await
            .expect("the sender connects")
            .unwrap();
        let mut hello = [0u8; HELLO_BYTES + 2];
        s.read_exact(&mut hello).await.unwrap();
        let n = u16::from_le_bytes([hello[HELLO_BYTES], hello[HELLO_BYTES + 1]]) as usize;
        s.read_exact(&mut vec![0u8; n]).await.unwrap();
        s
    }

    /// The failover bug this guards against: followers send each other nothing while a
    /// leader lives, so when a peer restarted the connection to its old process stayed
    /// open, and the first message after the restart — a PreVote grant to that peer, once
    /// it campaigned — went into the dead connection and was lost: the cluster waited a
    /// whole election timeout more.
    #[tokio::test]
    async fn the_first_message_after_a_peer_restarted_is_delivered() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cfg = TransportConfig {
            cluster_id: 0xc1,
            id: NodeId(1),
            frame_bytes_max: 1 << 20,
            queue_msgs_max: 16,
            attrs: b"attrs".to_vec(),
            local_ip: None,
        };
        let peers = HashMap::from([(NodeId(2), l.local_addr().unwrap().to_string())]);
        let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
        let link = Arc::new(PeerLink::new(cfg.frame_bytes_max));
        let mut sender = start_senders(
            &cfg,
            &peers,
            Default::default(),
            cancel.clone(),
            &tracker,
            link,
        );
        let first = accept_hello(&l).await;
        drop(first); // the peer's old process dies
        tokio::time::sleep(Duration::from_millis(100)).await;
        let msg = Message {
            from: NodeId(1),
            to: NodeId(2),
            term: raft::Term(7),
            body: raft::MessageBody::TimeoutNow,
        };
        sender.send(msg.clone());
        let mut second = accept_hello(&l).await;
        let mut len = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), second.read_exact(&mut len))
            .await
            .expect("the message arrives on the new connection")
            .unwrap();
        let mut frame = vec![0u8; u32::from_le_bytes(len) as usize];
        second.read_exact(&mut frame).await.unwrap();
        assert_eq!(wire::decode(Bytes::from(frame)).unwrap(), msg);
        cancel.cancel();
    }

    #[test]
    fn a_hello_round_trips_and_a_wrong_magic_or_version_is_refused() {
        let h = Hello {
            cluster_id: 0xc1,
            from: NodeId(1),
            to: NodeId(2),
        };
        let b = h.encode(b"attrs");
        assert_eq!(b.len(), Hello::BYTES + 2 + 5);
        assert_eq!(&b[Hello::BYTES..Hello::BYTES + 2], &5u16.to_le_bytes());
        let fixed: [u8; HELLO_BYTES] = b[..HELLO_BYTES].try_into().unwrap();
        assert_eq!(Hello::decode(&fixed), Ok(h));
        let mut bad = fixed;
        bad[0] = b'X';
        assert_eq!(Hello::decode(&bad), Err(HelloError::Magic(*b"XKVP")));
        let mut bad = fixed;
        bad[4] = VERSION + 1;
        assert_eq!(Hello::decode(&bad), Err(HelloError::Version(VERSION + 1)));
    }
}
