//! The admin endpoint: one HTTP port per member (`--listen-admin-urls`, alias etcd's
//! `--listen-metrics-urls`) for operators and for people learning Raft.
//!
//! | path | what |
//! |---|---|
//! | `/` | the dashboard page (one self-contained HTML file, `assets/dashboard.html`) |
//! | `/metrics` | Prometheus text format, see [`metrics`] |
//! | `/health` | 200 `{"health":"true",...}` when this member knows a leader it heard from within 2E ticks (or leads) and its applied index caught up with its commit index within 2E ticks (E: election timeout in ticks); 503 `{"health":"false","reason":...}` otherwise |
//! | `/status` | this member as JSON: status, timers, its log tail (last 20 entries), the leader's view of each peer, the member table with admin URLs |
//! | `/cluster` | `{"node": id, "members": [...]}`: every member's `/status`, fetched by this member from the others (400 ms deadline each; `{"down": true, "error": ...}` for those that do not answer) |
//! | `/events` | server-sent events, one JSON object per `data:` line: this member's and (by default) every other member's events, merged here; `?scope=local` for this member's alone |
//!
//! Every response allows any origin (`Access-Control-Allow-Origin: *`; everything here is
//! read-only), so the page can switch to another member when the one it came from stops.
//!
//! **How members find each other's admin URL**: like client URLs, in the hello of the peer
//! connections (an optional section after the advertised attributes, see
//! [`crate::members`]). A member that never connected to this one shows as down.
//!
//! # Event schema (version 1)
//!
//! The page consumes nothing but these objects, through one function (`apply(event)` in
//! the page), so a recorded trace of the same objects — a JSON array, oldest first, with
//! virtual milliseconds in `t` — can be replayed by feeding them in order. Ids are member ids
//! as lowercase hex strings (they do not fit a JavaScript number); `leader` is `null` when
//! unknown; roles are `follower`, `pre_candidate`, `candidate`, `leader`.
//!
//! | `type` | fields (besides `type`, `t`: ms since the UNIX epoch on the emitting member, `node`: whom it is about) |
//! |---|---|
//! | `hello` | `name`, `admin_url`, `election_ticks` (E), `heartbeat_ticks`, `tick_ms`: first event of a member's stream |
//! | `status` | `role`, `term`, `leader`, `commit`, `applied`, `last_index`, `snapshot_index` (coalesced, ≤ 20/s) |
//! | `role` | `role`, `term`, `leader`: every change of any of them, in order |
//! | `timer` | `election_elapsed_ticks` (estimated: ticks since the member last heard a leader, granted a vote or changed role/term; it campaigns somewhere in [E, 2E)), `heartbeat_elapsed_ticks` (leader: since its last AppendEntries), every 100 ms |
//! | `log` | `first_index`, `commit`, `snapshot: {index, term}`, `entries: [{index, term, kind}]` (last 20; `kind` is `normal`, `noop`, `config`) |
//! | `msg` | `from`, `to`, `kind` (`vote`, `prevote`, `vote_resp`, `prevote_resp`, `append`, `heartbeat`, `append_resp`, `snapshot`, `snapshot_resp`, `timeout_now`, `read_index`, `read_index_resp`), `term`, `entries`, `index`, `ok` (granted/accepted/installed or `null`): a message handed to the transport by `from`. Votes always; others sampled (≤ ~100/s per member) |
//! | `down` | `error`: the aggregating member cannot reach `node`'s stream (one per outage) |
//! | `lagged` | `missed`: this stream's reader fell behind and `missed` events were dropped |
//!
//! **Simulator traces** (`raftkv sim --trace`, recorded by the `sim` crate's `trace` module)
//! use the same types with `t` in virtual ms since the simulated cluster started, `admin_url`
//! `null`, ids `"1"`, `"2"`, … and names `n1`, `n2`, …; `msg` for every message sent (not
//! sampled), `status` and `log` coalesced to ≤ 1 per node per 50 virtual ms, `timer` (the
//! core's own counters) every 100 virtual ms. They add what only a simulation has; a live
//! stream never carries these, and a page that does not know a type ignores it:
//!
//! | `type` | fields (besides `type`, `t`) |
//! |---|---|
//! | `drop` | `node` = `from`, `to`, `kind`, `term`, `reason`: the message was lost — `loss` (the fault model's random loss), `cut` (a partition, a disconnected member or a cut one-way link, when sent or when due), `down` (the receiver was down, or a side crashed while it was in flight) |
//! | `crash` | `node`, `power_cut` (the power went out in the middle of the node's writes): the node stopped, keeping what it synced; nothing more about it until `restart` |
//! | `restart` | `node`: restarted from its disk (its `role`, `status` and `log` follow) |
//! | `partition` | `groups`: lists of ids; members talk only within their group, members in none are isolated |
//! | `heal` | every member connected, every link up |
//! | `link` | `node` = `from`, `to`, `up`: the one-way link `from → to` went down or up |
//! | `connect` | `node`, `up`: the member was disconnected from (or reconnected to) everyone |
//! | `net` | `drop_request`, `drop_response`, `duplicate` (probabilities), `delay_ms: [lo, hi]`, `long_reorder`: the network fault model now in force |
//! | `end` | `ok`, `text` (the run's report, or its failure), `left_out` (events not recorded because the trace was full): the last event |
//!
//! Owns: the admin listener, its routes and their JSON, the page's bytes, the aggregation
//! of other members' status and events. Must never: write to the node (every route is
//! read-only), wait on a member without a deadline, or slow the node loop (it reads the
//! status watch, [`telemetry`] atomics and a short `inspect` of the core).

pub mod events;
pub mod metrics;
pub mod peers;
pub mod telemetry;

use crate::members::Members;
use crate::runtime::NodeHandle;
use crate::transport::TransportStats;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use kv::KvStateMachine;
use raft::{NodeId, Role};
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use telemetry::{LogTail, Telemetry};
use tokio_util::sync::CancellationToken;

/// The dashboard page, embedded at build time.
pub const DASHBOARD_HTML: &str = include_str!("../../assets/dashboard.html");
/// Deadline of one `/status` fetch from another member.
const PEER_STATUS_TIMEOUT: Duration = Duration::from_millis(400);

/// A member id as the admin endpoint writes it.
pub fn hex(id: NodeId) -> String {
    format!("{:x}", id.0)
}

pub fn role_str(r: Role) -> &'static str {
    raft::observe::role_name(r)
}

/// What the admin endpoint reads; cheap to clone.
#[derive(Clone)]
pub struct Admin(Arc<Inner>);

struct Inner {
    id: NodeId,
    name: String,
    url: String,
    handle: NodeHandle<KvStateMachine>,
    members: Arc<Members>,
    tel: Arc<Telemetry>,
    stats: Arc<TransportStats>,
    cancel: CancellationToken,
    /// The member's watchers, for their counts.
    watch: Option<kv::WatchHub>,
}

impl Admin {
    /// `url` is this member's advertised admin URL; `cancel` stops every stream.
    pub fn new(
        name: String,
        url: String,
        handle: NodeHandle<KvStateMachine>,
        members: Arc<Members>,
        tel: Arc<Telemetry>,
        stats: Arc<TransportStats>,
        cancel: CancellationToken,
    ) -> Admin {
        Admin(Arc::new(Inner {
            id: tel.id,
            name,
            url,
            handle,
            members,
            tel,
            stats,
            cancel,
            watch: None,
        }))
    }

    /// The same admin, also reporting the member's watchers (call before sharing it).
    pub fn with_watch(mut self, hub: kv::WatchHub) -> Admin {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.watch = Some(hub);
        }
        self
    }

    /// The member's watch hub, when it reports one.
    pub fn watch(&self) -> Option<&kv::WatchHub> {
        self.0.watch.as_ref()
    }

    pub fn id(&self) -> NodeId {
        self.0.id
    }
    pub fn handle(&self) -> &NodeHandle<KvStateMachine> {
        &self.0.handle
    }
    pub fn members(&self) -> &Members {
        &self.0.members
    }
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.0.tel
    }
    pub fn stats(&self) -> &TransportStats {
        &self.0.stats
    }
    pub fn cancel(&self) -> &CancellationToken {
        &self.0.cancel
    }

    fn name_of(&self, id: NodeId) -> String {
        self.members().get(id).map(|m| m.name).unwrap_or_default()
    }

    fn hello_json(&self) -> Value {
        let t = self.telemetry().timing;
        json!({
            "type": "hello", "t": telemetry::now_ms(), "node": hex(self.id()),
            "name": self.0.name, "admin_url": self.0.url,
            "election_ticks": t.election_ticks, "heartbeat_ticks": t.heartbeat_ticks,
            "tick_ms": t.tick.as_millis() as u64,
        })
    }

    /// `/health`: (healthy, JSON body).
    pub fn health(&self) -> (bool, Value) {
        let st = self.handle().status();
        let tel = self.telemetry();
        let limit = 2 * u64::from(tel.timing.election_ticks);
        let heard = tel.ticks_since(tel.leader_contact_tick.load(Relaxed));
        let caught_up = tel.ticks_since(tel.caught_up_tick.load(Relaxed));
        let reason = if st.leader.is_none() {
            "no leader".to_string()
        } else if heard.is_none_or(|t| t > limit) {
            format!("leader not heard from within {limit} ticks")
        } else if caught_up.is_none_or(|t| t > limit) {
            format!("applied index behind the commit index for over {limit} ticks")
        } else {
            String::new()
        };
        let ok = reason.is_empty();
        let body = json!({
            "health": if ok { "true" } else { "false" },
            "reason": reason,
            "member": hex(self.id()),
            "name": self.0.name,
            "leader": st.leader.map(hex),
            "term": st.term,
            "commit": st.commit,
            "applied": st.applied,
            "ticks_since_leader_contact": heard,
            "ticks_since_caught_up": caught_up,
        });
        (ok, body)
    }

    /// `/status` of this member.
    pub async fn status_json(&self) -> Value {
        let st = self.handle().status();
        let core = self
            .handle()
            .inspect(|r| {
                (
                    LogTail::of(r, events::LOG_TAIL_ENTRIES),
                    r.vote(),
                    r.persisted_index().0,
                )
            })
            .await
            .ok();
        let tel = self.telemetry();
        let t = tel.timing;
        let tick_ms = t.tick.as_millis() as u64;
        let is_leader = st.role == Role::Leader;
        let peers: Vec<Value> = tel
            .peers()
            .into_iter()
            .map(|(id, p)| {
                let matched = p.match_index.load(Relaxed);
                let sent = p.sent_index.load(Relaxed);
                json!({
                    "id": hex(id),
                    "name": self.name_of(id),
                    "match_index": is_leader.then_some(matched),
                    "sent_index": is_leader.then_some(sent),
                    "lag_entries": is_leader.then(|| st.last_index.saturating_sub(matched)),
                    "inflight_entries": is_leader.then(|| sent.saturating_sub(matched)),
                    "last_heard_ms": tel.ticks_since(p.heard_tick.load(Relaxed)).map(|t| t * tick_ms),
                })
            })
            .collect();
        let members: Vec<Value> = self
            .members()
            .list()
            .into_iter()
            .map(|m| {
                json!({
                    "id": hex(m.id), "name": m.name, "peer_urls": m.peer_urls,
                    "client_urls": m.client_urls, "admin_url": self.members().admin_url(m.id),
                })
            })
            .collect();
        json!({
            "id": hex(st.id),
            "name": self.0.name,
            "admin_url": self.0.url,
            "version": crate::services::VERSION,
            "role": role_str(st.role),
            "term": st.term,
            "leader": st.leader.map(hex),
            "vote": core.as_ref().and_then(|c| (c.1 != NodeId::NONE).then(|| hex(c.1))),
            "commit": st.commit,
            "applied": st.applied,
            "last_index": st.last_index,
            "persisted_index": core.as_ref().map(|c| c.2),
            "snapshot_index": st.snapshot_index,
            "timer": {
                "election_elapsed_ticks": tel.election_elapsed.load(Relaxed),
                "heartbeat_elapsed_ticks": tel.heartbeat_elapsed.load(Relaxed),
                "election_ticks": t.election_ticks,
                "heartbeat_ticks": t.heartbeat_ticks,
                "tick_ms": tick_ms,
            },
            "log": core.as_ref().map(|c| events::log_json(&c.0)),
            "peers": peers,
            "members": members,
        })
    }

    /// `/cluster`: every member's `/status`, this one's included.
    pub async fn cluster_json(&self) -> Value {
        let fetches = self.members().list().into_iter().map(|m| {
            let admin = self.clone();
            async move {
                if m.id == admin.id() {
                    return admin.status_json().await;
                }
                let down = |error: String| {
                    json!({
                        "id": hex(m.id), "name": m.name, "down": true, "error": error,
                        "admin_url": admin.members().admin_url(m.id),
                    })
                };
                let Some(url) = admin.members().admin_url(m.id) else {
                    return down("no admin URL advertised (never connected)".into());
                };
                match peers::get(&url, "/status", PEER_STATUS_TIMEOUT).await {
                    Ok((200, body)) => serde_json::from_slice(&body)
                        .unwrap_or_else(|e| down(format!("bad /status JSON: {e}"))),
                    Ok((code, _)) => down(format!("HTTP {code}")),
                    Err(e) => down(e),
                }
            }
        });
        let members = futures_util::future::join_all(fetches).await;
        json!({"node": hex(self.id()), "members": members})
    }
}

fn with_headers(code: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut r = (code, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json_response(code: StatusCode, v: Value) -> Response {
    with_headers(code, "application/json", v.to_string())
}

async fn page() -> Response {
    with_headers(
        StatusCode::OK,
        "text/html; charset=utf-8",
        DASHBOARD_HTML.to_string(),
    )
}

async fn metrics_route(State(a): State<Admin>) -> Response {
    with_headers(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        metrics::render(&a),
    )
}

async fn health_route(State(a): State<Admin>) -> Response {
    let (ok, body) = a.health();
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(code, body)
}

async fn status_route(State(a): State<Admin>) -> Response {
    json_response(StatusCode::OK, a.status_json().await)
}

async fn cluster_route(State(a): State<Admin>) -> Response {
    json_response(StatusCode::OK, a.cluster_json().await)
}

async fn events_route(State(a): State<Admin>, RawQuery(q): RawQuery) -> Response {
    let local = q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .any(|kv| kv == "scope=local");
    let rx = if local {
        events::local(&a)
    } else {
        events::cluster(&a)
    };
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let line = rx.recv().await?;
        Some((
            Ok::<_, std::convert::Infallible>(SseEvent::default().data(line)),
            rx,
        ))
    });
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(5)))
        .into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The routes, for [`serve`] and tests.
pub fn router(admin: Admin) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/metrics", get(metrics_route))
        .route("/health", get(health_route))
        .route("/status", get(status_route))
        .route("/cluster", get(cluster_route))
        .route("/events", get(events_route))
        .with_state(admin)
}

/// Serve the admin endpoint on `listener` until the admin's cancel token fires.
pub async fn serve(listener: tokio::net::TcpListener, admin: Admin) -> std::io::Result<()> {
    let cancel = admin.cancel().clone();
    tokio::spawn(events::publish(admin.clone()));
    axum::serve(listener, router(admin))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}
