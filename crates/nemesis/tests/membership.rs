//! The membership scenario CI runs (about 30 s): under load from 5 recorded clients, 3
//! `raftkv serve` members grow to 5 (learners added by the raftkv CLI and by `etcdctl`,
//! started with `--initial-cluster-state existing`, promoted once caught up), the leader is
//! removed, a member is replaced (a new member on the freed address, an old one removed),
//! and the cluster shrinks back to 3; unsafe requests are refused with clear errors. Then the
//! linearizability check, the append audit and the replica comparison.
//!
//! Needs `target/<profile>/raftkv` beside the test binary (or RAFTKV_BIN), the addresses
//! 127.0.0.11–15 free, and `etcdctl` on the PATH (test.sh installs it; without it the raftkv
//! CLI makes those changes and the report says so). No firewall: it needs no root.
//! NEMESIS_SEED picks other client choices; NEMESIS_SETTLE_MS sets the load between changes.

mod common;

use common::{env_or, raftkv_binary};
use std::io::Write;
use std::time::Duration;

#[test]
fn grow_to_five_remove_the_leader_replace_a_member_and_shrink_to_three_under_load() {
    let seed = env_or("NEMESIS_SEED", 20261203u64);
    let mut config = nemesis::MembershipConfig::new(raftkv_binary(), seed);
    config.settle = Duration::from_millis(env_or("NEMESIS_SETTLE_MS", 2000u64));
    let report = nemesis::membership::run(&config).expect("the membership harness runs");
    // Straight to stderr, past the test harness's capture: CI's log shows the summary.
    let _ = std::io::stderr().write_all(format!("\n{report}").as_bytes());
    assert!(report.passed(), "the membership run failed:\n{report}");
    if config.etcdctl.is_some() {
        assert!(
            report.etcdctl.starts_with("etcdctl "),
            "etcdctl is installed, so it made some changes: {}",
            report.etcdctl
        );
    }
}
