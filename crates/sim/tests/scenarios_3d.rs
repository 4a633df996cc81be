//! 6.824 lab 3D (log compaction) on the simulated cluster: SnapshotBasic, SnapshotInstall,
//! SnapshotInstallUnreliable, SnapshotInstallCrash, SnapshotInstallUnCrash, SnapshotAllCrash,
//! SnapshotInit. Paper §7 (log compaction, InstallSnapshot).
//!
//! The simulated state machine snapshots every 10 applied entries (6.824
//! `SnapShotInterval = 10`), and the largest persisted Raft state (hard state + log) must stay
//! under 2,000 bytes (`MAXLOGSIZE`).

#[macro_use]
mod common;

use common::*;
use sim::SimConfig;

/// 6.824 `SnapShotInterval`.
const SNAPSHOT_INTERVAL: u64 = 10;
/// 6.824 `MAXLOGSIZE`: persisted Raft state must stay below this many bytes.
const MAX_LOG_BYTES: usize = 2000;

fn snap_config(seed: u64, net: Net) -> SimConfig {
    let mut cfg = config(3, seed, net);
    cfg.snapshot_every = Some(SNAPSHOT_INTERVAL);
    cfg
}

fn install_snapshots_sent(h: &Harness) -> u64 {
    h.c.stats()
        .by_kind
        .get("InstallSnapshot")
        .copied()
        .unwrap_or(0)
}

fn check_log_size(h: &Harness, when: &str) {
    let bytes = h.max_log_bytes();
    h.check(bytes < MAX_LOG_BYTES, || {
        format!(
            "log size too large {when}: {bytes} >= {MAX_LOG_BYTES} bytes of persisted Raft state"
        )
    });
}

/// The 6.824 `snapcommon` driver: 30 iterations, each faulting a victim (the follower after
/// the leader; every third iteration the leader itself, and then a follower "sends" the
/// `Start`s, which it refuses), issuing 5–14 `Start`s, committing, checking the persisted Raft
/// state < 2,000 bytes, and bringing the victim back so that it catches up.
fn snapcommon(h: &mut Harness, disconnect: bool, crash: bool) {
    let servers = 3;
    let c = h.rand_cmd();
    h.one(c, servers, true);
    let mut leader1 = h.check_one_leader();

    for i in 0..30 {
        let mut victim = h.peer(leader1, 1);
        let mut sender = leader1;
        if i % 3 == 1 {
            sender = h.peer(leader1, 1);
            victim = leader1;
        }

        if disconnect {
            h.disconnect(victim);
            let c = h.rand_cmd();
            h.one(c, servers - 1, true);
        }
        if crash {
            h.crash1(victim);
            let c = h.rand_cmd();
            h.one(c, servers - 1, true);
        }

        // Perhaps send enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + h.rng.below(SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let c = h.rand_cmd();
            h.start(sender, c);
        }

        // Let applier threads catch up with the Start()'s.
        let c = h.rand_cmd();
        if !disconnect && !crash {
            // Make sure all followers have caught up, so that an InstallSnapshot RPC isn't
            // required for the basic test.
            h.one(c, servers, true);
        } else {
            h.one(c, servers - 1, true);
        }

        check_log_size(h, &format!("in iteration {i}"));
        h.note(format!(
            "iteration {i}: max persisted raft state {} bytes",
            h.max_log_bytes()
        ));

        if disconnect {
            // Reconnect a follower, who maybe behind and needs to receive a snapshot to catch up.
            h.connect(victim);
            let c = h.rand_cmd();
            h.one(c, servers, true);
            leader1 = h.check_one_leader();
        }
        if crash {
            h.start1(victim);
            h.connect(victim);
            let c = h.rand_cmd();
            h.one(c, servers, true);
            leader1 = h.check_one_leader();
        }
    }
    for id in h.ids() {
        let bytes = h.c.persisted_snapshot_bytes(id);
        h.check(bytes > 0, || {
            format!("{id:?} never persisted a snapshot in 30 iterations")
        });
    }
}

/// TestSnapshotBasic3D (§7): snapshots every 10 entries on a healthy cluster keep the
/// persisted Raft state under 2,000 bytes.
#[test]
fn snapshot_basic_3d() {
    run_seeds(scenario!("snapshot_basic_3d"), SEEDS, |seed| {
        let mut h = Harness::new(
            scenario!("snapshot_basic_3d"),
            snap_config(seed, Net::Reliable),
        );
        snapcommon(&mut h, false, false);
    });
}

/// TestSnapshotInstall3D (§7 InstallSnapshot): a disconnected victim that fell behind the
/// leader's snapshot catches up when reconnected; InstallSnapshot is actually used.
#[test]
fn snapshot_install_3d() {
    run_seeds(scenario!("snapshot_install_3d"), SEEDS, |seed| {
        let mut h = Harness::new(
            scenario!("snapshot_install_3d"),
            snap_config(seed, Net::Reliable),
        );
        snapcommon(&mut h, true, false);
        h.note(format!(
            "{} InstallSnapshot sent",
            install_snapshots_sent(&h)
        ));
        h.check(install_snapshots_sent(&h) > 0, || {
            "no InstallSnapshot was ever sent to a lagging victim".into()
        });
    });
}

/// TestSnapshotInstallUnreliable3D (§7): as `snapshot_install_3d` on the unreliable network.
#[test]
fn snapshot_install_unreliable_3d() {
    run_seeds(scenario!("snapshot_install_unreliable_3d"), SEEDS, |seed| {
        let mut h = Harness::new(
            scenario!("snapshot_install_unreliable_3d"),
            snap_config(seed, Net::Unreliable),
        );
        snapcommon(&mut h, true, false);
        h.check(install_snapshots_sent(&h) > 0, || {
            "no InstallSnapshot was ever sent to a lagging victim".into()
        });
    });
}

/// TestSnapshotInstallCrash3D (§7, Figure 2): a crashed victim restarts from its snapshot +
/// log and catches up (by InstallSnapshot when it fell behind the leader's snapshot).
#[test]
fn snapshot_install_crash_3d() {
    run_seeds(scenario!("snapshot_install_crash_3d"), SEEDS, |seed| {
        let mut h = Harness::new(
            scenario!("snapshot_install_crash_3d"),
            snap_config(seed, Net::Reliable),
        );
        snapcommon(&mut h, false, true);
        h.note(format!(
            "{} InstallSnapshot sent",
            install_snapshots_sent(&h)
        ));
        h.check(install_snapshots_sent(&h) > 0, || {
            "no InstallSnapshot was ever sent to a lagging victim".into()
        });
    });
}

/// TestSnapshotInstallUnCrash3D (§7): as `snapshot_install_crash_3d` on the unreliable network.
#[test]
fn snapshot_install_uncrash_3d() {
    run_seeds(scenario!("snapshot_install_uncrash_3d"), SEEDS, |seed| {
        let mut h = Harness::new(
            scenario!("snapshot_install_uncrash_3d"),
            snap_config(seed, Net::Unreliable),
        );
        snapcommon(&mut h, false, true);
        h.note(format!(
            "{} InstallSnapshot sent",
            install_snapshots_sent(&h)
        ));
        h.check(install_snapshots_sent(&h) > 0, || {
            "no InstallSnapshot was ever sent to a lagging victim".into()
        });
    });
}

/// TestSnapshotAllCrash3D (§7, Figure 2): 5 rounds of committing 5–14 entries, crashing and
/// restarting all 3 peers; the next commit's index must exceed the last one before the crash
/// (restart from snapshot + log tail, no index regression).
#[test]
fn snapshot_all_crash_3d() {
    run_seeds(scenario!("snapshot_all_crash_3d"), SEEDS, |seed| {
        let mut h = Harness::new(
            scenario!("snapshot_all_crash_3d"),
            snap_config(seed, Net::Reliable),
        );
        let servers = 3;
        let c = h.rand_cmd();
        h.one(c, servers, true);
        for _iter in 0..5 {
            // Perhaps enough to get a snapshot.
            let nn = SNAPSHOT_INTERVAL / 2 + h.rng.below(SNAPSHOT_INTERVAL);
            for _ in 0..nn {
                let c = h.rand_cmd();
                h.one(c, servers, true);
            }
            let c = h.rand_cmd();
            let index1 = h.one(c, servers, true);

            // Crash all, then revive all.
            for id in h.ids() {
                h.crash1(id);
            }
            for id in h.ids() {
                h.start1(id);
                h.connect(id);
            }

            let c = h.rand_cmd();
            let index2 = h.one(c, servers, true);
            h.check(index2 > index1, || {
                format!("index decreased from {index1:?} to {index2:?}")
            });
        }
        for id in h.ids() {
            let bytes = h.c.persisted_snapshot_bytes(id);
            h.check(bytes > 0, || {
                format!("{id:?} has no snapshot after ≥ 30 commits")
            });
        }
    });
}

/// TestSnapshotInit3D (§7): after ≥ one snapshot, crash+restart all, commit one (forcing a
/// persist), crash+restart all again: peers must not forget the snapshot they restarted from
/// when they persist, so the next commit still succeeds.
#[test]
fn snapshot_init_3d() {
    run_seeds(scenario!("snapshot_init_3d"), SEEDS, |seed| {
        let mut h = Harness::new(
            scenario!("snapshot_init_3d"),
            snap_config(seed, Net::Reliable),
        );
        let servers = 3;
        let c = h.rand_cmd();
        h.one(c, servers, true);

        // Enough ops to make a snapshot.
        for _ in 0..SNAPSHOT_INTERVAL + 1 {
            let c = h.rand_cmd();
            h.one(c, servers, true);
        }
        for id in h.ids() {
            let bytes = h.c.persisted_snapshot_bytes(id);
            h.check(bytes > 0, || {
                format!(
                    "{id:?} has no snapshot after {} commits",
                    SNAPSHOT_INTERVAL + 2
                )
            });
        }
        let applied_before: Vec<Vec<u64>> =
            h.ids().into_iter().map(|id| h.applied_values(id)).collect();

        // Crash all.
        for id in h.ids() {
            h.crash1(id);
        }
        for id in h.ids() {
            h.start1(id);
            h.connect(id);
        }

        // A single op, to get something to be written back to persistent storage.
        let c = h.rand_cmd();
        h.one(c, servers, true);

        for id in h.ids() {
            h.crash1(id);
        }
        for id in h.ids() {
            h.start1(id);
            h.connect(id);
        }

        // Do another op to trigger potential bug.
        let c = h.rand_cmd();
        h.one(c, servers, true);

        for (k, id) in h.ids().into_iter().enumerate() {
            let applied = h.applied_values(id);
            h.check(applied.starts_with(&applied_before[k]), || {
                format!(
                    "{id:?} lost applied commands across restarts: had {:?}, now {applied:?}",
                    applied_before[k]
                )
            });
        }
    });
}

/// Beyond 6.824 (the chunked InstallSnapshot, Figure 13): the `snapcommon`
/// disconnect driver on the unreliable network with 256-byte snapshot chunks, so every
/// install takes many chunks, some lost or delayed; victims still catch up and the persisted
/// Raft state stays under 2,000 bytes.
#[test]
fn snapshot_install_chunked_unreliable() {
    run_seeds(
        scenario!("snapshot_install_chunked_unreliable"),
        SEEDS / 2,
        |seed| {
            let mut cfg = snap_config(seed, Net::Unreliable);
            cfg.snapshot_chunk_bytes = 256;
            let mut h = Harness::new(scenario!("snapshot_install_chunked_unreliable"), cfg);
            snapcommon(&mut h, true, false);
            let chunks = install_snapshots_sent(&h);
            let snapshot_bytes = h.c.persisted_snapshot_bytes(h.ids()[0]);
            h.note(format!(
                "{chunks} InstallSnapshot chunks sent; snapshot is {snapshot_bytes} bytes"
            ));
            h.check(snapshot_bytes > 4 * 256, || {
                format!(
                    "precondition: snapshot of {snapshot_bytes} bytes does not need several chunks"
                )
            });
            h.check(chunks > 30, || {
                format!("only {chunks} InstallSnapshot chunks: installs were not chunked")
            });
        },
    );
}
