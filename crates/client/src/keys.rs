//! [`KeyRange`] and [`prefix_range_end`]: etcd's `(key, range_end)` spelled for people.
//!
//! etcd names a set of keys by `key` and an exclusive `range_end`: an empty `range_end` is the
//! key alone, `"\0"` is every key from `key` on, and a prefix `p` is `[p, p with its last byte
//! (below 0xff) plus one)`. An empty key with `"\0"` is every key.
//! Owns: those spellings, as clientv3's `WithPrefix`/`WithFromKey`/`WithRange` build them.
//! Must never: send anything or check keys (the server refuses an empty key).

use proto::etcdserverpb::{DeleteRangeRequest, RangeRequest};

/// The `range_end` that makes `[key, range_end)` every key starting with `key`: trailing
/// 0xff bytes are dropped and the last remaining byte is incremented. When nothing remains
/// (an empty key, or all 0xff) the answer is `"\0"`: every key from `key` on.
///
/// ```
/// use client::prefix_range_end;
/// assert_eq!(prefix_range_end(b"foo"), b"fop");
/// assert_eq!(prefix_range_end(b"a\xff\xff"), b"b");
/// assert_eq!(prefix_range_end(b"\xff\xff"), b"\0");
/// assert_eq!(prefix_range_end(b""), b"\0");
/// ```
pub fn prefix_range_end(key: &[u8]) -> Vec<u8> {
    match key.iter().rposition(|&b| b < 0xff) {
        Some(last) => {
            let mut end = key[..=last].to_vec();
            end[last] += 1;
            end
        }
        None => vec![0],
    }
}

/// A set of keys: one key, a prefix, every key from a key on, or `[key, range_end)`.
///
/// ```
/// use client::KeyRange;
/// let req = KeyRange::prefix("users/").range_request();
/// assert_eq!((req.key.as_slice(), req.range_end.as_slice()), (&b"users/"[..], &b"users0"[..]));
/// assert_eq!(KeyRange::all(), KeyRange::prefix(""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// First key.
    pub key: Vec<u8>,
    /// Exclusive end; empty for `key` alone, `"\0"` for no end.
    pub range_end: Vec<u8>,
}

impl KeyRange {
    /// `key` alone.
    pub fn key(key: impl Into<Vec<u8>>) -> KeyRange {
        KeyRange {
            key: key.into(),
            range_end: Vec::new(),
        }
    }

    /// Every key starting with `prefix`; every key at all for an empty prefix.
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> KeyRange {
        let key = prefix.into();
        if key.is_empty() {
            return KeyRange::all();
        }
        let range_end = prefix_range_end(&key);
        KeyRange { key, range_end }
    }

    /// Every key `>= key` (every key at all for an empty key).
    pub fn from_key(key: impl Into<Vec<u8>>) -> KeyRange {
        let key = key.into();
        KeyRange {
            key: if key.is_empty() { vec![0] } else { key },
            range_end: vec![0],
        }
    }

    /// Every key in `[key, range_end)`.
    pub fn between(key: impl Into<Vec<u8>>, range_end: impl Into<Vec<u8>>) -> KeyRange {
        KeyRange {
            key: key.into(),
            range_end: range_end.into(),
        }
    }

    /// Every key.
    pub fn all() -> KeyRange {
        KeyRange {
            key: vec![0],
            range_end: vec![0],
        }
    }

    /// A linearizable range over these keys (set the other fields as needed).
    pub fn range_request(self) -> RangeRequest {
        RangeRequest {
            key: self.key,
            range_end: self.range_end,
            ..RangeRequest::default()
        }
    }

    /// A delete of these keys.
    pub fn delete_request(self) -> DeleteRangeRequest {
        DeleteRangeRequest {
            key: self.key,
            range_end: self.range_end,
            ..DeleteRangeRequest::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_follows_etcds_rule() {
        assert_eq!(prefix_range_end(b"a"), b"b");
        assert_eq!(prefix_range_end(b"a\xfe"), b"a\xff");
        assert_eq!(prefix_range_end(b"\x00"), b"\x01");
        assert_eq!(prefix_range_end(b"ab\xffc\xff"), b"ab\xffd");
        assert_eq!(prefix_range_end(b"\xff"), b"\0");
    }

    #[test]
    fn from_key_of_the_empty_key_is_everything() {
        assert_eq!(KeyRange::from_key(""), KeyRange::all());
        assert_eq!(KeyRange::from_key("k"), KeyRange::between("k", vec![0u8]));
    }

    #[test]
    fn single_key_has_an_empty_range_end() {
        let req = KeyRange::key("k").delete_request();
        assert_eq!(req.key, b"k");
        assert!(req.range_end.is_empty());
        assert!(!req.prev_kv);
    }
}
