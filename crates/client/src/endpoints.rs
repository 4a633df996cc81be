//! [`Endpoints`]: the members a client knows, one lazy gRPC channel each, and which one to
//! ask next.
//!
//! Owns: the endpoint list (configured ones first, then learned ones, at most
//! [`ENDPOINTS_MAX`]), a `tonic` channel per endpoint (opened lazily, so a member that is down
//! costs nothing until it is asked), and the *current* endpoint: the one believed to be the
//! leader, else the last one that answered. A failure moves the current endpoint to the leader
//! the failing member named, or else round-robin to the next one.
//! Must never: wait (no `.await` under its lock), retry, or sleep — that is
//! [`crate::retry`]'s job.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::config::{normalize_endpoint, ClientConfig};
use crate::error::ClientError;

/// Most endpoints one client keeps (configured plus learned).
pub const ENDPOINTS_MAX: usize = 64;

/// HTTP/2 keep-alive: a member that stops answering pings is dropped after interval + timeout.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// One member the client can ask.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The normalized URL (`http://host:port`).
    pub url: Arc<str>,
    pub channel: Channel,
}

#[derive(Debug)]
struct State {
    targets: Vec<Target>,
    /// Index into `targets` of the endpoint to ask next.
    current: usize,
}

/// The members a client knows. Cheap to share behind the client's `Arc`.
#[derive(Debug)]
pub(crate) struct Endpoints {
    connect_timeout: Duration,
    state: Mutex<State>,
}

impl Endpoints {
    /// Channels for `urls` (already normalized); connects nothing yet. Must run inside a
    /// tokio runtime (tonic spawns each channel's worker task).
    pub fn new(urls: &[String], cfg: &ClientConfig) -> Result<Endpoints, ClientError> {
        let mut targets = Vec::with_capacity(urls.len());
        for url in urls.iter().take(ENDPOINTS_MAX) {
            targets.push(open(url, cfg.connect_timeout)?);
        }
        Ok(Endpoints {
            connect_timeout: cfg.connect_timeout,
            state: Mutex::new(State {
                targets,
                current: 0,
            }),
        })
    }

    /// The endpoint to ask next.
    pub fn current(&self) -> Target {
        let state = self.lock();
        state.targets[state.current].clone()
    }

    /// The target for `endpoint`, added (lazily connected) when it is new. Fails when it is
    /// malformed or the list is full.
    pub fn target(&self, endpoint: &str) -> Result<Target, ClientError> {
        let url = normalize_endpoint(endpoint)?;
        let mut state = self.lock();
        let index = self.index_or_add(&mut state, &url)?;
        Ok(state.targets[index].clone())
    }

    /// The known target for `endpoint`, or a new one that is not added to the list.
    pub fn lookup(&self, endpoint: &str) -> Result<Target, ClientError> {
        let url = normalize_endpoint(endpoint)?;
        let state = self.lock();
        match state.targets.iter().find(|t| *t.url == *url) {
            Some(target) => Ok(target.clone()),
            None => open(&url, self.connect_timeout),
        }
    }

    /// Every known endpoint, configured ones first.
    pub fn urls(&self) -> Vec<String> {
        let state = self.lock();
        state.targets.iter().map(|t| t.url.to_string()).collect()
    }

    /// Adds endpoints learned from the member list; unusable ones are skipped.
    pub fn learn<'a>(&self, urls: impl IntoIterator<Item = &'a str>) {
        for url in urls {
            if let Err(err) = self.target(url) {
                tracing::debug!(url, %err, "ignoring learned endpoint");
            }
        }
    }

    /// Makes `endpoint` (added if new) the one asked next: it is believed to be the leader.
    /// Returns false when the endpoint is unusable.
    pub fn prefer(&self, endpoint: &str) -> bool {
        let Ok(url) = normalize_endpoint(endpoint) else {
            tracing::debug!(endpoint, "ignoring malformed leader endpoint");
            return false;
        };
        let mut state = self.lock();
        match self.index_or_add(&mut state, &url) {
            Ok(index) => {
                state.current = index;
                true
            }
            Err(_) => false,
        }
    }

    /// `failed` did not serve a request. Moves on to `leader` when the member named one
    /// (and it is not `failed` itself), else to the endpoint after `failed` — unless another
    /// call already moved on.
    pub fn on_failure(&self, failed: &Target, leader: Option<&str>) {
        if let Some(leader) = leader {
            let same = normalize_endpoint(leader).is_ok_and(|url| *url == *failed.url);
            if !same && self.prefer(leader) {
                return;
            }
        }
        let mut state = self.lock();
        let len = state.targets.len();
        if *state.targets[state.current].url == *failed.url {
            state.current = (state.current + 1) % len;
        }
    }

    fn index_or_add(&self, state: &mut State, url: &str) -> Result<usize, ClientError> {
        if let Some(index) = state.targets.iter().position(|t| &*t.url == url) {
            return Ok(index);
        }
        if state.targets.len() >= ENDPOINTS_MAX {
            return Err(ClientError::Config(format!(
                "endpoint {url}: the client already knows {ENDPOINTS_MAX} endpoints"
            )));
        }
        state.targets.push(open(url, self.connect_timeout)?);
        Ok(state.targets.len() - 1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing under this lock can panic halfway through an update, so a poisoned lock
        // still holds a consistent list.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn open(url: &str, connect_timeout: Duration) -> Result<Target, ClientError> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| ClientError::Config(format!("endpoint {url}: {e}")))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(false);
    Ok(Target {
        url: url.into(),
        channel: endpoint.connect_lazy(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(urls: &[&str]) -> Endpoints {
        let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
        Endpoints::new(&urls, &ClientConfig::new(urls.clone())).unwrap()
    }

    #[tokio::test]
    async fn failure_moves_round_robin_and_wraps() {
        let eps = endpoints(&["http://a:1", "http://b:1"]);
        let a = eps.current();
        eps.on_failure(&a, None);
        assert_eq!(&*eps.current().url, "http://b:1");
        eps.on_failure(&eps.current(), None);
        assert_eq!(&*eps.current().url, "http://a:1");
    }

    #[tokio::test]
    async fn a_second_failure_of_the_same_endpoint_does_not_skip_the_next() {
        let eps = endpoints(&["http://a:1", "http://b:1", "http://c:1"]);
        let a = eps.current();
        eps.on_failure(&a, None);
        eps.on_failure(&a, None); // a concurrent call failed on `a` too
        assert_eq!(&*eps.current().url, "http://b:1");
    }

    #[tokio::test]
    async fn leader_hint_is_learned_and_preferred() {
        let eps = endpoints(&["http://a:1"]);
        let a = eps.current();
        eps.on_failure(&a, Some("z:9"));
        assert_eq!(&*eps.current().url, "http://z:9");
        assert_eq!(eps.urls(), ["http://a:1", "http://z:9"]);
        // A hint naming the failed member itself is no hint.
        let z = eps.current();
        eps.on_failure(&z, Some("http://z:9"));
        assert_eq!(&*eps.current().url, "http://a:1");
    }

    #[tokio::test]
    async fn learned_endpoints_are_bounded() {
        let eps = endpoints(&["http://a:1"]);
        let many: Vec<String> = (0..100).map(|i| format!("h{i}:1")).collect();
        eps.learn(many.iter().map(String::as_str));
        assert_eq!(eps.urls().len(), ENDPOINTS_MAX);
    }
}
