//! etcd's own command-line client, `etcdctl` 3.4 (Debian's `etcd-client`), against a
//! `raftkv dev` cluster: put/get/del, prefixes, JSON output, txn, member list, endpoint
//! status and health, watch (from a revision, and one before the window answered as
//! compacted), an oversized request refused while the cluster keeps serving, and a
//! SIGKILLed leader replaced while etcdctl keeps working.

mod common;
use common::{etcdctl, lines_of, DevCluster};
use std::process::{Command, Stdio};
use std::time::Duration;

fn ok(endpoints: &str, args: &[&str]) -> String {
    let (success, out, err) = etcdctl(endpoints, args, None);
    assert!(success, "etcdctl {args:?} failed: {err}");
    out
}

#[test]
fn etcdctl_speaks_to_raftkv_dev() {
    let c = DevCluster::start(1379, 3);
    let eps = c.endpoints_arg();

    assert_eq!(ok(&eps, &["put", "greeting", "hello"]), "OK\n");
    assert_eq!(ok(&eps, &["get", "greeting"]), "greeting\nhello\n");
    // Every member answers, and with http:// URLs too.
    for ep in &c.endpoints {
        assert_eq!(
            ok(ep, &["get", "greeting", "--print-value-only"]),
            "hello\n"
        );
        let url = format!("http://{ep}");
        assert_eq!(
            ok(&url, &["get", "greeting", "--print-value-only"]),
            "hello\n"
        );
    }
    for i in 0..5 {
        ok(&eps, &["put", &format!("dir/{i}"), &format!("v{i}")]);
    }
    assert_eq!(
        ok(&eps, &["get", "dir/", "--prefix", "--keys-only"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["dir/0", "dir/1", "dir/2", "dir/3", "dir/4"]
    );
    let counted = ok(
        &eps,
        &["get", "dir/", "--prefix", "--limit", "2", "-w", "json"],
    );
    assert!(counted.contains("\"more\":true,\"count\":5"), "{counted}");
    let json = ok(&eps, &["get", "greeting", "-w", "json"]);
    assert!(
        json.contains("\"kvs\":[{\"key\":\"Z3JlZXRpbmc=\""),
        "{json}"
    );
    assert!(json.contains("\"value\":\"aGVsbG8=\""), "{json}");
    assert!(json.contains("\"version\":1"), "{json}");
    assert_eq!(
        ok(
            &eps,
            &["get", "dir/", "--prefix", "--limit", "2", "--keys-only"]
        )
        .split_whitespace()
        .count(),
        2
    );
    assert_eq!(ok(&eps, &["del", "dir/", "--prefix"]), "5\n");
    assert_eq!(ok(&eps, &["get", "dir/", "--prefix"]), "");

    // Txn from stdin (etcdctl's non-interactive form): compare, success ops, failure ops.
    let txn = b"value(\"greeting\") = \"hello\"\n\nput greeting swapped\n\nput greeting nope\n\n";
    let (success, out, err) = etcdctl(&eps, &["txn"], Some(txn));
    assert!(success, "{err}");
    assert!(out.starts_with("SUCCESS"), "{out}");
    let (_, out, _) = etcdctl(&eps, &["txn"], Some(txn));
    assert!(
        out.starts_with("FAILURE"),
        "the compare fails the second time: {out}"
    );
    assert_eq!(
        ok(&eps, &["get", "greeting", "--print-value-only"]),
        "nope\n"
    );

    // Member list: every member with its peer and client URLs.
    let members = ok(&eps, &["member", "list"]);
    assert_eq!(members.lines().count(), 3, "{members}");
    for (i, name) in c.names.iter().enumerate() {
        let line = members
            .lines()
            .find(|l| l.contains(&format!(", {name}, ")))
            .unwrap_or_else(|| panic!("{name} missing: {members}"));
        assert!(line.contains("started"), "{line}");
        assert!(
            line.contains(&format!("http://{}", c.endpoints[i])),
            "{line}"
        );
    }

    // Endpoint status and health: one leader, every member healthy.
    let status = ok(&eps, &["endpoint", "status"]);
    assert_eq!(status.lines().count(), 3, "{status}");
    assert_eq!(
        status.matches(", true, false,").count(),
        1,
        "exactly one leader: {status}"
    );
    // `--cluster` dials each member's advertised client URL (etcd 3.4 then sends the whole
    // URL as HTTP/2 :authority; see third_party/README.md).
    let cluster = ok(&c.endpoints[0], &["endpoint", "status", "--cluster"]);
    assert_eq!(cluster.lines().count(), 3, "{cluster}");
    for ep in &c.endpoints {
        assert!(cluster.contains(&format!("http://{ep}, ")), "{cluster}");
    }
    let (success, _, health) = etcdctl(&eps, &["endpoint", "health", "--cluster"], None);
    assert!(success, "{health}");
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");

    // An oversized value is refused with etcd's error; the cluster keeps serving.
    let big = vec![b'x'; 2 << 20];
    let (success, _, err) = etcdctl(&eps, &["put", "big"], Some(&big));
    assert!(!success);
    assert!(
        err.contains("request is too large") || err.contains("larger than max"),
        "{err}"
    );
    assert_eq!(ok(&eps, &["put", "after", "big"]), "OK\n");

    watch_prints_events(&c);

    // SIGKILL the leader: etcdctl keeps writing through the others.
    let leader_line = status
        .lines()
        .find(|l| l.contains(", true, false,"))
        .unwrap();
    let leader = c
        .endpoints
        .iter()
        .position(|e| leader_line.starts_with(e.as_str()))
        .unwrap();
    c.kill(leader);
    let rest: Vec<&str> = (0..3)
        .filter(|&i| i != leader)
        .map(|i| c.endpoints[i].as_str())
        .collect();
    let rest = rest.join(",");
    // A write forwarded to the killed leader has an unknown outcome ("leader changed"); like
    // an etcd user, retry it until the new leader serves (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (success, out, err) = etcdctl(&rest, &["put", "after-kill", "yes"], None);
        if success {
            assert_eq!(out, "OK\n");
            break;
        }
        assert!(
            err.contains("leader changed") && std::time::Instant::now() < deadline,
            "{err}"
        );
    }
    assert_eq!(
        ok(&rest, &["get", "after-kill", "--print-value-only"]),
        "yes\n"
    );
    assert_eq!(
        ok(&rest, &["get", "greeting", "--print-value-only"]),
        "nope\n"
    );
}

/// `etcdctl watch` on a follower from the current revision + 1 prints every later write in
/// etcd's format; a start before the member's window ends with etcd's compaction message.
fn watch_prints_events(c: &DevCluster) {
    let eps = c.endpoints_arg();
    let json = ok(&eps, &["get", "greeting", "-w", "json"]);
    let rev: i64 = json
        .split("\"revision\":")
        .nth(1)
        .and_then(|r| r.split(|ch: char| !ch.is_ascii_digit()).next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {json}"));
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", c.endpoints[2]))
        .args(["watch", "w/", "--prefix", &format!("--rev={}", rev + 1)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl runs");
    let rx = lines_of(child.stdout.take().unwrap());
    ok(&eps, &["put", "w/a", "1"]);
    ok(&eps, &["put", "outside", "x"]);
    ok(&eps, &["put", "w/b", "2"]);
    ok(&eps, &["del", "w/a"]);
    let mut lines = Vec::new();
    while lines.len() < 8 {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(
        lines[..8],
        ["PUT", "w/a", "1", "PUT", "w/b", "2", "DELETE", "w/a"],
        "etcdctl watch printed {lines:?}"
    );

    let (success, out, err) = etcdctl(&eps, &["watch", "greeting", "--rev=1"], None);
    assert!(!success, "a compacted watch ends etcdctl: {out}");
    assert!(
        err.contains("watch was canceled (etcdserver: mvcc: required revision has been compacted)"),
        "{out}{err}"
    );
}
