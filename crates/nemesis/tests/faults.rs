//! The short real-process fault suite CI runs: 5 `raftkv serve` members, 5 clients, 10 fault
//! episodes (each of the 5 kinds twice; about 45 s), then the linearizability check, the
//! append audit and the replica comparison.
//!
//! Needs `target/<profile>/raftkv` (test.sh builds the workspace first; or set RAFTKV_BIN), root
//! and `nft`. NEMESIS_SEED picks another fault schedule; NEMESIS_EPISODES runs more episodes.

mod common;

use common::{env_or, raftkv_binary};
use std::io::Write;
use std::time::Duration;

#[test]
fn five_members_stay_linearizable_and_lose_no_write_under_kills_pauses_and_partitions() {
    let seed = env_or("NEMESIS_SEED", 20261202u64);
    let mut config = nemesis::Config::new(raftkv_binary(), seed);
    config.episodes_max = env_or("NEMESIS_EPISODES", 10usize);
    config.duration = Duration::from_secs(env_or("NEMESIS_SECONDS", 150u64));
    config.check_budget = Duration::from_secs(120);
    let report = nemesis::run(&config).expect("the nemesis harness runs");
    // Straight to stderr, past the test harness's capture: CI's log shows the summary.
    let _ = std::io::stderr().write_all(format!("\n{report}").as_bytes());
    assert!(report.passed(), "the nemesis run failed:\n{report}");
    if config.episodes_max >= nemesis::FaultKind::ALL.len() {
        assert_eq!(
            report.faults_by_kind().len(),
            nemesis::FaultKind::ALL.len(),
            "every fault kind ran:\n{report}"
        );
    }
}
