//! [`Command`]: the bytes of a Raft log entry, and [`CommandResult`]: the bytes of its reply.
//!
//! Owns: the versioned envelopes — a command is `[COMMAND_FORMAT][session?][request]`, a
//! result is `[RESULT_FORMAT][ok|err][response|error]` — and their public encode/decode.
//! Must never: panic on any input, or decode bytes that carry an unknown format version (a
//! newer node's entry must be refused identically by every older node, not misread).

use crate::codec::{self, Reader, Writer};
use crate::error::DecodeError;
use crate::types::{Request, Response};
use crate::KvError;
use bytes::Bytes;

/// Format version of an encoded [`Command`].
pub const COMMAND_FORMAT: u8 = 1;
/// Format version of an encoded [`CommandResult`].
pub const RESULT_FORMAT: u8 = 1;

/// A client's place in its exactly-once session: the command `seq` (from 1) of `client_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientSeq {
    pub client_id: u64,
    pub seq: u64,
}

/// One request as it travels through the log: writes (put, delete range, txn, append) are
/// logged; a range may be encoded too, for forwarding (applied through the log it reads).
/// With a `session`, a write is applied at most once (see [`crate::session`]); a range
/// ignores its session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub session: Option<ClientSeq>,
    pub request: Request,
}

/// The outcome of applying a [`Command`].
pub type CommandResult = Result<Response, KvError>;

impl Command {
    /// A command without a session.
    pub fn new(request: impl Into<Request>) -> Self {
        Command {
            session: None,
            request: request.into(),
        }
    }

    /// A command of `client_id`'s session, number `seq`.
    pub fn with_session(request: impl Into<Request>, client_id: u64, seq: u64) -> Self {
        Command {
            session: Some(ClientSeq { client_id, seq }),
            request: request.into(),
        }
    }

    /// The log entry bytes.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.u8(COMMAND_FORMAT);
        match self.session {
            None => w.u8(0),
            Some(s) => {
                w.u8(1);
                w.varint(s.client_id);
                w.varint(s.seq);
            }
        }
        codec::put_request(&mut w, &self.request);
        w.finish()
    }

    /// Decode log entry bytes; any input that [`Command::encode`] did not produce is an error.
    pub fn decode(data: &[u8]) -> Result<Command, DecodeError> {
        let mut r = Reader::new(data);
        let found = r.u8()?;
        if found != COMMAND_FORMAT {
            return Err(DecodeError::Version { found });
        }
        let session = match r.bool()? {
            false => None,
            true => Some(ClientSeq {
                client_id: r.varint()?,
                seq: r.varint()?,
            }),
        };
        let request = codec::get_request(&mut r)?;
        r.finish()?;
        Ok(Command { session, request })
    }
}

/// The reply bytes of a command (what [`replica::StateMachine::apply`] returns).
pub fn encode_result(result: &CommandResult) -> Bytes {
    let mut w = Writer::new();
    w.u8(RESULT_FORMAT);
    match result {
        Ok(resp) => {
            w.u8(0);
            codec::put_response(&mut w, resp);
        }
        Err(e) => {
            w.u8(1);
            codec::put_error(&mut w, e);
        }
    }
    w.finish()
}

/// Decode reply bytes.
pub fn decode_result(data: &[u8]) -> Result<CommandResult, DecodeError> {
    let mut r = Reader::new(data);
    let found = r.u8()?;
    if found != RESULT_FORMAT {
        return Err(DecodeError::Version { found });
    }
    let result = match r.bool()? {
        false => Ok(codec::get_response(&mut r)?),
        true => Err(codec::get_error(&mut r)?),
    };
    r.finish()?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::*;

    #[test]
    fn a_command_round_trips_and_starts_with_its_version() {
        let cmd = Command::with_session(PutRequest::new("k", "v"), 7, 3);
        let b = cmd.encode();
        assert_eq!(b[0], COMMAND_FORMAT);
        assert_eq!(Command::decode(&b), Ok(cmd));
    }

    #[test]
    fn unknown_versions_truncation_and_trailing_bytes_are_errors() {
        let b = Command::new(PutRequest::new("k", "v")).encode();
        let mut v2 = b.to_vec();
        v2[0] = 2;
        assert_eq!(Command::decode(&v2), Err(DecodeError::Version { found: 2 }));
        assert!(matches!(
            Command::decode(&b[..b.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
        let mut longer = b.to_vec();
        longer.push(0);
        assert!(matches!(
            Command::decode(&longer),
            Err(DecodeError::Trailing { extra: 1, .. })
        ));
        assert!(matches!(
            Command::decode(&[]),
            Err(DecodeError::Truncated { offset: 0 })
        ));
    }

    #[test]
    fn results_round_trip_including_errors() {
        for r in [
            Ok(Response::Put(PutResponse {
                revision: 2,
                prev_kv: None,
            })),
            Err(KvError::StaleSequence {
                client_id: 1,
                seq: 2,
                last_seq: 3,
            }),
            Err(KvError::Decode(DecodeError::Checksum {
                stored: 1,
                computed: 2,
            })),
        ] {
            assert_eq!(decode_result(&encode_result(&r)), Ok(r));
        }
    }
}
