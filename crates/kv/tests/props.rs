//! Property tests: the encodings round-trip and never panic on garbage; the store agrees with
//! a simple model; random txns are atomic; machines fed the same log agree byte for byte.

use bytes::Bytes;
use kv::*;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use raft::LogIndex;
use replica::StateMachine;
use std::collections::BTreeMap;

// ---- strategies ----

/// Short keys over a small alphabet, so operations collide often.
fn key() -> impl Strategy<Value = Bytes> {
    vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 1..=3).prop_map(Bytes::from)
}

fn range_end() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        2 => Just(Bytes::new()),
        1 => Just(Bytes::from_static(b"\0")),
        3 => key(),
    ]
}

/// A valid `(key, range_end)` pair: mostly single keys, some bounded ranges, a few `"\0"`.
fn valid_key_range() -> impl Strategy<Value = (Bytes, Bytes)> {
    (key(), key(), 0u8..10).prop_map(|(a, b, kind)| match kind {
        0..=5 => (a, Bytes::new()),
        6 => (a, Bytes::from_static(b"\0")),
        _ if a < b => (a, b),
        _ if b < a => (b, a),
        _ => (a, Bytes::new()),
    })
}

/// A `(key, range_end)` pair, valid nine times in ten.
fn key_range() -> impl Strategy<Value = (Bytes, Bytes)> {
    prop_oneof![9 => valid_key_range(), 1 => (key(), range_end())]
}

fn any_bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..6).prop_map(Bytes::from)
}

/// Revisions near the interesting values, and anything.
fn rev() -> impl Strategy<Value = i64> {
    prop_oneof![3 => -1i64..8, 1 => any::<i64>()]
}

fn range_request() -> impl Strategy<Value = RangeRequest> {
    let sort = (0usize..3, 0usize..5).prop_map(|(o, t)| {
        (
            [SortOrder::None, SortOrder::Ascend, SortOrder::Descend][o],
            [
                SortTarget::Key,
                SortTarget::Version,
                SortTarget::Create,
                SortTarget::Mod,
                SortTarget::Value,
            ][t],
        )
    });
    (
        (valid_key_range(), rev(), rev(), sort),
        (any::<[bool; 3]>(), prop_oneof![4 => Just([0i64; 4]), 1 => any::<[i64; 4]>().prop_map(|a| a.map(|x| x.rem_euclid(8)))]),
    )
        .prop_map(|(((key, range_end), limit, revision, (sort_order, sort_target)), (flags, filters))| RangeRequest {
            key,
            range_end,
            limit,
            revision: if revision % 3 == 0 { revision } else { 0 },
            sort_order,
            sort_target,
            serializable: flags[0],
            keys_only: flags[1],
            count_only: flags[2],
            min_mod_revision: filters[0],
            max_mod_revision: filters[1],
            min_create_revision: filters[2],
            max_create_revision: filters[3],
        })
}

fn put_request() -> impl Strategy<Value = PutRequest> {
    (
        key(),
        any_bytes(),
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(key, value, prev_kv, ignore_value, ignore_lease)| PutRequest {
                key,
                value: if ignore_value { Bytes::new() } else { value },
                prev_kv,
                ignore_value,
                ignore_lease,
            },
        )
}

fn delete_request() -> impl Strategy<Value = DeleteRangeRequest> {
    (valid_key_range(), any::<bool>()).prop_map(|((key, range_end), prev_kv)| DeleteRangeRequest {
        key,
        range_end,
        prev_kv,
    })
}

fn compare() -> impl Strategy<Value = Compare> {
    let result = prop_oneof![
        Just(CompareResult::Equal),
        Just(CompareResult::Greater),
        Just(CompareResult::Less),
        Just(CompareResult::NotEqual)
    ];
    let target = prop_oneof![
        (0i64..4).prop_map(CompareTarget::Version),
        (0i64..8).prop_map(CompareTarget::Create),
        (0i64..8).prop_map(CompareTarget::Mod),
        any_bytes().prop_map(CompareTarget::Value),
        (0i64..2).prop_map(CompareTarget::Lease),
    ];
    (result, target, valid_key_range()).prop_map(|(result, target, (key, range_end))| Compare {
        result,
        target,
        key,
        range_end,
    })
}

fn txn_request() -> impl Strategy<Value = TxnRequest> {
    let leaf = prop_oneof![
        range_request().prop_map(RequestOp::Range),
        put_request().prop_map(RequestOp::Put),
        delete_request().prop_map(RequestOp::DeleteRange),
    ];
    let op = leaf.prop_recursive(3, 24, 4, |inner| {
        (
            vec(compare(), 0..3),
            vec(inner.clone(), 0..4),
            vec(inner, 0..4),
        )
            .prop_map(|(compare, success, failure)| {
                RequestOp::Txn(TxnRequest {
                    compare,
                    success,
                    failure,
                })
            })
    });
    (vec(compare(), 0..3), vec(op.clone(), 0..4), vec(op, 0..4)).prop_map(
        |(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        },
    )
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        1 => range_request().prop_map(Request::Range),
        3 => put_request().prop_map(Request::Put),
        2 => delete_request().prop_map(Request::DeleteRange),
        2 => txn_request().prop_map(Request::Txn),
        2 => (key(), any_bytes()).prop_map(|(k, s)| Request::Append(AppendRequest::new(k, s))),
        1 => key_range().prop_map(|(k, e)| Request::DeleteRange(DeleteRangeRequest::range(k, e))),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    let session = prop_oneof![
        1 => Just(None),
        3 => (0u64..4, 0u64..5).prop_map(|(client_id, seq)| Some(ClientSeq { client_id, seq })),
    ];
    (session, request()).prop_map(|(session, request)| Command { session, request })
}

// ---- codec ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn commands_round_trip(cmd in command()) {
        let bytes = cmd.encode();
        prop_assert_eq!(Command::decode(&bytes), Ok(cmd));
    }

    #[test]
    fn results_round_trip(cmds in vec(command(), 1..12)) {
        // Real results (every response and error shape the store produces).
        let mut sm = KvStateMachine::default();
        for (i, c) in cmds.iter().enumerate() {
            let reply = sm.apply(LogIndex(i as u64 + 1), &c.encode());
            let decoded = decode_result(&reply).expect("a reply decodes");
            prop_assert_eq!(encode_result(&decoded), reply);
        }
    }

    #[test]
    fn decoding_garbage_never_panics(data in vec(any::<u8>(), 0..64)) {
        let _ = Command::decode(&data);
        let _ = decode_result(&data);
        let mut sm = KvStateMachine::default();
        let _ = sm.try_restore(&data);
        // A plausible envelope around the garbage, to get past the first byte.
        let mut framed = vec![COMMAND_FORMAT];
        framed.extend_from_slice(&data);
        let _ = Command::decode(&framed);
        framed[0] = RESULT_FORMAT;
        let _ = decode_result(&framed);
        let _ = sm.apply(LogIndex(1), &data);
    }

    #[test]
    fn decoding_mutated_commands_never_panics(cmd in command(), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = cmd.encode().to_vec();
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Ok(decoded) = Command::decode(&bytes) {
            // Whatever decodes re-encodes to exactly these bytes: the encoding is canonical.
            prop_assert_eq!(decoded.encode().to_vec(), bytes.clone());
        }
        let mut sm = KvStateMachine::default();
        let _ = sm.apply(LogIndex(1), &bytes);
    }
}

// ---- the store against a model ----

#[derive(Clone, Debug)]
enum Op {
    Put(Bytes, Bytes),
    Append(Bytes, Bytes),
    Delete(Bytes, Bytes),
    Range(Bytes, Bytes, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (key(), any_bytes()).prop_map(|(k, v)| Op::Put(k, v)),
        1 => (key(), any_bytes()).prop_map(|(k, v)| Op::Append(k, v)),
        2 => key_range().prop_map(|(k, e)| Op::Delete(k, e)),
        2 => (key_range(), -1i64..4).prop_map(|((k, e), l)| Op::Range(k, e, l)),
    ]
}

/// The obvious implementation: key → (value, create, mod, version), and a revision.
#[derive(Default)]
struct Model {
    kvs: BTreeMap<Bytes, (Bytes, i64, i64, i64)>,
    rev: i64,
}

impl Model {
    fn in_range(k: &Bytes, key: &Bytes, end: &Bytes) -> bool {
        match &end[..] {
            b"" => k == key,
            b"\0" => k >= key,
            _ => k >= key && k < end,
        }
    }

    fn valid(key: &Bytes, end: &Bytes) -> bool {
        end.is_empty() || &end[..] == b"\0" || end > key
    }

    fn write(&mut self, k: &Bytes, value: Bytes) {
        self.rev += 1;
        let rev = self.rev;
        let e = self
            .kvs
            .entry(k.clone())
            .or_insert((Bytes::new(), rev, rev, 0));
        *e = (value, e.1, rev, e.3 + 1);
    }

    fn kvs(&self, key: &Bytes, end: &Bytes) -> Vec<KeyValue> {
        self.kvs
            .iter()
            .filter(|(k, _)| Model::in_range(k, key, end))
            .map(|(k, (v, c, m, ver))| KeyValue {
                key: k.clone(),
                value: v.clone(),
                create_revision: *c,
                mod_revision: *m,
                version: *ver,
                lease: 0,
            })
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn store_agrees_with_the_model(ops in vec(op(), 1..60)) {
        let mut s = Store::new();
        let mut m = Model { rev: 1, ..Default::default() };
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    let r = s.put(&PutRequest::new(k.clone(), v.clone())).unwrap();
                    m.write(&k, v);
                    prop_assert_eq!(r.revision, m.rev);
                }
                Op::Append(k, suffix) => {
                    let r = s.append(&AppendRequest::new(k.clone(), suffix.clone())).unwrap();
                    let mut v = m.kvs.get(&k).map(|e| e.0.to_vec()).unwrap_or_default();
                    v.extend_from_slice(&suffix);
                    m.write(&k, Bytes::from(v));
                    prop_assert_eq!(r.revision, m.rev);
                }
                Op::Delete(k, e) => {
                    let r = s.delete_range(&DeleteRangeRequest::range(k.clone(), e.clone()));
                    if !Model::valid(&k, &e) {
                        prop_assert!(matches!(r, Err(KvError::InvalidRange { .. })), "expected InvalidRange");
                        continue;
                    }
                    let gone = m.kvs(&k, &e);
                    if !gone.is_empty() {
                        m.rev += 1;
                    }
                    for kv in &gone {
                        m.kvs.remove(&kv.key);
                    }
                    let r = r.unwrap();
                    prop_assert_eq!((r.deleted, r.revision), (gone.len() as i64, m.rev));
                }
                Op::Range(k, e, limit) => {
                    let mut req = RangeRequest::range(k.clone(), e.clone());
                    req.limit = limit;
                    let r = s.range(&req);
                    if !Model::valid(&k, &e) {
                        prop_assert!(matches!(r, Err(KvError::InvalidRange { .. })), "expected InvalidRange");
                        continue;
                    }
                    let all = m.kvs(&k, &e);
                    let n = if limit > 0 { all.len().min(limit as usize) } else { all.len() };
                    let want = RangeResponse {
                        revision: m.rev,
                        kvs: all[..n].to_vec(),
                        more: n < all.len(),
                        count: all.len() as i64,
                    };
                    prop_assert_eq!(r.unwrap(), want);
                }
            }
        }
        prop_assert_eq!(s.revision(), m.rev);
        prop_assert_eq!(s.len(), m.kvs.len());
    }

    #[test]
    fn txns_are_atomic_and_one_revision(
        seed in btree_map(key(), any_bytes(), 0..6),
        txns in vec(txn_request(), 1..8),
    ) {
        let mut s = Store::new();
        for (k, v) in seed {
            s.put(&PutRequest::new(k, v)).unwrap();
        }
        for t in txns {
            let before = s.clone();
            let res = s.txn(&t);
            match res {
                Err(_) => prop_assert_eq!(&s, &before, "a refused txn changes nothing"),
                Ok(r) => {
                    prop_assert!(r.revision == before.revision() || r.revision == before.revision() + 1);
                    prop_assert_eq!(r.revision, s.revision());
                    // Changed state implies a new revision. Not the converse: as in etcd, a key
                    // put by one nested txn and deleted by a later one leaves the state as it
                    // was, yet the txn wrote and so took a revision.
                    if s.iter().ne(before.iter()) {
                        prop_assert_eq!(r.revision, before.revision() + 1);
                    }
                    for kv in s.iter() {
                        prop_assert!(kv.version >= 1 && kv.create_revision <= kv.mod_revision);
                        prop_assert!(kv.mod_revision <= s.revision());
                        if before.get(&kv.key) != Some(kv) {
                            prop_assert_eq!(kv.mod_revision, s.revision(), "every write has the txn's revision");
                        }
                    }
                }
            }
        }
    }
}

// ---- determinism and sessions ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn same_log_same_bytes_and_snapshots_resume_exactly(
        cmds in vec(command(), 1..40),
        cut in any::<prop::sample::Index>(),
        sessions_max in 1usize..4,
    ) {
        let config = KvConfig { sessions_max };
        let entries: Vec<Bytes> = cmds.iter().map(Command::encode).collect();
        let mut a = KvStateMachine::new(config);
        let mut b = KvStateMachine::new(config);
        let cut = cut.index(entries.len() + 1);
        let mut resumed = KvStateMachine::new(config);
        for (i, e) in entries.iter().enumerate() {
            let index = LogIndex(i as u64 + 1);
            if i == cut {
                resumed.restore(&a.snapshot());
            }
            let ra = a.apply(index, e);
            prop_assert_eq!(&ra, &b.apply(index, e));
            if i >= cut {
                prop_assert_eq!(&ra, &resumed.apply(index, e));
            }
        }
        if cut == entries.len() {
            resumed.restore(&a.snapshot());
        }
        prop_assert_eq!(a.snapshot(), b.snapshot());
        prop_assert_eq!(a.snapshot(), resumed.snapshot());
        prop_assert!(a.sessions().len() <= sessions_max);
    }

    #[test]
    fn a_retry_is_answered_from_the_session_with_the_same_bytes(
        cmds in vec(request(), 1..20),
        retry_every in 1usize..4,
    ) {
        // One well-behaved client (seq 1, 2, ...) whose every few commands are retried.
        let mut sm = KvStateMachine::default();
        let mut index = 0u64;
        for (i, req) in cmds.into_iter().enumerate() {
            let write = req.is_write();
            let e = Command::with_session(req, 7, i as u64 + 1).encode();
            index += 1;
            let first = sm.apply(LogIndex(index), &e);
            if i % retry_every == 0 {
                let snap = sm.snapshot();
                index += 1;
                let again = sm.apply(LogIndex(index), &e);
                if write {
                    prop_assert_eq!(&again, &first);
                    // Nothing but the session's recency moved.
                    let mut restored = KvStateMachine::default();
                    restored.restore(&snap);
                    prop_assert_eq!(&*restored.store(), &*sm.store());
                }
            }
        }
    }
}
