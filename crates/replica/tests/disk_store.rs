//! The node's persistence checks on the real write-ahead log: the same promises the unit tests
//! in `src/node.rs` check over `MemStore` (a restart restores the snapshot and the log; a crash
//! loses nothing acknowledged), here over `storage::DiskStore<FaultFs>` with real power cuts —
//! at every file operation of a workload, with unsynced data lost, kept, torn or zero-filled.
//!
//! Promises checked (Raft §5.1 "persistent state … updated on stable storage before
//! responding to RPCs", §5.4 safety):
//! - every `Completion::Applied` a node returned survives a power cut at any later point;
//! - a restarted node holds nothing that was never proposed, in order;
//! - a follower's acknowledged appends and granted votes survive a power cut at any point
//!   after the acknowledgement left the node.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use raft::{AppendOutcome, Config, Configuration, LogIndex, Message, MessageBody, NodeId, Term};
use replica::{Completion, Replica, SnapshotPolicy, StateMachine};
use std::path::Path;
use storage::{DiskOptions, DiskStore, FaultFs, Identity, LogStore, Restart};

/// Keeps every applied command with its index; its snapshot is the list.
#[derive(Default)]
struct ListSm(Vec<(LogIndex, Bytes)>);

impl StateMachine for ListSm {
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Bytes {
        self.0.push((index, Bytes::copy_from_slice(data)));
        Bytes::from(self.0.len().to_string())
    }
    fn snapshot(&self) -> Bytes {
        let mut b = BytesMut::new();
        for (index, data) in &self.0 {
            b.put_u64_le(index.0);
            b.put_u32_le(data.len() as u32);
            b.put_slice(data);
        }
        b.freeze()
    }
    fn restore(&mut self, data: &[u8]) {
        let mut b = Bytes::copy_from_slice(data);
        self.0.clear();
        while b.has_remaining() {
            let index = LogIndex(b.get_u64_le());
            let n = b.get_u32_le() as usize;
            self.0.push((index, b.split_to(n)));
        }
    }
}

type DiskReplica = Replica<DiskStore<FaultFs>, ListSm>;

const DATA_DIR: &str = "/data";

/// Small segments and a one-byte write buffer: every record is its own write (a power cut
/// can fall between any two), and segments roll and get removed within a short workload.
fn options() -> DiskOptions {
    DiskOptions {
        segment_bytes: 512,
        write_buffer_bytes: 1,
        preallocate_bytes: 100,
    }
}

fn open(fs: &FaultFs, id: NodeId, voters: &[NodeId]) -> DiskStore<FaultFs> {
    let identity = Identity {
        cluster_id: 0xD15C,
        node_id: id,
        bootstrap: Configuration::new(voters.iter().copied()),
    };
    DiskStore::open(fs.clone(), Path::new(DATA_DIR), identity, options())
        .unwrap_or_else(|e| panic!("{id:?}: recovery failed: {e}"))
}

fn start(store: DiskStore<FaultFs>, id: NodeId, policy: SnapshotPolicy) -> DiskReplica {
    Replica::new(Config::new(id), store, ListSm::default(), policy).unwrap()
}

/// Power cut: the replica dies with its store; the disk keeps what `mode` says; the store
/// is recovered.
fn power_cycle(
    r: DiskReplica,
    fs: &FaultFs,
    mode: Restart,
    id: NodeId,
    voters: &[NodeId],
) -> DiskStore<FaultFs> {
    fs.cut_power();
    drop(r);
    fs.restart(mode);
    open(fs, id, voters)
}

/// The restart modes every cut point is tried with.
fn modes(cut: u64) -> [Restart; 4] {
    [
        Restart::LoseUnsynced,
        Restart::KeepCompleted {
            torn_bytes: (cut % 23) as usize,
            zero_fill: false,
        },
        Restart::KeepCompleted {
            torn_bytes: (cut % 7) as usize,
            zero_fill: true,
        },
        Restart::Random { seed: cut },
    ]
}

/// A one-node cluster's leader, elected on `store`.
fn single_leader(store: DiskStore<FaultFs>, policy: SnapshotPolicy) -> DiskReplica {
    let mut r = start(store, NodeId(1), policy);
    r.campaign();
    let mut out: Vec<Message> = Vec::new();
    r.handle_ready(&mut out).unwrap();
    assert!(r.raft().is_leader());
    r
}

/// Restart the one-node cluster from `store` and let it apply everything it holds (its new
/// term's no-op commits the whole log).
fn recover_single(store: DiskStore<FaultFs>, policy: SnapshotPolicy) -> DiskReplica {
    let r = single_leader(store, policy);
    assert_eq!(
        r.applied_index(),
        r.raft().last_index(),
        "everything re-applied"
    );
    r
}

/// `applied` holds every acknowledged command at its index, and only commands that were
/// proposed, in proposal order.
fn check_single(applied: &[(LogIndex, Bytes)], acked: &[(LogIndex, Bytes)], what: &str) {
    for (index, data) in acked {
        assert!(
            applied.contains(&(*index, data.clone())),
            "{what}: acknowledged {data:?} at {index:?} lost; recovered {applied:?}"
        );
    }
    let mut last = None;
    for (index, data) in applied {
        let text = std::str::from_utf8(data).unwrap();
        let n: u64 = text
            .strip_prefix('p')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{what}: {text:?} at {index:?} was never proposed"));
        assert!(
            last.is_none_or(|(i, m)| *index > i && n > m),
            "{what}: {text:?} at {index:?} out of order after {last:?}"
        );
        last = Some((*index, n));
    }
}

/// The workload of one crash cycle: `count` proposals in batches of 1–3, each batch handled
/// as one `Ready`; returns the acknowledged ones. Stops at the first storage error (the
/// power went out).
fn propose_until_cut(
    r: &mut DiskReplica,
    first: u64,
    count: u64,
    acked: &mut Vec<(LogIndex, Bytes)>,
) -> bool {
    let mut i = first;
    while i < first + count {
        for _ in 0..(1 + i % 3).min(first + count - i) {
            r.propose(Bytes::from(format!("p{i}")), i).unwrap();
            i += 1;
        }
        match r.handle_ready(&mut Vec::new()) {
            Ok(done) => {
                for c in done {
                    match c {
                        Completion::Applied { id, token, .. } => {
                            acked.push((id.index, Bytes::from(format!("p{token}"))));
                        }
                        other => panic!("unexpected completion {other:?}"),
                    }
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// node.rs `snapshot_policy_compacts_and_restart_restores`, on the WAL: snapshots replace
/// whole segments (removed once obsolete), and a restart after a power cut restores the
/// snapshot and replays the log after it.
#[test]
fn restart_restores_snapshot_and_log_from_disk() {
    let fs = FaultFs::new();
    let policy = SnapshotPolicy::every(3);
    let mut r = single_leader(open(&fs, NodeId(1), &[NodeId(1)]), policy);
    let mut acked = Vec::new();
    assert!(propose_until_cut(&mut r, 0, 200, &mut acked));
    assert_eq!(acked.len(), 200);
    assert!(r.snapshot_index() >= LogIndex(150));
    assert!(
        r.store().segment_count() <= 3,
        "obsolete segments removed: {} left",
        r.store().segment_count()
    );
    let applied = r.applied_index();
    let store = power_cycle(r, &fs, Restart::LoseUnsynced, NodeId(1), &[NodeId(1)]);
    let snap = store
        .snapshot()
        .expect("snapshot recovered")
        .meta
        .last
        .index;
    assert!(snap >= LogIndex(150) && store.last_index() >= applied);
    let r = recover_single(store, policy);
    assert_eq!(
        r.state_machine().0.len(),
        200,
        "snapshot + log give back every command"
    );
    check_single(&r.state_machine().0, &acked, "restart");
}

/// node.rs `crash_before_sync_loses_nothing_acknowledged`, on the WAL, at every cut point:
/// three crash cycles of a single-node leader with snapshots every 5 entries; in each the
/// power goes out at a chosen file operation (a write, a sync, a segment roll, a snapshot
/// file, a removal), the disk keeps a mode's worth of unsynced data, and recovery must give
/// back every acknowledged command.
#[test]
fn every_applied_proposal_survives_a_power_cut_at_any_operation() {
    cut_everywhere(SnapshotPolicy::every(5), |r, first, acked, _| {
        propose_until_cut(r, first, 30, acked)
    });
}

/// One cycle of a power-cut workload: proposals numbered from `first`, recording the
/// acknowledged ones; false when the power went out. The last argument varies per cycle.
type Workload = fn(&mut DiskReplica, u64, &mut Vec<(LogIndex, Bytes)>, u64) -> bool;

/// Three crash cycles of a single-node leader under `policy` running `workload`, for every
/// cut point of a cycle and every restart mode: in each cycle the power goes out at a chosen
/// file operation, and recovery must give back every acknowledged command.
fn cut_everywhere(policy: SnapshotPolicy, workload: Workload) {
    // Operations one cycle of the workload makes, measured without a cut.
    let fs = FaultFs::new();
    let mut r = single_leader(open(&fs, NodeId(1), &[NodeId(1)]), policy);
    let before = fs.ops();
    assert!(workload(&mut r, 0, &mut Vec::new(), 0));
    assert!(r.snapshot_index() >= LogIndex(20), "the workload compacts");
    let cycle_ops = fs.ops() - before;
    assert!(cycle_ops > 60, "a cycle makes {cycle_ops} file operations");

    let mut cut_points = 0;
    for cut in 0..=cycle_ops {
        for mode in modes(cut) {
            let what = |cycle: u64| format!("cut at op {cut} of cycle {cycle}, {mode:?}");
            let fs = FaultFs::new();
            let mut store = open(&fs, NodeId(1), &[NodeId(1)]);
            let mut acked = Vec::new();
            for cycle in 0..3u64 {
                let mut r = single_leader(store, policy);
                // Later cycles cut elsewhere, so recovery also meets its own earlier repairs.
                fs.cut_power_after(fs.ops() + (cut + 17 * cycle) % (cycle_ops + 1));
                let survived = workload(&mut r, cycle * 1000, &mut acked, cut + cycle);
                assert!(
                    survived || fs.is_dead(),
                    "{}: only power cuts fail",
                    what(cycle)
                );
                store = power_cycle(r, &fs, mode, NodeId(1), &[NodeId(1)]);
                cut_points += 1;
                let r = recover_single(store, policy);
                check_single(&r.state_machine().0, &acked, &what(cycle));
                let (s, _) = r.into_parts();
                store = s;
            }
        }
    }
    assert!(cut_points > 700, "{cut_points} cut points");
}

/// [`propose_until_cut`] with background snapshots: a job handed out after one batch runs
/// (its file written, the log compacted) after the next, as a snapshot thread finishing while
/// the node goes on would. The job still pending at the end is dropped, or with `orphan` run
/// without being adopted (the file is written; the WAL never names it).
fn propose_until_cut_bg(
    r: &mut DiskReplica,
    first: u64,
    count: u64,
    acked: &mut Vec<(LogIndex, Bytes)>,
    orphan: bool,
) -> bool {
    let mut pending: Option<replica::SnapshotJob> = None;
    let mut i = first;
    while i < first + count {
        let batch = (1 + i % 3).min(first + count - i);
        if !propose_until_cut(r, i, batch, acked) {
            return false;
        }
        i += batch;
        if let Some(job) = pending.take() {
            if r.on_snapshot_written(job.run()).is_err() {
                return false;
            }
        }
        pending = r.take_snapshot_job();
    }
    if let Some(job) = pending {
        if orphan {
            let _ = job.run();
        }
    }
    true
}

/// [`every_applied_proposal_survives_a_power_cut_at_any_operation`] with snapshots written in
/// the background: the power may go out while a snapshot file is written, between the file
/// and the WAL record that adopts it, or after an orphaned file; recovery gives back every
/// acknowledged command and removes what the WAL does not name.
#[test]
fn background_snapshots_survive_a_power_cut_at_any_operation() {
    cut_everywhere(
        SnapshotPolicy::every(5).in_background(),
        |r, first, acked, n| propose_until_cut_bg(r, first, 30, acked, n % 2 == 0),
    );
}

/// Delivers messages between a leader (node 1) and a follower (node 2) on their own disks,
/// recording what the follower promised: the highest index it acknowledged and the votes it
/// granted. A follower's storage error (its power went out) stops the pump; what it sent
/// before still reaches the leader.
struct Pair {
    leader: DiskReplica,
    follower: DiskReplica,
    /// Highest `match_index` the follower acknowledged, with the leader's term then.
    acked: Option<(LogIndex, Term)>,
    /// Terms in which the follower granted its vote to the leader.
    granted: Vec<Term>,
}

impl Pair {
    /// Run until quiet; false when the follower's power went out.
    fn pump(&mut self) -> bool {
        loop {
            let mut to_follower: Vec<Message> = Vec::new();
            self.leader.handle_ready(&mut to_follower).unwrap();
            for m in to_follower {
                self.follower.receive(m).unwrap();
            }
            let mut to_leader: Vec<Message> = Vec::new();
            let res = self.follower.handle_ready(&mut to_leader);
            let quiet = to_leader.is_empty();
            for m in to_leader {
                self.note_promise(&m);
                self.leader.receive(m).unwrap();
            }
            if res.is_err() {
                return false;
            }
            if quiet && !self.leader.raft().has_ready() {
                return true;
            }
        }
    }

    fn note_promise(&mut self, m: &Message) {
        match &m.body {
            MessageBody::AppendResponse(r) => {
                if let AppendOutcome::Accepted { match_index } = r.outcome {
                    if self.acked.is_none_or(|(i, _)| match_index > i) {
                        self.acked = Some((match_index, m.term));
                    }
                }
            }
            MessageBody::VoteResponse(v) if v.granted && !v.pre_vote => self.granted.push(m.term),
            _ => {}
        }
    }
}

/// A follower's durability promises (§5.1: persist before responding), at every cut point:
/// after a power cut at any file operation, the recovered follower still holds every entry
/// it acknowledged (same terms as the leader's log) and has not forgotten a vote it granted.
#[test]
fn follower_acknowledgements_survive_a_power_cut_at_any_operation() {
    let voters = [NodeId(1), NodeId(2)];
    let run = |cut: Option<u64>, mode: Restart| -> u64 {
        let (lfs, ffs) = (FaultFs::new(), FaultFs::new());
        // The leader keeps its whole log (to compare with); the follower compacts.
        let mut p = Pair {
            leader: start(
                open(&lfs, NodeId(1), &voters),
                NodeId(1),
                SnapshotPolicy::never(),
            ),
            follower: start(
                open(&ffs, NodeId(2), &voters),
                NodeId(2),
                SnapshotPolicy::every(4),
            ),
            acked: None,
            granted: Vec::new(),
        };
        let base = ffs.ops();
        if let Some(cut) = cut {
            ffs.cut_power_after(base + cut);
        }
        p.leader.campaign();
        let mut alive = p.pump();
        let mut i = 0;
        while alive && i < 24 {
            for _ in 0..1 + i % 3 {
                let _ = p.leader.propose(Bytes::from(format!("p{i}")), i);
                i += 1;
            }
            alive = p.pump();
        }
        let ops = ffs.ops() - base;
        let Pair {
            leader,
            follower,
            acked,
            granted,
        } = p;
        let store = power_cycle(follower, &ffs, mode, NodeId(2), &voters);
        let what = format!("follower cut at op {cut:?}, {mode:?}");
        let hs = store.hard_state();
        for t in &granted {
            assert!(
                hs.term > *t || (hs.term == *t && hs.vote == NodeId(1)),
                "{what}: granted its vote in {t:?}, recovered {hs:?}"
            );
        }
        if let Some((index, _)) = acked {
            assert!(
                store.last_index() >= index,
                "{what}: acknowledged {index:?}, recovered up to {:?}",
                store.last_index()
            );
            for k in store.first_index().prev().0.max(1)..=index.0 {
                let k = LogIndex(k);
                assert_eq!(
                    store.term(k),
                    leader.raft().term_at(k),
                    "{what}: acknowledged entry {k:?} differs from the leader's"
                );
            }
        }
        ops
    };
    let total = run(None, Restart::LoseUnsynced);
    assert!(total > 40, "the follower makes {total} file operations");
    for cut in 0..=total {
        for mode in modes(cut) {
            run(Some(cut), mode);
        }
    }
}
