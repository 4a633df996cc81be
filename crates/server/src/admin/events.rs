//! The event stream: [`Event`]s as JSON (the schema is in [`crate::admin`]'s docs), one
//! node's own stream, and the cluster stream that merges every member's.
//!
//! Owns: the JSON shape of events, the per-node publisher of status/timer/log events (runs
//! only while someone subscribes), and the merge of the members' `/events?scope=local`
//! streams with `down` events for members that cannot be reached.
//! Must never: hold the node loop (events are read from the [`Telemetry`] broadcast, status
//! from the watch channel, the log tail by a short [`crate::NodeHandle::inspect`]), or keep a
//! stream open after the server was asked to stop.

use super::telemetry::{now_ms, Event, LogTail, Telemetry};
use super::{hex, role_str, Admin};
use raft::NodeId;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Entries of the log tail shown per node.
pub const LOG_TAIL_ENTRIES: usize = 20;
/// How often the timers of a watched node are sampled.
const TIMER_EVERY: Duration = Duration::from_millis(100);
/// Least time between two status events of one node (the watch coalesces in between).
const STATUS_EVERY_MIN: Duration = Duration::from_millis(50);
/// Least time between two log events of one node.
const LOG_EVERY_MIN: Duration = Duration::from_millis(200);
/// Events queued per cluster-stream client before member streams wait.
const CLIENT_QUEUE_EVENTS: usize = 1024;

fn opt_hex(id: Option<NodeId>) -> Value {
    id.map_or(Value::Null, |i| Value::String(hex(i)))
}

/// The JSON of a log tail (shared by `/status` and `log` events).
pub fn log_json(t: &LogTail) -> Value {
    json!({
        "first_index": t.first_index,
        "commit": t.commit,
        "snapshot": {"index": t.snapshot.0, "term": t.snapshot.1},
        "entries": t.entries.iter().map(|&(index, term, kind)| json!({
            "index": index, "term": term, "kind": raft::observe::entry_kind_name(kind),
        })).collect::<Vec<_>>(),
    })
}

/// The JSON of one event.
pub fn to_json(e: &Event) -> Value {
    match e {
        Event::Message {
            at_ms,
            from,
            to,
            kind,
            term,
            entries,
            index,
            ok,
        } => json!({
            "type": "msg", "t": at_ms, "node": hex(*from), "from": hex(*from), "to": hex(*to),
            "kind": kind.as_str(), "term": term, "entries": entries, "index": index, "ok": ok,
        }),
        Event::Role {
            at_ms,
            node,
            role,
            term,
            leader,
        } => json!({
            "type": "role", "t": at_ms, "node": hex(*node), "role": role_str(*role),
            "term": term, "leader": opt_hex(*leader),
        }),
        Event::Status { at_ms, status: s } => json!({
            "type": "status", "t": at_ms, "node": hex(s.id), "role": role_str(s.role),
            "term": s.term, "leader": opt_hex(s.leader), "commit": s.commit,
            "applied": s.applied, "last_index": s.last_index,
            "snapshot_index": s.snapshot_index,
        }),
        Event::Timer {
            at_ms,
            node,
            election_elapsed,
            heartbeat_elapsed,
        } => json!({
            "type": "timer", "t": at_ms, "node": hex(*node),
            "election_elapsed_ticks": election_elapsed,
            "heartbeat_elapsed_ticks": heartbeat_elapsed,
        }),
        Event::Log { at_ms, node, tail } => {
            let mut v = log_json(tail);
            v["type"] = json!("log");
            v["t"] = json!(at_ms);
            v["node"] = json!(hex(*node));
            v
        }
    }
}

fn timer_event(tel: &Telemetry) -> Event {
    use std::sync::atomic::Ordering::Relaxed;
    Event::Timer {
        at_ms: now_ms(),
        node: tel.id,
        election_elapsed: tel.election_elapsed.load(Relaxed),
        heartbeat_elapsed: tel.heartbeat_elapsed.load(Relaxed),
    }
}

async fn log_event(admin: &Admin) -> Option<Event> {
    let tail = admin
        .handle()
        .inspect(|r| LogTail::of(r, LOG_TAIL_ENTRIES))
        .await
        .ok()?;
    Some(Event::Log {
        at_ms: now_ms(),
        node: admin.id(),
        tail,
    })
}

/// The first events of a node's stream: who it is, then its status, timers and log.
async fn snapshot(admin: &Admin) -> Vec<Value> {
    let mut out = vec![admin.hello_json()];
    out.push(to_json(&Event::Status {
        at_ms: now_ms(),
        status: admin.handle().status(),
    }));
    out.push(to_json(&timer_event(admin.telemetry())));
    if let Some(l) = log_event(admin).await {
        out.push(to_json(&l));
    }
    out
}

/// Publish this node's status, timer and log events while anyone subscribes; runs until the
/// server stops.
pub async fn publish(admin: Admin) {
    let tel = admin.telemetry().clone();
    let mut status = admin.handle().watch_status();
    let mut timer = tokio::time::interval(TIMER_EVERY);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_log = (0, 0, 0);
    let mut log_at = tokio::time::Instant::now();
    let cancel = admin.cancel().clone();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = timer.tick() => {
                if tel.watched() {
                    tel.publish(timer_event(&tel));
                }
            }
            // Only while a page watches: the status changes with every write.
            r = status.changed(), if tel.watched() => {
                if r.is_err() {
                    return;
                }
                let s = *status.borrow_and_update();
                tel.publish(Event::Status { at_ms: now_ms(), status: s });
                let key = (s.last_index, s.commit, s.snapshot_index);
                if key != last_log && log_at.elapsed() >= LOG_EVERY_MIN {
                    if let Some(e) = log_event(&admin).await {
                        tel.publish(e);
                    }
                    last_log = key;
                    log_at = tokio::time::Instant::now();
                }
                tokio::time::sleep(STATUS_EVERY_MIN).await;
            }
        }
        if tel.watched() && log_at.elapsed() >= LOG_EVERY_MIN * 5 {
            // The last log event may have been coalesced away: refresh it now and then.
            let s = admin.handle().status();
            let key = (s.last_index, s.commit, s.snapshot_index);
            if key != last_log {
                if let Some(e) = log_event(&admin).await {
                    tel.publish(e);
                }
                last_log = key;
            }
            log_at = tokio::time::Instant::now();
        }
    }
}

/// This node's own events as JSON strings into `tx`, snapshot first, until `tx` closes or
/// the server stops.
pub async fn forward_local(admin: Admin, tx: mpsc::Sender<String>) {
    let mut rx = admin.telemetry().subscribe();
    for v in snapshot(&admin).await {
        if tx.send(v.to_string()).await.is_err() {
            return;
        }
    }
    let cancel = admin.cancel().clone();
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tx.closed() => return,
            n = rx.recv() => n,
        };
        let line = match next {
            Ok(e) => to_json(&e).to_string(),
            Err(broadcast::error::RecvError::Lagged(n)) => json!({
                "type": "lagged", "t": now_ms(), "node": hex(admin.id()), "missed": n,
            })
            .to_string(),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if tx.send(line).await.is_err() {
            return;
        }
    }
}

fn down_json(id: NodeId, why: &str) -> String {
    json!({"type": "down", "t": now_ms(), "node": hex(id), "error": why}).to_string()
}

/// Member `id`'s own stream into `tx`; while it cannot be reached, one `down` event per
/// outage and a retry every half second.
pub async fn forward_peer(admin: Admin, id: NodeId, tx: mpsc::Sender<String>) {
    let cancel = admin.cancel().clone();
    let mut announced_down = false;
    loop {
        let result: Result<(), String> = match admin.members().admin_url(id) {
            None => Err("no admin URL advertised (never connected)".to_string()),
            Some(url) => {
                let mut up = false;
                let tx2 = tx.clone();
                let stream = super::peers::stream_sse(
                    &url,
                    "/events?scope=local",
                    Duration::from_millis(500),
                    Duration::from_secs(2),
                    |data| {
                        up = true;
                        // A full queue (a slow browser) drops the event; a closed one ends the stream.
                        tx2.try_send(data).map_or_else(
                            |e| matches!(e, mpsc::error::TrySendError::Full(_)),
                            |_| true,
                        )
                    },
                );
                let r = tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tx.closed() => return,
                    r = stream => r,
                };
                if up {
                    announced_down = false;
                }
                match r {
                    Ok(()) => return, // `on_data` said stop: the client is gone.
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(why) = result {
            if !announced_down && tx.send(down_json(id, &why)).await.is_err() {
                return;
            }
            announced_down = true;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tx.closed() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// A receiver of every member's events (this node's and its peers'), as JSON strings.
pub fn cluster(admin: &Admin) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE_EVENTS);
    tokio::spawn(forward_local(admin.clone(), tx.clone()));
    for m in admin.members().list() {
        if m.id != admin.id() {
            tokio::spawn(forward_peer(admin.clone(), m.id, tx.clone()));
        }
    }
    rx
}

/// A receiver of this node's events only.
pub fn local(admin: &Admin) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE_EVENTS);
    tokio::spawn(forward_local(admin.clone(), tx));
    rx
}
