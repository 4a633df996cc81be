//! [`MetaCommand`]: replicated metadata of the service above the key space — a small map the
//! log carries beside the keys (raftkv's server keeps its member table there: names and
//! peer URLs of members added at run time).
//!
//! A meta command is a log entry like a [`crate::Command`], told apart by its first byte
//! ([`META_FORMAT`], never a [`crate::COMMAND_FORMAT`]): `[META_FORMAT][op: 0 put | 1 delete]
//! [key][value (put)]`, each byte string `[len varint][bytes]`. Applying one changes the
//! meta map only: no revision, no watch event, nothing a client range can see; it is in the
//! snapshot (format 2).
//!
//! Owns: the meta command envelope and its bounds. Must never: touch the key space, or decode
//! bytes that are not exactly what [`MetaCommand::encode`] produced.

use crate::codec::{Reader, Writer};
use crate::error::DecodeError;
use bytes::Bytes;

/// First byte of an encoded [`MetaCommand`].
pub const META_FORMAT: u8 = 0x4d;
/// Largest meta key.
pub const META_KEY_BYTES_MAX: usize = 256;
/// Largest meta value.
pub const META_VALUE_BYTES_MAX: usize = 16 << 10;
/// Most entries the meta map holds; a put of a new key beyond it is refused (its result is
/// an error, the same on every node).
pub const META_ENTRIES_MAX: usize = 4096;

/// One change to the replicated meta map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaCommand {
    Put { key: Bytes, value: Bytes },
    Delete { key: Bytes },
}

impl MetaCommand {
    /// The log entry bytes.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.u8(META_FORMAT);
        match self {
            MetaCommand::Put { key, value } => {
                w.u8(0);
                w.bytes(key);
                w.bytes(value);
            }
            MetaCommand::Delete { key } => {
                w.u8(1);
                w.bytes(key);
            }
        }
        w.finish()
    }

    /// Whether `data` is a meta command's entry (it may still fail to decode).
    pub fn is_meta(data: &[u8]) -> bool {
        data.first() == Some(&META_FORMAT)
    }

    /// Decode entry bytes; anything [`MetaCommand::encode`] did not produce (or that breaks
    /// a bound) is an error.
    pub fn decode(data: &[u8]) -> Result<MetaCommand, DecodeError> {
        let mut r = Reader::new(data);
        let found = r.u8()?;
        if found != META_FORMAT {
            return Err(DecodeError::Version { found });
        }
        let op = r.tag(2)?;
        let key = bounded(&mut r, META_KEY_BYTES_MAX)?;
        let cmd = if op == 0 {
            let value = bounded(&mut r, META_VALUE_BYTES_MAX)?;
            MetaCommand::Put { key, value }
        } else {
            MetaCommand::Delete { key }
        };
        r.finish()?;
        Ok(cmd)
    }
}

/// A byte string of at most `max` bytes.
pub(crate) fn bounded(r: &mut Reader<'_>, max: usize) -> Result<Bytes, DecodeError> {
    let offset = r.offset();
    let b = r.bytes()?;
    if b.len() > max {
        return Err(DecodeError::Invalid { offset });
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_commands_round_trip_and_refuse_everything_else() {
        let put = MetaCommand::Put {
            key: Bytes::from_static(b"member/1"),
            value: Bytes::from_static(b"n4"),
        };
        let del = MetaCommand::Delete {
            key: Bytes::from_static(b"member/1"),
        };
        for c in [&put, &del] {
            let b = c.encode();
            assert!(MetaCommand::is_meta(&b));
            assert_eq!(MetaCommand::decode(&b).as_ref(), Ok(c));
            for cut in 0..b.len() {
                assert!(MetaCommand::decode(&b[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = b.to_vec();
            longer.push(0);
            assert!(MetaCommand::decode(&longer).is_err());
        }
        assert!(!MetaCommand::is_meta(&[crate::COMMAND_FORMAT]));
        let huge = MetaCommand::Put {
            key: Bytes::from(vec![b'k'; META_KEY_BYTES_MAX + 1]),
            value: Bytes::new(),
        };
        assert!(MetaCommand::decode(&huge.encode()).is_err());
        assert!(MetaCommand::decode(&[META_FORMAT, 2, 0]).is_err(), "bad op");
    }
}
