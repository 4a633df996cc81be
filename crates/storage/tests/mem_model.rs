//! Model check of `MemStore`: random writes, syncs and crashes against the simplest model —
//! the list of writes, replayed naively into a `BTreeMap` log.

use proptest::prelude::*;
use raft::{
    Configuration, Entry, EntryId, EntryKind, HardState, LogIndex, NodeId, Snapshot, SnapshotMeta,
    Term,
};
use std::collections::BTreeMap;
use storage::{LogStore, MemStore};

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<Entry>),
    Hard(HardState),
    Snap(Snapshot),
}

/// The model: durable writes, then unsynced ones; state is a naive replay.
#[derive(Default)]
struct Model {
    durable: Vec<Op>,
    unsynced: Vec<Op>,
}

#[derive(Default, PartialEq, Debug)]
struct View {
    hard: HardState,
    snap: Option<EntryId>,
    log: BTreeMap<u64, (u64, Vec<u8>)>,
}

fn replay(ops: &[Op]) -> View {
    let mut v = View::default();
    for op in ops {
        match op {
            Op::Hard(h) => v.hard = *h,
            Op::Append(es) => {
                let first = es[0].index.0;
                v.log.retain(|&i, _| i < first);
                for e in es {
                    v.log.insert(e.index.0, (e.term.0, e.data.to_vec()));
                }
            }
            Op::Snap(s) => {
                let last = s.meta.last;
                // The stored snapshot's last entry counts as part of the log.
                let keep = v.log.get(&last.index.0).map(|x| x.0) == Some(last.term.0)
                    || v.snap == Some(last);
                v.log.retain(|&i, _| keep && i > last.index.0);
                v.snap = Some(last);
            }
        }
    }
    v
}

impl Model {
    fn view(&self) -> View {
        let all: Vec<Op> = self.durable.iter().chain(&self.unsynced).cloned().collect();
        replay(&all)
    }
}

fn observe(s: &MemStore) -> View {
    let init = s.initial_state().unwrap();
    View {
        hard: init.hard_state,
        snap: init.snapshot.map(|s| s.meta.last),
        log: init
            .entries
            .iter()
            .map(|e| (e.index.0, (e.term.0, e.data.to_vec())))
            .collect(),
    }
}

fn entry(index: u64, term: u64, tag: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        kind: EntryKind::Normal,
        data: format!("{index}.{term}.{tag}").into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn memstore_matches_model(raw in prop::collection::vec((0u8..10, any::<u64>(), 0u64..6), 1..120)) {
        let mut store = MemStore::new(Configuration::new([NodeId(1)]));
        let mut model = Model::default();
        let mut term = 1u64;
        for (step, (kind, a, n)) in raw.into_iter().enumerate() {
            let view = model.view();
            let snap_index = view.snap.map_or(0, |s| s.index.0);
            let last = view.log.keys().next_back().copied().unwrap_or(snap_index);
            match kind {
                0..=3 => {
                    // Append 1..=6 entries somewhere in [snapshot + 1, last + 1].
                    let first = snap_index + 1 + a % (last - snap_index + 1);
                    if a % 3 == 0 { term += 1; }
                    let es: Vec<Entry> =
                        (0..=n).map(|k| entry(first + k, term, step as u64)).collect();
                    store.append(&es).unwrap();
                    model.unsynced.push(Op::Append(es));
                }
                4 => {
                    let h = HardState { term: Term(a % 9), vote: NodeId(a % 4), commit: LogIndex(a % 17) };
                    store.set_hard_state(h).unwrap();
                    model.unsynced.push(Op::Hard(h));
                }
                5 => {
                    // Snapshot at or above the stored one: sometimes matching the log, sometimes not.
                    let index = snap_index + a % (last - snap_index + 3);
                    let t = if a % 4 == 0 { term + 1 } else { view.log.get(&index).map_or(term, |x| x.0) };
                    let s = Snapshot {
                        meta: SnapshotMeta { last: EntryId::new(Term(t), LogIndex(index)), config: Configuration::new([NodeId(1)]) },
                        data: vec![step as u8; n as usize].into(),
                    };
                    store.save_snapshot(&s).unwrap();
                    model.unsynced.push(Op::Snap(s));
                }
                6 | 7 => {
                    store.sync().unwrap();
                    let u = std::mem::take(&mut model.unsynced);
                    model.durable.extend(u);
                }
                _ => {
                    let keep = if kind == 8 { 0 } else { (a % 4) as usize };
                    let before = store.unsynced_writes();
                    store.crash_keeping(keep);
                    let keep = keep.min(before);
                    let u = std::mem::take(&mut model.unsynced);
                    model.durable.extend(u.into_iter().take(keep));
                    let durable = replay(&model.durable);
                    let bytes: usize = durable.log.iter().map(|(_, (_, d))| d.len() + raft::types::ENTRY_OVERHEAD_BYTES).sum();
                    prop_assert_eq!(store.durable_log_bytes(), storage::mem::HARD_STATE_BYTES + bytes);
                }
            }
            prop_assert_eq!(observe(&store), model.view());
            prop_assert_eq!(store.unsynced_writes(), model.unsynced.len());
        }
    }
}
