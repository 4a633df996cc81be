//! `raftkv bench` against a real 3-member `raftkv dev` cluster: the JSON report of a put run
//! and of a (prefilled) linearizable get run counts exactly the requests asked for, no
//! errors, and positive throughput and latencies.

mod common;

use common::DevCluster;
use std::process::Command;

/// Run `raftkv bench` with `args` against `cluster` and parse its JSON report.
fn bench(cluster: &DevCluster, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .arg("bench")
        .args(["--endpoints", &cluster.endpoints_arg()])
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

#[test]
fn bench_put_and_get_count_every_request_against_a_dev_cluster() {
    let cluster = DevCluster::start(1579, 3);

    let put = bench(
        &cluster,
        &["--op", "put", "--total", "300", "--clients", "8"],
    );
    assert_clean_run(&put, "put");
    assert_eq!(put["writes"], 300);

    let get = bench(
        &cluster,
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
    assert_eq!(get["reads"], 300);
    assert_eq!(
        get["prefill"], true,
        "gets prefill their key space by default"
    );
    assert!(get["leader_endpoint"].is_string(), "{get}");
}
