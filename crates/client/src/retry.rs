//! The retry loop: one call, many attempts, one deadline.
//!
//! An attempt goes to the current endpoint (see [`crate::endpoints`]). A transient failure
//! moves to the leader the member named, or round-robin to the next member; the next attempt
//! goes out at once while it targets a member not yet asked in this round, and after a
//! backoff (20 ms doubling to 200 ms, plus up to a quarter of jitter) once every member has
//! been asked. Each attempt waits at most `attempt_timeout`, and nothing waits past the call's
//! deadline.
//!
//! Owns: [`CallState`] (deadline, backoff, the endpoints tried, the last error, whether a
//! write may have been proposed) and [`run`].
//! Must never: spin without sleeping, wait past the deadline, retry a final error, or change
//! the request between attempts (a write's retries must repeat its session `seq`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::Status;

use crate::endpoints::Endpoints;
use crate::error::{classify, describe, ClientError, Verdict};

const BACKOFF_FIRST: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(200);

/// Why [`run`] gave up.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Final: the caller gets this.
    Failed(ClientError),
    /// The server does not know the write's session (the message says why).
    SessionExpired(String),
}

/// What one call has been through so far; shared by every attempt of the call (and, for a
/// write whose session expired, by the attempts with its fresh session).
#[derive(Debug)]
pub(crate) struct CallState {
    started: Instant,
    deadline: Instant,
    attempt_timeout: Duration,
    backoff: Duration,
    /// Endpoints asked since the last backoff sleep.
    round: Vec<Arc<str>>,
    tried: Vec<String>,
    last: String,
    /// An attempt may have reached a leader's log.
    pub maybe_sent: bool,
}

impl CallState {
    /// A call that must end within `timeout` from now.
    pub fn new(timeout: Duration, attempt_timeout: Duration) -> CallState {
        CallState {
            started: Instant::now(),
            deadline: Instant::now() + timeout,
            attempt_timeout,
            backoff: BACKOFF_FIRST,
            round: Vec::new(),
            tried: Vec::new(),
            last: String::from("no attempt made"),
            maybe_sent: false,
        }
    }

    /// How long the next attempt may take; `None` once the deadline has passed.
    fn attempt_budget(&self) -> Option<Duration> {
        let left = self.deadline.checked_duration_since(Instant::now())?;
        (!left.is_zero()).then(|| left.min(self.attempt_timeout))
    }

    fn record(&mut self, url: &Arc<str>, error: String) {
        if !self.tried.iter().any(|t| **t == **url) {
            self.tried.push(url.to_string());
        }
        self.round.push(url.clone());
        self.last = format!("{url}: {error}");
    }

    /// Sleeps the backoff when the next target was already asked in this round.
    async fn pause_before(&mut self, next: &Arc<str>) {
        if !self.round.iter().any(|u| **u == **next) {
            return;
        }
        self.round.clear();
        let jitter_ms = rand::thread_rng().gen_range(0..=self.backoff.as_millis() as u64 / 4);
        let pause = self.backoff + Duration::from_millis(jitter_ms);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        let wake = (Instant::now() + pause).min(self.deadline);
        tokio::time::sleep_until(wake).await;
    }

    /// The error for a call whose deadline passed.
    pub fn unavailable(&self, write: bool) -> ClientError {
        ClientError::Unavailable {
            tried: self.tried.clone(),
            last: self.last.clone(),
            maybe_applied: write && self.maybe_sent,
            elapsed: self.started.elapsed(),
        }
    }
}

/// Runs `attempt` against the current endpoint until it succeeds, fails finally, or the
/// deadline passes. `attempt` gets the endpoint's channel and the time it may take (to send as
/// the gRPC timeout). `write` marks the session-carrying writes.
pub(crate) async fn run<T, F, Fut>(
    endpoints: &Endpoints,
    state: &mut CallState,
    write: bool,
    mut attempt: F,
) -> Result<T, Stop>
where
    F: FnMut(Channel, Duration) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    loop {
        let Some(budget) = state.attempt_budget() else {
            return Err(Stop::Failed(state.unavailable(write)));
        };
        let target = endpoints.current();
        let status =
            match tokio::time::timeout(budget, attempt(target.channel.clone(), budget)).await {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(status)) => status,
                Err(_elapsed) => Status::deadline_exceeded(format!("no answer within {budget:?}")),
            };
        let text = describe(&status);
        match classify(status, write) {
            Verdict::Fail(err) => return Err(Stop::Failed(err)),
            Verdict::SessionExpired => {
                return Err(Stop::SessionExpired(format!("{}: {text}", target.url)))
            }
            Verdict::Retry { leader, maybe_sent } => {
                tracing::debug!(endpoint = %target.url, error = %text, ?leader, "attempt failed, retrying");
                state.maybe_sent |= maybe_sent;
                let text = match &leader {
                    Some(leader) => format!("{text} (leader: {leader})"),
                    None => text,
                };
                state.record(&target.url, text);
                endpoints.on_failure(&target, leader.as_deref());
                let next = endpoints.current();
                state.pause_before(&next.url).await;
            }
        }
    }
}
