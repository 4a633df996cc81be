//! raftkv's own client commands (over the `client` library) against a `raftkv dev` cluster:
//! put/get/append/del in both output modes, members and status, a watch that outlives the
//! member serving it, and a SIGKILLed member that `status` reports while writes keep working.

mod common;
use common::lines_of;
use common::DevCluster;
use std::process::{Command, Stdio};
use std::time::Duration;

fn raftkv(eps: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(args)
        .arg(format!("--endpoints={eps}"))
        .env_remove("RAFTKV_ENDPOINTS")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(eps: &str, args: &[&str]) -> String {
    let (success, out, err) = raftkv(eps, args);
    assert!(success, "raftkv {args:?} failed: {err}");
    out
}

#[test]
fn client_commands_against_raftkv_dev() {
    let c = DevCluster::start(1679, 3);
    let eps = c.endpoints_arg();
    assert_eq!(ok(&eps, &["put", "greeting", "hello"]).trim(), "OK");
    assert_eq!(ok(&eps, &["get", "greeting"]), "greeting\nhello\n");
    ok(&eps, &["append", "log", "a;"]);
    let out = ok(&eps, &["append", "log", "b;"]);
    assert!(out.contains('4'), "the new length is printed: {out}");
    assert_eq!(ok(&eps, &["get", "log"]), "log\na;b;\n");
    let json = ok(&eps, &["get", "log", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["kvs"][0]["value"], "YTtiOw==", "{json}"); // base64 of "a;b;"
    assert_eq!(v["kvs"][0]["version"], 2, "{json}");
    for i in 0..3 {
        ok(&eps, &["put", &format!("p/{i}"), "x"]);
    }
    assert_eq!(
        ok(&eps, &["get", "p/", "--prefix", "--keys-only"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["p/0", "p/1", "p/2"]
    );
    assert_eq!(ok(&eps, &["del", "p/", "--prefix"]).trim(), "3");

    let members = ok(&eps, &["members"]);
    for (name, ep) in c.names.iter().zip(&c.endpoints) {
        let line = members.lines().find(|l| l.contains(name.as_str())).unwrap();
        assert!(line.contains(ep.as_str()), "{members}");
    }
    assert_eq!(
        members.matches('*').count(),
        1,
        "one leader marked: {members}"
    );
    let status = ok(&eps, &["status"]);
    assert_eq!(status.lines().count(), 4, "header + 3 rows: {status}");

    // A watch served by member 0, which is about to be killed.
    let json = ok(&eps, &["get", "greeting", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rev = v["header"]["revision"].as_i64().unwrap();
    let first_0 = format!("{},{},{}", c.endpoints[0], c.endpoints[1], c.endpoints[2]);
    let mut watch = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["watch", "w/", "--prefix", "--count", "4"])
        .arg(format!("--rev={}", rev + 1))
        .arg(format!("--endpoints={first_0}"))
        .env_remove("RAFTKV_ENDPOINTS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(watch.stdout.take().unwrap());
    ok(&eps, &["put", "w/1", "a"]);
    ok(&eps, &["put", "w/2", "b"]);
    let mut printed = Vec::new();
    while printed.len() < 6 {
        printed.push(
            lines
                .recv_timeout(Duration::from_secs(10))
                .expect("watch prints"),
        );
    }

    // A dead member: status names it and fails; writes go on through the others.
    c.kill(0);
    let (success, out, err) = raftkv(&eps, &["status"]);
    assert!(
        !success,
        "status fails when a member does not answer: {out}"
    );
    assert!(
        err.contains(&c.endpoints[0]) || out.contains(&c.endpoints[0]),
        "{out}{err}"
    );
    assert_eq!(ok(&eps, &["put", "after-kill", "yes"]).trim(), "OK");
    assert_eq!(ok(&eps, &["get", "after-kill"]), "after-kill\nyes\n");

    // The watch moved to another member and went on from where it was: every change once,
    // in order, then it stopped at --count.
    ok(&eps, &["put", "w/3", "c"]);
    ok(&eps, &["del", "w/1"]);
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        printed.push(line);
    }
    let status = watch.wait().unwrap();
    assert!(status.success(), "watch exits 0 after --count changes");
    assert_eq!(
        printed,
        ["PUT", "w/1", "a", "PUT", "w/2", "b", "PUT", "w/3", "c", "DELETE", "w/1", ""],
        "watch printed {printed:?}"
    );

    // Bad input: a clear error, nonzero exit.
    let (success, _, err) = raftkv(&eps, &["put", "", "v"]);
    assert!(!success);
    assert!(err.contains("key is not provided"), "{err}");
}

#[test]
fn dev_stops_on_ctrl_c_and_keeps_its_data_for_the_next_run() {
    let c = DevCluster::start(1779, 3);
    let eps = c.endpoints_arg();
    assert_eq!(ok(&eps, &["put", "kept", "across-runs"]).trim(), "OK");
    let pids = c.pids.clone();
    let (clean, dir) = c.interrupt();
    assert!(clean, "raftkv dev exits 0 on SIGINT");
    for pid in pids {
        // SAFETY: probing (signal 0) a pid that was our grandchild.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "member {pid} stopped with raftkv dev");
    }
    let c = DevCluster::start_in(dir, 1779, 3, false);
    assert_eq!(
        ok(&c.endpoints_arg(), &["get", "kept"]),
        "kept\nacross-runs\n"
    );
}
