//! What the node loop reports about itself: counters, latency histograms, per-peer
//! replication progress as the leader sees it, an estimate of the election timer, and a
//! bounded tap of events (messages sent, role changes) for the dashboard.
//!
//! Split in two: [`Telemetry`] is shared (atomics and a broadcast sender; read by the admin
//! endpoint on any thread), [`Tap`] lives in the driver loop and writes it. Everything the
//! loop calls is a few relaxed atomic operations; events are built only while someone
//! subscribes to [`Telemetry::subscribe`], and message events are rate-limited by a token
//! bucket refilled by ticks, so a loaded leader never spends more than a bounded share of its
//! loop on the tap.
//!
//! Owns: [`Telemetry`], [`Tap`], [`Tapped`] (a transport that counts what it forwards),
//! [`TimedFs`] (a file system that times `fdatasync`), [`Histogram`] and [`Event`].
//! Must never: block, allocate per message while nobody watches, or change what the node
//! sends, persists or applies.

use crate::runtime::NodeStatus;
use raft::{AppendOutcome, Message, MessageBody, NodeId, Role};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// Events buffered per subscriber before the slowest one starts missing some.
const EVENTS_BUFFER: usize = 1024;
/// Message events the tap may emit in a burst, and the refill per tick (10 ms ticks: at most
/// ~100 message events per second per node, sustained). Votes always pass.
const MSG_EVENTS_BURST: u32 = 40;
const MSG_EVENTS_PER_TICK: u32 = 1;

/// Upper bounds (seconds) of the latency histograms' buckets.
pub const LATENCY_BUCKETS_S: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A fixed-bucket latency histogram (Prometheus style: cumulative when rendered).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One counter per bound, plus one for +Inf; not cumulative.
    buckets: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// `(upper bound, cumulative count)` per bucket (the last bound is +Inf), sum in seconds,
    /// count.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut acc = 0;
        let mut out = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            acc += b.load(Relaxed);
            out.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), acc));
        }
        let sum = self.sum_nanos.load(Relaxed) as f64 / 1e9;
        (out, sum, acc)
    }
}

/// Message kinds and summaries, and log tails, are the core's observation types (shared
/// with the simulator's trace recorder): `kind as usize` indexes [`PeerTelemetry::sent`].
pub use raft::observe::{LogTail, MsgKind, MsgSummary};

/// The node's timing, in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub tick: Duration,
    /// E: a follower campaigns after a random [E, 2E) ticks without hearing a leader.
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
}

/// What the dashboard and the event stream carry. Serialized by [`crate::admin::events`].
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// `from` handed a message to its transport (it may still be dropped on the way).
    Message {
        at_ms: u64,
        from: NodeId,
        to: NodeId,
        kind: MsgKind,
        term: u64,
        /// Entries carried (appends).
        entries: u32,
        /// Append: last index carried; append response: match or rejected index; vote:
        /// candidate's last index; snapshot: its last index; read index: the index.
        index: u64,
        /// Vote response: granted; append response: accepted; snapshot response: installed.
        ok: Option<bool>,
    },
    /// The node's role, term or leader changed (every change, not sampled).
    Role {
        at_ms: u64,
        node: NodeId,
        role: Role,
        term: u64,
        leader: Option<NodeId>,
    },
    /// The node's published status (by the admin endpoint, coalesced).
    Status { at_ms: u64, status: NodeStatus },
    /// The node's timers in ticks (by the admin endpoint, periodically).
    Timer {
        at_ms: u64,
        node: NodeId,
        election_elapsed: u32,
        heartbeat_elapsed: u32,
    },
    /// The node's log tail (by the admin endpoint, when the log or commit index moved).
    Log {
        at_ms: u64,
        node: NodeId,
        tail: LogTail,
    },
}

/// Per-peer counters and the leader's view of the peer's log.
#[derive(Debug)]
pub struct PeerTelemetry {
    /// The peer this slot is for (0: a free slot, see [`Telemetry::set_peers`]).
    id: AtomicU64,
    /// Messages handed to the transport, by [`MsgKind::ALL`] position.
    pub sent: [AtomicU64; 12],
    pub received: AtomicU64,
    /// Leader only (reset on election): highest index the peer acknowledged.
    pub match_index: AtomicU64,
    /// Leader only: highest index sent to the peer.
    pub sent_index: AtomicU64,
    /// Tick count when a message from the peer last arrived (0: never).
    pub heard_tick: AtomicU64,
}

/// Peer slots beyond the initial members, for members added at run time.
pub const SPARE_PEER_SLOTS: usize = 16;

/// Why a proposal failed, for `raftkv_proposals_failed_total{reason}`. `reason as usize`
/// is its position in [`FailReason::ALL`] (and in [`Telemetry::proposals_failed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    NotLeader,
    Transfer,
    Busy,
    Lost,
    Unknown,
    Stopped,
}

impl FailReason {
    pub const ALL: [FailReason; 6] = [
        FailReason::NotLeader,
        FailReason::Transfer,
        FailReason::Busy,
        FailReason::Lost,
        FailReason::Unknown,
        FailReason::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::NotLeader => "not_leader",
            FailReason::Transfer => "transfer_in_progress",
            FailReason::Busy => "busy",
            FailReason::Lost => "lost",
            FailReason::Unknown => "outcome_unknown",
            FailReason::Stopped => "stopped",
        }
    }
}

/// The shared half: read by the admin endpoint, written by the [`Tap`] and [`TimedFs`].
#[derive(Debug)]
pub struct Telemetry {
    pub id: NodeId,
    pub timing: Timing,
    /// Ticks since the node started.
    pub ticks: AtomicU64,
    /// Estimate of the core's election timer: ticks since this node last heard a leader,
    /// granted a vote, or changed role or term (the core's own counter is private to it).
    pub election_elapsed: AtomicU32,
    /// Leader: ticks since it last sent an AppendEntries (heartbeat or entries).
    pub heartbeat_elapsed: AtomicU32,
    /// Tick count when applied last equalled commit.
    pub caught_up_tick: AtomicU64,
    /// Tick count when this node last heard from a leader, or led (0: never).
    pub leader_contact_tick: AtomicU64,
    pub leader_changes: AtomicU64,
    pub proposals: AtomicU64,
    pub proposals_failed: [AtomicU64; 6],
    pub proposals_pending: AtomicU64,
    /// Proposal handed to the driver → its entry applied (on the leader).
    pub apply_latency: Histogram,
    /// One `fdatasync` of a WAL segment or snapshot file.
    pub fsync: Histogram,
    /// One slot per peer, with spare slots for members added at run time.
    peers: Vec<PeerTelemetry>,
    /// Events that the rate limit left out while someone subscribed.
    pub events_sampled_out: AtomicU64,
    events: broadcast::Sender<Event>,
    /// Live [`Subscription`]s (an atomic: the broadcast's own count takes a lock).
    subscribers: AtomicUsize,
}

/// A subscriber to a node's events; counted while alive.
pub struct Subscription {
    rx: broadcast::Receiver<Event>,
    tel: Arc<Telemetry>,
}

impl Subscription {
    pub async fn recv(&mut self) -> Result<Event, broadcast::error::RecvError> {
        self.rx.recv().await
    }

    pub fn try_recv(&mut self) -> Result<Event, broadcast::error::TryRecvError> {
        self.rx.try_recv()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.tel.subscribers.fetch_sub(1, Relaxed);
    }
}

/// Milliseconds since the UNIX epoch: the `t` of live events.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Telemetry {
    pub fn new(id: NodeId, members: impl IntoIterator<Item = NodeId>, timing: Timing) -> Self {
        let mut ids: Vec<NodeId> = members.into_iter().filter(|&p| p != id).collect();
        ids.sort();
        ids.dedup();
        Telemetry {
            id,
            timing,
            ticks: AtomicU64::new(0),
            election_elapsed: AtomicU32::new(0),
            heartbeat_elapsed: AtomicU32::new(0),
            caught_up_tick: AtomicU64::new(0),
            leader_contact_tick: AtomicU64::new(0),
            leader_changes: AtomicU64::new(0),
            proposals: AtomicU64::new(0),
            proposals_failed: Default::default(),
            proposals_pending: AtomicU64::new(0),
            apply_latency: Histogram::new(LATENCY_BUCKETS_S),
            fsync: Histogram::new(LATENCY_BUCKETS_S),
            peers: ids
                .iter()
                .map(|id| id.0)
                .chain(std::iter::repeat_n(0, SPARE_PEER_SLOTS))
                .map(|id| PeerTelemetry {
                    id: AtomicU64::new(id),
                    sent: Default::default(),
                    received: AtomicU64::new(0),
                    match_index: AtomicU64::new(0),
                    sent_index: AtomicU64::new(0),
                    heard_tick: AtomicU64::new(0),
                })
                .collect(),
            events_sampled_out: AtomicU64::new(0),
            events: broadcast::channel(EVENTS_BUFFER).0,
            subscribers: AtomicUsize::new(0),
        }
    }

    /// Every event from now on (a slow subscriber misses events: `RecvError::Lagged`).
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        self.subscribers.fetch_add(1, Relaxed);
        Subscription {
            rx: self.events.subscribe(),
            tel: self.clone(),
        }
    }

    /// True while someone listens: the tap builds events only then.
    pub fn watched(&self) -> bool {
        self.subscribers.load(Relaxed) > 0
    }

    pub fn peer(&self, id: NodeId) -> Option<&PeerTelemetry> {
        self.peers.iter().find(|p| p.id.load(Relaxed) == id.0)
    }

    /// Every tracked peer, in slot order.
    pub fn peers(&self) -> Vec<(NodeId, &PeerTelemetry)> {
        self.peers
            .iter()
            .filter_map(|p| match p.id.load(Relaxed) {
                0 => None,
                id => Some((NodeId(id), p)),
            })
            .collect()
    }

    /// Track exactly `peers` (membership changed): a peer that left frees its slot, a new
    /// one takes a free slot with zeroed counters (beyond [`SPARE_PEER_SLOTS`] spare slots a
    /// new peer goes untracked). Called by the node loop only, so slots never race.
    pub fn set_peers(&self, peers: impl IntoIterator<Item = NodeId>) {
        let want: std::collections::BTreeSet<u64> = peers
            .into_iter()
            .map(|p| p.0)
            .filter(|&p| p != self.id.0 && p != 0)
            .collect();
        for p in &self.peers {
            let id = p.id.load(Relaxed);
            if id != 0 && !want.contains(&id) {
                p.id.store(0, Relaxed);
            }
        }
        for &id in &want {
            if self.peer(NodeId(id)).is_some() {
                continue;
            }
            let Some(free) = self.peers.iter().find(|p| p.id.load(Relaxed) == 0) else {
                return;
            };
            for c in free.sent.iter().chain([
                &free.received,
                &free.match_index,
                &free.sent_index,
                &free.heard_tick,
            ]) {
                c.store(0, Relaxed);
            }
            free.id.store(id, Relaxed);
        }
    }

    /// How long ago, by ticks, tick count `at` was (None for 0: never).
    pub fn ticks_since(&self, at: u64) -> Option<u64> {
        (at != 0).then(|| self.ticks.load(Relaxed).saturating_sub(at))
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// Send `e` to every subscriber (the admin endpoint's own events).
    pub fn publish(&self, e: Event) {
        self.emit(e);
    }
}

/// The driver loop's half: it sees every tick, message, status turn and proposal.
pub struct Tap {
    tel: Arc<Telemetry>,
    prev: Option<NodeStatus>,
    tokens: u32,
    started: HashMap<u64, Instant>,
}

impl Tap {
    pub fn new(tel: Arc<Telemetry>) -> Self {
        Tap {
            tel,
            prev: None,
            tokens: MSG_EVENTS_BURST,
            started: HashMap::new(),
        }
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.tel
    }

    /// One tick of the node's clock.
    pub fn tick(&mut self) {
        let t = &self.tel;
        t.ticks.fetch_add(1, Relaxed);
        // A leader runs no election timer, others send no heartbeats: those stay 0.
        if self.prev.is_some_and(|p| p.role == Role::Leader) {
            t.heartbeat_elapsed.fetch_add(1, Relaxed);
            t.election_elapsed.store(0, Relaxed);
        } else {
            t.election_elapsed.fetch_add(1, Relaxed);
            t.heartbeat_elapsed.store(0, Relaxed);
        }
        self.tokens = (self.tokens + MSG_EVENTS_PER_TICK).min(MSG_EVENTS_BURST);
    }

    /// A peer message, before the core steps it.
    pub fn received(&mut self, m: &Message) {
        let t = &self.tel;
        let now = t.ticks.load(Relaxed).max(1);
        if let Some(p) = t.peer(m.from) {
            p.received.fetch_add(1, Relaxed);
            p.heard_tick.store(now, Relaxed);
            if let MessageBody::AppendResponse(r) = &m.body {
                if let AppendOutcome::Accepted { match_index } = r.outcome {
                    p.match_index.fetch_max(match_index.0, Relaxed);
                }
            }
        }
        let term = self.prev.map_or(0, |s| s.term);
        let from_leader = matches!(
            m.body,
            MessageBody::Append(_) | MessageBody::Snapshot(_) | MessageBody::TimeoutNow
        );
        if from_leader && m.term.0 >= term {
            t.election_elapsed.store(0, Relaxed);
            t.leader_contact_tick.store(now, Relaxed);
        }
    }

    /// A transport that reports every message it forwards to `inner`.
    pub fn transport<'a, T: replica::Transport>(&'a mut self, inner: &'a mut T) -> Tapped<'a, T> {
        Tapped { tap: self, inner }
    }

    fn sent(&mut self, m: &Message) {
        let kind = MsgKind::of(&m.body);
        let t = &self.tel;
        if let Some(p) = t.peer(m.to) {
            p.sent[kind as usize].fetch_add(1, Relaxed);
            if let MessageBody::Append(a) = &m.body {
                let last = a.prev.index.0 + a.entries.len() as u64;
                p.sent_index.fetch_max(last, Relaxed);
            }
        }
        match &m.body {
            MessageBody::Append(_) => t.heartbeat_elapsed.store(0, Relaxed),
            MessageBody::VoteResponse(v) if v.granted && !v.pre_vote => {
                t.election_elapsed.store(0, Relaxed)
            }
            _ => {}
        }
        if !t.watched() {
            return;
        }
        // Elections are rare and what the page is for: never sampled out.
        if !kind.is_election() {
            if self.tokens == 0 {
                t.events_sampled_out.fetch_add(1, Relaxed);
                return;
            }
            self.tokens -= 1;
        }
        let MsgSummary {
            entries, index, ok, ..
        } = MsgSummary::of(&m.body);
        t.emit(Event::Message {
            at_ms: now_ms(),
            from: m.from,
            to: m.to,
            kind,
            term: m.term.0,
            entries,
            index,
            ok,
        });
    }

    /// After every loop turn, with the status just published.
    pub fn turn(&mut self, st: &NodeStatus) {
        let t = &self.tel;
        let now = t.ticks.load(Relaxed).max(1);
        if st.applied >= st.commit {
            t.caught_up_tick.store(now, Relaxed);
        }
        if st.role == Role::Leader {
            t.leader_contact_tick.store(now, Relaxed);
        }
        let prev = self.prev.replace(*st);
        let changed = prev.is_none_or(|p| p.leadership() != st.leadership());
        if !changed {
            return;
        }
        // Every change of role, term or leader is logged (as etcd's raft does): when a
        // client saw "leader changed", the members' logs say when and why.
        tracing::info!(
            role = ?st.role,
            term = st.term,
            leader = format_args!("{}", st.leader.map_or_else(|| "none".to_string(), |l| format!("{:x}", l.0))),
            "raft state changed"
        );
        if st.leader.is_some() && prev.is_some_and(|p| p.leader != st.leader) {
            t.leader_changes.fetch_add(1, Relaxed);
        }
        if prev.is_none_or(|p| p.role != st.role || p.term != st.term) {
            t.election_elapsed.store(0, Relaxed);
        }
        if st.role == Role::Leader && prev.is_none_or(|p| p.role != Role::Leader) {
            for p in &t.peers {
                p.match_index.store(0, Relaxed);
                p.sent_index.store(0, Relaxed);
            }
        }
        if t.watched() {
            t.emit(Event::Role {
                at_ms: now_ms(),
                node: t.id,
                role: st.role,
                term: st.term,
                leader: st.leader,
            });
        }
    }

    /// A proposal accepted by the core under `token`.
    pub fn proposed(&mut self, token: u64) {
        self.tel.proposals.fetch_add(1, Relaxed);
        self.started.insert(token, Instant::now());
        self.tel
            .proposals_pending
            .store(self.started.len() as u64, Relaxed);
    }

    /// A proposal refused before reaching the log.
    pub fn refused(&mut self, why: FailReason) {
        self.tel.proposals.fetch_add(1, Relaxed);
        self.failed_count(why);
    }

    /// The proposal `token` ended: applied (`None`) or failed.
    pub fn finished(&mut self, token: u64, failure: Option<FailReason>) {
        let Some(at) = self.started.remove(&token) else {
            return;
        };
        self.tel
            .proposals_pending
            .store(self.started.len() as u64, Relaxed);
        match failure {
            None => self.tel.apply_latency.observe(at.elapsed()),
            Some(why) => self.failed_count(why),
        }
    }

    /// Every pending proposal failed with `why` (shutdown).
    pub fn finish_all(&mut self, why: FailReason) {
        let n = self.started.drain().count() as u64;
        self.tel.proposals_failed[why as usize].fetch_add(n, Relaxed);
        self.tel.proposals_pending.store(0, Relaxed);
    }

    fn failed_count(&self, why: FailReason) {
        self.tel.proposals_failed[why as usize].fetch_add(1, Relaxed);
    }
}

/// A transport wrapper that reports every message to the [`Tap`] before forwarding it.
pub struct Tapped<'a, T> {
    tap: &'a mut Tap,
    inner: &'a mut T,
}

impl<T: replica::Transport> replica::Transport for Tapped<'_, T> {
    fn send(&mut self, msg: Message) {
        self.tap.sent(&msg);
        self.inner.send(msg);
    }
}

/// A file system that times every `fdatasync` into [`Telemetry::fsync`]; everything else
/// passes through unchanged.
#[derive(Clone)]
pub struct TimedFs<F> {
    inner: F,
    tel: Arc<Telemetry>,
}

impl<F> TimedFs<F> {
    pub fn new(inner: F, tel: Arc<Telemetry>) -> Self {
        TimedFs { inner, tel }
    }
}

/// A file of [`TimedFs`].
pub struct TimedFile<F> {
    inner: F,
    tel: Arc<Telemetry>,
}

impl<F: storage::FsFile> storage::FsFile for TimedFile<F> {
    fn append(&self, buf: &[u8]) -> std::io::Result<()> {
        self.inner.append(buf)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_at(buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        let at = Instant::now();
        let r = self.inner.sync_data();
        self.tel.fsync.observe(at.elapsed());
        r
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
}

impl<F: storage::Fs> storage::Fs for TimedFs<F> {
    type File = TimedFile<F::File>;
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list_dir(dir)
    }
    fn create(&self, path: &Path) -> std::io::Result<Self::File> {
        Ok(TimedFile {
            inner: self.inner.create(path)?,
            tel: self.tel.clone(),
        })
    }
    fn open(&self, path: &Path) -> std::io::Result<Self::File> {
        Ok(TimedFile {
            inner: self.inner.open(path)?,
            tel: self.tel.clone(),
        })
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> std::io::Result<()> {
        self.inner.truncate(path, len)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use raft::{AppendRequest, Entry, EntryId, EntryKind, LogIndex, Term, VoteResponse};

    fn tel() -> Arc<Telemetry> {
        Arc::new(Telemetry::new(
            NodeId(1),
            [NodeId(1), NodeId(2), NodeId(3)],
            Timing {
                tick: Duration::from_millis(10),
                election_ticks: 30,
                heartbeat_ticks: 5,
            },
        ))
    }

    #[test]
    fn peers_added_at_run_time_get_fresh_slots_and_leavers_free_theirs() {
        let t = tel();
        let ids = |t: &Telemetry| t.peers().iter().map(|(id, _)| id.0).collect::<Vec<_>>();
        assert_eq!(ids(&t), [2, 3]);
        t.peer(NodeId(3)).unwrap().received.store(7, Relaxed);
        t.set_peers([NodeId(1), NodeId(2), NodeId(4)]);
        let mut got = ids(&t);
        got.sort();
        assert_eq!(got, [2, 4], "3 left, 4 joined, never this node itself");
        assert_eq!(t.peer(NodeId(4)).unwrap().received.load(Relaxed), 0);
        assert!(t.peer(NodeId(3)).is_none());
        t.set_peers((2..100).map(NodeId));
        assert_eq!(
            t.peers().len(),
            2 + SPARE_PEER_SLOTS,
            "bounded by the slots"
        );
    }

    fn status(role: Role, term: u64, leader: Option<u64>) -> NodeStatus {
        NodeStatus {
            id: NodeId(1),
            role,
            term,
            leader: leader.map(NodeId),
            commit: 0,
            applied: 0,
            last_index: 0,
            snapshot_index: 0,
        }
    }

    fn append(to: u64, entries: u64) -> Message {
        Message {
            from: NodeId(1),
            to: NodeId(to),
            term: Term(2),
            body: MessageBody::Append(AppendRequest {
                prev: EntryId {
                    term: Term(1),
                    index: LogIndex(4),
                },
                entries: (0..entries)
                    .map(|i| Entry {
                        term: Term(2),
                        index: LogIndex(5 + i),
                        kind: EntryKind::Normal,
                        data: Bytes::new(),
                    })
                    .collect(),
                commit: LogIndex(4),
                read_seq: 0,
            }),
        }
    }

    #[test]
    fn the_all_lists_are_in_declaration_order() {
        assert!(FailReason::ALL
            .iter()
            .enumerate()
            .all(|(i, &r)| r as usize == i));
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_sum_in_seconds() {
        let h = Histogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(1));
        let (b, sum, n) = h.snapshot();
        assert_eq!(b, vec![(0.001, 1), (0.01, 2), (f64::INFINITY, 3)]);
        assert_eq!(n, 3);
        assert!((sum - 1.0055).abs() < 1e-9);
    }

    #[test]
    fn no_events_are_built_while_nobody_watches_and_votes_bypass_the_rate_limit() {
        let t = tel();
        let mut tap = Tap::new(t.clone());
        let mut sink: Vec<Message> = Vec::new();
        replica::Transport::send(&mut tap.transport(&mut sink), append(2, 1));
        assert_eq!(t.events_sampled_out.load(Relaxed), 0);
        assert_eq!(t.peer(NodeId(2)).unwrap().sent_index.load(Relaxed), 5);
        let mut rx = t.subscribe();
        for _ in 0..MSG_EVENTS_BURST + 10 {
            replica::Transport::send(&mut tap.transport(&mut sink), append(3, 0));
        }
        assert_eq!(t.events_sampled_out.load(Relaxed), 10, "bounded burst");
        let vote = Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            body: MessageBody::VoteResponse(VoteResponse {
                pre_vote: false,
                granted: true,
            }),
        };
        replica::Transport::send(&mut tap.transport(&mut sink), vote);
        let mut last = None;
        while let Ok(e) = rx.try_recv() {
            last = Some(e);
        }
        assert!(matches!(
            last,
            Some(Event::Message {
                kind: MsgKind::VoteResponse,
                ok: Some(true),
                ..
            })
        ));
        assert_eq!(sink.len(), MSG_EVENTS_BURST as usize + 12, "all forwarded");
    }

    #[test]
    fn leader_changes_count_only_a_new_known_leader() {
        let t = tel();
        let mut tap = Tap::new(t.clone());
        tap.turn(&status(Role::Follower, 1, None));
        tap.turn(&status(Role::Candidate, 2, None));
        tap.turn(&status(Role::Leader, 2, Some(1)));
        tap.turn(&status(Role::Follower, 3, None));
        tap.turn(&status(Role::Follower, 3, Some(2)));
        tap.turn(&status(Role::Follower, 3, Some(2)));
        assert_eq!(t.leader_changes.load(Relaxed), 2);
    }

    #[test]
    fn the_election_timer_estimate_resets_on_leader_contact() {
        let t = tel();
        let mut tap = Tap::new(t.clone());
        tap.turn(&status(Role::Follower, 2, Some(2)));
        for _ in 0..7 {
            tap.tick();
        }
        assert_eq!(t.election_elapsed.load(Relaxed), 7);
        let mut hb = append(1, 0);
        hb.from = NodeId(2);
        tap.received(&hb);
        assert_eq!(t.election_elapsed.load(Relaxed), 0);
        assert_eq!(t.ticks_since(t.leader_contact_tick.load(Relaxed)), Some(0));
        assert_eq!(
            t.ticks_since(t.peer(NodeId(2)).unwrap().heard_tick.load(Relaxed)),
            Some(0)
        );
    }
}
