//! etcd's Txn, in three steps: [`validate`] the request's shape, `plan` it against the state
//! before it runs, `run` the plan as one write.
//!
//! Owns: etcd's txn rules — the op budget (`checkTxnRequest`), the duplicate-key rule
//! (`checkIntervals`), compare semantics (`applyCompare`/`compareKV`), the choice of branches
//! made against the state *before* any op runs (`compareToPath`, nested txns included) and the
//! pre-checks of the chosen path (`checkTxn`).
//! Must never: change the store before every check has passed (a refused txn leaves no trace),
//! or let an op of one txn see a revision other than "before" or "after" the txn.
//!
//! One deliberate difference: a delete whose `range_end` is `"\0"` counts, for the
//! duplicate-key rule, as covering every key from `key` on (its real meaning). etcd's interval
//! tree takes `"\0"` literally there.

use crate::keys::KeyRange;
use crate::store::{check_put, Store, Write};
use crate::types::*;
use crate::KvError;
use bytes::Bytes;
use std::collections::BTreeSet;

/// Most compares, success ops or failure ops in one txn (etcd's default `--max-txn-ops`).
/// A nested txn's counts must fit in what its parent left.
pub const TXN_OPS_MAX: u64 = 128;

/// Deepest nesting of txns inside txns (etcd has no such limit; raftkv bounds its recursion).
pub const TXN_DEPTH_MAX: u32 = 16;

/// Check the shape of `req` (etcd's `checkTxnRequest` then `checkIntervals` on each branch).
pub fn validate(req: &TxnRequest) -> Result<(), KvError> {
    validate_ops(req, TXN_OPS_MAX, 1)?;
    check_intervals(&req.success)?;
    check_intervals(&req.failure)?;
    Ok(())
}

fn validate_ops(req: &TxnRequest, ops_max: u64, depth: u32) -> Result<(), KvError> {
    if depth > TXN_DEPTH_MAX {
        return Err(KvError::TxnTooDeep { max: TXN_DEPTH_MAX });
    }
    let ops = [req.compare.len(), req.success.len(), req.failure.len()]
        .into_iter()
        .max()
        .unwrap_or(0) as u64;
    if ops > ops_max {
        return Err(KvError::TooManyOps { ops, max: ops_max });
    }
    for c in &req.compare {
        KeyRange::new(&c.key, &c.range_end)?;
    }
    for op in req.success.iter().chain(&req.failure) {
        match op {
            RequestOp::Range(r) => KeyRange::new(&r.key, &r.range_end).map(drop)?,
            RequestOp::Put(p) => check_put(p)?,
            RequestOp::DeleteRange(d) => KeyRange::new(&d.key, &d.range_end).map(drop)?,
            RequestOp::Txn(t) => validate_ops(t, ops_max - ops, depth + 1)?,
        }
    }
    Ok(())
}

/// Keys put and ranges deleted by a list of ops, nested txns included.
type Writes = (BTreeSet<Bytes>, Vec<KeyRange>);

/// etcd's `checkIntervals`: no key may be put twice, nor put and deleted, by the ops that
/// can run together. The two branches of a nested txn exclude each other, so a key put in
/// both is fine. Faithful to etcd also in what it does not catch: a key put by one nested txn
/// and deleted by a *later* nested txn at the same level.
fn check_intervals(ops: &[RequestOp]) -> Result<Writes, KvError> {
    let mut dels: Vec<KeyRange> = Vec::new();
    for op in ops {
        if let RequestOp::DeleteRange(d) = op {
            dels.push(KeyRange::new(&d.key, &d.range_end)?);
        }
    }
    let deleted = |dels: &[KeyRange], k: &Bytes| dels.iter().any(|r| r.contains(k));
    let dup = |k: &Bytes| Err(KvError::DuplicateKey { key: k.clone() });
    let mut puts: BTreeSet<Bytes> = BTreeSet::new();
    for op in ops {
        let RequestOp::Txn(t) = op else { continue };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || deleted(&dels, k) {
                return dup(k);
            }
        }
        puts.extend(puts_then.iter().cloned());
        for k in &puts_else {
            if (puts.contains(k) && !puts_then.contains(k)) || deleted(&dels, k) {
                return dup(k);
            }
        }
        puts.extend(puts_else);
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let RequestOp::Put(p) = op else { continue };
        if puts.contains(&p.key) || deleted(&dels, &p.key) {
            return dup(&p.key);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

/// etcd's `applyCompare`: the compare holds for every key in its range; an empty range
/// compares as a zero key, except that a value compare on no key fails.
pub fn compare_holds(store: &Store, c: &Compare) -> Result<bool, KvError> {
    let kr = KeyRange::new(&c.key, &c.range_end)?;
    let mut seen = false;
    for kv in store.scan(&kr) {
        seen = true;
        if !compare_kv(c, kv) {
            return Ok(false);
        }
    }
    if seen {
        return Ok(true);
    }
    if let CompareTarget::Value(_) = c.target {
        return Ok(false);
    }
    Ok(compare_kv(c, &KeyValue::default()))
}

/// etcd's `compareKV`.
fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    let ord = match &c.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Create(v) => kv.create_revision.cmp(v),
        CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
        CompareTarget::Value(v) => kv.value.cmp(v),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
    };
    match c.result {
        CompareResult::Equal => ord.is_eq(),
        CompareResult::NotEqual => ord.is_ne(),
        CompareResult::Greater => ord.is_gt(),
        CompareResult::Less => ord.is_lt(),
    }
}

/// What a txn will do, decided against the state before it runs: which branch each txn on
/// the path takes, and the results of ranges pinned to the pre-txn revision.
#[derive(Debug)]
pub(crate) struct Plan {
    succeeded: bool,
    /// One plan per nested txn of the chosen branch, in op order.
    nested: Vec<Plan>,
    /// One response per range of the chosen branch that names a revision, in op order: such a
    /// range reads the state before the txn (etcd reads that revision from history).
    pinned: Vec<RangeResponse>,
}

/// etcd's `compareToPath` + `checkTxn`: choose the branches and check the chosen ops against
/// the state before the txn (puts that need an existing key, ranges at a revision).
pub(crate) fn plan(store: &Store, req: &TxnRequest) -> Result<Plan, KvError> {
    let mut succeeded = true;
    for c in &req.compare {
        if !compare_holds(store, c)? {
            succeeded = false;
            break;
        }
    }
    let ops = if succeeded {
        &req.success
    } else {
        &req.failure
    };
    let mut p = Plan {
        succeeded,
        nested: Vec::new(),
        pinned: Vec::new(),
    };
    for op in ops {
        match op {
            RequestOp::Range(r) if r.revision > 0 => {
                store.check_read_revision(r.revision)?;
                let kr = KeyRange::new(&r.key, &r.range_end)?;
                p.pinned.push(store.read(&kr, r, store.revision()));
            }
            RequestOp::Range(_) | RequestOp::DeleteRange(_) => {}
            RequestOp::Put(put) => store.check_put_target(put)?,
            RequestOp::Txn(t) => p.nested.push(plan(store, t)?),
        }
    }
    Ok(p)
}

/// Run a planned txn inside the write `w`. Cannot fail: [`plan`] checked everything.
pub(crate) fn run(w: &mut Write<'_>, req: &TxnRequest, plan: Plan) -> TxnResponse {
    let ops = if plan.succeeded {
        &req.success
    } else {
        &req.failure
    };
    let mut nested = plan.nested.into_iter();
    let mut pinned = plan.pinned.into_iter();
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        let resp = match op {
            RequestOp::Range(r) => {
                let mut resp = if r.revision > 0 {
                    pinned.next().expect("a pinned result per pinned range")
                } else {
                    let kr = KeyRange::new(&r.key, &r.range_end).expect("validated range");
                    w.store().read(&kr, r, w.visible_revision())
                };
                resp.revision = w.visible_revision();
                ResponseOp::Range(resp)
            }
            RequestOp::Put(p) => ResponseOp::Put(w.put(p)),
            RequestOp::DeleteRange(d) => {
                let kr = KeyRange::new(&d.key, &d.range_end).expect("validated range");
                ResponseOp::DeleteRange(w.delete_range(&kr, d.prev_kv))
            }
            RequestOp::Txn(t) => {
                let p = nested.next().expect("a plan per nested txn");
                ResponseOp::Txn(run(w, t, p))
            }
        };
        responses.push(resp);
    }
    TxnResponse {
        revision: w.visible_revision(),
        succeeded: plan.succeeded,
        responses,
    }
}
