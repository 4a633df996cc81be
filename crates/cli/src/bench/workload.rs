//! What the bench sends: key names, the value, which op each request is, and the etcd v3
//! request messages themselves.
//!
//! Owns: the pure, seeded parts of a workload — `key-<n>` names zero-padded to the key
//! space's width, uniform key choice, the read/write draw of `mixed`, and the compare-and-swap
//! bookkeeping of `txn` (the last mod_revision each client saw per key). Must never: touch the
//! network or a clock, or draw from an unseeded RNG (the same seed gives the same sequence).

use proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use proto::etcdserverpb::request_op::Request as OpRequest;
use proto::etcdserverpb::response_op::Response as OpResponse;
use proto::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest, TxnResponse};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

/// What the requests of a run do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Put one key.
    Put,
    /// Linearizable Range of one key.
    Get,
    /// Serializable Range of one key (any member answers from its own state).
    GetSerializable,
    /// Linearizable gets and puts, drawn per request by the read ratio.
    Mixed,
    /// Compare one key's mod_revision with the last one seen; put it if equal, else read it.
    Txn,
}

impl Op {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::GetSerializable => "get-serializable",
            Op::Mixed => "mixed",
            Op::Txn => "txn",
        }
    }

    /// Whether the op reads keys (and so wants them written first).
    pub fn reads(self) -> bool {
        matches!(self, Op::Get | Op::GetSerializable | Op::Mixed)
    }
}

/// One request's kind, as drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Put,
    Get { serializable: bool },
    Txn,
}

/// The key names of a key space: `key-` and the number, zero-padded to the width of the
/// largest.
#[derive(Clone, Debug)]
pub struct KeySpace {
    count: u64,
    width: usize,
}

impl KeySpace {
    pub fn new(count: u64) -> KeySpace {
        assert!(count > 0, "a key space has at least one key");
        let width = (count - 1).to_string().len();
        KeySpace { count, width }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The name of key `n` (`n < count`).
    pub fn key(&self, n: u64) -> Vec<u8> {
        assert!(n < self.count, "key {n} outside a space of {}", self.count);
        format!("key-{n:0width$}", width = self.width).into_bytes()
    }
}

/// `bytes` printable bytes derived from `seed` (the same for every request of a run).
pub fn value(bytes: usize, seed: u64) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..bytes)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
        .collect()
}

/// One client's request stream: which kind and which key next.
pub struct Workload {
    op: Op,
    read_ratio: f64,
    keys: KeySpace,
    rng: SmallRng,
}

impl Workload {
    /// `read_ratio` is used by `Op::Mixed` only.
    pub fn new(op: Op, read_ratio: f64, keys: KeySpace, seed: u64) -> Workload {
        Workload {
            op,
            read_ratio,
            keys,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    /// The next request: its kind and key number.
    pub fn next(&mut self) -> (Kind, u64) {
        let kind = match self.op {
            Op::Put => Kind::Put,
            Op::Get => Kind::Get {
                serializable: false,
            },
            Op::GetSerializable => Kind::Get { serializable: true },
            Op::Mixed if self.rng.gen_bool(self.read_ratio) => Kind::Get {
                serializable: false,
            },
            Op::Mixed => Kind::Put,
            Op::Txn => Kind::Txn,
        };
        (kind, self.rng.gen_range(0..self.keys.count))
    }
}

pub fn put(key: Vec<u8>, value: Vec<u8>) -> PutRequest {
    PutRequest {
        key,
        value,
        ..Default::default()
    }
}

pub fn range(key: Vec<u8>, serializable: bool) -> RangeRequest {
    RangeRequest {
        key,
        serializable,
        ..Default::default()
    }
}

/// If `key`'s mod_revision is `expected_mod_revision` (0: the key does not exist), put
/// `value`; otherwise read the key.
pub fn cas(key: Vec<u8>, expected_mod_revision: i64, value: Vec<u8>) -> TxnRequest {
    TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Mod as i32,
            key: key.clone(),
            target_union: Some(TargetUnion::ModRevision(expected_mod_revision)),
            ..Default::default()
        }],
        success: vec![RequestOp {
            request: Some(OpRequest::RequestPut(put(key.clone(), value))),
        }],
        failure: vec![RequestOp {
            request: Some(OpRequest::RequestRange(range(key, false))),
        }],
    }
}

/// The newest mod_revision the clients saw per key, for `cas` (shared by all clients of a
/// run, so a compare fails only when another client wrote the key in between, or the first
/// time a key written before the run is touched).
#[derive(Debug, Default)]
pub struct CasCache {
    seen: HashMap<u64, i64>,
}

impl CasCache {
    /// The mod_revision to compare key `n` with (0 until one was seen).
    pub fn expected(&self, n: u64) -> i64 {
        self.seen.get(&n).copied().unwrap_or(0)
    }

    /// Learn key `n`'s mod_revision from the answer to `cas`: the transaction's revision if
    /// the put ran, else the mod_revision the read returned (0: no such key). Revisions only
    /// grow, so an answer older than what is known changes nothing.
    pub fn learn(&mut self, n: u64, resp: &TxnResponse) {
        let rev = if resp.succeeded {
            resp.header.as_ref().map_or(0, |h| h.revision)
        } else {
            match resp.responses.first().and_then(|r| r.response.as_ref()) {
                Some(OpResponse::ResponseRange(r)) => r.kvs.first().map_or(0, |kv| kv.mod_revision),
                _ => 0,
            }
        };
        let known = self.seen.entry(n).or_insert(rev);
        *known = (*known).max(rev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::etcdserverpb::{RangeResponse, ResponseHeader, ResponseOp};
    use proto::mvccpb::KeyValue;

    #[test]
    fn keys_are_zero_padded_to_the_width_of_the_largest() {
        let k = KeySpace::new(10_000);
        assert_eq!(k.key(0), b"key-0000");
        assert_eq!(k.key(42), b"key-0042");
        assert_eq!(k.key(9_999), b"key-9999");
        assert_eq!(KeySpace::new(10_001).key(7), b"key-00007");
        assert_eq!(KeySpace::new(1).key(0), b"key-0");
        assert_eq!(KeySpace::new(10).key(9), b"key-9");
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn a_key_outside_the_space_is_a_bug() {
        KeySpace::new(10).key(10);
    }

    #[test]
    fn values_have_the_size_asked_and_depend_only_on_the_seed() {
        assert_eq!(value(256, 1).len(), 256);
        assert!(value(0, 1).is_empty());
        assert_eq!(value(64, 7), value(64, 7));
        assert_ne!(value(64, 7), value(64, 8));
        assert!(value(1000, 3).iter().all(u8::is_ascii_alphanumeric));
    }

    #[test]
    fn keys_are_uniform_over_the_space_and_seeded() {
        let draws = |seed| {
            let mut w = Workload::new(Op::Put, 0.0, KeySpace::new(10), seed);
            (0..10_000).map(|_| w.next().1).collect::<Vec<_>>()
        };
        let a = draws(5);
        assert_eq!(a, draws(5), "same seed, same sequence");
        assert_ne!(a, draws(6));
        let mut counts = [0u32; 10];
        for n in a {
            counts[n as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn mixed_draws_reads_by_the_ratio_and_other_ops_have_one_kind() {
        let mut w = Workload::new(Op::Mixed, 0.9, KeySpace::new(100), 1);
        let reads = (0..10_000)
            .filter(|_| {
                matches!(
                    w.next().0,
                    Kind::Get {
                        serializable: false
                    }
                )
            })
            .count();
        assert!((8_800..9_200).contains(&reads), "{reads} reads of 10000");
        for (op, kind) in [
            (Op::Put, Kind::Put),
            (
                Op::Get,
                Kind::Get {
                    serializable: false,
                },
            ),
            (Op::GetSerializable, Kind::Get { serializable: true }),
            (Op::Txn, Kind::Txn),
        ] {
            let mut w = Workload::new(op, 0.5, KeySpace::new(3), 1);
            assert!((0..100).all(|_| w.next().0 == kind), "{op:?}");
        }
    }

    #[test]
    fn cas_compares_mod_revision_then_puts_else_reads() {
        let t = cas(b"k".to_vec(), 7, b"v".to_vec());
        assert_eq!(t.compare.len(), 1);
        let c = &t.compare[0];
        assert_eq!(c.result, CompareResult::Equal as i32);
        assert_eq!(c.target, CompareTarget::Mod as i32);
        assert_eq!(c.key, b"k");
        assert_eq!(c.target_union, Some(TargetUnion::ModRevision(7)));
        assert!(
            matches!(&t.success[..], [RequestOp { request: Some(OpRequest::RequestPut(p)) }]
            if p.key == b"k" && p.value == b"v")
        );
        assert!(
            matches!(&t.failure[..], [RequestOp { request: Some(OpRequest::RequestRange(r)) }]
            if r.key == b"k" && !r.serializable)
        );
    }

    #[test]
    fn the_cas_cache_learns_from_both_branches() {
        let mut cache = CasCache::default();
        assert_eq!(cache.expected(3), 0, "unseen keys are expected absent");
        let ok = TxnResponse {
            header: Some(ResponseHeader {
                revision: 12,
                ..Default::default()
            }),
            succeeded: true,
            responses: vec![],
        };
        cache.learn(3, &ok);
        assert_eq!(cache.expected(3), 12);
        let failed = TxnResponse {
            header: None,
            succeeded: false,
            responses: vec![ResponseOp {
                response: Some(OpResponse::ResponseRange(RangeResponse {
                    kvs: vec![KeyValue {
                        mod_revision: 20,
                        ..Default::default()
                    }],
                    ..Default::default()
                })),
            }],
        };
        cache.learn(3, &failed);
        assert_eq!(cache.expected(3), 20);
        cache.learn(3, &ok);
        assert_eq!(cache.expected(3), 20, "an older answer changes nothing");
        assert_eq!(cache.expected(4), 0);
    }
}
