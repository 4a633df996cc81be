//! etcd v3 semantics of [`Store`], one behaviour per test.

use super::*;
use crate::txn::TXN_OPS_MAX;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn put(s: &mut Store, k: &str, v: &str) -> PutResponse {
    s.put(&PutRequest::new(b(k), b(v))).unwrap()
}

fn keys(resp: &RangeResponse) -> Vec<String> {
    resp.kvs
        .iter()
        .map(|kv| String::from_utf8(kv.key.to_vec()).unwrap())
        .collect()
}

fn store_with(keys: &[&str]) -> Store {
    let mut s = Store::new();
    for k in keys {
        put(&mut s, k, &format!("v-{k}"));
    }
    s
}

fn range(s: &Store, key: &str, end: &str) -> RangeResponse {
    s.range(&RangeRequest::range(b(key), b(end))).unwrap()
}

// ---- revisions and versions ----

#[test]
fn an_empty_store_is_at_revision_1() {
    let s = Store::new();
    assert_eq!(s.revision(), 1);
    assert_eq!(range(&s, "a", "").revision, 1);
}

#[test]
fn put_creates_then_updates_with_versions_and_revisions() {
    let mut s = Store::new();
    assert_eq!(put(&mut s, "a", "1").revision, 2);
    let kv = s.get(b"a").unwrap().clone();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version, kv.lease),
        (2, 2, 1, 0)
    );
    put(&mut s, "b", "x");
    assert_eq!(put(&mut s, "a", "2").revision, 4);
    let kv = s.get(b"a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 4, 2));
    assert_eq!(kv.value, "2");
}

#[test]
fn a_put_of_the_same_value_still_bumps_the_revision() {
    let mut s = Store::new();
    put(&mut s, "a", "1");
    assert_eq!(put(&mut s, "a", "1").revision, 3);
    assert_eq!(s.get(b"a").unwrap().version, 2);
}

#[test]
fn delete_removes_and_recreation_starts_at_version_1() {
    let mut s = Store::new();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    let d = s.delete_range(&DeleteRangeRequest::key(b("a"))).unwrap();
    assert_eq!((d.deleted, d.revision), (1, 4));
    assert!(s.get(b"a").is_none());
    put(&mut s, "a", "3");
    let kv = s.get(b"a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
}

#[test]
fn a_delete_that_deletes_nothing_does_not_bump() {
    let mut s = store_with(&["a"]);
    let d = s.delete_range(&DeleteRangeRequest::key(b("zz"))).unwrap();
    assert_eq!((d.deleted, d.revision), (0, 2));
    assert_eq!(s.revision(), 2);
}

#[test]
fn a_range_delete_is_one_revision_for_all_keys() {
    let mut s = store_with(&["a", "b", "c", "d"]);
    let mut req = DeleteRangeRequest::range(b("b"), b("d"));
    req.prev_kv = true;
    let d = s.delete_range(&req).unwrap();
    assert_eq!((d.deleted, d.revision), (2, 6));
    let prev: Vec<_> = d.prev_kvs.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(prev, vec![b("b"), b("c")]);
    assert_eq!(d.prev_kvs[0].value, "v-b");
    assert_eq!(keys(&range(&s, "a", "\0")), vec!["a", "d"]);
}

#[test]
fn delete_without_prev_kv_returns_no_keys() {
    let mut s = store_with(&["a"]);
    let d = s.delete_range(&DeleteRangeRequest::key(b("a"))).unwrap();
    assert!(d.prev_kvs.is_empty());
}

#[test]
fn append_creates_then_extends_and_always_bumps() {
    let mut s = Store::new();
    let a = s.append(&AppendRequest::new(b("log"), b("ab"))).unwrap();
    assert_eq!((a.revision, a.version, a.value_len), (2, 1, 2));
    let a = s.append(&AppendRequest::new(b("log"), b("cd"))).unwrap();
    assert_eq!((a.revision, a.version, a.value_len), (3, 2, 4));
    assert_eq!(s.get(b"log").unwrap().value, "abcd");
    let a = s.append(&AppendRequest::new(b("log"), b(""))).unwrap();
    assert_eq!((a.revision, a.version, a.value_len), (4, 3, 4));
    assert_eq!(s.get(b"log").unwrap().create_revision, 2);
}

// ---- prev_kv, ignore_value, ignore_lease ----

#[test]
fn put_prev_kv_returns_the_key_before_the_put() {
    let mut s = Store::new();
    let mut req = PutRequest::new(b("a"), b("1"));
    req.prev_kv = true;
    assert_eq!(s.put(&req).unwrap().prev_kv, None);
    req.value = b("2");
    let prev = s.put(&req).unwrap().prev_kv.unwrap();
    assert_eq!(
        (prev.value, prev.version, prev.mod_revision),
        (b("1"), 1, 2)
    );
    // Without prev_kv nothing is returned.
    assert_eq!(put(&mut s, "a", "3").prev_kv, None);
}

#[test]
fn ignore_value_keeps_the_value_and_needs_the_key() {
    let mut s = Store::new();
    let iv = PutRequest {
        key: b("a"),
        ignore_value: true,
        ..Default::default()
    };
    assert_eq!(s.put(&iv), Err(KvError::KeyNotFound { key: b("a") }));
    assert_eq!(s.revision(), 1, "a refused put changes nothing");
    put(&mut s, "a", "keep");
    let r = s.put(&iv).unwrap();
    assert_eq!(r.revision, 3);
    let kv = s.get(b"a").unwrap();
    assert_eq!((kv.value.clone(), kv.version), (b("keep"), 2));
    let bad = PutRequest {
        value: b("x"),
        ..iv
    };
    assert_eq!(s.put(&bad), Err(KvError::ValueProvided));
}

#[test]
fn ignore_lease_needs_the_key() {
    let mut s = Store::new();
    let il = PutRequest {
        key: b("a"),
        value: b("v"),
        ignore_lease: true,
        ..Default::default()
    };
    assert_eq!(s.put(&il), Err(KvError::KeyNotFound { key: b("a") }));
    put(&mut s, "a", "1");
    assert_eq!(s.put(&il).unwrap().revision, 3);
    assert_eq!(s.get(b"a").unwrap().value, "v");
}

// ---- ranges ----

#[test]
fn range_end_empty_is_a_single_key() {
    let s = store_with(&["a", "ab", "b"]);
    assert_eq!(keys(&range(&s, "a", "")), vec!["a"]);
    assert_eq!(range(&s, "a", "").count, 1);
    assert!(range(&s, "zz", "").kvs.is_empty());
}

#[test]
fn range_end_is_exclusive() {
    let s = store_with(&["a", "ab", "b", "c"]);
    assert_eq!(keys(&range(&s, "a", "b")), vec!["a", "ab"]);
    assert_eq!(keys(&range(&s, "ab", "c")), vec!["ab", "b"]);
}

#[test]
fn range_end_nul_reads_every_key_from_key() {
    let s = store_with(&["a", "b", "c"]);
    assert_eq!(keys(&range(&s, "b", "\0")), vec!["b", "c"]);
    // key "\0" with range_end "\0": the whole key space (etcdctl get --from-key "").
    assert_eq!(keys(&range(&s, "\0", "\0")), vec!["a", "b", "c"]);
}

#[test]
fn prefix_reads_keys_with_the_prefix_only() {
    let s = store_with(&["foo", "foo/a", "foo/b", "fop", "fo"]);
    let r = s.range(&RangeRequest::prefix(b("foo"))).unwrap();
    assert_eq!(keys(&r), vec!["foo", "foo/a", "foo/b"]);
    let all = s.range(&RangeRequest::prefix(Bytes::new())).unwrap();
    assert_eq!(all.count, 5);
    // A prefix of 0xff bytes has no successor: it reads everything from the prefix on.
    assert_eq!(prefix_range_end(&[b'a', 0xff]), Bytes::from_static(b"b"));
    assert_eq!(prefix_range_end(&[0xff, 0xff]), Bytes::from_static(b"\0"));
    assert_eq!(prefix_range_end(b"a"), Bytes::from_static(b"b"));
}

#[test]
fn limit_sets_more_and_count_counts_the_whole_range() {
    let s = store_with(&["a", "b", "c", "d"]);
    let mut req = RangeRequest::range(b("a"), b("\0"));
    req.limit = 2;
    let r = s.range(&req).unwrap();
    assert_eq!(
        (keys(&r), r.more, r.count),
        (vec!["a".into(), "b".into()], true, 4)
    );
    req.limit = 4;
    let r = s.range(&req).unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (4, false, 4));
    req.limit = 0;
    assert_eq!(s.range(&req).unwrap().kvs.len(), 4);
    req.limit = -1;
    assert_eq!(
        s.range(&req).unwrap().kvs.len(),
        4,
        "a negative limit is no limit"
    );
}

#[test]
fn keys_only_strips_values_and_count_only_returns_only_the_count() {
    let s = store_with(&["a", "b"]);
    let mut req = RangeRequest::range(b("a"), b("\0"));
    req.keys_only = true;
    let r = s.range(&req).unwrap();
    assert_eq!(keys(&r), vec!["a", "b"]);
    assert!(r.kvs.iter().all(|kv| kv.value.is_empty()));
    assert_eq!(r.kvs[0].version, 1, "metadata stays");
    let mut req = RangeRequest::range(b("a"), b("\0"));
    req.count_only = true;
    req.limit = 1;
    let r = s.range(&req).unwrap();
    assert_eq!((r.kvs.len(), r.count, r.more), (0, 2, false));
}

#[test]
fn sort_by_each_target_in_both_orders() {
    let mut s = Store::new();
    put(&mut s, "c", "1"); // rev 2
    put(&mut s, "a", "3"); // rev 3
    put(&mut s, "b", "2"); // rev 4
    put(&mut s, "c", "0"); // rev 5: c version 2, mod 5, create 2
    let sorted = |order, target| {
        let mut req = RangeRequest::range(b("a"), b("\0"));
        req.sort_order = order;
        req.sort_target = target;
        keys(&s.range(&req).unwrap())
    };
    use SortOrder::*;
    use SortTarget::*;
    assert_eq!(sorted(None, Key), vec!["a", "b", "c"]);
    assert_eq!(sorted(Descend, Key), vec!["c", "b", "a"]);
    assert_eq!(sorted(Ascend, Value), vec!["c", "b", "a"]);
    assert_eq!(sorted(Descend, Value), vec!["a", "b", "c"]);
    assert_eq!(sorted(Ascend, Create), vec!["c", "a", "b"]);
    assert_eq!(sorted(Ascend, Mod), vec!["a", "b", "c"]);
    assert_eq!(sorted(Descend, Mod), vec!["c", "b", "a"]);
    // Ties keep key order (a and b both at version 1).
    assert_eq!(sorted(Ascend, Version), vec!["a", "b", "c"]);
    assert_eq!(sorted(Descend, Version), vec!["c", "a", "b"]);
    // A target other than Key with no order sorts ascending, as etcd does.
    assert_eq!(sorted(None, Value), vec!["c", "b", "a"]);
}

#[test]
fn sort_then_limit_takes_the_first_of_the_sorted_keys() {
    let s = store_with(&["a", "b", "c"]);
    let mut req = RangeRequest::range(b("a"), b("\0"));
    req.sort_order = SortOrder::Descend;
    req.limit = 1;
    let r = s.range(&req).unwrap();
    assert_eq!(
        (keys(&r), r.more, r.count),
        (vec!["c".to_string()], true, 3)
    );
}

#[test]
fn revision_filters_prune_before_limit_but_not_from_count() {
    let s = store_with(&["a", "b", "c", "d"]); // mod revisions 2..=5
    let mut req = RangeRequest::range(b("a"), b("\0"));
    req.min_mod_revision = 3;
    req.max_mod_revision = 4;
    let r = s.range(&req).unwrap();
    assert_eq!((keys(&r), r.count), (vec!["b".into(), "c".into()], 4));
    let mut req = RangeRequest::range(b("a"), b("\0"));
    req.min_create_revision = 4;
    req.limit = 1;
    let r = s.range(&req).unwrap();
    assert_eq!((keys(&r), r.more), (vec!["c".to_string()], true));
    let mut req = RangeRequest::range(b("a"), b("\0"));
    req.max_create_revision = 2;
    assert_eq!(keys(&s.range(&req).unwrap()), vec!["a"]);
}

#[test]
fn reads_at_other_revisions_are_refused_without_history() {
    let s = store_with(&["a", "b"]); // revision 3
    let mut req = RangeRequest::key(b("a"));
    req.revision = 3;
    assert_eq!(s.range(&req).unwrap().kvs.len(), 1);
    req.revision = 2;
    assert_eq!(
        s.range(&req),
        Err(KvError::Compacted {
            requested: 2,
            current: 3
        })
    );
    req.revision = 4;
    assert_eq!(
        s.range(&req),
        Err(KvError::FutureRev {
            requested: 4,
            current: 3
        })
    );
    req.revision = -5;
    assert!(
        s.range(&req).is_ok(),
        "a negative revision means the current one"
    );
}

#[test]
fn malformed_requests_are_typed_errors_and_change_nothing() {
    let mut s = store_with(&["a"]);
    let before = s.clone();
    assert_eq!(
        s.range(&RangeRequest::key(Bytes::new())),
        Err(KvError::EmptyKey)
    );
    assert_eq!(
        s.put(&PutRequest::new(Bytes::new(), b("v"))),
        Err(KvError::EmptyKey)
    );
    assert_eq!(
        s.append(&AppendRequest::new(Bytes::new(), b("v"))),
        Err(KvError::EmptyKey)
    );
    assert_eq!(
        s.delete_range(&DeleteRangeRequest::range(b("b"), b("a"))),
        Err(KvError::InvalidRange {
            key: b("b"),
            range_end: b("a")
        })
    );
    assert!(matches!(
        s.range(&RangeRequest::range(b("a"), b("a"))),
        Err(KvError::InvalidRange { .. })
    ));
    assert_eq!(s, before);
}

// ---- txn ----

fn cmp(key: &str, result: CompareResult, target: CompareTarget) -> Compare {
    Compare::new(b(key), result, target)
}

fn txn(compare: Vec<Compare>, success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
    TxnRequest {
        compare,
        success,
        failure,
    }
}

fn put_op(k: &str, v: &str) -> RequestOp {
    PutRequest::new(b(k), b(v)).into()
}

fn holds(s: &Store, c: Compare) -> bool {
    crate::txn::compare_holds(s, &c).unwrap()
}

#[test]
fn txn_is_one_revision_for_all_its_writes() {
    let mut s = store_with(&["x"]); // rev 2
    let t = txn(
        vec![],
        vec![
            put_op("a", "1"),
            put_op("b", "2"),
            DeleteRangeRequest::key(b("x")).into(),
        ],
        vec![],
    );
    let r = s.txn(&t).unwrap();
    assert!(r.succeeded);
    assert_eq!(r.revision, 3);
    assert_eq!(s.revision(), 3);
    assert_eq!(s.get(b"a").unwrap().mod_revision, 3);
    assert_eq!(s.get(b"b").unwrap().create_revision, 3);
    assert!(s.get(b"x").is_none());
    assert_eq!(r.responses.len(), 3);
}

#[test]
fn a_txn_that_changes_nothing_does_not_bump() {
    let mut s = store_with(&["a"]);
    let t = txn(
        vec![],
        vec![
            RangeRequest::key(b("a")).into(),
            DeleteRangeRequest::key(b("nope")).into(),
        ],
        vec![],
    );
    let r = s.txn(&t).unwrap();
    assert_eq!((r.revision, s.revision()), (2, 2));
    let empty = s.txn(&TxnRequest::default()).unwrap();
    assert!(empty.succeeded && empty.responses.is_empty());
    assert_eq!(empty.revision, 2);
}

#[test]
fn txn_compares_choose_the_branch() {
    let mut s = store_with(&["a"]);
    let t = txn(
        vec![cmp(
            "a",
            CompareResult::Equal,
            CompareTarget::Value(b("v-a")),
        )],
        vec![put_op("then", "1")],
        vec![put_op("else", "1")],
    );
    assert!(s.txn(&t).unwrap().succeeded);
    assert!(s.get(b"then").is_some());
    let t = txn(
        vec![cmp(
            "a",
            CompareResult::Equal,
            CompareTarget::Value(b("other")),
        )],
        vec![put_op("then2", "1")],
        vec![put_op("else2", "1")],
    );
    let r = s.txn(&t).unwrap();
    assert!(!r.succeeded);
    assert!(s.get(b"else2").is_some() && s.get(b"then2").is_none());
}

#[test]
fn every_compare_must_hold() {
    let s = store_with(&["a", "b"]);
    let mut st = s.clone();
    let t = txn(
        vec![
            cmp("a", CompareResult::Equal, CompareTarget::Version(1)),
            cmp("b", CompareResult::Greater, CompareTarget::Version(1)),
        ],
        vec![],
        vec![],
    );
    assert!(!st.txn(&t).unwrap().succeeded);
}

#[test]
fn compare_targets_and_results() {
    let mut s = Store::new();
    put(&mut s, "a", "m"); // rev 2
    put(&mut s, "a", "m"); // rev 3: version 2, create 2, mod 3
    use CompareResult::*;
    use CompareTarget::*;
    assert!(holds(&s, cmp("a", Equal, Version(2))));
    assert!(holds(&s, cmp("a", Greater, Version(1))));
    assert!(holds(&s, cmp("a", Less, Version(3))));
    assert!(holds(&s, cmp("a", NotEqual, Version(1))));
    assert!(!holds(&s, cmp("a", NotEqual, Version(2))));
    assert!(holds(&s, cmp("a", Equal, Create(2))));
    assert!(holds(&s, cmp("a", Equal, Mod(3))));
    assert!(holds(&s, cmp("a", Less, Mod(4))));
    assert!(holds(&s, cmp("a", Greater, Value(b("l")))));
    assert!(holds(&s, cmp("a", Less, Value(b("ma")))));
    assert!(holds(&s, cmp("a", Equal, Lease(0))));
}

#[test]
fn a_missing_key_compares_as_zero_but_value_compares_fail() {
    let s = Store::new();
    use CompareResult::*;
    use CompareTarget::*;
    assert!(holds(&s, cmp("nope", Equal, Version(0))));
    assert!(holds(&s, cmp("nope", Equal, Create(0))));
    assert!(holds(&s, cmp("nope", Equal, Mod(0))));
    assert!(holds(&s, cmp("nope", Less, Mod(1))));
    assert!(holds(&s, cmp("nope", Equal, Lease(0))));
    assert!(!holds(&s, cmp("nope", Equal, Value(Bytes::new()))));
    assert!(!holds(&s, cmp("nope", NotEqual, Value(b("x")))));
}

#[test]
fn a_range_compare_must_hold_for_every_key() {
    let mut s = store_with(&["k1", "k2", "k3"]);
    put(&mut s, "k2", "again"); // k2 at version 2
    use CompareResult::*;
    use CompareTarget::*;
    let over = |c: Compare| c.with_range_end(b("k4"));
    assert!(holds(&s, over(cmp("k1", Greater, Version(0)))));
    assert!(!holds(&s, over(cmp("k1", Equal, Version(1)))));
    assert!(holds(
        &s,
        cmp("k1", Equal, Version(1)).with_range_end(b("k2"))
    ));
    assert!(holds(&s, cmp("k1", Less, Mod(6)).with_range_end(b("\0"))));
    // An empty range compares like a missing key.
    assert!(holds(
        &s,
        cmp("x", Equal, Version(0)).with_range_end(b("y"))
    ));
    assert!(!holds(
        &s,
        cmp("x", Equal, Value(Bytes::new())).with_range_end(b("y"))
    ));
}

#[test]
fn txn_ranges_see_the_txns_own_writes() {
    let mut s = store_with(&["a"]); // rev 2
    let t = txn(
        vec![],
        vec![
            RangeRequest::key(b("a")).into(),
            put_op("a", "new"),
            RangeRequest::key(b("a")).into(),
        ],
        vec![],
    );
    let r = s.txn(&t).unwrap();
    let ResponseOp::Range(before) = &r.responses[0] else {
        panic!()
    };
    let ResponseOp::Range(after) = &r.responses[2] else {
        panic!()
    };
    assert_eq!(
        (before.kvs[0].value.clone(), before.revision),
        (b("v-a"), 2)
    );
    assert_eq!((after.kvs[0].value.clone(), after.revision), (b("new"), 3));
    let ResponseOp::Put(p) = &r.responses[1] else {
        panic!()
    };
    assert_eq!(p.revision, 3);
}

#[test]
fn a_txn_range_at_the_pre_txn_revision_reads_the_pre_txn_state() {
    let mut s = store_with(&["a"]); // rev 2
    let mut pinned = RangeRequest::key(b("a"));
    pinned.revision = 2;
    let t = txn(
        vec![],
        vec![put_op("a", "new"), pinned.clone().into()],
        vec![],
    );
    let r = s.txn(&t).unwrap();
    let ResponseOp::Range(rr) = &r.responses[1] else {
        panic!()
    };
    assert_eq!(rr.kvs[0].value, "v-a");
    // Any other revision is refused, and the refused txn leaves no trace.
    let before = s.clone();
    pinned.revision = 2;
    let t = txn(vec![], vec![put_op("b", "x"), pinned.into()], vec![]);
    assert!(matches!(
        s.txn(&t),
        Err(KvError::Compacted {
            requested: 2,
            current: 3
        })
    ));
    assert_eq!(s, before);
}

#[test]
fn txn_prev_kv_and_delete_responses() {
    let mut s = store_with(&["a", "b"]);
    let mut p = PutRequest::new(b("a"), b("2"));
    p.prev_kv = true;
    let mut d = DeleteRangeRequest::key(b("b"));
    d.prev_kv = true;
    let r = s
        .txn(&txn(vec![], vec![p.into(), d.into()], vec![]))
        .unwrap();
    let ResponseOp::Put(pr) = &r.responses[0] else {
        panic!()
    };
    assert_eq!(pr.prev_kv.as_ref().unwrap().value, "v-a");
    let ResponseOp::DeleteRange(dr) = &r.responses[1] else {
        panic!()
    };
    assert_eq!((dr.deleted, dr.prev_kvs[0].value.clone()), (1, b("v-b")));
}

#[test]
fn duplicate_keys_in_one_branch_are_refused() {
    let mut s = Store::new();
    let dup = |t: TxnRequest| {
        let mut st = Store::new();
        st.txn(&t)
    };
    assert_eq!(
        dup(txn(
            vec![],
            vec![put_op("a", "1"), put_op("a", "2")],
            vec![]
        )),
        Err(KvError::DuplicateKey { key: b("a") })
    );
    // A put inside a deleted range, in either order.
    let del_ab: RequestOp = DeleteRangeRequest::range(b("a"), b("c")).into();
    assert!(matches!(
        dup(txn(vec![], vec![put_op("b", "1"), del_ab.clone()], vec![])),
        Err(KvError::DuplicateKey { .. })
    ));
    assert!(matches!(
        dup(txn(vec![], vec![], vec![del_ab.clone(), put_op("b", "1")])),
        Err(KvError::DuplicateKey { .. })
    ));
    let del_from: RequestOp = DeleteRangeRequest::range(b("a"), b("\0")).into();
    assert!(matches!(
        dup(txn(vec![], vec![del_from, put_op("zzz", "1")], vec![])),
        Err(KvError::DuplicateKey { .. })
    ));
    // Not duplicates: a key put in both branches, overlapping deletes, a put outside the
    // deleted range.
    let ok = txn(
        vec![],
        vec![
            put_op("c", "1"),
            del_ab,
            DeleteRangeRequest::key(b("b")).into(),
        ],
        vec![put_op("c", "2")],
    );
    assert!(s.txn(&ok).is_ok());
}

#[test]
fn duplicate_keys_across_nested_txns_follow_etcd() {
    let nested =
        |then: Vec<RequestOp>, els: Vec<RequestOp>| -> RequestOp { txn(vec![], then, els).into() };
    let run = |t: TxnRequest| Store::new().txn(&t);
    // Then and else of one nested txn exclude each other.
    assert!(run(txn(
        vec![],
        vec![nested(vec![put_op("a", "1")], vec![put_op("a", "2")])],
        vec![]
    ))
    .is_ok());
    // A nested put and an outer put of the same key.
    assert!(matches!(
        run(txn(
            vec![],
            vec![nested(vec![put_op("a", "1")], vec![]), put_op("a", "2")],
            vec![]
        )),
        Err(KvError::DuplicateKey { .. })
    ));
    // An outer delete covering a nested put.
    assert!(matches!(
        run(txn(
            vec![],
            vec![
                DeleteRangeRequest::key(b("a")).into(),
                nested(vec![], vec![put_op("a", "1")])
            ],
            vec![]
        )),
        Err(KvError::DuplicateKey { .. })
    ));
    // Two nested txns putting the same key.
    assert!(matches!(
        run(txn(
            vec![],
            vec![
                nested(vec![put_op("a", "1")], vec![]),
                nested(vec![], vec![put_op("a", "1")])
            ],
            vec![]
        )),
        Err(KvError::DuplicateKey { .. })
    ));
}

#[test]
fn nested_txns_choose_branches_on_the_state_before_the_txn() {
    let mut s = Store::new();
    // The outer put creates "a", but the nested compare still sees it missing.
    let inner = txn(
        vec![cmp("a", CompareResult::Equal, CompareTarget::Version(0))],
        vec![put_op("saw-missing", "1")],
        vec![put_op("saw-present", "1")],
    );
    let r = s
        .txn(&txn(vec![], vec![put_op("a", "1"), inner.into()], vec![]))
        .unwrap();
    assert!(s.get(b"saw-missing").is_some());
    let ResponseOp::Txn(nr) = &r.responses[1] else {
        panic!()
    };
    assert!(nr.succeeded);
    assert_eq!((nr.revision, r.revision, s.revision()), (2, 2, 2));
}

#[test]
fn refused_txns_leave_no_trace() {
    let mut s = store_with(&["a"]);
    let before = s.clone();
    let iv = PutRequest {
        key: b("missing"),
        ignore_value: true,
        ..Default::default()
    };
    let t = txn(vec![], vec![put_op("b", "1"), iv.into()], vec![]);
    assert_eq!(s.txn(&t), Err(KvError::KeyNotFound { key: b("missing") }));
    let t = txn(vec![], vec![], vec![put_op("", "1")]);
    assert_eq!(
        s.txn(&t),
        Err(KvError::EmptyKey),
        "both branches are validated"
    );
    let t = txn(
        vec![cmp("", CompareResult::Equal, CompareTarget::Version(0))],
        vec![],
        vec![],
    );
    assert_eq!(s.txn(&t), Err(KvError::EmptyKey));
    assert_eq!(s, before);
}

#[test]
fn txn_op_count_and_depth_are_bounded() {
    let mut s = Store::new();
    let many: Vec<RequestOp> = (0..=TXN_OPS_MAX)
        .map(|i| put_op(&format!("k{i}"), "v"))
        .collect();
    assert_eq!(
        s.txn(&txn(vec![], many[..TXN_OPS_MAX as usize].to_vec(), vec![]))
            .map(|r| r.revision),
        Ok(2),
        "exactly the limit is fine"
    );
    assert_eq!(
        s.txn(&txn(vec![], many, vec![])),
        Err(KvError::TooManyOps {
            ops: TXN_OPS_MAX + 1,
            max: TXN_OPS_MAX
        })
    );
    // A nested txn gets what its parent left: 126 puts + the nested txn = 127, room for 1.
    let mut outer: Vec<RequestOp> = (0..TXN_OPS_MAX - 2)
        .map(|i| put_op(&format!("o{i}"), "v"))
        .collect();
    outer.push(txn(vec![], vec![put_op("n1", "v"), put_op("n2", "v")], vec![]).into());
    assert!(matches!(
        s.txn(&txn(vec![], outer, vec![])),
        Err(KvError::TooManyOps { ops: 2, max: 1 })
    ));
    let mut deep = TxnRequest::default();
    for _ in 0..crate::TXN_DEPTH_MAX {
        deep = txn(vec![], vec![deep.into()], vec![]);
    }
    assert_eq!(
        s.txn(&deep),
        Err(KvError::TxnTooDeep {
            max: crate::TXN_DEPTH_MAX
        })
    );
}

#[test]
fn execute_dispatches_every_request() {
    let mut s = Store::new();
    let r = s.execute(&PutRequest::new(b("a"), b("1")).into()).unwrap();
    assert_eq!(r.revision(), 2);
    let r = s
        .execute(&AppendRequest::new(b("a"), b("2")).into())
        .unwrap();
    assert_eq!(r.revision(), 3);
    let Response::Range(rr) = s.execute(&RangeRequest::key(b("a")).into()).unwrap() else {
        panic!()
    };
    assert_eq!(rr.kvs[0].value, "12");
    let r = s.execute(&TxnRequest::default().into()).unwrap();
    assert!(matches!(r, Response::Txn(_)));
    let r = s.execute(&DeleteRangeRequest::key(b("a")).into()).unwrap();
    assert_eq!(r.revision(), 4);
    s.check_invariants();
}

#[test]
fn an_owned_put_does_what_a_borrowed_put_does() {
    let reqs = [
        PutRequest::new(b("a"), b("1")),
        PutRequest {
            prev_kv: true,
            ..PutRequest::new(b("a"), b("2"))
        },
        PutRequest {
            ignore_value: true,
            prev_kv: true,
            ..PutRequest::new(b("a"), Bytes::new())
        },
        PutRequest {
            ignore_value: true,
            ..PutRequest::new(b("missing"), Bytes::new())
        },
        PutRequest::new(Bytes::new(), b("no key")),
        PutRequest::new(b("b"), b("3")),
    ];
    let (mut borrowed, mut owned) = (Store::new(), Store::new());
    for req in reqs {
        let expect = borrowed.put(&req);
        assert_eq!(owned.put_owned(req.clone()), expect, "{req:?}");
        assert_eq!(
            owned.execute_owned(Request::Put(req.clone())).map(|_| ()),
            borrowed.execute(&Request::Put(req)).map(|_| ())
        );
        assert_eq!(owned, borrowed);
    }
}
