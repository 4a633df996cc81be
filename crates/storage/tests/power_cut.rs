//! Power cuts at every write/sync boundary of a long WAL workload.
//!
//! A seeded workload (appends with conflict truncations, hard states, snapshots that keep or
//! replace the log, syncs) runs against `DiskStore<FaultFs>` with small segments, so segment
//! rolls and segment/snapshot removal are inside the workload. The same workload runs once
//! per cut point `c`: the file system fails its `c`-th operation and every one after. Each cut
//! is then restarted several ways (lose everything unsynced; keep completed writes and tear
//! the write in flight at various bytes, with and without a zero-filled tail; seeded random
//! prefixes), and recovery must yield exactly the state after some prefix of the workload's
//! records: never less than what the last successful `sync` covered, never anything that was
//! not written. The recovered store must then accept writes and recover them again.
//!
//! `RAFTKV_POWER_CUT_CALLS` sets the workload length (default 1500 store calls).

use raft::{
    Configuration, Entry, EntryId, EntryKind, HardState, LogIndex, NodeId, Snapshot, SnapshotMeta,
    Term,
};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use storage::{DiskOptions, DiskStore, FaultFs, Identity, LogStore, MemStore, Restart};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<Entry>),
    HardState(HardState),
    Snapshot(Snapshot),
    Sync,
}

fn conf() -> Configuration {
    Configuration::new([NodeId(1), NodeId(2), NodeId(3)])
}

fn identity() -> Identity {
    Identity {
        cluster_id: 0xFEED,
        node_id: NodeId(1),
        bootstrap: conf(),
    }
}

fn opts(preallocate_bytes: u64) -> DiskOptions {
    DiskOptions {
        segment_bytes: 2048,
        write_buffer_bytes: 512,
        preallocate_bytes,
    }
}

fn entry(index: u64, term: u64, rng: &mut Rng) -> Entry {
    let len = rng.below(300) as usize;
    let mut data = format!("{index}:{term}:").into_bytes();
    data.resize(data.len() + len, (index * 31 + term) as u8);
    Entry {
        term: Term(term),
        index: LogIndex(index),
        kind: if rng.below(20) == 0 {
            EntryKind::Noop
        } else {
            EntryKind::Normal
        },
        data: data.into(),
    }
}

/// A Raft-like sequence of store calls, valid against the model at every step.
fn workload(seed: u64, calls: usize) -> Vec<Op> {
    let mut rng = Rng(seed);
    let mut model = MemStore::new(conf());
    let mut term = 1;
    let mut ops = Vec::with_capacity(calls);
    while ops.len() < calls {
        let first = model.first_index().0;
        let last = model.last_index().0;
        let op = match rng.below(100) {
            0..=54 => {
                let at = if last >= first && rng.below(6) == 0 {
                    term += 1;
                    first + rng.below(last - first + 1)
                } else {
                    last + 1
                };
                let n = 1 + rng.below(5);
                Op::Append((at..at + n).map(|i| entry(i, term, &mut rng)).collect())
            }
            55..=74 => Op::HardState(HardState {
                term: Term(term),
                vote: NodeId(1 + rng.below(3)),
                commit: LogIndex(first.saturating_sub(1) + rng.below(last + 2 - first)),
            }),
            75..=79 => {
                let (index, t) = if rng.below(4) == 0 || last < first {
                    // Beyond or diverging from the log: replaces it.
                    term += 1;
                    (last + rng.below(3), term)
                } else {
                    let i = first + rng.below(last - first + 1);
                    (i, model.term_at(LogIndex(i)).unwrap().0)
                };
                let index = index.max(first.saturating_sub(1)).max(1);
                Op::Snapshot(Snapshot {
                    meta: SnapshotMeta {
                        last: EntryId::new(Term(t), LogIndex(index)),
                        config: conf(),
                    },
                    data: format!("sm@{index}").into(),
                })
            }
            _ => Op::Sync,
        };
        apply(&mut model, &op).expect("workload is valid for the model");
        ops.push(op);
    }
    ops
}

fn apply(s: &mut impl LogStore, op: &Op) -> Result<(), storage::StorageError> {
    match op {
        Op::Append(es) => s.append(es),
        Op::HardState(hs) => s.set_hard_state(*hs),
        Op::Snapshot(snap) => s.save_snapshot(snap),
        Op::Sync => s.sync(),
    }
}

fn fingerprint(s: &impl LogStore) -> u64 {
    let init = s.initial_state().unwrap();
    let mut h = DefaultHasher::new();
    (
        init.hard_state.term.0,
        init.hard_state.vote.0,
        init.hard_state.commit.0,
    )
        .hash(&mut h);
    if let Some(snap) = &init.snapshot {
        (
            snap.meta.last.term.0,
            snap.meta.last.index.0,
            &snap.data[..],
        )
            .hash(&mut h);
    }
    for e in &init.entries {
        (e.index.0, e.term.0, e.kind as u8, &e.data[..]).hash(&mut h);
    }
    h.finish()
}

/// The fingerprints of the model after every record the workload writes (an append of n
/// entries is n records), and, per call, how many records were complete before it.
fn model_states(ops: &[Op]) -> (Vec<u64>, Vec<usize>) {
    let mut model = MemStore::new(conf());
    let mut states = vec![fingerprint(&model)];
    let mut before = Vec::with_capacity(ops.len());
    for op in ops {
        before.push(states.len() - 1);
        match op {
            Op::Append(es) => {
                for e in es {
                    model.append(std::slice::from_ref(e)).unwrap();
                    states.push(fingerprint(&model));
                }
            }
            Op::Sync => {}
            op => {
                apply(&mut model, op).unwrap();
                states.push(fingerprint(&model));
            }
        }
    }
    before.push(states.len() - 1);
    (states, before)
}

struct Outcome {
    /// Records covered by the last successful sync.
    durable: usize,
    /// Records of every call that was at least attempted.
    attempted: usize,
}

/// Run `ops` until the file system dies; returns what was durable and what was attempted.
fn run_until_cut(fs: &FaultFs, ops: &[Op], before: &[usize], o: DiskOptions) -> Option<Outcome> {
    let mut store = match DiskStore::open(fs.clone(), "/data", identity(), o) {
        Ok(s) => s,
        Err(_) => {
            return Some(Outcome {
                durable: 0,
                attempted: 0,
            })
        }
    };
    let mut durable = 0;
    for (i, op) in ops.iter().enumerate() {
        match apply(&mut store, op) {
            Ok(()) => {
                if matches!(op, Op::Sync) {
                    durable = before[i];
                }
            }
            Err(_) => {
                assert!(fs.is_dead(), "call {i} failed without a power cut");
                return Some(Outcome {
                    durable,
                    attempted: before[i + 1],
                });
            }
        }
    }
    None
}

fn restarts(cut: u64) -> Vec<Restart> {
    let mut v = vec![Restart::LoseUnsynced];
    for torn in [0, 1, 9, 40, 100_000] {
        v.push(Restart::KeepCompleted {
            torn_bytes: torn,
            zero_fill: false,
        });
    }
    v.push(Restart::KeepCompleted {
        torn_bytes: 5,
        zero_fill: true,
    });
    v.push(Restart::Random { seed: cut });
    v
}

#[test]
fn recovery_after_a_cut_at_every_operation_yields_a_durable_prefix() {
    cut_at_every_operation(opts(0));
}

/// The same with segments zero-filled ahead of the records (in steps that do not divide the
/// segment size, so records straddle the end of the zeroed region).
#[test]
fn recovery_after_a_cut_with_preallocated_segments_yields_a_durable_prefix() {
    cut_at_every_operation(opts(700));
}

fn cut_at_every_operation(o: DiskOptions) {
    let calls = std::env::var("RAFTKV_POWER_CUT_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let ops = workload(0x5EED, calls);
    let (states, before) = model_states(&ops);
    // A full run without a cut: how many file-system operations the workload makes.
    let full = FaultFs::new();
    assert!(run_until_cut(&full, &ops, &before, o).is_none());
    let total_ops = full.ops();
    assert!(
        total_ops > 1000,
        "workload too short: {total_ops} fs operations"
    );
    let mut recoveries = 0;
    let mut torn_tails = 0;
    for cut in 0..total_ops {
        let fs = FaultFs::new();
        fs.cut_power_after(cut);
        let out = run_until_cut(&fs, &ops, &before, o).expect("the cut happens");
        for mode in restarts(cut) {
            let disk = fs.fork();
            disk.restart(mode);
            let mut store = DiskStore::open(disk.clone(), "/data", identity(), o)
                .unwrap_or_else(|e| panic!("cut {cut} {mode:?}: recovery failed: {e}"));
            recoveries += 1;
            torn_tails += usize::from(store.recovery_report().truncated.is_some());
            let got = fingerprint(&store);
            let window = &states[out.durable..=out.attempted];
            assert!(
                window.contains(&got),
                "cut {cut} {mode:?}: recovered state is not a prefix between record {} (durable) and {} (attempted)",
                out.durable,
                out.attempted
            );
            // The repaired log accepts writes and recovers them.
            if cut % 16 == 0 {
                let next = LogStore::last_index(&store).next();
                let e = Entry {
                    term: Term(1_000),
                    index: next,
                    kind: EntryKind::Normal,
                    data: "after".into(),
                };
                store.append(std::slice::from_ref(&e)).unwrap();
                store.sync().unwrap();
                let want = fingerprint(&store);
                drop(store);
                disk.restart(Restart::LoseUnsynced);
                let again = DiskStore::open(disk, "/data", identity(), o).unwrap();
                assert_eq!(
                    fingerprint(&again),
                    want,
                    "cut {cut} {mode:?}: rewrite lost"
                );
            }
        }
    }
    eprintln!(
        "power cuts ({o:?}): {} cut points x {} restart modes = {recoveries} recoveries ({torn_tails} torn tails repaired), {} records, {} store calls",
        total_ops,
        restarts(0).len(),
        states.len() - 1,
        ops.len()
    );
}
