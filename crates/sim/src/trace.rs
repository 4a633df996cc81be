//! Recording a simulated run as the dashboard's events, so a seed can be watched, not only
//! read: [`Cluster::record_trace`](crate::Cluster::record_trace) attaches a [`Recorder`]
//! that writes into a [`TraceSink`]; [`Trace::write_json`] writes the JSON array (oldest
//! first) that the dashboard page replays.
//!
//! The events are the admin endpoint's schema (version 1, documented in the server crate's
//! `admin` module) with `t` in virtual ms since the cluster started: `hello` per node,
//! `role` on every change of role, term or leader, `status` and `log` when they change
//! (coalesced: at most one of each per node per [`STATUS_EVERY_MIN_MS`] virtual ms, the last
//! state always written), `timer` for every up node every [`TIMER_EVERY_MS`], a `msg` for
//! every message sent, plus what only a simulation has: `drop` (a message lost, and why),
//! `crash`, `restart`, `partition`, `heal`, `link`, `connect`, `net` and a closing `end`.
//! Message kinds, summaries, log tails and names come from [`raft::observe`], as the live
//! telemetry's do.
//!
//! A trace holds at most [`TraceSink::events_max`] events; past it, events are counted in
//! [`Trace::left_out`] and the `end` event says so.
//!
//! Owns: the recorder's coalescing state, the trace, and its JSON. Must never: change what
//! the simulation does — no RNG draw, no scheduled event, no trace-hash input, no counter
//! (a run with recording on has the same trace hash and report as one without) — or read the
//! wall clock.

use crate::check::SimReplica;
use crate::config::NetConfig;
use raft::observe::{entry_kind_name, role_name, LogTail, MsgKind, MsgSummary};
use raft::{Message, NodeId, Role};
use std::fmt::Write as _;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// Least virtual time between two `status` (and two `log`) events of one node.
pub const STATUS_EVERY_MIN_MS: u64 = 50;
/// Virtual time between two rounds of `timer` events.
pub const TIMER_EVERY_MS: u64 = 100;
/// Entries of the log tail in a `log` event (as the admin endpoint's).
pub const LOG_TAIL_ENTRIES: usize = 20;
/// The default cap on a trace's events (about 90 MB of JSON): a one-minute seed records
/// 10⁴ to 5·10⁴ (1–6 MB), so about ten simulated minutes fit.
pub const TRACE_EVENTS_MAX_DEFAULT: usize = 500_000;

/// Why a message was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The fault model's random loss.
    Loss,
    /// A partition, a disconnected node or a one-way link cut (when sent or when due).
    Cut,
    /// The receiver was down, or sender or receiver crashed while it was in flight.
    Down,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::Cut => "cut",
            DropReason::Down => "down",
        }
    }
}

/// What a node publishes in a `status` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeState {
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
    pub snapshot_index: u64,
}

impl NodeState {
    pub fn of(r: &SimReplica) -> NodeState {
        let raft = r.raft();
        NodeState {
            role: raft.role(),
            term: raft.term().0,
            leader: raft.leader(),
            commit: raft.commit_index().0,
            applied: r.applied_index().0,
            last_index: raft.last_index().0,
            snapshot_index: r.snapshot_index().0,
        }
    }
}

/// One recorded event: at virtual `t_ms`, about `node` (the sender, for messages).
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEvent {
    pub t_ms: u64,
    pub node: Option<NodeId>,
    pub body: Body,
}

/// The kinds of events; their JSON is the schema's (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Hello {
        election_ticks: u32,
        heartbeat_ticks: u32,
        tick_ms: u64,
    },
    Status(NodeState),
    Role {
        role: Role,
        term: u64,
        leader: Option<NodeId>,
    },
    Timer {
        election_elapsed: u32,
        heartbeat_elapsed: u32,
    },
    Log(LogTail),
    Msg {
        to: NodeId,
        term: u64,
        summary: MsgSummary,
    },
    Drop {
        to: NodeId,
        term: u64,
        kind: MsgKind,
        reason: DropReason,
    },
    /// `power_cut`: the power went out in the middle of the node's writes (an armed cut),
    /// rather than between two events.
    Crash {
        power_cut: bool,
    },
    Restart,
    Partition {
        groups: Vec<Vec<NodeId>>,
    },
    Heal,
    /// The one-way link from `node` to `to` went down or up.
    Link {
        to: NodeId,
        up: bool,
    },
    /// The node was disconnected from (or connected to) everyone.
    Connect {
        up: bool,
    },
    Net(NetConfig),
    End {
        ok: bool,
        text: String,
        left_out: u64,
    },
}

/// A recorded run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Oldest first.
    pub events: Vec<TraceEvent>,
    /// Events not recorded because the trace was full.
    pub left_out: u64,
    /// Virtual time of the first event left out.
    pub full_at_ms: Option<u64>,
}

impl Trace {
    /// The JSON array the dashboard replays, one event per line.
    pub fn write_json(&self, w: &mut impl io::Write) -> io::Result<()> {
        w.write_all(b"[\n")?;
        let mut line = String::with_capacity(256);
        for (i, e) in self.events.iter().enumerate() {
            line.clear();
            e.write_json(&mut line);
            if i + 1 < self.events.len() {
                line.push(',');
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        w.write_all(b"]\n")
    }

    /// Virtual time of the last event (0 when empty).
    pub fn last_ms(&self) -> u64 {
        self.events.last().map_or(0, |e| e.t_ms)
    }
}

/// Where a [`Recorder`] writes: shared, so that a run that panics (a failing seed) still
/// leaves the trace up to its failure with whoever holds the sink.
#[derive(Clone, Debug)]
pub struct TraceSink {
    inner: Arc<Mutex<Trace>>,
    events_max: usize,
}

impl TraceSink {
    /// A sink that keeps at most `events_max` events (the `end` event comes on top).
    pub fn new(events_max: usize) -> TraceSink {
        TraceSink {
            inner: Arc::default(),
            events_max,
        }
    }

    pub fn events_max(&self) -> usize {
        self.events_max
    }

    /// The trace so far (a run that panicked left its lock poisoned: still readable).
    pub fn lock(&self) -> MutexGuard<'_, Trace> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, t_ms: u64, node: Option<NodeId>, body: Body) {
        let mut t = self.lock();
        if t.events.len() >= self.events_max {
            t.left_out += 1;
            t.full_at_ms.get_or_insert(t_ms);
            return;
        }
        t.events.push(TraceEvent { t_ms, node, body });
    }

    /// Close the trace with an `end` event at its last event's time: `ok` and what to show
    /// (the report, or the failure).
    pub fn finish(&self, ok: bool, text: impl Into<String>) {
        let mut t = self.lock();
        let (t_ms, left_out) = (t.last_ms(), t.left_out);
        let text = text.into();
        t.events.push(TraceEvent {
            t_ms,
            node: None,
            body: Body::End { ok, text, left_out },
        });
    }

    /// Take the trace out, leaving an empty one.
    pub fn take(&self) -> Trace {
        std::mem::take(&mut *self.lock())
    }
}

/// One seeded run, recorded — what `raftkv sim` and `sim --trace` run: a Raft-level run of
/// `minutes` with `opts` ([`crate::run_random_with`]) or, with `kv`, a KV run
/// ([`crate::run_kv_random`]). Returns `Ok(report and trace hash)` or `Err(the failure)` of a
/// failing seed, and the trace closed by an `end` event that carries the same text.
pub fn record_seed(
    seed: u64,
    minutes: u64,
    kv: bool,
    opts: crate::RandomOptions,
    events_max: usize,
) -> (Result<String, String>, Trace) {
    let sink = TraceSink::new(events_max);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if kv {
            let r = crate::run_kv_random_recorded(seed, Some(&sink));
            format!("{r}\ntrace hash: {:016x}", r.trace_hash)
        } else {
            let r = crate::run_random_traced(seed, minutes, opts, Some(&sink));
            format!("{r}\ntrace hash: {:016x}", r.trace_hash)
        }
    }));
    let outcome = run.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the run panicked".to_string())
    });
    match &outcome {
        Ok(report) => sink.finish(true, report.clone()),
        Err(why) => sink.finish(false, why.clone()),
    }
    (outcome, sink.take())
}

/// What the recorder last wrote about one node.
#[derive(Debug, Default)]
struct NodeRec {
    hello: bool,
    role: Option<(Role, u64, Option<NodeId>)>,
    status: Option<NodeState>,
    status_at_ms: u64,
    status_dirty: bool,
    log: Option<LogKey>,
    log_at_ms: u64,
    log_dirty: bool,
}

/// `(first index, commit, snapshot (index, term), last entry (index, term))`: the log tail is
/// the same while this is (Log Matching: same last entry, same log).
type LogKey = (u64, u64, (u64, u64), (u64, u64));

fn log_key(r: &SimReplica) -> LogKey {
    let raft = r.raft();
    let st = raft.status();
    let last = raft.last_entry_id();
    (
        raft.first_index().0,
        raft.commit_index().0,
        (st.snapshot.index.0, st.snapshot.term.0),
        (last.index.0, last.term.0),
    )
}

/// The cluster's recording half: coalescing state, and the sink.
#[derive(Debug)]
pub struct Recorder {
    sink: TraceSink,
    /// Node timing for `hello`: (election ticks, heartbeat ticks, tick ms).
    timing: (u32, u32, u64),
    nodes: Vec<NodeRec>,
    next_timer_ms: u64,
    /// Some node has a status or log change not yet written.
    dirty: bool,
}

impl Recorder {
    pub fn new(sink: TraceSink, timing: (u32, u32, u64), now_ms: u64) -> Recorder {
        Recorder {
            sink,
            timing,
            nodes: Vec::new(),
            next_timer_ms: now_ms,
            dirty: false,
        }
    }

    fn node(&mut self, n: usize) -> &mut NodeRec {
        if self.nodes.len() <= n {
            self.nodes.resize_with(n + 1, NodeRec::default);
        }
        &mut self.nodes[n]
    }

    fn push(&self, t_ms: u64, n: usize, body: Body) {
        self.sink.push(t_ms, Some(id_of(n)), body);
    }

    /// Node `n` may have changed (it handled a `Ready`, started or restarted): its `role`
    /// at once, its `status` and `log` unless written less than the coalescing interval ago.
    pub fn observe(&mut self, now_ms: u64, n: usize, r: Option<&SimReplica>) {
        let (e, h, tick_ms) = self.timing;
        if !self.node(n).hello {
            self.nodes[n].hello = true;
            let body = Body::Hello {
                election_ticks: e,
                heartbeat_ticks: h,
                tick_ms,
            };
            self.push(now_ms, n, body);
        }
        let Some(r) = r else { return };
        let st = NodeState::of(r);
        let role = (st.role, st.term, st.leader);
        if self.nodes[n].role != Some(role) {
            self.nodes[n].role = Some(role);
            let body = Body::Role {
                role: st.role,
                term: st.term,
                leader: st.leader,
            };
            self.push(now_ms, n, body);
        }
        self.status(now_ms, n, st, false);
        self.log(now_ms, n, r, false);
    }

    /// Write `st` unless it was written last, or (unless `force`) the last status of the
    /// node is too recent: then it is left pending for [`Recorder::poll`].
    fn status(&mut self, now_ms: u64, n: usize, st: NodeState, force: bool) {
        let rec = &mut self.nodes[n];
        if rec.status == Some(st) {
            rec.status_dirty = false;
            return;
        }
        if !force && rec.status.is_some() && now_ms < rec.status_at_ms + STATUS_EVERY_MIN_MS {
            rec.status_dirty = true;
            self.dirty = true;
            return;
        }
        rec.status = Some(st);
        rec.status_at_ms = now_ms;
        rec.status_dirty = false;
        self.push(now_ms, n, Body::Status(st));
    }

    /// [`Recorder::status`] for the log tail.
    fn log(&mut self, now_ms: u64, n: usize, r: &SimReplica, force: bool) {
        let key = log_key(r);
        let rec = &mut self.nodes[n];
        if rec.log == Some(key) {
            rec.log_dirty = false;
            return;
        }
        if !force && rec.log.is_some() && now_ms < rec.log_at_ms + STATUS_EVERY_MIN_MS {
            rec.log_dirty = true;
            self.dirty = true;
            return;
        }
        rec.log = Some(key);
        rec.log_at_ms = now_ms;
        rec.log_dirty = false;
        self.push(
            now_ms,
            n,
            Body::Log(LogTail::of(r.raft(), LOG_TAIL_ENTRIES)),
        );
    }

    /// Whether [`Recorder::poll`] has something to do at `now_ms` (cheap; lets the cluster
    /// skip gathering its nodes).
    pub fn wants_poll(&self, now_ms: u64) -> bool {
        now_ms >= self.next_timer_ms || self.dirty
    }

    /// Before each simulated event: `timer` events when due, and the coalesced `status` and
    /// `log` changes whose interval passed. `nodes[n]` is node `n`'s replica while up.
    pub fn poll(&mut self, now_ms: u64, nodes: &[Option<&SimReplica>]) {
        if now_ms >= self.next_timer_ms {
            for (n, r) in nodes.iter().enumerate() {
                if let Some(r) = r {
                    if !self.node(n).hello {
                        self.observe(now_ms, n, Some(r));
                    }
                    let body = Body::Timer {
                        election_elapsed: r.raft().election_elapsed_ticks(),
                        heartbeat_elapsed: r.raft().heartbeat_elapsed_ticks(),
                    };
                    self.push(now_ms, n, body);
                }
            }
            let behind = (now_ms - self.next_timer_ms) / TIMER_EVERY_MS;
            self.next_timer_ms += (behind + 1) * TIMER_EVERY_MS;
        }
        if self.dirty {
            self.flush(now_ms, nodes, false);
        }
    }

    /// Write the pending `status` and `log` changes: those whose interval passed, or all of
    /// them (`all`, at the end of a run).
    pub fn flush(&mut self, now_ms: u64, nodes: &[Option<&SimReplica>], all: bool) {
        self.dirty = false;
        for (n, r) in nodes.iter().enumerate() {
            let Some(r) = r else { continue };
            let rec = self.node(n);
            let (status_due, log_due) = (
                rec.status_dirty && (all || now_ms >= rec.status_at_ms + STATUS_EVERY_MIN_MS),
                rec.log_dirty && (all || now_ms >= rec.log_at_ms + STATUS_EVERY_MIN_MS),
            );
            if status_due {
                self.status(now_ms, n, NodeState::of(r), all);
            }
            if log_due {
                self.log(now_ms, n, r, all);
            }
            let rec = &self.nodes[n];
            self.dirty |= rec.status_dirty || rec.log_dirty;
        }
    }

    /// `from` handed `msg` to the network.
    pub fn msg(&mut self, now_ms: u64, msg: &Message) {
        let body = Body::Msg {
            to: msg.to,
            term: msg.term.0,
            summary: MsgSummary::of(&msg.body),
        };
        self.sink.push(now_ms, Some(msg.from), body);
    }

    /// `msg` was lost.
    pub fn dropped(&mut self, now_ms: u64, msg: &Message, reason: DropReason) {
        let body = Body::Drop {
            to: msg.to,
            term: msg.term.0,
            kind: MsgKind::of(&msg.body),
            reason,
        };
        self.sink.push(now_ms, Some(msg.from), body);
    }

    /// Node `n` crashed: nothing more about it until it restarts.
    pub fn crash(&mut self, now_ms: u64, n: usize, power_cut: bool) {
        let rec = self.node(n);
        rec.status_dirty = false;
        rec.log_dirty = false;
        self.push(now_ms, n, Body::Crash { power_cut });
    }

    /// Node `n` restarted: its role, status and log are written afresh at its next
    /// observation.
    pub fn restart(&mut self, now_ms: u64, n: usize) {
        let hello = self.node(n).hello;
        self.nodes[n] = NodeRec {
            hello,
            ..NodeRec::default()
        };
        self.push(now_ms, n, Body::Restart);
    }

    /// A change of the network (`node`: whom it is about, if anyone).
    pub fn net(&mut self, now_ms: u64, node: Option<NodeId>, body: Body) {
        self.sink.push(now_ms, node, body);
    }
}

/// Node index `n`'s id.
fn id_of(n: usize) -> NodeId {
    NodeId(n as u64 + 1)
}

// ----- JSON -----

fn hex(id: NodeId) -> String {
    format!("\"{:x}\"", id.0)
}

fn opt_hex(id: Option<NodeId>) -> String {
    id.map_or_else(|| "null".to_string(), hex)
}

fn opt_bool(b: Option<bool>) -> &'static str {
    match b {
        None => "null",
        Some(true) => "true",
        Some(false) => "false",
    }
}

/// `s` as a JSON string literal.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A probability as JSON (finite by construction).
fn prob(p: f64) -> String {
    if p.is_finite() {
        format!("{p}")
    } else {
        "0".to_string()
    }
}

impl TraceEvent {
    /// This event as one JSON object of the schema.
    pub fn write_json(&self, o: &mut String) {
        let _ = write!(
            o,
            "{{\"type\":\"{}\",\"t\":{}",
            self.body.type_name(),
            self.t_ms
        );
        if let Some(n) = self.node {
            let _ = write!(o, ",\"node\":{}", hex(n));
        }
        let from = self.node.map_or_else(|| "null".to_string(), hex);
        // Each arm writes `,"field":value` pairs; `let _ =`: writing to a String cannot fail.
        let _ = match &self.body {
            Body::Hello {
                election_ticks,
                heartbeat_ticks,
                tick_ms,
            } => {
                let name = format!("n{}", self.node.map_or(0, |n| n.0));
                o.push_str(",\"name\":");
                json_str(o, &name);
                write!(
                    o,
                    ",\"admin_url\":null,\"election_ticks\":{election_ticks},\
                     \"heartbeat_ticks\":{heartbeat_ticks},\"tick_ms\":{tick_ms}"
                )
            }
            Body::Status(s) => write!(
                o,
                ",\"role\":\"{}\",\"term\":{},\"leader\":{},\"commit\":{},\"applied\":{},\
                 \"last_index\":{},\"snapshot_index\":{}",
                role_name(s.role),
                s.term,
                opt_hex(s.leader),
                s.commit,
                s.applied,
                s.last_index,
                s.snapshot_index
            ),
            Body::Role { role, term, leader } => write!(
                o,
                ",\"role\":\"{}\",\"term\":{term},\"leader\":{}",
                role_name(*role),
                opt_hex(*leader)
            ),
            Body::Timer {
                election_elapsed,
                heartbeat_elapsed,
            } => write!(
                o,
                ",\"election_elapsed_ticks\":{election_elapsed},\
                 \"heartbeat_elapsed_ticks\":{heartbeat_elapsed}"
            ),
            Body::Log(t) => {
                let _ = write!(
                    o,
                    ",\"first_index\":{},\"commit\":{},\"snapshot\":{{\"index\":{},\"term\":{}}},\
                     \"entries\":[",
                    t.first_index, t.commit, t.snapshot.0, t.snapshot.1
                );
                for (i, &(index, term, kind)) in t.entries.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    let _ = write!(
                        o,
                        "{sep}{{\"index\":{index},\"term\":{term},\"kind\":\"{}\"}}",
                        entry_kind_name(kind)
                    );
                }
                write!(o, "]")
            }
            Body::Msg { to, term, summary } => write!(
                o,
                ",\"from\":{from},\"to\":{},\"kind\":\"{}\",\"term\":{term},\"entries\":{},\
                 \"index\":{},\"ok\":{}",
                hex(*to),
                summary.kind.as_str(),
                summary.entries,
                summary.index,
                opt_bool(summary.ok)
            ),
            Body::Drop {
                to,
                term,
                kind,
                reason,
            } => write!(
                o,
                ",\"from\":{from},\"to\":{},\"kind\":\"{}\",\"term\":{term},\"reason\":\"{}\"",
                hex(*to),
                kind.as_str(),
                reason.as_str()
            ),
            Body::Crash { power_cut } => write!(o, ",\"power_cut\":{power_cut}"),
            Body::Restart | Body::Heal => Ok(()),
            Body::Partition { groups } => {
                o.push_str(",\"groups\":[");
                for (i, g) in groups.iter().enumerate() {
                    o.push_str(if i == 0 { "[" } else { ",[" });
                    let ids: Vec<String> = g.iter().map(|&id| hex(id)).collect();
                    o.push_str(&ids.join(","));
                    o.push(']');
                }
                write!(o, "]")
            }
            Body::Link { to, up } => write!(o, ",\"from\":{from},\"to\":{},\"up\":{up}", hex(*to)),
            Body::Connect { up } => write!(o, ",\"up\":{up}"),
            Body::Net(net) => write!(
                o,
                ",\"drop_request\":{},\"drop_response\":{},\"delay_ms\":[{},{}],\
                 \"duplicate\":{},\"long_reorder\":{}",
                prob(net.drop_request),
                prob(net.drop_response),
                net.delay_ms.0,
                net.delay_ms.1,
                prob(net.duplicate),
                net.long_reorder.is_some()
            ),
            Body::End { ok, text, left_out } => {
                let _ = write!(o, ",\"ok\":{ok},\"left_out\":{left_out},\"text\":");
                json_str(o, text);
                Ok(())
            }
        };
        o.push('}');
    }
}

impl Body {
    /// The schema's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Body::Hello { .. } => "hello",
            Body::Status(_) => "status",
            Body::Role { .. } => "role",
            Body::Timer { .. } => "timer",
            Body::Log(_) => "log",
            Body::Msg { .. } => "msg",
            Body::Drop { .. } => "drop",
            Body::Crash { .. } => "crash",
            Body::Restart => "restart",
            Body::Partition { .. } => "partition",
            Body::Heal => "heal",
            Body::Link { .. } => "link",
            Body::Connect { .. } => "connect",
            Body::Net(_) => "net",
            Body::End { .. } => "end",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        run_kv_random, run_kv_random_recorded, run_random, run_random_recorded, Cluster, SimConfig,
    };
    use std::collections::BTreeMap;

    #[test]
    fn recording_changes_neither_the_report_nor_the_trace_hash() {
        for seed in [3, 11] {
            let sink = TraceSink::new(TRACE_EVENTS_MAX_DEFAULT);
            let recorded = run_random_recorded(seed, 1, Some(&sink));
            assert_eq!(recorded, run_random(seed, 1), "seed {seed}");
            let t = sink.lock();
            assert!(t.events.len() > 1_000 && t.left_out == 0, "seed {seed}");
        }
        // With membership changes: nodes added later get their `hello` too.
        let opts = crate::RandomOptions { membership: true };
        let seed = (1..50)
            .find(|&s| crate::run_random_with(s, 1, opts).nodes_added > 0)
            .expect("one of the first seeds adds a node");
        let sink = TraceSink::new(TRACE_EVENTS_MAX_DEFAULT);
        let r = crate::run_random_traced(seed, 1, opts, Some(&sink));
        assert_eq!(r, crate::run_random_with(seed, 1, opts));
        assert!(r.nodes_added > 0, "seed {seed} adds nodes: {r}");
        let hellos = sink
            .lock()
            .events
            .iter()
            .filter(|e| e.body.type_name() == "hello")
            .count();
        assert_eq!(hellos, r.nodes + r.nodes_added as usize, "{r}");
        let sink = TraceSink::new(TRACE_EVENTS_MAX_DEFAULT);
        assert_eq!(run_kv_random_recorded(5, Some(&sink)), run_kv_random(5));
        assert!(!sink.lock().events.is_empty());
    }

    fn scripted() -> (Cluster, Trace) {
        let sink = TraceSink::new(TRACE_EVENTS_MAX_DEFAULT);
        let mut c = Cluster::new(SimConfig::new(3, 7));
        c.record_trace(sink.clone());
        assert!(c.run_until(5_000, |c| c.leaders().len() == 1));
        let leader = c.leaders()[0].0;
        let _ = c.propose(leader, "x".into());
        c.run_for(300);
        c.crash(leader);
        c.run_for(1_000);
        let others: Vec<NodeId> = c.ids().into_iter().filter(|&i| i != leader).collect();
        c.partition(&[&others[..1], &others[1..]]);
        c.run_for(500);
        c.heal();
        c.restart(leader);
        c.run_for(2_000);
        c.flush_trace();
        (c, sink.take())
    }

    #[test]
    fn the_trace_tells_what_the_cluster_did() {
        let (c, t) = scripted();
        let ids = c.ids();
        assert_eq!(t.left_out, 0);
        for (i, id) in ids.iter().enumerate() {
            let e = &t.events[i * 4];
            assert_eq!(
                (e.t_ms, e.node, e.body.type_name()),
                (0, Some(*id), "hello")
            );
        }
        let count = |name: &str| {
            t.events
                .iter()
                .filter(|e| e.body.type_name() == name)
                .count()
        };
        assert_eq!(
            count("msg") as u64,
            c.counters().messages_sent,
            "every message"
        );
        assert_eq!((count("crash"), count("restart")), (1, 1));
        assert_eq!((count("partition"), count("heal")), (1, 1));
        assert!(count("timer") >= 3 * 30, "one per node every 100 ms");
        assert!(
            t.events.windows(2).all(|w| w[0].t_ms <= w[1].t_ms),
            "in order"
        );
        // The last role and status of each node are the cluster's state at the end, and
        // statuses of one node are at least the coalescing interval apart.
        let mut last_role = BTreeMap::new();
        let mut statuses: BTreeMap<NodeId, Vec<(u64, NodeState)>> = BTreeMap::new();
        for e in &t.events {
            match &e.body {
                Body::Role { role, term, leader } => {
                    last_role.insert(e.node.unwrap(), (*role, *term, *leader));
                }
                Body::Status(s) => statuses
                    .entry(e.node.unwrap())
                    .or_default()
                    .push((e.t_ms, *s)),
                _ => {}
            }
        }
        for id in ids {
            let r = c.raft(id).unwrap();
            assert_eq!(last_role[&id], (r.role(), r.term().0, r.leader()), "{id:?}");
            let s = &statuses[&id];
            assert_eq!(s.last().unwrap().1, NodeState::of(c.replica(id).unwrap()));
            assert!(s
                .windows(2)
                .all(|w| w[1].0 >= w[0].0 + STATUS_EVERY_MIN_MS || w[0].0 == w[1].0));
        }
    }

    #[test]
    fn the_json_is_the_dashboard_schema() {
        let (_, t) = scripted();
        let mut out = Vec::new();
        t.write_json(&mut out).unwrap();
        let v: Vec<serde_json::Value> = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.len(), t.events.len());
        assert_eq!(
            v[0],
            serde_json::json!({"type": "hello", "t": 0, "node": "1", "name": "n1",
                "admin_url": null, "election_ticks": 15, "heartbeat_ticks": 5, "tick_ms": 10})
        );
        let first = |ty: &str| v.iter().find(|e| e["type"] == ty).unwrap().clone();
        let msg = first("msg");
        for k in ["from", "to", "kind", "term", "entries", "index", "ok"] {
            assert!(msg.get(k).is_some(), "msg has {k}: {msg}");
        }
        assert_eq!(msg["from"], msg["node"]);
        assert!(first("log")["entries"].is_array() && first("log")["snapshot"]["index"].is_u64());
        assert_eq!(first("partition")["groups"].as_array().unwrap().len(), 2);
        assert!(first("crash")["power_cut"].is_boolean());
        let roles = ["follower", "pre_candidate", "candidate", "leader"];
        assert!(v
            .iter()
            .filter(|e| e["type"] == "role")
            .all(|e| roles.contains(&e["role"].as_str().unwrap()) && e["node"].is_string()));
    }

    #[test]
    fn a_full_trace_counts_what_it_left_out_and_says_so_at_the_end() {
        let sink = TraceSink::new(100);
        let mut c = Cluster::new(SimConfig::new(3, 8));
        c.record_trace(sink.clone());
        c.run_for(2_000);
        sink.finish(true, "done \"quoted\"\n");
        let t = sink.take();
        assert_eq!(t.events.len(), 101);
        assert!(t.left_out > 0 && t.full_at_ms.is_some());
        let mut line = String::new();
        t.events[100].write_json(&mut line);
        let end: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(end["type"], "end");
        assert_eq!(end["left_out"], t.left_out);
        assert_eq!(end["text"], "done \"quoted\"\n");
    }
}
