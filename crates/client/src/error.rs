//! [`ClientError`], and how a gRPC failure is sorted into "try again" or "tell the caller".
//!
//! Owns: the meaning of the server's error contract on the client side — which codes and
//! messages are transient (no leader, leader changed, timed out, transport trouble), which
//! are final (invalid argument, too large, session problems), which leader a failure points
//! to (`raftkv-leader-endpoint` metadata), and whether a failed attempt may have been
//! proposed.
//! Must never: decide how often or where to retry (that is [`crate::retry`]), or turn a final
//! error into a retry (a bad request sent again is still bad, and retrying a session error
//! could apply a write twice).

use std::error::Error as _;
use std::time::Duration;

use tonic::{Code, Status};

/// gRPC metadata key under which a member names the leader's client URL on a failure.
pub const LEADER_ENDPOINT_METADATA: &str = "raftkv-leader-endpoint";

/// Why a call failed. Each variant carries what the caller needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No member served the call before the deadline (or, for [`crate::Client::status`],
    /// the one endpoint asked did not). `tried` lists the endpoints attempted (in order, each
    /// once), `last` the last failure seen, `elapsed` how long the call tried. For a write,
    /// `maybe_applied` tells whether an attempt may have reached a leader: when false, the
    /// write was certainly not applied; when true, it may have been (once — never twice).
    #[error(
        "no member served the request (tried {} for {elapsed:.1?}); last error: {last}{}",
        .tried.join(", "),
        if *.maybe_applied { "; the write may have been applied" } else { "" }
    )]
    Unavailable {
        tried: Vec<String>,
        last: String,
        maybe_applied: bool,
        elapsed: Duration,
    },
    /// The server refused the request as malformed (e.g. "etcdserver: key is not provided").
    /// Not retried, not applied.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The request is larger than the server accepts (1.5 MiB by default; etcd's "request is
    /// too large"). Not retried, not applied.
    #[error("request too large: {0}")]
    TooLarge(String),
    /// The write's session expired on the server after an earlier attempt of this write may
    /// have been applied, so its outcome is unknown. The session is dropped; the next write
    /// starts a new one. (When no earlier attempt can have been applied, the client retries
    /// with a fresh session instead of returning this.)
    #[error("session expired, outcome of the write unknown: {0}")]
    SessionExpired(String),
    /// The configuration is unusable (no endpoints, a malformed endpoint, a zero timeout).
    #[error("bad client configuration: {0}")]
    Config(String),
    /// Any other answer of the server (e.g. `FailedPrecondition`, `NotFound`,
    /// `Unimplemented`), unchanged.
    #[error("server error {:?}: {}", .0.code(), .0.message())]
    Status(Status),
    /// A watch cannot go on from where it is: the member no longer has the events from
    /// there (raftkv keeps a window of recent events, not the whole history). Watch again
    /// from `compact_revision` (after reading the current state, as the events between are
    /// gone).
    #[error("watch compacted: {reason} (events from revision {compact_revision} on are still available)")]
    Compacted {
        compact_revision: i64,
        reason: String,
    },
}

/// What one failed attempt means for the call.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Transient: try again (elsewhere, or later). `leader` is the leader endpoint the member
    /// named, if any; `maybe_sent` is false only when the request certainly was not proposed
    /// (no connection was made, or the member said it had no leader).
    Retry {
        leader: Option<String>,
        maybe_sent: bool,
    },
    /// The session is unknown to the server (expired or never seen with `seq > 1`).
    SessionExpired,
    /// Final: give this to the caller.
    Fail(ClientError),
}

/// Sorts one failed attempt. `session_write` is true for the `Session*`/`Append` calls,
/// where `FailedPrecondition` means a session problem.
pub(crate) fn classify(status: Status, session_write: bool) -> Verdict {
    match status.code() {
        // `Cancelled` is also what a tonic server answers when the gRPC timeout the client
        // sent ran out: the server gave up, the outcome is unknown.
        Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled => {
            Verdict::Retry {
                leader: leader_hint(&status),
                maybe_sent: maybe_sent(&status),
            }
        }
        // Locally made statuses (a broken connection, a reset stream) carry their cause as
        // `source`; a status the server sent never does. The server saw nothing definite.
        Code::Unknown | Code::Internal if status.source().is_some() => Verdict::Retry {
            leader: None,
            maybe_sent: true,
        },
        // etcd answers "request is too large" as INVALID_ARGUMENT; tonic's own size limit
        // answers RESOURCE_EXHAUSTED / OUT_OF_RANGE.
        Code::InvalidArgument | Code::ResourceExhausted | Code::OutOfRange
            if status.message().contains("too large") =>
        {
            Verdict::Fail(ClientError::TooLarge(message(&status)))
        }
        Code::InvalidArgument => Verdict::Fail(ClientError::InvalidArgument(message(&status))),
        Code::FailedPrecondition if session_write && status.message().contains("expired") => {
            Verdict::SessionExpired
        }
        _ => Verdict::Fail(ClientError::Status(status)),
    }
}

/// One line for a failed attempt: code, message, and the innermost local cause (e.g.
/// "Unavailable: tcp connect error (Connection refused (os error 111))").
pub(crate) fn describe(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = status.source();
    let mut innermost = None;
    while let Some(err) = source {
        innermost = Some(err);
        source = err.source();
    }
    if let Some(cause) = innermost.map(|e| e.to_string()) {
        if !status.message().contains(&cause) {
            text.push_str(&format!(" ({cause})"));
        }
    }
    text
}

/// The server's message without etcd's `etcdserver: ` prefix.
pub(crate) fn message(status: &Status) -> String {
    let text = status.message();
    text.strip_prefix("etcdserver: ")
        .unwrap_or(text)
        .to_string()
}

fn leader_hint(status: &Status) -> Option<String> {
    let value = status.metadata().get(LEADER_ENDPOINT_METADATA)?;
    let text = value.to_str().ok()?.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// False only when the request certainly never reached a leader's log.
fn maybe_sent(status: &Status) -> bool {
    if status.message() == "etcdserver: no leader" {
        return false;
    }
    let mut source = status.source();
    while let Some(err) = source {
        if err.downcast_ref::<tonic::ConnectError>().is_some() {
            return false;
        }
        source = err.source();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_leader(mut status: Status, url: &str) -> Status {
        status
            .metadata_mut()
            .insert(LEADER_ENDPOINT_METADATA, url.parse().unwrap());
        status
    }

    #[test]
    fn no_leader_is_retried_and_was_not_sent() {
        let verdict = classify(Status::unavailable("etcdserver: no leader"), true);
        assert!(matches!(
            verdict,
            Verdict::Retry {
                leader: None,
                maybe_sent: false
            }
        ));
    }

    #[test]
    fn leader_changed_is_retried_with_the_named_leader_and_may_have_been_sent() {
        let status = with_leader(
            Status::unavailable("etcdserver: leader changed"),
            "http://n2:2379",
        );
        let Verdict::Retry { leader, maybe_sent } = classify(status, true) else {
            panic!("not retried");
        };
        assert_eq!(leader.as_deref(), Some("http://n2:2379"));
        assert!(maybe_sent);
    }

    #[test]
    fn timeouts_are_retried() {
        for status in [
            Status::deadline_exceeded("etcdserver: request timed out"),
            Status::unavailable("etcdserver: request timed out"),
            Status::cancelled("Timeout expired"),
        ] {
            let verdict = classify(status, true);
            assert!(matches!(
                verdict,
                Verdict::Retry {
                    maybe_sent: true,
                    ..
                }
            ));
        }
    }

    #[test]
    fn unavailable_names_the_endpoints_and_whether_a_write_may_have_applied() {
        let err = |maybe_applied| ClientError::Unavailable {
            tried: vec!["http://a:1".into(), "http://b:2".into()],
            last: "http://b:2: Unavailable: etcdserver: no leader".into(),
            maybe_applied,
            elapsed: Duration::from_millis(5000),
        };
        assert_eq!(
            err(false).to_string(),
            "no member served the request (tried http://a:1, http://b:2 for 5.0s); \
             last error: http://b:2: Unavailable: etcdserver: no leader"
        );
        assert!(err(true)
            .to_string()
            .ends_with("; the write may have been applied"));
    }

    #[test]
    fn final_errors_are_not_retried() {
        let bad = classify(
            Status::invalid_argument("etcdserver: key is not provided"),
            true,
        );
        assert!(
            matches!(bad, Verdict::Fail(ClientError::InvalidArgument(m)) if m == "key is not provided")
        );
        for big in [
            Status::invalid_argument("etcdserver: request is too large (2000000 bytes)"),
            Status::resource_exhausted("etcdserver: request is too large"),
        ] {
            assert!(matches!(
                classify(big, true),
                Verdict::Fail(ClientError::TooLarge(_))
            ));
        }
        let expired = classify(
            Status::failed_precondition("session of client 7 expired or unknown (seq 3)"),
            true,
        );
        assert!(matches!(expired, Verdict::SessionExpired));
        let stale = classify(Status::failed_precondition("stale sequence 3"), true);
        assert!(matches!(stale, Verdict::Fail(ClientError::Status(_))));
        // A status the server sent (no local source) with code Unknown is final.
        let unknown = classify(Status::unknown("boom"), false);
        assert!(matches!(unknown, Verdict::Fail(ClientError::Status(_))));
    }
}
