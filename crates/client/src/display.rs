//! How responses look to a person (`simple`, tables) and to a program (`json`), the way
//! `etcdctl` prints them, for the `raftkv` CLI and anyone else who prints responses.
//!
//! Simple output: `put` prints `OK`; a read prints each key on a line and its value on the
//! next; a delete prints the number deleted; `--prev-kv` adds the old pairs after that.
//! Non-UTF-8 bytes show as U+FFFD there — the JSON form carries exact bytes.
//! JSON output mirrors `etcdctl -w json`: etcd's field names, zero and empty fields left out,
//! keys and values base64-encoded, member ids as numbers.
//!
//! Owns: every rendering, as pure functions from responses to strings/values.
//! Must never: do I/O or talk to the cluster (the caller prints), or decide exit codes.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use proto::etcdserverpb::{
    DeleteRangeResponse, Member, MemberListResponse, PutResponse, RangeResponse, ResponseHeader,
    StatusResponse, WatchResponse,
};
use proto::mvccpb::{Event, KeyValue};
use proto::raftkv_v1::AppendResponse;
use serde_json::{json, Map, Value};

use crate::error::ClientError;

/// What a read asked for, which changes how it prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeView {
    /// Print keys only, no value lines.
    pub keys_only: bool,
    /// Print only the count.
    pub count_only: bool,
}

/// `OK`, then the previous key and value when the response has them.
pub fn put_simple(resp: &PutResponse) -> String {
    let mut out = String::from("OK\n");
    if let Some(kv) = &resp.prev_kv {
        push_kv(&mut out, kv, false);
    }
    out
}

/// Each key on a line and its value on the next (keys only with `keys_only`); the count alone
/// with `count_only`.
pub fn range_simple(resp: &RangeResponse, view: RangeView) -> String {
    if view.count_only {
        return format!("{}\n", resp.count);
    }
    let mut out = String::new();
    for kv in &resp.kvs {
        push_kv(&mut out, kv, view.keys_only);
    }
    out
}

/// The number of keys deleted, then the deleted pairs when the response has them.
pub fn delete_simple(resp: &DeleteRangeResponse) -> String {
    let mut out = format!("{}\n", resp.deleted);
    for kv in &resp.prev_kvs {
        push_kv(&mut out, kv, false);
    }
    out
}

/// `OK`, then the value's length in bytes after the append.
pub fn append_simple(resp: &AppendResponse) -> String {
    let mut out = format!("OK\n{}\n", resp.value_bytes);
    if let Some(kv) = &resp.prev_kv {
        push_kv(&mut out, kv, false);
    }
    out
}

/// A member id as etcd prints it: lowercase hex.
pub fn member_id(id: u64) -> String {
    format!("{id:x}")
}

/// A table of members: ID (hex), NAME, PEER URLS, CLIENT URLS, LEADER (`*` on the leader).
pub fn members_table(resp: &MemberListResponse, leader: Option<u64>) -> String {
    let headers = [
        "ID",
        "NAME",
        "PEER URLS",
        "CLIENT URLS",
        "LEARNER",
        "LEADER",
    ];
    let rows = resp
        .members
        .iter()
        .map(|m| {
            Row::Cells(vec![
                member_id(m.id),
                m.name.clone(),
                m.peer_ur_ls.join(","),
                m.client_ur_ls.join(","),
                if m.is_learner { "yes" } else { "no" }.to_string(),
                if leader == Some(m.id) { "*" } else { "" }.to_string(),
            ])
        })
        .collect::<Vec<_>>();
    table(&headers, &rows)
}

/// One row per endpoint: ENDPOINT, ID, IS LEADER, TERM, INDEX, APPLIED, DB SIZE, VERSION; an
/// endpoint that did not answer shows its error instead.
pub fn status_table(rows: &[(String, Result<StatusResponse, ClientError>)]) -> String {
    let headers = [
        "ENDPOINT",
        "ID",
        "IS LEADER",
        "TERM",
        "INDEX",
        "APPLIED",
        "DB SIZE",
        "VERSION",
    ];
    let rows = rows
        .iter()
        .map(|(endpoint, result)| match result {
            Ok(s) => {
                let id = s.header.as_ref().map_or(0, |h| h.member_id);
                Row::Cells(vec![
                    endpoint.clone(),
                    member_id(id),
                    (s.leader != 0 && s.leader == id).to_string(),
                    s.raft_term.to_string(),
                    s.raft_index.to_string(),
                    s.raft_applied_index.to_string(),
                    human_bytes(s.db_size.max(0) as u64),
                    s.version.clone(),
                ])
            }
            Err(err) => Row::Error {
                first: endpoint.clone(),
                message: format!("error: {err}"),
            },
        })
        .collect::<Vec<_>>();
    table(&headers, &rows)
}

/// A size the way etcdctl prints it (SI units: `20 kB`, `1.5 MB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 10 {
        return format!("{bytes} B");
    }
    let exp = ((bytes as f64).log10() / 3.0).floor() as usize;
    let exp = exp.min(UNITS.len() - 1);
    let value = (bytes as f64 / 1000f64.powi(exp as i32) * 10.0 + 0.5).floor() / 10.0;
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[exp])
    } else {
        format!("{value:.0} {}", UNITS[exp])
    }
}

/// etcd's `ResponseHeader` as JSON.
pub fn header_json(header: Option<&ResponseHeader>) -> Value {
    let mut obj = Obj::default();
    if let Some(h) = header {
        obj.num("cluster_id", h.cluster_id)
            .num("member_id", h.member_id)
            .int("revision", h.revision)
            .num("raft_term", h.raft_term);
    }
    obj.into()
}

/// One `mvccpb.KeyValue` as JSON, key and value base64.
pub fn kv_json(kv: &KeyValue) -> Value {
    let mut obj = Obj::default();
    obj.bytes("key", &kv.key)
        .int("create_revision", kv.create_revision)
        .int("mod_revision", kv.mod_revision)
        .int("version", kv.version)
        .bytes("value", &kv.value)
        .int("lease", kv.lease);
    obj.into()
}

/// A watch response's events as etcdctl prints them: the event type (PUT or DELETE) on a
/// line, then the previous key and value when the watch asked for them, then the key and
/// its value (empty after a delete).
pub fn watch_simple(resp: &WatchResponse) -> String {
    let mut out = String::new();
    for e in &resp.events {
        out.push_str(event_type(e));
        out.push('\n');
        if let Some(prev) = &e.prev_kv {
            push_kv(&mut out, prev, false);
        }
        if let Some(kv) = &e.kv {
            push_kv(&mut out, kv, false);
        }
    }
    out
}

/// A watch response as JSON: header, watch id and events (type, kv, prev_kv).
pub fn watch_json(resp: &WatchResponse) -> Value {
    let mut obj = Obj::with_header(resp.header.as_ref());
    obj.int("watch_id", resp.watch_id);
    let events = resp
        .events
        .iter()
        .map(|e| {
            let mut ev = Obj::default();
            ev.value("type", Value::String(event_type(e).to_string()));
            if let Some(kv) = &e.kv {
                ev.value("kv", kv_json(kv));
            }
            if let Some(prev) = &e.prev_kv {
                ev.value("prev_kv", kv_json(prev));
            }
            ev.into()
        })
        .collect();
    obj.list("events", events);
    obj.into()
}

fn event_type(e: &Event) -> &'static str {
    match proto::mvccpb::event::EventType::try_from(e.r#type) {
        Ok(proto::mvccpb::event::EventType::Put) => "PUT",
        Ok(proto::mvccpb::event::EventType::Delete) => "DELETE",
        Err(_) => "UNKNOWN",
    }
}

/// A `PutResponse` as JSON.
pub fn put_json(resp: &PutResponse) -> Value {
    let mut obj = Obj::with_header(resp.header.as_ref());
    if let Some(kv) = &resp.prev_kv {
        obj.value("prev_kv", kv_json(kv));
    }
    obj.into()
}

/// A `RangeResponse` as JSON.
pub fn range_json(resp: &RangeResponse) -> Value {
    let mut obj = Obj::with_header(resp.header.as_ref());
    obj.list("kvs", resp.kvs.iter().map(kv_json).collect())
        .flag("more", resp.more)
        .int("count", resp.count);
    obj.into()
}

/// A `DeleteRangeResponse` as JSON.
pub fn delete_json(resp: &DeleteRangeResponse) -> Value {
    let mut obj = Obj::with_header(resp.header.as_ref());
    obj.int("deleted", resp.deleted)
        .list("prev_kvs", resp.prev_kvs.iter().map(kv_json).collect());
    obj.into()
}

/// An `AppendResponse` as JSON.
pub fn append_json(resp: &AppendResponse) -> Value {
    let mut obj = Obj::with_header(resp.header.as_ref());
    if let Some(kv) = &resp.prev_kv {
        obj.value("prev_kv", kv_json(kv));
    }
    obj.num("value_bytes", resp.value_bytes);
    obj.into()
}

/// One member as JSON, with etcd's field names (`ID`, `peerURLs`, ...).
pub fn member_json(m: &Member) -> Value {
    let mut obj = Obj::default();
    obj.num("ID", m.id)
        .text("name", &m.name)
        .list("peerURLs", m.peer_ur_ls.iter().map(|u| json!(u)).collect())
        .list(
            "clientURLs",
            m.client_ur_ls.iter().map(|u| json!(u)).collect(),
        )
        .flag("isLearner", m.is_learner);
    obj.into()
}

/// A `MemberListResponse` as JSON.
pub fn members_json(resp: &MemberListResponse) -> Value {
    let mut obj = Obj::with_header(resp.header.as_ref());
    obj.list("members", resp.members.iter().map(member_json).collect());
    obj.into()
}

/// One `StatusResponse` as JSON, with etcd's field names (`dbSize`, `raftIndex`, ...).
pub fn status_json(s: &StatusResponse) -> Value {
    let mut obj = Obj::with_header(s.header.as_ref());
    obj.text("version", &s.version)
        .int("dbSize", s.db_size)
        .num("leader", s.leader)
        .num("raftIndex", s.raft_index)
        .num("raftTerm", s.raft_term)
        .num("raftAppliedIndex", s.raft_applied_index)
        .list("errors", s.errors.iter().map(|e| json!(e)).collect())
        .int("dbSizeInUse", s.db_size_in_use)
        .flag("isLearner", s.is_learner);
    obj.into()
}

/// Status rows as etcdctl's `endpoint status -w json`: `[{"Endpoint", "Status"}]`, with
/// `"Error"` in place of `"Status"` for an endpoint that did not answer.
pub fn status_rows_json(rows: &[(String, Result<StatusResponse, ClientError>)]) -> Value {
    let rows = rows
        .iter()
        .map(|(endpoint, result)| match result {
            Ok(s) => json!({ "Endpoint": endpoint, "Status": status_json(s) }),
            Err(err) => json!({ "Endpoint": endpoint, "Error": err.to_string() }),
        })
        .collect();
    Value::Array(rows)
}

fn push_kv(out: &mut String, kv: &KeyValue, keys_only: bool) {
    out.push_str(&String::from_utf8_lossy(&kv.key));
    out.push('\n');
    if !keys_only {
        out.push_str(&String::from_utf8_lossy(&kv.value));
        out.push('\n');
    }
}

/// A table row: cells under the headers, or an error after the first cell.
enum Row {
    Cells(Vec<String>),
    Error { first: String, message: String },
}

/// Columns aligned to their widest cell, two spaces apart, no trailing spaces.
fn table(headers: &[&str], rows: &[Row]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        match row {
            Row::Cells(cells) => {
                for (w, cell) in widths.iter_mut().zip(cells) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            Row::Error { first, .. } => widths[0] = widths[0].max(first.chars().count()),
        }
    }
    let mut out = String::new();
    let header_cells: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    push_line(&mut out, &widths, &header_cells);
    for row in rows {
        match row {
            Row::Cells(cells) => push_line(&mut out, &widths, cells),
            Row::Error { first, message } => {
                push_line(&mut out, &widths, &[first.clone(), message.clone()])
            }
        }
    }
    out
}

fn push_line(out: &mut String, widths: &[usize], cells: &[String]) {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        let pad = widths.get(i).copied().unwrap_or(0);
        line.extend(std::iter::repeat_n(
            ' ',
            pad.saturating_sub(cell.chars().count()),
        ));
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// A JSON object that leaves out zero and empty fields, like Go's `omitempty`.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn with_header(header: Option<&ResponseHeader>) -> Obj {
        let mut obj = Obj::default();
        obj.value("header", header_json(header));
        obj
    }

    fn value(&mut self, key: &str, value: Value) -> &mut Obj {
        self.0.insert(key.to_string(), value);
        self
    }

    fn num(&mut self, key: &str, n: u64) -> &mut Obj {
        if n != 0 {
            self.value(key, json!(n));
        }
        self
    }

    fn int(&mut self, key: &str, n: i64) -> &mut Obj {
        if n != 0 {
            self.value(key, json!(n));
        }
        self
    }

    fn flag(&mut self, key: &str, b: bool) -> &mut Obj {
        if b {
            self.value(key, json!(true));
        }
        self
    }

    fn text(&mut self, key: &str, s: &str) -> &mut Obj {
        if !s.is_empty() {
            self.value(key, json!(s));
        }
        self
    }

    fn bytes(&mut self, key: &str, b: &[u8]) -> &mut Obj {
        if !b.is_empty() {
            self.value(key, json!(BASE64.encode(b)));
        }
        self
    }

    fn list(&mut self, key: &str, items: Vec<Value>) -> &mut Obj {
        if !items.is_empty() {
            self.value(key, Value::Array(items));
        }
        self
    }
}

impl From<Obj> for Value {
    fn from(obj: Obj) -> Value {
        Value::Object(obj.0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
            create_revision: 2,
            mod_revision: 3,
            version: 2,
            lease: 0,
        }
    }

    fn header() -> ResponseHeader {
        ResponseHeader {
            cluster_id: 1,
            member_id: 0xabc,
            revision: 3,
            raft_term: 2,
        }
    }

    #[test]
    fn put_prints_ok_and_the_previous_pair() {
        let mut resp = PutResponse::default();
        assert_eq!(put_simple(&resp), "OK\n");
        resp.prev_kv = Some(kv("k", "old"));
        assert_eq!(put_simple(&resp), "OK\nk\nold\n");
    }

    #[test]
    fn range_prints_key_then_value_lines() {
        let resp = RangeResponse {
            kvs: vec![kv("a", "1"), kv("b", "2")],
            count: 2,
            ..Default::default()
        };
        assert_eq!(range_simple(&resp, RangeView::default()), "a\n1\nb\n2\n");
        let keys = RangeView {
            keys_only: true,
            ..RangeView::default()
        };
        assert_eq!(range_simple(&resp, keys), "a\nb\n");
        let count = RangeView {
            count_only: true,
            ..RangeView::default()
        };
        assert_eq!(range_simple(&resp, count), "2\n");
    }

    #[test]
    fn delete_prints_the_count_then_the_deleted_pairs() {
        let resp = DeleteRangeResponse {
            deleted: 1,
            prev_kvs: vec![kv("a", "1")],
            ..Default::default()
        };
        assert_eq!(delete_simple(&resp), "1\na\n1\n");
    }

    #[test]
    fn append_prints_ok_and_the_new_length() {
        let resp = AppendResponse {
            value_bytes: 7,
            ..Default::default()
        };
        assert_eq!(append_simple(&resp), "OK\n7\n");
    }

    #[test]
    fn json_is_etcdctls_shape_with_base64_and_no_zero_fields() {
        let resp = RangeResponse {
            header: Some(header()),
            kvs: vec![kv("foo", "bar")],
            more: false,
            count: 1,
        };
        let expected = json!({
            "header": {"cluster_id": 1, "member_id": 0xabc, "revision": 3, "raft_term": 2},
            "kvs": [{"key": "Zm9v", "create_revision": 2, "mod_revision": 3, "version": 2,
                     "value": "YmFy"}],
            "count": 1,
        });
        assert_eq!(range_json(&resp), expected);
        assert_eq!(put_json(&PutResponse::default()), json!({"header": {}}));
    }

    #[test]
    fn members_table_marks_the_leader_with_hex_ids() {
        let resp = MemberListResponse {
            header: None,
            members: vec![
                Member {
                    id: 0xa1,
                    name: "n1".into(),
                    peer_ur_ls: vec!["http://127.0.0.1:2380".into()],
                    client_ur_ls: vec!["http://127.0.0.1:2379".into()],
                    is_learner: false,
                },
                Member {
                    id: 0xb2,
                    name: "node-2".into(),
                    peer_ur_ls: vec!["http://127.0.0.1:22380".into()],
                    client_ur_ls: vec!["http://127.0.0.1:22379".into()],
                    is_learner: false,
                },
                Member {
                    id: 0xc3,
                    name: String::new(),
                    peer_ur_ls: vec!["http://127.0.0.1:32380".into()],
                    client_ur_ls: vec![],
                    is_learner: true,
                },
            ],
        };
        let expected = "\
ID  NAME    PEER URLS               CLIENT URLS             LEARNER  LEADER
a1  n1      http://127.0.0.1:2380   http://127.0.0.1:2379   no
b2  node-2  http://127.0.0.1:22380  http://127.0.0.1:22379  no       *
c3          http://127.0.0.1:32380                          yes
";
        assert_eq!(members_table(&resp, Some(0xb2)), expected);
        assert_eq!(members_json(&resp)["members"][1]["ID"], json!(0xb2));
    }

    #[test]
    fn status_table_shows_an_error_row_for_a_silent_endpoint() {
        let ok = StatusResponse {
            header: Some(header()),
            version: "3.4.0".into(),
            db_size: 20480,
            leader: 0xabc,
            raft_index: 10,
            raft_term: 2,
            raft_applied_index: 9,
            ..Default::default()
        };
        let down = ClientError::Unavailable {
            tried: vec!["http://b:2".into()],
            last: "http://b:2: Unavailable: tcp connect error".into(),
            maybe_applied: false,
            elapsed: Duration::from_secs(1),
        };
        let rows = vec![
            ("http://a:1".to_string(), Ok(ok)),
            ("http://b:2".to_string(), Err(down)),
        ];
        let table = status_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "ENDPOINT    ID   IS LEADER  TERM  INDEX  APPLIED  DB SIZE  VERSION"
        );
        assert_eq!(
            lines[1],
            "http://a:1  abc  true       2     10     9        20 kB    3.4.0"
        );
        assert!(
            lines[2].starts_with("http://b:2  error: no member served"),
            "{}",
            lines[2]
        );
        let json = status_rows_json(&rows);
        assert_eq!(json[0]["Status"]["raftAppliedIndex"], json!(9));
        assert!(json[1]["Error"]
            .as_str()
            .unwrap()
            .contains("tcp connect error"));
    }

    #[test]
    fn human_bytes_matches_etcdctl() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(20480), "20 kB");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
        assert_eq!(human_bytes(u64::MAX), "18 EB");
    }
}
