//! Smoke tests of the bench driver: a small workload runs to completion on each
//! implementation with compaction, and the adapters keep the stores bounded.
//!
//! Owns: correctness checks of the bench itself, not performance (no timing asserted).

use bench::driver::run;
use bench::ours::OurNode;
use bench::raftrs::{RaftRsBatchNode, RaftRsNode};
use bench::workload::Params;

fn small() -> Params {
    Params {
        proposals: 5_000,
        compact_every: 500,
        batch: 16,
        window: 256,
        ..Params::default()
    }
}

#[test]
fn raftrs_commits_and_applies_everything_with_compaction() {
    let stats = run::<RaftRsNode>(&small());
    assert!(stats.compactions >= 3 * 9, "every node compacts: {stats:?}");
    assert!(
        stats.max_stored_entries <= 500 + 256 + 1,
        "stores stay bounded: {stats:?}"
    );
    assert_eq!(stats.snapshot_messages, 0);
}

#[test]
fn raftrs_batched_propose_commits_and_applies_everything() {
    let stats = run::<RaftRsBatchNode>(&small());
    assert_eq!(stats.refused_proposals, 0);
    assert!(
        stats.max_stored_entries <= 500 + 256 + 1,
        "stores stay bounded: {stats:?}"
    );
}

#[test]
fn raftkv_commits_and_applies_everything_with_compaction() {
    let stats = run::<OurNode>(&small());
    assert!(stats.compactions >= 3 * 9, "every node compacts: {stats:?}");
    assert!(
        stats.max_stored_entries <= 500 + 256 + 1,
        "stores stay bounded: {stats:?}"
    );
    assert_eq!(stats.snapshot_messages, 0);
}
