//! [`KeyRange`]: etcd's `(key, range_end)` pair, validated once and read everywhere.
//!
//! Owns: the meaning of `range_end` — empty is the single key `key`, `"\0"` is every key
//! `>= key`, anything else is `[key, range_end)` — and its validation (non-empty key,
//! `range_end > key`). Must never: interpret keys in any other way (no prefix guessing, no
//! UTF-8 assumptions).

use crate::KvError;
use bytes::Bytes;
use std::ops::Bound;

/// A validated key range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange {
    /// Only `key` (`range_end` empty).
    Single(Bytes),
    /// Every key `>= key` (`range_end == "\0"`).
    From(Bytes),
    /// `[start, end)` with `start < end`.
    Between(Bytes, Bytes),
}

impl KeyRange {
    /// Validate an etcd `(key, range_end)` pair.
    pub fn new(key: &Bytes, range_end: &Bytes) -> Result<KeyRange, KvError> {
        if key.is_empty() {
            return Err(KvError::EmptyKey);
        }
        if range_end.is_empty() {
            return Ok(KeyRange::Single(key.clone()));
        }
        if range_end[..] == [0] {
            return Ok(KeyRange::From(key.clone()));
        }
        if range_end <= key {
            return Err(KvError::InvalidRange {
                key: key.clone(),
                range_end: range_end.clone(),
            });
        }
        Ok(KeyRange::Between(key.clone(), range_end.clone()))
    }

    /// Whether `k` lies in the range.
    pub fn contains(&self, k: &[u8]) -> bool {
        match self {
            KeyRange::Single(key) => k == &key[..],
            KeyRange::From(start) => k >= &start[..],
            KeyRange::Between(start, end) => k >= &start[..] && k < &end[..],
        }
    }

    /// The first key of the range.
    pub fn start(&self) -> &Bytes {
        match self {
            KeyRange::Single(k) | KeyRange::From(k) | KeyRange::Between(k, _) => k,
        }
    }

    /// The entries of `map` in the range, in key order.
    pub fn scan<'a, V: Clone>(
        &self,
        map: &'a imbl::OrdMap<Bytes, V>,
    ) -> impl Iterator<Item = (&'a Bytes, &'a V)> {
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = match self {
            KeyRange::Single(k) => (Bound::Included(k), Bound::Included(k)),
            KeyRange::From(k) => (Bound::Included(k), Bound::Unbounded),
            KeyRange::Between(s, e) => (Bound::Included(s), Bound::Excluded(e)),
        };
        map.range::<_, [u8]>(bounds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kr(key: &'static str, end: &'static str) -> Result<KeyRange, KvError> {
        KeyRange::new(&Bytes::from(key), &Bytes::from(end))
    }

    #[test]
    fn range_end_meanings_follow_etcd() {
        assert_eq!(kr("a", ""), Ok(KeyRange::Single("a".into())));
        assert_eq!(kr("a", "\0"), Ok(KeyRange::From("a".into())));
        assert_eq!(kr("a", "c"), Ok(KeyRange::Between("a".into(), "c".into())));
        assert_eq!(kr("", "c"), Err(KvError::EmptyKey));
        assert!(matches!(kr("b", "a"), Err(KvError::InvalidRange { .. })));
        assert!(matches!(kr("b", "b"), Err(KvError::InvalidRange { .. })));
        // "\0" as a key with "\0" as end: every key (etcdctl's `get --from-key ""`).
        assert_eq!(kr("\0", "\0"), Ok(KeyRange::From("\0".into())));
    }

    #[test]
    fn scan_is_in_key_order_and_respects_bounds() {
        let map: imbl::OrdMap<Bytes, u8> = ["a", "ab", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, k)| (Bytes::from(*k), i as u8))
            .collect();
        let keys = |r: KeyRange| r.scan(&map).map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(keys(kr("a", "b").unwrap()), vec!["a", "ab"]);
        assert_eq!(keys(kr("ab", "\0").unwrap()), vec!["ab", "b", "c"]);
        assert_eq!(keys(kr("b", "").unwrap()), vec!["b"]);
        assert_eq!(keys(kr("bb", "").unwrap()), Vec::<Bytes>::new());
        assert!(kr("a", "b").unwrap().contains(b"ab"));
        assert!(!kr("a", "b").unwrap().contains(b"b"));
    }
}
