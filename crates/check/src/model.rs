//! The sequential specification: what one key/value operation does to one key.
//!
//! Owns: [`Input`] and [`Output`] (the operations a history records and what they returned),
//! the model's single-key state ([`KeyState`]) and its transition function
//! ([`KeyState::apply`]), and how all of these print in explanations.
//!
//! Every operation names exactly one key and reads or writes only that key, so a history
//! splits into independent per-key histories (Herlihy & Wing's locality: a history is
//! linearizable iff each per-key sub-history is), which is what makes the checker's per-key
//! partitioning valid. A new operation kind must keep that property.
//!
//! Must never: know about time, clients or the search; read a clock; use randomness.

use std::fmt;

/// A key or a value: raw bytes, as etcd stores them.
pub type Bytes = Vec<u8>;

/// What a client asked for. Each variant touches exactly one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// Read the key's value (`None` when absent).
    Get { key: Bytes },
    /// Set the key to `value` (creating it when absent).
    Put { key: Bytes, value: Bytes },
    /// Append `suffix` to the key's value; a missing key is created holding `suffix`.
    Append { key: Bytes, suffix: Bytes },
    /// Remove the key; returns how many keys were deleted (0 or 1).
    Delete { key: Bytes },
    /// A one-key transaction: if the value equals `expected` (`None`: the key is absent),
    /// put `new`; returns whether the comparison succeeded.
    Cas {
        key: Bytes,
        expected: Option<Bytes>,
        new: Bytes,
    },
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// A `Get`'s result: the value, or `None` when the key was absent.
    Value(Option<Bytes>),
    /// A `Put` or `Append` was acknowledged.
    Written,
    /// A `Delete`'s count of deleted keys (0 or 1 for one key).
    Deleted(u64),
    /// A `Cas`: whether the comparison held (and the new value was put).
    Cas { succeeded: bool },
}

impl Input {
    /// `Get(key)`.
    pub fn get(key: impl Into<Bytes>) -> Input {
        Input::Get { key: key.into() }
    }

    /// `Put(key, value)`.
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Input {
        Input::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    /// `Append(key, suffix)`.
    pub fn append(key: impl Into<Bytes>, suffix: impl Into<Bytes>) -> Input {
        Input::Append {
            key: key.into(),
            suffix: suffix.into(),
        }
    }

    /// `Delete(key)`.
    pub fn delete(key: impl Into<Bytes>) -> Input {
        Input::Delete { key: key.into() }
    }

    /// `Cas(key, expected, new)`; `expected: None` means "the key is absent".
    pub fn cas(key: impl Into<Bytes>, expected: Option<&[u8]>, new: impl Into<Bytes>) -> Input {
        Input::Cas {
            key: key.into(),
            expected: expected.map(<[u8]>::to_vec),
            new: new.into(),
        }
    }

    /// The one key this operation touches.
    pub fn key(&self) -> &[u8] {
        match self {
            Input::Get { key }
            | Input::Put { key, .. }
            | Input::Append { key, .. }
            | Input::Delete { key }
            | Input::Cas { key, .. } => key,
        }
    }

    /// Whether the operation can change the key (a pending read can be dropped from a history).
    pub fn may_write(&self) -> bool {
        !matches!(self, Input::Get { .. })
    }
}

impl Output {
    /// `Value(Some(value))`: a `Get` that found `value`.
    pub fn value(value: impl Into<Bytes>) -> Output {
        Output::Value(Some(value.into()))
    }

    /// `Value(None)`: a `Get` that found the key absent.
    pub fn absent() -> Output {
        Output::Value(None)
    }
}

/// The model's state of one key: its value, or `None` when absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyState(pub Option<Bytes>);

impl KeyState {
    /// Applies `input` sequentially: the state after it and the output the model returns.
    /// The model is deterministic, so an operation whose output is unknown (it never
    /// returned) has exactly one possible effect.
    pub fn apply(&self, input: &Input) -> (KeyState, Output) {
        let current = &self.0;
        match input {
            Input::Get { .. } => (self.clone(), Output::Value(current.clone())),
            Input::Put { value, .. } => (KeyState(Some(value.clone())), Output::Written),
            Input::Append { suffix, .. } => {
                let mut value = current.clone().unwrap_or_default();
                value.extend_from_slice(suffix);
                (KeyState(Some(value)), Output::Written)
            }
            Input::Delete { .. } => (KeyState(None), Output::Deleted(current.is_some().into())),
            Input::Cas { expected, new, .. } => {
                let succeeded = current == expected;
                let next = if succeeded {
                    KeyState(Some(new.clone()))
                } else {
                    self.clone()
                };
                (next, Output::Cas { succeeded })
            }
        }
    }
}

/// Prints bytes readably: a quoted string when they are UTF-8, else `b"..."` with escapes;
/// long values keep their head and tail (where appends differ) and give the length.
pub struct ShowBytes<'a>(pub &'a [u8]);

const SHOW_BYTES_MAX: usize = 64;
const SHOW_BYTES_EDGE: usize = 24;

impl fmt::Display for ShowBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        if bytes.len() <= SHOW_BYTES_MAX {
            return show_raw(f, bytes);
        }
        show_raw(f, &bytes[..SHOW_BYTES_EDGE])?;
        f.write_str("…")?;
        show_raw(f, &bytes[bytes.len() - SHOW_BYTES_EDGE..])?;
        write!(f, " ({} bytes)", bytes.len())
    }
}

fn show_raw(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    match std::str::from_utf8(bytes) {
        Ok(text) => write!(f, "{text:?}"),
        Err(_) => write!(f, "b\"{}\"", bytes.escape_ascii()),
    }
}

/// Prints an optional value: the value, or `absent`.
pub struct ShowValue<'a>(pub Option<&'a [u8]>);

impl fmt::Display for ShowValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => ShowBytes(value).fmt(f),
            None => f.write_str("absent"),
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        ShowValue(self.0.as_deref()).fmt(f)
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Get { key } => write!(f, "Get({})", ShowBytes(key)),
            Input::Put { key, value } => {
                write!(f, "Put({}, {})", ShowBytes(key), ShowBytes(value))
            }
            Input::Append { key, suffix } => {
                write!(f, "Append({}, {})", ShowBytes(key), ShowBytes(suffix))
            }
            Input::Delete { key } => write!(f, "Delete({})", ShowBytes(key)),
            Input::Cas { key, expected, new } => write!(
                f,
                "Cas({}, if {} then {})",
                ShowBytes(key),
                ShowValue(expected.as_deref()),
                ShowBytes(new)
            ),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Value(value) => ShowValue(value.as_deref()).fmt(f),
            Output::Written => f.write_str("ok"),
            Output::Deleted(count) => write!(f, "deleted {count}"),
            Output::Cas { succeeded: true } => f.write_str("succeeded"),
            Output::Cas { succeeded: false } => f.write_str("failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(value: Option<&str>) -> KeyState {
        KeyState(value.map(|v| v.as_bytes().to_vec()))
    }

    #[test]
    fn append_creates_a_missing_key_and_extends_a_present_one() {
        let (s, out) = state(None).apply(&Input::append("k", "ab"));
        assert_eq!((s.clone(), out), (state(Some("ab")), Output::Written));
        assert_eq!(s.apply(&Input::append("k", "c")).0, state(Some("abc")));
    }

    #[test]
    fn delete_counts_only_a_present_key() {
        assert_eq!(
            state(Some("v")).apply(&Input::delete("k")),
            (state(None), Output::Deleted(1))
        );
        assert_eq!(
            state(None).apply(&Input::delete("k")),
            (state(None), Output::Deleted(0))
        );
    }

    #[test]
    fn cas_puts_only_when_the_comparison_holds() {
        let cas = Input::cas("k", Some(b"a"), "b");
        assert_eq!(
            state(Some("a")).apply(&cas),
            (state(Some("b")), Output::Cas { succeeded: true })
        );
        assert_eq!(
            state(Some("z")).apply(&cas),
            (state(Some("z")), Output::Cas { succeeded: false })
        );
        let create = Input::cas("k", None, "new");
        assert_eq!(state(None).apply(&create).0, state(Some("new")));
        assert_eq!(state(Some("x")).apply(&create).0, state(Some("x")));
    }

    #[test]
    fn get_and_put() {
        assert_eq!(
            state(Some("v")).apply(&Input::get("k")).1,
            Output::value("v")
        );
        assert_eq!(state(None).apply(&Input::get("k")).1, Output::absent());
        assert_eq!(state(None).apply(&Input::put("k", "v")).0, state(Some("v")));
    }

    #[test]
    fn prints_readably() {
        assert_eq!(
            Input::cas("x", None, "v").to_string(),
            r#"Cas("x", if absent then "v")"#
        );
        assert_eq!(Output::value(vec![0xff, b'a']).to_string(), r#"b"\xffa""#);
        let long = "ab".repeat(50);
        let shown = ShowBytes(long.as_bytes()).to_string();
        assert!(shown.ends_with("(100 bytes)"), "{shown}");
    }
}
