//! Membership changes with etcd's own `etcdctl` 3.4 against a `raftkv dev` cluster: `member
//! add --learner` (etcdctl prints the new member's initial cluster, which `raftkv serve
//! --initial-cluster-state existing` takes as is), `member list` showing the learner,
//! `member promote` once it caught up, writes through the new member, `member remove`
//! (the removed process exits by itself), and the refusals etcdctl users know.

mod common;
use common::{etcdctl, DevCluster};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ok(endpoints: &str, args: &[&str]) -> String {
    let (success, out, err) = etcdctl(endpoints, args, None);
    assert!(success, "etcdctl {args:?} failed: {err}");
    out
}

/// The value of `NAME="..."` in etcdctl's `member add` output.
fn env_value(out: &str, name: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {out}"));
    line[name.len() + 1..].trim_matches('"').to_string()
}

/// Retry `f` until it returns `Some`, for at most `secs` seconds (the condition is in a
/// separate process, so there is no event to await).
fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Joined(Child);

impl Drop for Joined {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn etcdctl_adds_promotes_and_removes_a_member() {
    let c = DevCluster::start(1979, 3);
    let eps = c.endpoints_arg();
    for i in 0..30 {
        ok(&eps, &["put", &format!("k{i}"), &format!("v{i}")]);
    }
    // Below the kernel's ephemeral range (32768–60999): a port there can be taken as the
    // local port of some outgoing connection before the learner binds it.
    let (client, peer) = ("127.0.0.1:11979", "http://127.0.0.1:11980");

    let added = ok(
        &eps,
        &[
            "member",
            "add",
            "n4",
            &format!("--peer-urls={peer}"),
            "--learner",
        ],
    );
    assert!(added.contains("added to cluster"), "{added}");
    let id = added
        .split_whitespace()
        .nth(1)
        .expect("Member <id> added")
        .to_string();
    let initial = env_value(&added, "ETCD_INITIAL_CLUSTER");
    assert!(initial.contains(&format!("n4={peer}")), "{initial}");
    assert_eq!(env_value(&added, "ETCD_INITIAL_CLUSTER_STATE"), "existing");

    // etcd's error for a second member with the same peer URL.
    let (dup, _, err) = etcdctl(
        &eps,
        &["member", "add", "n5", &format!("--peer-urls={peer}")],
        None,
    );
    assert!(!dup && err.contains("Peer URLs already exists"), "{err}");
    // Promoting a learner that has not even started: it is behind.
    let (early, _, err) = etcdctl(&eps, &["member", "promote", &id], None);
    assert!(!early && err.contains("in sync with leader"), "{err}");

    let data = c.dir.path().join("n4");
    let child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["serve", "--name", "n4", "--initial-cluster", &initial])
        .args(["--initial-cluster-state", "existing"])
        .args(["--listen-client-urls", &format!("http://{client}")])
        .args(["--listen-peer-urls", peer])
        .arg("--data-dir")
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut joined = Joined(child);

    let listed = eventually(20, "the learner to start and name itself", || {
        let out = ok(&eps, &["member", "list"]);
        out.lines()
            .any(|l| l.contains(", started, n4,") && l.ends_with(", true"))
            .then_some(out)
    });
    assert_eq!(listed.lines().count(), 4, "{listed}");
    eventually(20, "the learner to catch up and be promoted", || {
        etcdctl(&eps, &["member", "promote", &id], None)
            .0
            .then_some(())
    });
    let out = ok(&eps, &["member", "list"]);
    assert!(
        out.lines().all(|l| l.ends_with(", false")),
        "every member votes: {out}"
    );
    assert_eq!(
        ok(client, &["get", "k29", "--print-value-only"]),
        "v29\n",
        "the new member serves what was written before it joined"
    );
    ok(client, &["put", "via", "n4"]);
    assert_eq!(ok(&eps, &["get", "via", "--print-value-only"]), "n4\n");

    ok(&eps, &["member", "remove", &id]);
    let status = eventually(20, "the removed member to exit", || {
        joined.0.try_wait().unwrap()
    });
    assert!(status.success(), "a removed member exits cleanly: {status}");
    let out = ok(&eps, &["member", "list"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(!out.contains("n4"), "{out}");
    let (gone, _, err) = etcdctl(&eps, &["member", "remove", &id], None);
    assert!(!gone && err.contains("member not found"), "{err}");
    ok(&eps, &["put", "after", "removal"]);
}
