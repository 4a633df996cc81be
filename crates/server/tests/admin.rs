//! The admin endpoint of real `Server`s over loopback: `/metrics` parses as Prometheus text
//! with every documented family, `/health` is 200 in a healthy cluster and 503 on a lone
//! member of three, `/status` and `/cluster` carry the documented fields, `/events` delivers
//! a role change and a `down` for a stopped member, and `/` serves the dashboard page.

mod common;
use common::{leader, Ports};
use proto::etcdserverpb as pb;
use proto::etcdserverpb::kv_client::KvClient;
use proto::etcdserverpb::watch_client::WatchClient;
use serde_json::Value;
use server::{Server, ServerConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(dir: &Path, i: usize, p: &Ports) -> ServerConfig {
    let mut c = common::config(dir, i, p);
    c.listen_admin = Some("127.0.0.1:0".parse().unwrap());
    c
}

async fn start_all(dir: &Path, n: usize) -> Vec<Option<Server>> {
    let p = Ports::new(n);
    let mut v = Vec::new();
    for i in 0..n {
        v.push(Some(Server::start(config(dir, i, &p)).await.unwrap()));
    }
    v
}

fn admin(s: &Option<Server>) -> SocketAddr {
    s.as_ref().unwrap().admin_addr().expect("admin endpoint on")
}

/// `GET path` (Connection: close): (status, lower-cased headers, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, head.to_ascii_lowercase(), body.to_string())
}

async fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (code, head, body) = get(addr, path).await;
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    (code, serde_json::from_str(&body).unwrap())
}

/// An open `/events` stream; `next` returns the next event's JSON.
struct Events {
    stream: tokio::net::TcpStream,
    buf: String,
}

impl Events {
    async fn open(addr: SocketAddr, path: &str) -> Events {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut e = Events {
            stream,
            buf: String::new(),
        };
        while !e.buf.contains("\r\n\r\n") {
            e.fill().await;
        }
        let (head, rest) = e.buf.split_once("\r\n\r\n").unwrap();
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: text/event-stream"), "{head}");
        e.buf = rest.to_string();
        e
    }

    async fn fill(&mut self) {
        let mut b = [0u8; 16 << 10];
        let n = self.stream.read(&mut b).await.unwrap();
        assert!(n > 0, "the event stream ended");
        self.buf.push_str(&String::from_utf8_lossy(&b[..n]));
    }

    /// The next event (chunked framing lines and keep-alive comments are skipped).
    async fn next(&mut self) -> Value {
        loop {
            if let Some(i) = self.buf.find("data: ") {
                if let Some(end) = self.buf[i..].find('\n') {
                    let line = self.buf[i + 6..i + end].trim_end().to_string();
                    self.buf.drain(..i + end);
                    return serde_json::from_str(&line).unwrap();
                }
            }
            self.fill().await;
        }
    }

    /// Events until `ok` holds (bounded by `limit`); returns the matching one.
    async fn until(&mut self, limit: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        tokio::time::timeout(limit, async {
            loop {
                let e = self.next().await;
                if ok(&e) {
                    return e;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no matching event within {limit:?}"))
    }
}

/// `(name, labels, value)` of one sample.
type Sample = (String, String, f64);

/// Families (name → type) and samples of a Prometheus text page; panics on a malformed line.
fn parse_prometheus(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "twice: {line}"
            );
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(rest.contains(' '), "{line}");
        } else {
            let (series, value) = line.rsplit_once(' ').expect("name value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => {
                    assert!(l.ends_with('}'), "{line}");
                    (n, l.trim_end_matches('}'))
                }
                None => (series, ""),
            };
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            assert!(
                types.contains_key(family),
                "sample before its # TYPE: {line}"
            );
            samples.push((name.to_string(), labels.to_string(), value));
        }
    }
    (types, samples)
}

fn value(samples: &[Sample], name: &str, labels: &str) -> f64 {
    samples
        .iter()
        .find(|s| s.0 == name && s.1 == labels)
        .unwrap_or_else(|| panic!("no sample {name}{{{labels}}}"))
        .2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_with_every_family() {
    let dir = tempfile::tempdir().unwrap();
    let servers = start_all(dir.path(), 3).await;
    let l = leader(&servers).await;
    let leader_server = servers[l].as_ref().unwrap();
    let mut kv = KvClient::connect(format!("http://{}", leader_server.client_addr()))
        .await
        .unwrap();
    for i in 0..5 {
        kv.put(pb::PutRequest {
            key: format!("k{i}").into(),
            value: b"v".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let (code, head, body) = get(admin(&servers[l]), "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let (types, samples) = parse_prometheus(&body);
    for (family, kind) in [
        ("raftkv_term", "gauge"),
        ("raftkv_role", "gauge"),
        ("raftkv_has_leader", "gauge"),
        ("raftkv_commit_index", "gauge"),
        ("raftkv_applied_index", "gauge"),
        ("raftkv_last_index", "gauge"),
        ("raftkv_snapshot_index", "gauge"),
        ("raftkv_leader_changes_total", "counter"),
        ("raftkv_proposals_total", "counter"),
        ("raftkv_proposals_failed_total", "counter"),
        ("raftkv_proposals_pending", "gauge"),
        ("raftkv_apply_latency_seconds", "histogram"),
        ("raftkv_wal_fsync_duration_seconds", "histogram"),
        ("raftkv_election_elapsed_ticks", "gauge"),
        ("raftkv_election_timeout_ticks", "gauge"),
        ("raftkv_peer_sent_total", "counter"),
        ("raftkv_peer_received_total", "counter"),
        ("raftkv_peer_last_heard_seconds", "gauge"),
        ("raftkv_peer_match_index", "gauge"),
        ("raftkv_peer_lag_entries", "gauge"),
        ("raftkv_peer_inflight_entries", "gauge"),
        ("raftkv_transport_sent_total", "counter"),
        ("raftkv_transport_received_total", "counter"),
        ("raftkv_transport_dropped_total", "counter"),
        ("raftkv_transport_rejected_connections_total", "counter"),
        ("raftkv_transport_bad_frames_total", "counter"),
        ("raftkv_events_sampled_out_total", "counter"),
        ("raftkv_watchers", "gauge"),
        ("raftkv_watch_oldest_start_revision", "gauge"),
    ] {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    assert_eq!(value(&samples, "raftkv_role", "role=\"leader\""), 1.0);
    assert_eq!(value(&samples, "raftkv_role", "role=\"follower\""), 0.0);
    assert!(value(&samples, "raftkv_term", "") >= 1.0);
    assert!(value(&samples, "raftkv_proposals_total", "") >= 5.0);
    assert!(
        value(&samples, "raftkv_commit_index", "") >= 6.0,
        "noop + 5 puts"
    );
    assert!(value(&samples, "raftkv_leader_changes_total", "") >= 1.0);
    assert_eq!(
        value(&samples, "raftkv_watchers", ""),
        0.0,
        "nobody watches"
    );
    assert!(value(&samples, "raftkv_watch_oldest_start_revision", "") >= 2.0);

    // A watcher counts while its stream is open, and is gone once the client closes it.
    let watchers = |addr| async move {
        let (_, _, body) = get(addr, "/metrics").await;
        value(&parse_prometheus(&body).1, "raftkv_watchers", "")
    };
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let create = pb::watch_request::RequestUnion::CreateRequest(pb::WatchCreateRequest {
        key: b"k".to_vec(),
        range_end: b"l".to_vec(),
        ..Default::default()
    });
    tx.send(pb::WatchRequest {
        request_union: Some(create),
    })
    .await
    .unwrap();
    let requests =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    let mut w = WatchClient::connect(format!("http://{}", leader_server.client_addr()))
        .await
        .unwrap();
    let mut stream = w.watch(requests).await.unwrap().into_inner();
    assert!(stream.message().await.unwrap().unwrap().created);
    assert_eq!(watchers(admin(&servers[l])).await, 1.0);
    drop((tx, stream));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while watchers(admin(&servers[l])).await != 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream's watcher is still registered"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for h in [
        "raftkv_apply_latency_seconds",
        "raftkv_wal_fsync_duration_seconds",
    ] {
        let count = value(&samples, &format!("{h}_count"), "");
        assert!(count >= 1.0, "{h} observed something");
        assert_eq!(
            value(&samples, &format!("{h}_bucket"), "le=\"+Inf\""),
            count,
            "{h}: +Inf bucket = count"
        );
        let buckets: Vec<f64> = samples
            .iter()
            .filter(|s| s.0 == format!("{h}_bucket"))
            .map(|s| s.2)
            .collect();
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{h} cumulative");
    }
    // Per peer: the two others, with the leader's view of their logs.
    let peers: BTreeSet<&str> = samples
        .iter()
        .filter(|s| s.0 == "raftkv_peer_match_index")
        .map(|s| s.1.as_str())
        .collect();
    assert_eq!(peers.len(), 2, "{peers:?}");
    for p in peers {
        assert!(p.contains("peer_name=\"n"), "{p}");
        assert!(value(&samples, "raftkv_peer_match_index", p) >= 1.0);
        let appends = format!("{p},type=\"append\"");
        assert!(value(&samples, "raftkv_peer_sent_total", &appends) >= 1.0);
    }
    // A follower reports no leader-only families.
    let f = (l + 1) % 3;
    let (_, _, body) = get(admin(&servers[f]), "/metrics").await;
    let (types, samples) = parse_prometheus(&body);
    assert!(!types.contains_key("raftkv_peer_lag_entries"));
    assert_eq!(value(&samples, "raftkv_role", "role=\"follower\""), 1.0);
    for s in servers.into_iter().flatten() {
        s.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_200_with_a_leader_and_503_on_a_lone_member_of_three() {
    let dir = tempfile::tempdir().unwrap();
    let servers = start_all(dir.path(), 3).await;
    leader(&servers).await;
    for s in &servers {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (code, v) = get_json(admin(s), "/health").await;
            if code == 200 {
                assert_eq!(v["health"], "true");
                assert_eq!(v["reason"], "");
                assert!(v["leader"].is_string());
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "unhealthy: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for s in servers.into_iter().flatten() {
        s.stop().await.unwrap();
    }

    // One member of a three-member cluster whose others never start: no leader, ever.
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new(3);
    let lone = Server::start(config(dir.path(), 0, &p)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (code, v) = get_json(lone.admin_addr().unwrap(), "/health").await;
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["health"], "false");
    assert_eq!(v["reason"], "no leader");
    assert!(v["leader"].is_null());
    lone.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_cluster_show_each_member_its_log_tail_and_the_down_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut servers = start_all(dir.path(), 3).await;
    let l = leader(&servers).await;
    let f = (l + 1) % 3;
    let (code, page_head, page) = get(admin(&servers[f]), "/").await;
    assert_eq!(code, 200);
    assert!(page_head.contains("content-type: text/html"), "{page_head}");
    assert!(page.contains("raftkvDashboard") && !page.contains("<script src"));

    let (code, st) = get_json(admin(&servers[l]), "/status").await;
    assert_eq!(code, 200);
    let me = servers[l].as_ref().unwrap().member_id();
    assert_eq!(st["id"], format!("{:x}", me.0));
    assert_eq!(st["role"], "leader");
    assert_eq!(st["leader"], st["id"]);
    assert_eq!(st["vote"], st["id"]);
    assert_eq!(st["name"], format!("n{l}"));
    assert!(st["term"].as_u64().unwrap() >= 1);
    for k in [
        "commit",
        "applied",
        "last_index",
        "persisted_index",
        "snapshot_index",
    ] {
        assert!(st[k].is_u64(), "{k}: {st}");
    }
    assert_eq!(st["timer"]["election_ticks"], 30);
    assert_eq!(st["timer"]["heartbeat_ticks"], 5);
    assert_eq!(st["timer"]["tick_ms"], 10);
    let log = &st["log"];
    let entries = log["entries"].as_array().unwrap();
    assert!(!entries.is_empty(), "{st}");
    let last = entries.last().unwrap();
    assert_eq!(last["index"], st["last_index"]);
    assert_eq!(last["term"], st["term"], "the new leader's no-op");
    assert_eq!(last["kind"], "noop");
    assert!(log["commit"].as_u64().unwrap() <= st["last_index"].as_u64().unwrap());
    assert_eq!(st["peers"].as_array().unwrap().len(), 2);
    assert!(
        st["peers"][0]["match_index"].is_u64(),
        "the leader's view: {st}"
    );
    // Every member's admin URL is known (advertised in the peer hello), eventually.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, st) = get_json(admin(&servers[f]), "/status").await;
        let members = st["members"].as_array().unwrap().clone();
        assert_eq!(members.len(), 3);
        if members.iter().all(|m| m["admin_url"].is_string()) {
            for s in servers.iter().flatten() {
                let url = format!("http://{}", s.admin_addr().unwrap());
                assert!(
                    members.iter().any(|m| m["admin_url"] == url.as_str()),
                    "{url}"
                );
            }
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{members:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (_, c) = get_json(admin(&servers[f]), "/cluster").await;
    let ms = c["members"].as_array().unwrap();
    assert_eq!(ms.len(), 3);
    assert!(
        ms.iter()
            .all(|m| m["down"].is_null() && m["role"].is_string()),
        "{c}"
    );
    assert_eq!(ms.iter().filter(|m| m["role"] == "leader").count(), 1);

    let stopped = servers[l].take().unwrap();
    let stopped_id = format!("{:x}", stopped.member_id().0);
    stopped.stop().await.unwrap();
    let (_, c) = get_json(admin(&servers[f]), "/cluster").await;
    let down: Vec<&Value> = c["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["down"] == true)
        .collect();
    assert_eq!(down.len(), 1, "{c}");
    assert_eq!(down[0]["id"], stopped_id.as_str());
    assert!(down[0]["error"].is_string());
    for s in servers.into_iter().flatten() {
        s.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_deliver_a_role_change_and_a_down_member() {
    let dir = tempfile::tempdir().unwrap();
    let mut servers = start_all(dir.path(), 3).await;
    let l = leader(&servers).await;
    let f = (l + 1) % 3;
    let mut w = servers[f].as_ref().unwrap().handle().watch_status();
    tokio::time::timeout(Duration::from_secs(5), w.wait_for(|s| s.leader.is_some()))
        .await
        .expect("the follower learns the leader")
        .unwrap();
    let term = servers[f].as_ref().unwrap().handle().status().term;
    let f_id = format!("{:x}", servers[f].as_ref().unwrap().member_id().0);
    let l_id = format!("{:x}", servers[l].as_ref().unwrap().member_id().0);

    // A member's own stream starts with who it is, its status, timers and log.
    let mut local = Events::open(admin(&servers[f]), "/events?scope=local").await;
    let hello = local.next().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["node"], f_id.as_str());
    assert_eq!(hello["election_ticks"], 30);
    let status = local.next().await;
    assert_eq!(status["type"], "status");
    assert_eq!(status["role"], "follower");
    assert_eq!(status["leader"], l_id.as_str());
    // Heartbeats from the leader are not in a follower's own stream (it reports what it
    // sends), but its answers are.
    let ack = local
        .until(Duration::from_secs(5), |e| e["type"] == "msg")
        .await;
    assert_eq!(ack["from"], f_id.as_str());
    assert_eq!(ack["to"], l_id.as_str());

    // The merged stream of another member shows the leader's heartbeats too.
    let mut merged = Events::open(admin(&servers[f]), "/events").await;
    merged
        .until(Duration::from_secs(5), |e| {
            e["type"] == "msg" && e["kind"] == "heartbeat" && e["from"] == l_id.as_str()
        })
        .await;

    servers[l].take().unwrap().stop().await.unwrap();
    let change = local
        .until(Duration::from_secs(10), |e| {
            e["type"] == "role" && e["term"].as_u64().is_some_and(|t| t > term)
        })
        .await;
    assert_eq!(change["node"], f_id.as_str());
    let down = merged
        .until(Duration::from_secs(10), |e| e["type"] == "down")
        .await;
    assert_eq!(down["node"], l_id.as_str());
    merged
        .until(Duration::from_secs(10), |e| {
            e["type"] == "role" && e["role"] == "leader"
        })
        .await;
    for s in servers.into_iter().flatten() {
        s.stop().await.unwrap();
    }
}
