//! [`Cluster`]: many simulated nodes, one virtual clock, one event queue, one seeded RNG.
//!
//! Owns: virtual time, the event queue (ordered by `(time, seq)`, so ties break by
//! scheduling order), node lifecycles (up, crashed with its disk parked, restarted), message
//! routing through the fault model, the trace hash, and running the checker after every
//! event. Must never: read the wall clock, use an RNG other than the one seeded from
//! `SimConfig::seed`, iterate a hash map where order matters, or clone whole logs per event.

use crate::app::SimStateMachine;
use crate::check::{Checker, SimReplica};
use crate::config::{NetConfig, SimConfig};
use crate::disk::{restart_digest, restart_mode, SimStore};
use crate::hash::{finish, mix};
use crate::machine::NodeMachine;
use crate::net::{is_request, NetStats, Topology};
use crate::trace::{Body, DropReason, Recorder, TraceSink};
use bytes::Bytes;
use raft::{
    ConfChange, ConfChangeError, Configuration, EntryId, LogIndex, Message, MessageBody, NodeId,
    ProposeError, Raft, ReadError, Term, TransferError,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::{Completion, Replica, SnapshotJob, SnapshotPolicy};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use storage::{FaultFs, Identity, LogStore};

/// Totals over the whole run (never reset).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events processed (deliveries, ticks, deferred `Ready`s).
    pub events: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    /// Lost to the fault model, a partition, or a crash.
    pub messages_dropped: u64,
    pub messages_duplicated: u64,
    pub ticks: u64,
    pub crashes: u64,
    /// Crashes in the middle of a sync (part of `crashes`).
    pub power_cuts: u64,
    pub restarts: u64,
    pub proposals: u64,
    pub proposals_accepted: u64,
    pub proposals_applied: u64,
    pub proposals_failed: u64,
    pub reads_ready: u64,
    pub reads_failed: u64,
    /// Membership changes asked for ([`Cluster::propose_conf_change`]) and accepted by a
    /// leader (their completions count in `proposals_applied` / `proposals_failed`).
    pub conf_changes: u64,
    pub conf_changes_accepted: u64,
    /// Nodes started empty after the cluster was built ([`Cluster::add_node`]).
    pub nodes_added: u64,
    /// Nodes whose process was stopped for good ([`Cluster::retire`]).
    pub nodes_retired: u64,
    /// Deferred WAL syncs completed ([`crate::SimConfig::sync_deferred`]).
    pub syncs_deferred: u64,
}

enum EventKind {
    Deliver {
        msg: Message,
        from_inc: u32,
        to_inc: u32,
    },
    Tick {
        node: usize,
        inc: u32,
    },
    Ready {
        node: usize,
        inc: u32,
    },
    /// The node's background snapshot job finishes.
    SnapshotDone {
        node: usize,
        inc: u32,
    },
    /// The node's deferred WAL sync completes ([`crate::SimConfig::sync_deferred`]).
    SyncDone {
        node: usize,
        inc: u32,
    },
}

/// Longest a deferred WAL sync takes (virtual ms).
pub const SYNC_MS_MAX: u64 = 3;

/// Longest a background snapshot job runs (virtual ms; see
/// [`crate::SimConfig::snapshot_background`]).
pub const SNAPSHOT_JOB_MS_MAX: u64 = 20;

struct Event {
    at_ms: u64,
    seq: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    /// Reversed, so `BinaryHeap` pops the earliest `(time, seq)` first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ms, other.seq).cmp(&(self.at_ms, self.seq))
    }
}

struct Node {
    replica: Option<SimReplica>,
    /// While crashed: the disk (as recovery left it after the crash) and the last state
    /// machine, for observation (`applied`, `n_committed`).
    parked: Option<(SimStore, NodeMachine)>,
    /// Bumped at every crash; messages and timers of an older incarnation are dropped.
    incarnation: u32,
    /// Stopped for good ([`Cluster::retire`]): never restarted.
    retired: bool,
    ready_scheduled: bool,
    read_results: Vec<(u64, Option<LogIndex>)>,
    completions: Vec<Completion>,
    /// A background snapshot handed out by the replica, running until its `SnapshotDone`.
    snapshot_job: Option<SnapshotJob>,
    /// A `SyncDone` event is on its way for the node's unsynced batches.
    sync_scheduled: bool,
}

// Trace event codes.
const T_DELIVER: u64 = 1;
const T_DROP_SEND: u64 = 2;
const T_DROP_DELIVER: u64 = 3;
const T_TICK: u64 = 4;
const T_CRASH: u64 = 5;
const T_RESTART: u64 = 6;
const T_READY: u64 = 7;
const T_PROPOSE: u64 = 8;
const T_TOPOLOGY: u64 = 9;
const T_ADD_NODE: u64 = 10;
const T_CONF_CHANGE: u64 = 11;
const T_RETIRE: u64 = 12;
const T_SNAPSHOT: u64 = 13;
const T_SYNC: u64 = 14;

/// A simulated cluster. See the crate docs for the model.
pub struct Cluster {
    cfg: SimConfig,
    /// The membership the cluster was bootstrapped with (nodes `1..=cfg.nodes`): every
    /// node's identity records it, including nodes added later, as the configuration in
    /// force before the first configuration entry of the log.
    genesis: Configuration,
    now_ms: u64,
    seq: u64,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Event>,
    nodes: Vec<Node>,
    topo: Topology,
    stats: NetStats,
    counters: Counters,
    checker: Checker,
    trace: u64,
    outbox: Vec<Message>,
    next_token: u64,
    /// (virtual ms, events processed at it): virtual time must keep moving.
    same_ms: (u64, u64),
    /// Fail rather than run past this many events.
    events_max: u64,
    /// Records the dashboard's events when on ([`Cluster::record_trace`]).
    recorder: Option<Box<Recorder>>,
}

/// More events than this at one virtual millisecond is a livelock (messages bouncing with
/// zero delay forever), reported as a failure rather than hanging the run.
pub const EVENTS_PER_MS_MAX: u64 = 1_000_000;

/// The cluster id written into every simulated node's data directory.
pub const SIM_CLUSTER_ID: u64 = 0x5349_4d00;

/// An armed power cut lands within this many file operations after its sync (drawn
/// uniformly): a `Ready`'s writes, its sync, and the clean-up after it take a handful.
pub const POWER_CUT_OPS_MAX: u64 = 8;

impl Cluster {
    /// Build and start `cfg.nodes` fresh nodes; each node's tick phase is seeded.
    pub fn new(cfg: SimConfig) -> Cluster {
        assert!(cfg.nodes >= 1, "a cluster needs at least one node");
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let n = cfg.nodes;
        let genesis = Configuration::new((1..=n as u64).map(NodeId));
        let mut c = Cluster {
            genesis: genesis.clone(),
            now_ms: 0,
            seq: 0,
            rng,
            queue: BinaryHeap::with_capacity(1024),
            nodes: Vec::with_capacity(n),
            topo: Topology::new(n),
            stats: NetStats::default(),
            counters: Counters::default(),
            checker: Checker::new(n, genesis),
            trace: mix(0, cfg.seed),
            outbox: Vec::new(),
            next_token: 1,
            same_ms: (0, 0),
            events_max: u64::MAX,
            recorder: None,
            cfg,
        };
        for i in 0..n {
            let node = c.fresh_node(NodeId(i as u64 + 1));
            c.nodes.push(node);
            c.start(i);
        }
        c
    }

    /// A node with an empty disk whose identity records the genesis membership.
    fn fresh_node(&self, id: NodeId) -> Node {
        let identity = Identity {
            cluster_id: SIM_CLUSTER_ID,
            node_id: id,
            bootstrap: self.genesis.clone(),
        };
        let mut store = match SimStore::open(FaultFs::new(), identity, self.cfg.disk) {
            Ok(s) => s,
            Err(e) => self.fail(&format!("{id:?} cannot create its disk: {e}")),
        };
        store.defer_syncs(self.cfg.sync_deferred);
        Node {
            replica: None,
            parked: Some((store, NodeMachine::for_config(self.cfg.kv))),
            incarnation: 0,
            retired: false,
            ready_scheduled: false,
            read_results: Vec::new(),
            completions: Vec::new(),
            snapshot_job: None,
            sync_scheduled: false,
        }
    }

    // ----- time -----

    /// Virtual time in ms.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Advance virtual time by `ms`, processing every event due; invariants are checked
    /// after each event and a violation panics with the seed and a description.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now_ms + ms;
        while let Some(ev) = self.pop_due(end) {
            self.process(ev);
        }
        self.now_ms = end;
    }

    /// Run until `pred` holds (checked before the first event and after each one) or
    /// `max_ms` passes; returns whether it held.
    pub fn run_until(&mut self, max_ms: u64, mut pred: impl FnMut(&Cluster) -> bool) -> bool {
        if pred(self) {
            return true;
        }
        let end = self.now_ms + max_ms;
        while let Some(ev) = self.pop_due(end) {
            self.process(ev);
            if pred(self) {
                return true;
            }
        }
        self.now_ms = end;
        pred(self)
    }

    fn pop_due(&mut self, end_ms: u64) -> Option<Event> {
        if self.queue.peek()?.at_ms > end_ms {
            return None;
        }
        let ev = self.queue.pop()?;
        debug_assert!(ev.at_ms >= self.now_ms, "time never goes backwards");
        self.now_ms = ev.at_ms;
        Some(ev)
    }

    fn schedule(&mut self, at_ms: u64, kind: EventKind) {
        self.seq += 1;
        self.queue.push(Event {
            at_ms,
            seq: self.seq,
            kind,
        });
    }

    fn process(&mut self, ev: Event) {
        self.counters.events += 1;
        if self.counters.events > self.events_max {
            self.fail(&format!(
                "event budget exceeded: {} events (a message storm, or a run too long)",
                self.events_max
            ));
        }
        if self.now_ms == self.same_ms.0 {
            self.same_ms.1 += 1;
            if self.same_ms.1 > EVENTS_PER_MS_MAX {
                self.fail(&format!(
                    "livelock: more than {EVENTS_PER_MS_MAX} events at one virtual millisecond"
                ));
            }
        } else {
            self.same_ms = (self.now_ms, 1);
        }
        self.trace_poll();
        match ev.kind {
            EventKind::Deliver {
                msg,
                from_inc,
                to_inc,
            } => self.deliver(msg, from_inc, to_inc),
            EventKind::Tick { node, inc } => self.tick(node, inc),
            EventKind::Ready { node, inc } => {
                if self.nodes[node].incarnation == inc && self.nodes[node].replica.is_some() {
                    self.nodes[node].ready_scheduled = false;
                    self.trace_event(T_READY, node as u64);
                    self.drive(node);
                }
            }
            EventKind::SnapshotDone { node, inc } => {
                if self.nodes[node].incarnation == inc && self.nodes[node].replica.is_some() {
                    self.finish_snapshot(node);
                }
            }
            EventKind::SyncDone { node, inc } => {
                if self.nodes[node].incarnation == inc && self.nodes[node].replica.is_some() {
                    self.nodes[node].sync_scheduled = false;
                    self.counters.syncs_deferred += 1;
                    self.trace_event(T_SYNC, node as u64);
                    self.drive_with(node, |r, out| r.complete_syncs(out));
                }
            }
        }
    }

    /// With deferred syncs: complete node `n`'s unsynced batches a random 0..=
    /// [`SYNC_MS_MAX`] ms from now (one event covers every batch written until it fires).
    fn schedule_sync(&mut self, n: usize) {
        let node = &self.nodes[n];
        let waiting = node
            .replica
            .as_ref()
            .is_some_and(|r| r.unsynced_batches() > 0);
        // Only a store that defers its syncs leaves batches waiting.
        debug_assert!(
            !waiting || self.cfg.sync_deferred,
            "a batch waits for a sync"
        );
        if node.sync_scheduled || !waiting {
            return;
        }
        self.nodes[n].sync_scheduled = true;
        let inc = self.nodes[n].incarnation;
        let at = self.now_ms + self.rng.gen_range(0..=SYNC_MS_MAX);
        self.schedule(at, EventKind::SyncDone { node: n, inc });
    }

    /// Node `n`'s background snapshot job runs now: its file is written (the power may go
    /// out meanwhile) and the replica compacts.
    fn finish_snapshot(&mut self, n: usize) {
        let job = self.nodes[n]
            .snapshot_job
            .take()
            .expect("a SnapshotDone event follows a job");
        self.trace_event(T_SNAPSHOT, mix(n as u64, job.index().0));
        let r = self.nodes[n].replica.as_mut().expect("a live node");
        match r.on_snapshot_written(job.run()) {
            Ok(()) => {}
            Err(_) if r.store().power().fired() => {
                self.power_cut(n, Vec::new());
                return;
            }
            Err(e) => self.fail(&format!("n{} failed adopting its snapshot: {e}", n + 1)),
        }
        self.check(n);
        self.schedule_snapshot_job(n);
    }

    /// Start the background snapshot job node `n`'s replica hands out, if any.
    fn schedule_snapshot_job(&mut self, n: usize) {
        let job = self.nodes[n]
            .replica
            .as_mut()
            .and_then(|r| r.take_snapshot_job());
        if let Some(job) = job {
            debug_assert!(self.nodes[n].snapshot_job.is_none(), "one job at a time");
            self.nodes[n].snapshot_job = Some(job);
            let inc = self.nodes[n].incarnation;
            let at = self.now_ms + self.rng.gen_range(1..=SNAPSHOT_JOB_MS_MAX);
            self.schedule(at, EventKind::SnapshotDone { node: n, inc });
        }
    }

    fn tick(&mut self, n: usize, inc: u32) {
        let node = &mut self.nodes[n];
        let Some(r) = node.replica.as_mut() else {
            return;
        };
        if node.incarnation != inc {
            return;
        }
        r.tick();
        let has_ready = r.raft().has_ready();
        self.counters.ticks += 1;
        if has_ready {
            self.trace_event(T_TICK, n as u64);
            self.drive(n);
        }
        let at = self.now_ms + self.cfg.tick_ms;
        self.schedule(at, EventKind::Tick { node: n, inc });
    }

    // ----- one node's I/O -----

    /// Handle the node's `Ready`s, route its messages, record completions, check.
    fn drive(&mut self, n: usize) {
        self.drive_with(n, |r, out| r.handle_ready(out));
    }

    /// Run `step` on node `n`'s replica (which handles its `Ready`s), then as [`Self::drive`].
    fn drive_with(
        &mut self,
        n: usize,
        step: impl FnOnce(
            &mut SimReplica,
            &mut Vec<Message>,
        ) -> Result<Vec<Completion>, replica::ReplicaError>,
    ) {
        let mut out = std::mem::take(&mut self.outbox);
        let r = self.nodes[n].replica.as_mut().expect("drive a live node");
        let done = match step(r, &mut out) {
            Ok(done) => done,
            Err(_) if r.store().power().fired() => {
                self.power_cut(n, out);
                return;
            }
            Err(e) => self.fail(&format!("n{} failed handling Ready: {e}", n + 1)),
        };
        let node = &mut self.nodes[n];
        for c in done {
            match &c {
                Completion::Applied { .. } => self.counters.proposals_applied += 1,
                Completion::Failed { .. } => self.counters.proposals_failed += 1,
                Completion::ReadReady { token, index } => {
                    self.counters.reads_ready += 1;
                    node.read_results.push((*token, Some(*index)));
                }
                Completion::ReadFailed { token } => {
                    self.counters.reads_failed += 1;
                    node.read_results.push((*token, None));
                }
            }
            node.completions.push(c);
        }
        if self.nodes[n]
            .replica
            .as_ref()
            .is_some_and(|r| r.store().power().fired())
        {
            // The cut hit the clean-up after a successful sync (the WAL shrugs off a failed
            // removal): the node crashes now, before it hears anything more.
            self.power_cut(n, out);
            return;
        }
        self.trace_observe(n);
        for msg in out.drain(..) {
            self.send(n, msg);
        }
        self.outbox = out;
        self.check(n);
        self.schedule_snapshot_job(n);
        self.schedule_sync(n);
    }

    /// The power went out while node `n` handled a `Ready`. What the node sent before it
    /// already left the machine: it stays on the wire (sent as the next incarnation, so the
    /// crash does not drop it), which is how the simulator catches a driver that sends a
    /// durability-promising message before syncing.
    fn power_cut(&mut self, n: usize, mut out: Vec<Message>) {
        self.counters.power_cuts += 1;
        self.crash(NodeId(n as u64 + 1));
        for msg in out.drain(..) {
            self.send(n, msg);
        }
        self.outbox = out;
    }

    fn check(&mut self, n: usize) {
        let Some(r) = self.nodes[n].replica.as_ref() else {
            return;
        };
        if let Err(e) = self.checker.check_node(n, r) {
            self.fail(&e);
        }
    }

    /// Panic with the seed, the virtual time and `what`.
    fn fail(&self, what: &str) -> ! {
        panic!(
            "[sim seed={} t={}ms] invariant violated: {what}",
            self.cfg.seed, self.now_ms
        )
    }

    fn index_of(&self, id: NodeId) -> usize {
        let n = id.0 as usize;
        assert!(
            n >= 1 && n <= self.nodes.len(),
            "no node {id:?} in this cluster"
        );
        n - 1
    }

    // ----- the network -----

    fn send(&mut self, from: usize, msg: Message) {
        let to = msg.to.0 as usize;
        if to == 0 || to > self.nodes.len() || msg.from.0 as usize != from + 1 {
            self.fail(&format!(
                "n{} sent a misaddressed message {msg:?}",
                from + 1
            ));
        }
        let to = to - 1;
        let req = is_request(&msg);
        let size = msg.size_bytes() as u64;
        self.counters.messages_sent += 1;
        *self.stats.by_kind.entry(msg.kind_name()).or_insert(0) += 1;
        if req {
            self.stats.rpcs += 1;
            self.stats.bytes += size;
        }
        let digest = msg_digest(&msg);
        self.trace_msg(&msg);
        if !self.topo.can_send(from, to) || self.nodes[to].replica.is_none() {
            self.trace_drop(&msg, self.nodes[to].replica.is_some());
            self.drop_msg(T_DROP_SEND, digest);
            return;
        }
        let net = &self.cfg.net;
        let p_drop = if req {
            net.drop_request
        } else {
            net.drop_response
        };
        let p_dup = net.duplicate;
        if p_drop > 0.0 && self.rng.gen_bool(p_drop) {
            self.trace_loss(&msg);
            self.drop_msg(T_DROP_SEND, digest);
            return;
        }
        let copies = if p_dup > 0.0 && self.rng.gen_bool(p_dup) {
            2
        } else {
            1
        };
        let (from_inc, to_inc) = (self.nodes[from].incarnation, self.nodes[to].incarnation);
        if copies == 2 {
            self.counters.messages_duplicated += 1;
            let at = self.now_ms + self.delay_ms(req);
            let kind = EventKind::Deliver {
                msg: msg.clone(),
                from_inc,
                to_inc,
            };
            self.schedule(at, kind);
        }
        let at = self.now_ms + self.delay_ms(req);
        self.schedule(
            at,
            EventKind::Deliver {
                msg,
                from_inc,
                to_inc,
            },
        );
    }

    /// One-way delay of a message: uniform in the configured range, plus, for a fraction of
    /// responses, a long hold-back skewed towards short (labrpc's long reordering).
    fn delay_ms(&mut self, request: bool) -> u64 {
        let (lo, hi) = self.cfg.net.delay_ms;
        let mut d = if hi > lo {
            self.rng.gen_range(lo..=hi)
        } else {
            lo
        };
        if let (false, Some(lr)) = (request, &self.cfg.net.long_reorder) {
            let (fraction, min, span) =
                (lr.fraction, lr.min_ms, lr.max_ms.saturating_sub(lr.min_ms));
            if fraction > 0.0 && self.rng.gen_bool(fraction) {
                let cap = self.rng.gen_range(0..=span);
                d += min + self.rng.gen_range(0..=cap);
            }
        }
        d
    }

    fn drop_msg(&mut self, code: u64, digest: u64) {
        self.counters.messages_dropped += 1;
        self.trace_event(code, digest);
    }

    fn deliver(&mut self, msg: Message, from_inc: u32, to_inc: u32) {
        let (from, to) = (msg.from.0 as usize - 1, msg.to.0 as usize - 1);
        let digest = msg_digest(&msg);
        // A crash bumps the incarnation: messages sent before it, to or from the node, die.
        let alive = self.nodes[from].incarnation == from_inc
            && self.nodes[to].incarnation == to_inc
            && self.nodes[to].replica.is_some();
        if !alive || !self.topo.can_send(from, to) {
            self.trace_drop(&msg, alive);
            self.drop_msg(T_DROP_DELIVER, digest);
            return;
        }
        if !is_request(&msg) {
            self.stats.bytes += msg.size_bytes() as u64;
        }
        self.counters.messages_delivered += 1;
        self.trace_event(T_DELIVER, digest);
        let r = self.nodes[to].replica.as_mut().expect("checked alive");
        if let Err(e) = r.receive(msg) {
            self.fail(&format!("n{} refused a message: {e}", to + 1));
        }
        self.drive(to);
    }

    /// Fail (naming the seed) once more than `events` events were processed in total: turns
    /// a message storm into a failure instead of a run that never ends.
    pub fn set_event_budget(&mut self, events: u64) {
        self.events_max = events;
    }

    /// The network fault model now in force.
    pub fn set_net(&mut self, net: NetConfig) {
        self.trace_event(T_TOPOLOGY, 100);
        self.trace_net(None, Body::Net(net.clone()));
        self.cfg.net = net;
    }

    pub fn net(&self) -> &NetConfig {
        &self.cfg.net
    }

    // ----- connectivity (6.824 semantics) -----

    /// Node `id` can neither send nor receive until `connect`ed.
    pub fn disconnect(&mut self, id: NodeId) {
        let n = self.index_of(id);
        self.topo.set_connected(n, false);
        self.trace_event(T_TOPOLOGY, mix(1, id.0));
        self.trace_net(Some(id), Body::Connect { up: false });
    }

    pub fn connect(&mut self, id: NodeId) {
        let n = self.index_of(id);
        self.topo.set_connected(n, true);
        self.trace_event(T_TOPOLOGY, mix(2, id.0));
        self.trace_net(Some(id), Body::Connect { up: true });
    }

    pub fn is_connected(&self, id: NodeId) -> bool {
        self.topo.is_connected(self.index_of(id))
    }

    /// Nodes talk only within their group; nodes not listed are isolated.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        let mut h = 3;
        for g in groups {
            for id in g.iter() {
                self.index_of(*id);
                h = mix(h, id.0);
            }
            h = mix(h, u64::MAX);
        }
        self.topo.partition(groups);
        self.trace_event(T_TOPOLOGY, h);
        let groups = groups.iter().map(|g| g.to_vec()).collect();
        self.trace_net(None, Body::Partition { groups });
    }

    /// Everyone connected, all links up.
    pub fn heal(&mut self) {
        self.topo.heal();
        self.trace_event(T_TOPOLOGY, 4);
        self.trace_net(None, Body::Heal);
    }

    /// Enable or disable the one-way link `from → to`.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, up: bool) {
        let (f, t) = (self.index_of(from), self.index_of(to));
        self.topo.set_link(f, t, up);
        self.trace_event(T_TOPOLOGY, mix(mix(5, from.0), to.0 * 2 + up as u64));
        self.trace_net(Some(from), Body::Link { to, up });
    }

    /// Whether the one-way link `from → to` is up (regardless of connected flags).
    pub fn link(&self, from: NodeId, to: NodeId) -> bool {
        self.topo.link(self.index_of(from), self.index_of(to))
    }

    // ----- node faults -----

    /// Power cut: the node stops, its unsynced writes are lost (or, with
    /// `crash_keeps_unsynced_prefix`, sometimes kept with the write in flight torn), its
    /// write-ahead log is recovered from what survived, and messages in flight to or from it
    /// are dropped.
    pub fn crash(&mut self, id: NodeId) {
        let n = self.index_of(id);
        let Some(r) = self.nodes[n].replica.take() else {
            return;
        };
        if let Some(t) = self.recorder.as_mut() {
            t.crash(self.now_ms, n, r.store().power().fired());
        }
        let node = &mut self.nodes[n];
        node.incarnation += 1;
        node.ready_scheduled = false;
        node.sync_scheduled = false;
        if let Some(job) = node.snapshot_job.take() {
            // The snapshot thread may have finished the file before the process died, but
            // the WAL never named it: recovery must drop it.
            if self.rng.gen_bool(0.5) {
                let _ = job.run();
            }
        }
        let (store, sm) = r.into_parts();
        let mode = restart_mode(&mut self.rng, self.cfg.crash_keeps_unsynced_prefix);
        let store = match store.power_cycle(mode) {
            Ok(s) => s,
            Err(e) => self.fail(&format!(
                "{id:?} cannot recover its write-ahead log after a crash ({mode:?}): {e}"
            )),
        };
        self.nodes[n].parked = Some((store, sm));
        self.counters.crashes += 1;
        self.trace_event(T_CRASH, mix(id.0, restart_digest(mode)));
    }

    /// Arm a power cut at node `id`: once `syncs` more syncs completed, the power goes out
    /// at one of the next [`POWER_CUT_OPS_MAX`] + 1 file operations (drawn from the seeded
    /// RNG) — in the middle of a `Ready`'s writes, in its sync, or in the clean-up after it —
    /// and the node crashes right there (messages it sent before stay on the wire). No-op
    /// while crashed.
    pub fn crash_at_sync(&mut self, id: NodeId, syncs: u32) {
        let ops = self.rng.gen_range(0..=POWER_CUT_OPS_MAX);
        self.crash_at_op(id, syncs, ops);
    }

    /// [`Cluster::crash_at_sync`] with the operation chosen: the power goes out at the
    /// `ops`-th file operation (0: the first) after `syncs` more syncs completed.
    pub fn crash_at_op(&mut self, id: NodeId, syncs: u32, ops: u64) {
        let n = self.index_of(id);
        if let Some(r) = self.nodes[n].replica.as_ref() {
            r.store().power().arm(syncs, ops);
            self.trace_event(T_CRASH, mix(mix(id.0, 1 << 32 | syncs as u64), ops));
        }
    }

    /// Disarm a power cut armed by `crash_at_sync` that has not fired yet.
    pub fn disarm_power_cut(&mut self, id: NodeId) {
        let n = self.index_of(id);
        if let Some(r) = self.nodes[n].replica.as_ref() {
            r.store().power().disarm();
        }
    }

    /// Restart from durable state (snapshot + log + hard state); crashes it first if up.
    pub fn restart(&mut self, id: NodeId) {
        let n = self.index_of(id);
        if self.nodes[n].retired {
            self.fail(&format!(
                "{id:?} was retired: its process never starts again"
            ));
        }
        if self.nodes[n].replica.is_some() {
            self.crash(id);
        }
        self.start(n);
        if let Some(t) = self.recorder.as_mut() {
            t.restart(self.now_ms, n);
        }
        self.counters.restarts += 1;
        self.trace_event(T_RESTART, id.0);
        self.drive(n);
    }

    /// Start node `n` from its parked disk with a fresh state machine and tick chain.
    fn start(&mut self, n: usize) {
        let id = NodeId(n as u64 + 1);
        let (store, _) = self.nodes[n]
            .parked
            .take()
            .expect("a stopped node has a disk");
        let mut rc = raft::Config::new(id);
        rc.election_ticks = self.cfg.election_ticks;
        rc.heartbeat_ticks = self.cfg.heartbeat_ticks;
        rc.pre_vote = self.cfg.pre_vote;
        rc.check_quorum = self.cfg.check_quorum;
        rc.msg_bytes_max = self.cfg.msg_bytes_max;
        rc.inflight_msgs_max = self.cfg.inflight_msgs_max;
        rc.snapshot_chunk_bytes = self.cfg.snapshot_chunk_bytes;
        rc.seed = self.rng.gen();
        let policy = SnapshotPolicy {
            every_applied_entries: self.cfg.snapshot_every,
            background: self.cfg.snapshot_background,
            size_aware: false,
        };
        let machine = NodeMachine::for_config(self.cfg.kv);
        let replica = match Replica::new(rc, store, machine, policy) {
            Ok(r) => r,
            Err(e) => self.fail(&format!("{id:?} cannot start from its disk: {e}")),
        };
        self.nodes[n].replica = Some(replica);
        self.checker.restarted(n);
        let inc = self.nodes[n].incarnation;
        let phase = self.rng.gen_range(1..=self.cfg.tick_ms.max(1));
        self.schedule(self.now_ms + phase, EventKind::Tick { node: n, inc });
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.nodes[self.index_of(id)].replica.is_some()
    }

    // ----- client-ish actions -----

    fn schedule_ready(&mut self, n: usize) {
        if !self.nodes[n].ready_scheduled {
            self.nodes[n].ready_scheduled = true;
            let inc = self.nodes[n].incarnation;
            self.schedule(self.now_ms, EventKind::Ready { node: n, inc });
        }
    }

    /// 6.824 `Start(cmd)`: propose at node `id`. The node handles its `Ready` as the next
    /// event at the current time, so proposals made together are batched.
    pub fn propose(&mut self, id: NodeId, data: Bytes) -> Result<EntryId, ProposeError> {
        self.propose_with_token(id, data).map(|(eid, _)| eid)
    }

    /// [`Cluster::propose`], also returning the token its [`Completion`] will carry.
    pub fn propose_with_token(
        &mut self,
        id: NodeId,
        data: Bytes,
    ) -> Result<(EntryId, u64), ProposeError> {
        let n = self.index_of(id);
        self.counters.proposals += 1;
        let token = self.next_token;
        self.next_token += 1;
        let Some(r) = self.nodes[n].replica.as_mut() else {
            return Err(ProposeError::NotLeader { leader_hint: None });
        };
        let eid = r.propose(data, token)?;
        self.counters.proposals_accepted += 1;
        self.trace_event(T_PROPOSE, mix(eid.index.0, eid.term.0));
        self.schedule_ready(n);
        Ok((eid, token))
    }

    /// Start a linearizable read at node `id`; its answer appears in `read_results(id)`.
    pub fn read_index(&mut self, id: NodeId, ctx: u64) -> Result<(), ReadError> {
        let n = self.index_of(id);
        let Some(r) = self.nodes[n].replica.as_mut() else {
            return Err(ReadError::NoLeader);
        };
        r.read(ctx)?;
        self.schedule_ready(n);
        Ok(())
    }

    /// Completed ReadIndex answers seen at `id`, in order: (ctx, read index), `None` when the
    /// read failed.
    pub fn read_results(&self, id: NodeId) -> &[(u64, Option<LogIndex>)] {
        &self.nodes[self.index_of(id)].read_results
    }

    /// Every proposal/read completion seen at `id`, in order.
    pub fn completions(&self, id: NodeId) -> &[Completion] {
        &self.nodes[self.index_of(id)].completions
    }

    pub fn transfer_leader(&mut self, id: NodeId, to: NodeId) -> Result<(), TransferError> {
        let n = self.index_of(id);
        let Some(r) = self.nodes[n].replica.as_mut() else {
            return Err(TransferError::NotLeader { leader_hint: None });
        };
        r.transfer_leader(to)?;
        self.schedule_ready(n);
        Ok(())
    }

    /// Make node `id` start an election now (no-op while crashed).
    pub fn campaign(&mut self, id: NodeId) {
        let n = self.index_of(id);
        if let Some(r) = self.nodes[n].replica.as_mut() {
            r.campaign();
            self.schedule_ready(n);
        }
    }

    // ----- membership -----

    /// Start a new node `id` with an empty disk (the next id: `ids().len() + 1`). It is in
    /// no configuration yet — its identity records the genesis membership, which does not
    /// hold it — so it never campaigns; a leader brings it in with
    /// [`ConfChange::AddLearner`] or [`ConfChange::AddVoter`] and it catches up by log or
    /// snapshot. Its links are up in both directions with every node (whatever partition is
    /// in force), and it is connected.
    pub fn add_node(&mut self, id: NodeId) {
        let n = self.nodes.len();
        assert_eq!(
            id.0 as usize,
            n + 1,
            "nodes are added with the next id ({})",
            n + 1
        );
        let node = self.fresh_node(id);
        self.nodes.push(node);
        self.topo.add_node();
        self.checker.add_node();
        self.counters.nodes_added += 1;
        self.trace_event(T_ADD_NODE, id.0);
        self.start(n);
    }

    /// Stop node `id`'s process for good (after its removal committed, say): it crashes like
    /// [`Cluster::crash`] — its disk stays for observation — and is never restarted.
    pub fn retire(&mut self, id: NodeId) {
        let n = self.index_of(id);
        if self.nodes[n].retired {
            return;
        }
        self.crash(id);
        self.nodes[n].retired = true;
        self.counters.nodes_retired += 1;
        self.trace_event(T_RETIRE, id.0);
    }

    pub fn is_retired(&self, id: NodeId) -> bool {
        self.nodes[self.index_of(id)].retired
    }

    /// Propose a membership change at node `id` (leader only; see
    /// [`raft::Raft::propose_conf_change`]). The node handles its `Ready` as the next event
    /// at the current time; the change's completion carries the returned token.
    pub fn propose_conf_change(
        &mut self,
        id: NodeId,
        change: ConfChange,
    ) -> Result<(EntryId, u64), ConfChangeError> {
        let n = self.index_of(id);
        self.counters.conf_changes += 1;
        let token = self.next_token;
        self.next_token += 1;
        let Some(r) = self.nodes[n].replica.as_mut() else {
            return Err(ConfChangeError::NotLeader { leader_hint: None });
        };
        let eid = r.propose_conf_change(change, token)?;
        self.counters.conf_changes_accepted += 1;
        self.trace_event(
            T_CONF_CHANGE,
            mix(mix(eid.index.0, eid.term.0), conf_digest(change)),
        );
        self.schedule_ready(n);
        Ok((eid, token))
    }

    /// The configuration node `id` uses now (the latest in its log); `None` while down.
    pub fn configuration(&self, id: NodeId) -> Option<&Configuration> {
        self.raft(id).map(|r| r.configuration())
    }

    /// The latest configuration known committed: the last configuration entry of the
    /// applied sequence every node agrees on (the genesis membership before the first).
    pub fn committed_configuration(&self) -> &Configuration {
        self.checker.committed_configuration()
    }

    /// Every committed configuration so far, oldest first, with the index of its entry (the
    /// genesis membership at index 0).
    pub fn committed_configurations(&self) -> &[(LogIndex, Configuration)] {
        self.checker.committed_configurations()
    }

    /// The membership the cluster was bootstrapped with.
    pub fn genesis(&self) -> &Configuration {
        &self.genesis
    }

    // ----- observation -----

    pub fn ids(&self) -> Vec<NodeId> {
        (1..=self.nodes.len() as u64).map(NodeId).collect()
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The core of node `id`; `None` while crashed.
    pub fn raft(&self, id: NodeId) -> Option<&Raft> {
        self.nodes[self.index_of(id)]
            .replica
            .as_ref()
            .map(|r| r.raft())
    }

    /// The replica of node `id`; `None` while crashed.
    pub fn replica(&self, id: NodeId) -> Option<&SimReplica> {
        self.nodes[self.index_of(id)].replica.as_ref()
    }

    /// Up-and-connected nodes that believe they are leader, with their terms.
    pub fn leaders(&self) -> Vec<(NodeId, Term)> {
        let mut out = Vec::new();
        for (n, node) in self.nodes.iter().enumerate() {
            if let Some(r) = &node.replica {
                if self.topo.is_connected(n) && r.raft().is_leader() {
                    out.push((r.raft().id(), r.raft().term()));
                }
            }
        }
        out
    }

    fn machine_of(&self, n: usize) -> &NodeMachine {
        let node = &self.nodes[n];
        match (&node.replica, &node.parked) {
            (Some(r), _) => r.state_machine(),
            (None, Some((_, sm))) => sm,
            (None, None) => unreachable!("a node is either up or parked"),
        }
    }

    fn sm(&self, n: usize) -> &SimStateMachine {
        self.machine_of(n).recorder()
    }

    fn disk(&self, n: usize) -> &SimStore {
        let node = &self.nodes[n];
        match (&node.replica, &node.parked) {
            (Some(r), _) => r.store(),
            (None, Some((store, _))) => store,
            (None, None) => unreachable!("a node is either up or parked"),
        }
    }

    /// The recorder of node `id` (its last one while crashed).
    pub fn state_machine(&self, id: NodeId) -> &SimStateMachine {
        self.sm(self.index_of(id))
    }

    /// Everything node `id` applies entries to (its last one while crashed).
    pub fn machine(&self, id: NodeId) -> &NodeMachine {
        self.machine_of(self.index_of(id))
    }

    /// The KV state machine of node `id` while it is up (`None` while crashed, or when the
    /// cluster runs no KV service).
    pub fn kv(&self, id: NodeId) -> Option<&kv::KvStateMachine> {
        let n = self.index_of(id);
        self.nodes[n].replica.as_ref()?.state_machine().kv()
    }

    /// Commands applied by node `id`, in order, as (index, data), including those restored
    /// from full-record snapshots (a digest snapshot, with KV, forgets the ones it covers).
    /// Leader no-ops are not commands and are left out.
    pub fn applied(&self, id: NodeId) -> Vec<(LogIndex, Bytes)> {
        self.sm(self.index_of(id))
            .records()
            .iter()
            .filter(|r| r.kind == raft::EntryKind::Normal)
            .map(|r| (r.id.index, r.data.clone()))
            .collect()
    }

    /// Last index node `id` applied (its last state machine's while crashed).
    pub fn applied_index(&self, id: NodeId) -> LogIndex {
        self.sm(self.index_of(id)).applied_index()
    }

    /// 6.824 `nCommitted`: how many nodes (up or not) applied a command at `index`, and
    /// which. Panics if two nodes applied different commands there.
    pub fn n_committed(&self, index: LogIndex) -> (usize, Option<Bytes>) {
        let mut count = 0;
        let mut cmd: Option<&Bytes> = None;
        for n in 0..self.nodes.len() {
            if let Some(d) = self.sm(n).command_at(index) {
                if cmd.is_some_and(|c| c != d) {
                    self.fail(&format!(
                        "n_committed: nodes applied different commands at {index:?}"
                    ));
                }
                cmd = Some(d);
                count += 1;
            }
        }
        (count, cmd.cloned())
    }

    pub fn stats(&self) -> NetStats {
        self.stats.clone()
    }

    pub fn reset_stats(&mut self) {
        self.stats = NetStats::default();
    }

    /// Totals since the cluster was built.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Completions produced so far over all nodes: it changes exactly when some node's
    /// [`Cluster::completions`] grew, so a driver can stop the clock at that event.
    pub fn completions_total(&self) -> u64 {
        let k = &self.counters;
        k.proposals_applied + k.proposals_failed + k.reads_ready + k.reads_failed
    }

    /// Terms that had a leader so far.
    pub fn elections(&self) -> usize {
        self.checker.elections()
    }

    /// The newest term that had a leader so far (over the whole run, crashed nodes included).
    pub fn latest_leader_term(&self) -> Option<Term> {
        self.checker.latest_leader_term()
    }

    /// Length of the log prefix known to be committed.
    pub fn committed_len(&self) -> u64 {
        self.checker.committed_len()
    }

    /// Raft state of node `id` in its write-ahead log (hard state + the framed records of
    /// the live log entries), in bytes: 6.824's `RaftStateSize`. Records the log no longer
    /// needs (overwritten or compacted) still sit in their segments until a whole segment
    /// is obsolete.
    pub fn persisted_log_bytes(&self, id: NodeId) -> usize {
        self.disk(self.index_of(id)).log_bytes()
    }

    /// Size of node `id`'s snapshot file, in bytes (0 without one).
    pub fn persisted_snapshot_bytes(&self, id: NodeId) -> usize {
        self.disk(self.index_of(id)).snapshot_bytes()
    }

    /// Node `id`'s disk (its last one while crashed).
    pub fn store(&self, id: NodeId) -> &SimStore {
        self.disk(self.index_of(id))
    }

    /// One line per node: up/down, connectivity and the core's status, for failure reports.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (n, node) in self.nodes.iter().enumerate() {
            let conn = if self.topo.is_connected(n) {
                "connected"
            } else {
                "disconnected"
            };
            match &node.replica {
                Some(r) => out.push_str(&format!(
                    "  n{} up, {conn}, snapshot {:?}: {:?}, {:?}\n",
                    n + 1,
                    r.snapshot_index(),
                    r.raft().status(),
                    r.raft().configuration()
                )),
                None if node.retired => out.push_str(&format!("  n{} retired\n", n + 1)),
                None => out.push_str(&format!("  n{} down, {conn}\n", n + 1)),
            }
        }
        out
    }

    /// Hash of every event so far: same seed and same calls ⇒ same hash.
    pub fn trace_hash(&self) -> u64 {
        finish(self.trace)
    }

    fn trace_event(&mut self, code: u64, detail: u64) {
        self.trace = mix(mix(mix(self.trace, code), self.now_ms), detail);
    }

    // ----- trace recording (see crate::trace; reads only, never draws or hashes) -----

    /// Record the dashboard's events into `sink` from now on: a `hello`, `role`, `status`
    /// and `log` for every node at once, then as [`crate::trace`] describes.
    pub fn record_trace(&mut self, sink: TraceSink) {
        let timing = (
            self.cfg.election_ticks,
            self.cfg.heartbeat_ticks,
            self.cfg.tick_ms,
        );
        self.recorder = Some(Box::new(Recorder::new(sink, timing, self.now_ms)));
        for n in 0..self.nodes.len() {
            self.trace_observe(n);
        }
    }

    /// Write every status and log change still held back by the coalescing (at the end
    /// of a recorded run).
    pub fn flush_trace(&mut self) {
        if let Some(t) = self.recorder.as_mut() {
            let nodes: Vec<_> = self.nodes.iter().map(|n| n.replica.as_ref()).collect();
            t.flush(self.now_ms, &nodes, true);
        }
    }

    fn trace_observe(&mut self, n: usize) {
        if let Some(t) = self.recorder.as_mut() {
            t.observe(self.now_ms, n, self.nodes[n].replica.as_ref());
        }
    }

    fn trace_poll(&mut self) {
        if let Some(t) = self.recorder.as_mut().filter(|t| t.wants_poll(self.now_ms)) {
            let nodes: Vec<_> = self.nodes.iter().map(|n| n.replica.as_ref()).collect();
            t.poll(self.now_ms, &nodes);
        }
    }

    fn trace_msg(&mut self, msg: &Message) {
        if let Some(t) = self.recorder.as_mut() {
            t.msg(self.now_ms, msg);
        }
    }

    /// `msg` is lost to a cut link (`receiver_up`) or to a node that is down.
    fn trace_drop(&mut self, msg: &Message, receiver_up: bool) {
        if let Some(t) = self.recorder.as_mut() {
            let reason = if receiver_up {
                DropReason::Cut
            } else {
                DropReason::Down
            };
            t.dropped(self.now_ms, msg, reason);
        }
    }

    fn trace_loss(&mut self, msg: &Message) {
        if let Some(t) = self.recorder.as_mut() {
            t.dropped(self.now_ms, msg, DropReason::Loss);
        }
    }

    fn trace_net(&mut self, node: Option<NodeId>, body: Body) {
        if let Some(t) = self.recorder.as_mut() {
            t.net(self.now_ms, node, body);
        }
    }

    /// The one seeded RNG, for test scripts.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    pub fn seed(&self) -> u64 {
        self.cfg.seed
    }
}

/// A fingerprint of a membership change for the trace.
fn conf_digest(change: ConfChange) -> u64 {
    match change {
        ConfChange::AddLearner(id) => mix(1, id.0),
        ConfChange::AddVoter(id) => mix(2, id.0),
        ConfChange::PromoteLearner(id) => mix(3, id.0),
        ConfChange::Remove(id) => mix(4, id.0),
    }
}

/// A cheap fingerprint of a message for the trace.
fn msg_digest(m: &Message) -> u64 {
    let h = mix(mix(mix(0, m.from.0), m.to.0), m.term.0);
    match &m.body {
        MessageBody::Vote(v) => mix(
            mix(mix(h, 1 + v.pre_vote as u64), v.last.index.0),
            v.last.term.0,
        ),
        MessageBody::VoteResponse(v) => mix(h, 4 + 2 * v.granted as u64 + v.pre_vote as u64),
        MessageBody::Append(a) => {
            let h = mix(mix(mix(h, 8), a.prev.index.0), a.prev.term.0);
            mix(mix(h, a.entries.len() as u64), a.commit.0)
        }
        MessageBody::AppendResponse(r) => match r.outcome {
            raft::AppendOutcome::Accepted { match_index } => mix(mix(h, 9), match_index.0),
            raft::AppendOutcome::Rejected {
                rejected_prev,
                hint,
            } => mix(mix(mix(h, 10), rejected_prev.0), hint.index.0),
        },
        MessageBody::Snapshot(s) => mix(mix(mix(h, 11), s.meta.last.index.0), s.offset),
        MessageBody::SnapshotResponse(r) => mix(mix(h, 12), r.next_offset),
        MessageBody::TimeoutNow => mix(h, 13),
        MessageBody::ReadIndex { ctx } => mix(mix(h, 14), *ctx),
        MessageBody::ReadIndexResponse { ctx, index } => {
            mix(mix(mix(h, 15), *ctx), index.map_or(u64::MAX, |i| i.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader_of(c: &mut Cluster) -> NodeId {
        assert!(
            c.run_until(5_000, |c| c.leaders().len() == 1),
            "a leader within 5 s"
        );
        c.leaders()[0].0
    }

    fn commit(c: &mut Cluster, data: &str, on: usize) -> LogIndex {
        let leader = leader_of(c);
        let id = c
            .propose(leader, Bytes::copy_from_slice(data.as_bytes()))
            .unwrap();
        let ok = c.run_until(2_000, |c| c.n_committed(id.index).0 >= on);
        assert!(ok, "{data} applied on {on} nodes");
        id.index
    }

    #[test]
    fn deferred_syncs_commit_and_keep_committed_entries_through_crashes() {
        for seed in 0..20 {
            let mut cfg = SimConfig::new(3, 100 + seed);
            cfg.sync_deferred = true;
            let mut c = Cluster::new(cfg);
            let a = commit(&mut c, "a", 3);
            assert!(c.counters().syncs_deferred > 0, "seed {seed}");
            // Crash the leader right after it wrote "b": its sync, and its followers' syncs
            // of "b", may not have run; nothing acknowledged unsynced.
            let leader = leader_of(&mut c);
            c.propose(leader, Bytes::from("b")).unwrap();
            c.run_for(seed % 3);
            c.crash(leader);
            let others: Vec<NodeId> = c.ids().into_iter().filter(|&i| i != leader).collect();
            c.crash(others[0]);
            for id in c.ids() {
                if !c.is_up(id) {
                    c.restart(id);
                }
            }
            let d = commit(&mut c, "d", 3);
            for id in c.ids() {
                let applied = c.applied(id);
                assert_eq!(applied[0], (a, Bytes::from("a")), "seed {seed}");
                assert_eq!(applied.last(), Some(&(d, Bytes::from("d"))), "seed {seed}");
            }
        }
    }

    #[test]
    fn elects_a_leader_and_commits_on_every_node() {
        let mut c = Cluster::new(SimConfig::new(3, 1));
        let index = commit(&mut c, "a", 3);
        assert_eq!(c.n_committed(index), (3, Some(Bytes::from("a"))));
        for id in c.ids() {
            assert_eq!(c.applied(id), vec![(index, Bytes::from("a"))]);
        }
        assert!(c.stats().rpcs > 0 && c.stats().by_kind.contains_key("AppendEntries"));
        assert_eq!(c.elections(), 1);
    }

    #[test]
    fn minority_cannot_commit_and_majority_heals_it() {
        let mut c = Cluster::new(SimConfig::new(5, 2));
        let leader = leader_of(&mut c);
        let others: Vec<NodeId> = c.ids().into_iter().filter(|&i| i != leader).collect();
        c.partition(&[&[leader, others[0]], &others[1..]]);
        let id = c.propose(leader, "lost".into()).unwrap();
        c.run_for(2_000);
        assert_eq!(c.n_committed(id.index).0, 0, "no commit without a majority");
        c.heal();
        let index = commit(&mut c, "after", 5);
        assert!(c.run_until(3_000, |c| c
            .ids()
            .iter()
            .all(|&i| c.applied_index(i) >= index)));
        assert!(
            c.applied(leader).iter().all(|(_, d)| d != "lost"),
            "overwritten"
        );
    }

    #[test]
    fn crash_of_everyone_keeps_committed_entries() {
        let mut c = Cluster::new(SimConfig::new(3, 3));
        let a = commit(&mut c, "a", 3);
        for id in c.ids() {
            c.crash(id);
            assert!(!c.is_up(id) && c.raft(id).is_none());
        }
        assert_eq!(
            c.n_committed(a).0,
            3,
            "crashed nodes still count (6.824 nCommitted)"
        );
        for id in c.ids() {
            c.restart(id);
        }
        commit(&mut c, "b", 3);
        for id in c.ids() {
            assert_eq!(c.applied(id)[0], (a, Bytes::from("a")));
        }
        assert_eq!(c.counters().crashes, 3);
    }

    #[test]
    fn lagging_follower_catches_up_through_a_snapshot() {
        let mut cfg = SimConfig::new(3, 4);
        cfg.snapshot_every = Some(10);
        cfg.snapshot_chunk_bytes = 100;
        let mut c = Cluster::new(cfg);
        let leader = leader_of(&mut c);
        let lagging = c.ids().into_iter().find(|&i| i != leader).unwrap();
        c.disconnect(lagging);
        let mut last = LogIndex(0);
        for i in 0..50 {
            last = commit(&mut c, &format!("c{i}"), 2);
        }
        assert!(c.replica(leader).unwrap().snapshot_index() >= LogIndex(40));
        assert!(c.persisted_snapshot_bytes(leader) > 0);
        c.connect(lagging);
        assert!(c.run_until(5_000, |c| c.applied_index(lagging) >= last));
        assert_eq!(c.applied(lagging), c.applied(leader));
        assert!(
            c.state_machine(lagging).restores() >= 1,
            "installed a snapshot"
        );
    }

    #[test]
    fn power_cut_crashes_in_the_middle_of_a_sync() {
        let mut c = Cluster::new(SimConfig::new(3, 5));
        let leader = leader_of(&mut c);
        c.crash_at_sync(leader, 0);
        for i in 0..=POWER_CUT_OPS_MAX {
            if !c.is_up(leader) {
                break;
            }
            let _ = c.propose(leader, Bytes::from(format!("x{i}")));
            c.run_for(10);
        }
        assert!(
            !c.is_up(leader),
            "each proposal writes and syncs at least once"
        );
        assert_eq!(c.counters().power_cuts, 1);
        c.restart(leader);
        commit(&mut c, "y", 3);
    }

    /// A power cut at every file operation of a leader's `Ready` (and a torn write in
    /// flight): every node recovers its WAL, and what was committed stays committed.
    #[test]
    fn power_cut_at_every_operation_of_a_ready_recovers() {
        for ops in 0..12 {
            let mut cfg = SimConfig::new(3, 100 + ops);
            cfg.crash_keeps_unsynced_prefix = true;
            cfg.snapshot_every = Some(3);
            cfg.disk.write_buffer_bytes = 1;
            let mut c = Cluster::new(cfg);
            let a = commit(&mut c, "a", 3);
            let leader = leader_of(&mut c);
            c.crash_at_op(leader, 0, ops);
            for i in 0..4 {
                let _ = c.propose(leader, Bytes::from(format!("p{i}")));
            }
            c.run_for(50);
            c.restart(leader);
            let b = commit(&mut c, "b", 3);
            for id in c.ids() {
                assert_eq!(c.n_committed(a).1, Some(Bytes::from("a")), "ops {ops}");
                assert!(c.applied_index(id) >= b, "ops {ops}: {id:?} caught up");
            }
        }
    }

    #[test]
    fn one_way_link_loss() {
        let mut c = Cluster::new(SimConfig::new(3, 6));
        let leader = leader_of(&mut c);
        let f = c.ids().into_iter().find(|&i| i != leader).unwrap();
        c.set_link(leader, f, false);
        assert!(!c.link(leader, f) && c.link(f, leader));
        let index = commit(&mut c, "z", 2);
        c.run_for(300);
        assert!(
            c.applied_index(f) < index,
            "the follower hears nothing from the leader"
        );
        c.heal();
        assert!(c.run_until(3_000, |c| c.applied_index(f) >= index));
    }

    #[test]
    fn read_index_answers_after_apply() {
        let mut c = Cluster::new(SimConfig::new(3, 7));
        let index = commit(&mut c, "r", 3);
        let leader = leader_of(&mut c);
        c.read_index(leader, 42).unwrap();
        assert!(c.run_until(1_000, |c| !c.read_results(leader).is_empty()));
        let (ctx, at) = c.read_results(leader)[0];
        assert_eq!(ctx, 42);
        assert!(at.is_some_and(|i| i >= index));
    }

    #[test]
    fn same_seed_same_trace_other_seed_other_trace() {
        let run = |seed| {
            let mut cfg = SimConfig::new(5, seed);
            cfg.net = NetConfig::unreliable().with_long_reordering();
            let mut c = Cluster::new(cfg);
            for i in 0..20u64 {
                c.run_for(100);
                if let Some(&(l, _)) = c.leaders().first() {
                    let _ = c.propose(l, Bytes::from(i.to_string()));
                }
                if i == 10 {
                    c.crash(NodeId(2));
                }
            }
            (c.trace_hash(), c.counters().events)
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9).0, run(10).0);
    }
}
