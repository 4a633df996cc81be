//! `raftkv bench` against a real 3-member `raftkv dev` cluster and a real etcd (Debian's
//! etcd-server, which ./test.sh installs): the JSON report of put, (prefilled) get and txn
//! runs counts exactly the requests asked for, no errors, and positive throughput and
//! latencies — on one load thread and on several.

mod common;

use common::DevCluster;
use std::process::Command;

/// Run `raftkv bench` with `args` against `cluster` and parse its JSON report.
fn bench(cluster: &DevCluster, args: &[&str]) -> serde_json::Value {
    bench_at(&cluster.endpoints_arg(), args)
}

/// Run `raftkv bench` with `args` against `endpoints` and parse its JSON report.
fn bench_at(endpoints: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .arg("bench")
        .args(["--endpoints", endpoints])
        .args(args)
        .args(["--json", "--warmup", "200ms"])
        .output()
        .expect("raftkv bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench {args:?} failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: not JSON:\n{stdout}"))
}

fn assert_clean_run(report: &serde_json::Value, op: &str) {
    assert_eq!(report["op"], op, "{report}");
    assert_eq!(report["ops"], 300, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["clients"], 8, "{report}");
    assert!(
        report["throughput_ops_s"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(report["elapsed_s"].as_f64().unwrap() > 0.0, "{report}");
    let l = &report["latency_us"];
    for p in ["p50", "p90", "p99", "p99_9", "max"] {
        assert!(l[p].as_u64().unwrap() > 0, "latency_us.{p}: {report}");
    }
    assert!(l["p50"].as_u64() <= l["p99"].as_u64(), "{report}");
    assert!(l["p99"].as_u64() <= l["max"].as_u64(), "{report}");
}

/// 300 puts, then 300 linearizable gets (prefilled, leader first), each checked clean.
fn put_then_get(endpoints: &str) -> (serde_json::Value, serde_json::Value) {
    let put = bench_at(
        endpoints,
        &["--op", "put", "--total", "300", "--clients", "8"],
    );
    assert_clean_run(&put, "put");
    let get = bench_at(
        endpoints,
        &[
            "--op",
            "get",
            "--total",
            "300",
            "--clients",
            "8",
            "--key-space",
            "500",
            "--leader-first",
        ],
    );
    assert_clean_run(&get, "get");
    (put, get)
}

#[test]
fn bench_put_and_get_count_every_request_against_a_dev_cluster() {
    let cluster = DevCluster::start(1579, 3);

    let (put, get) = put_then_get(&cluster.endpoints_arg());
    assert_eq!(put["writes"], 300);
    assert_eq!(get["reads"], 300);
    assert_eq!(
        get["prefill"], true,
        "gets prefill their key space by default"
    );
    assert!(get["leader_endpoint"].is_string(), "{get}");

    let spread = bench(
        &cluster,
        &[
            "--op",
            "mixed",
            "--total",
            "300",
            "--clients",
            "8",
            "--conns",
            "6",
            "--threads",
            "3",
        ],
    );
    assert_clean_run(&spread, "mixed");
    assert_eq!(spread["threads"], 3, "{spread}");
    assert_eq!(
        spread["reads"].as_u64().unwrap() + spread["writes"].as_u64().unwrap(),
        300
    );
}

/// A single-member etcd on loopback, stopped (and its data removed) on drop.
struct Etcd {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Etcd {
    fn start(client_port: u16) -> Etcd {
        let dir = tempfile::tempdir().expect("temp dir");
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{}", client_port + 1);
        let mut etcd = Command::new("etcd");
        if cfg!(target_arch = "aarch64") {
            etcd.env("ETCD_UNSUPPORTED_ARCH", "arm64"); // etcd 3.4 asks for it there
        }
        let child = etcd
            .args(["--name", "b1", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("b1={peer}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("etcd (Debian's etcd-server; ./test.sh installs it) starts");
        let etcd = Etcd { child, _dir: dir };
        let endpoint = format!("127.0.0.1:{client_port}");
        for _ in 0..200 {
            let (ok, _, _) = common::etcdctl(&endpoint, &["endpoint", "health"], None);
            if ok {
                return etcd;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("etcd on {endpoint} did not become healthy in 20 s");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn bench_drives_a_real_etcd_with_every_op() {
    let _etcd = Etcd::start(1599);
    let endpoint = "127.0.0.1:1599";
    let (_, get) = put_then_get(endpoint);
    assert_eq!(get["leader_endpoint"], "http://127.0.0.1:1599", "{get}");
    let txn = bench_at(
        endpoint,
        &[
            "--op",
            "txn",
            "--total",
            "300",
            "--clients",
            "8",
            "--key-space",
            "20",
            "--threads",
            "2",
        ],
    );
    assert_clean_run(&txn, "txn");
    let (ok, failed) = (&txn["txn_succeeded"], &txn["txn_failed_compare"]);
    assert_eq!(
        ok.as_u64().unwrap() + failed.as_u64().unwrap(),
        300,
        "{txn}"
    );
    assert!(ok.as_u64().unwrap() > 0, "some compares hold: {txn}");
}
