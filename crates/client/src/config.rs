//! [`ClientConfig`]: where the cluster is and how long a call may take.
//!
//! Owns: the knobs of a [`crate::Client`] and the one spelling of an endpoint
//! ([`normalize_endpoint`]: `host:port` and `http://host:port` name the same member).
//! Must never: touch the network (checking that an endpoint answers is the caller's business,
//! and a member that is down when the client starts must not stop it from starting).

use std::time::Duration;

use crate::error::ClientError;

/// Default [`ClientConfig::request_timeout`]: the whole of one call, retries included.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// Default [`ClientConfig::connect_timeout`].
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(2);
/// Default [`ClientConfig::attempt_timeout`].
pub const ATTEMPT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(2);
/// Default [`ClientConfig::response_bytes_max`]: 64 MiB.
pub const RESPONSE_BYTES_MAX_DEFAULT: usize = 64 << 20;
/// Default [`ClientConfig::idle_sessions_max`].
pub const IDLE_SESSIONS_MAX_DEFAULT: usize = 16;

/// How a [`crate::Client`] reaches the cluster.
///
/// ```
/// use std::time::Duration;
/// let cfg = client::ClientConfig::new(["127.0.0.1:2379", "http://127.0.0.1:22379"])
///     .request_timeout(Duration::from_secs(1));
/// assert_eq!(cfg.endpoints.len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Members to talk to, as `host:port` or `http://host:port` (plain HTTP/2, no TLS). More
    /// are learned from leader hints and [`crate::Client::sync_endpoints`].
    pub endpoints: Vec<String>,
    /// The deadline of one call, every retry included. When it passes the call fails with
    /// [`ClientError::Unavailable`] naming the endpoints tried.
    pub request_timeout: Duration,
    /// Most time to spend opening one TCP connection.
    pub connect_timeout: Duration,
    /// Most time to wait for one attempt's answer before trying again (on another member),
    /// bounded by what is left of `request_timeout`. A write retried this way keeps its
    /// session sequence number, so it is still applied once.
    pub attempt_timeout: Duration,
    /// Largest response accepted, in bytes (a big range can exceed gRPC's 4 MiB default).
    pub response_bytes_max: usize,
    /// Most sessions kept for reuse once their write is done; more concurrent writers get
    /// fresh sessions, dropped when they finish.
    pub idle_sessions_max: usize,
}

impl ClientConfig {
    /// A config for `endpoints` with every other knob at its default.
    pub fn new<I, S>(endpoints: I) -> ClientConfig
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClientConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ..ClientConfig::default()
        }
    }

    /// Sets [`ClientConfig::request_timeout`].
    pub fn request_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`ClientConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`ClientConfig::attempt_timeout`].
    pub fn attempt_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.attempt_timeout = timeout;
        self
    }

    /// Checks the knobs and returns the endpoints in their one spelling, duplicates removed.
    pub(crate) fn validate(&self) -> Result<Vec<String>, ClientError> {
        if self.request_timeout.is_zero() || self.attempt_timeout.is_zero() {
            return Err(ClientError::Config(
                "request_timeout and attempt_timeout must be above zero".into(),
            ));
        }
        let mut urls: Vec<String> = Vec::new();
        for endpoint in &self.endpoints {
            let url = normalize_endpoint(endpoint)?;
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        if urls.is_empty() {
            return Err(ClientError::Config("no endpoints given".into()));
        }
        Ok(urls)
    }
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            endpoints: Vec::new(),
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
            attempt_timeout: ATTEMPT_TIMEOUT_DEFAULT,
            response_bytes_max: RESPONSE_BYTES_MAX_DEFAULT,
            idle_sessions_max: IDLE_SESSIONS_MAX_DEFAULT,
        }
    }
}

/// The one spelling of an endpoint: `http://host:port`, without a trailing slash.
///
/// ```
/// use client::normalize_endpoint;
/// assert_eq!(normalize_endpoint("127.0.0.1:2379").unwrap(), "http://127.0.0.1:2379");
/// assert_eq!(normalize_endpoint(" http://node1:2379/ ").unwrap(), "http://node1:2379");
/// assert!(normalize_endpoint("https://node1:2379").is_err()); // no TLS
/// assert!(normalize_endpoint("node1").is_err()); // no port
/// ```
pub fn normalize_endpoint(endpoint: &str) -> Result<String, ClientError> {
    let invalid = |reason: &str| ClientError::Config(format!("endpoint {endpoint:?}: {reason}"));
    let trimmed = endpoint.trim();
    let authority = match trimmed.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(invalid(&format!(
                "scheme {scheme:?} is not supported (raftkv speaks plain http)"
            )))
        }
        None => trimmed,
    };
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.contains('/') {
        return Err(invalid("expected host:port without a path"));
    }
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Err(invalid("expected host:port"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(invalid("expected host:port with a numeric port"));
    }
    Ok(format!("http://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_removes_duplicate_spellings_of_one_endpoint() {
        let cfg = ClientConfig::new(["127.0.0.1:1", "http://127.0.0.1:1", "[::1]:2"]);
        assert_eq!(
            cfg.validate().unwrap(),
            ["http://127.0.0.1:1", "http://[::1]:2"]
        );
    }

    #[test]
    fn validate_refuses_no_endpoints_and_zero_timeouts() {
        assert!(matches!(
            ClientConfig::new(Vec::<String>::new()).validate(),
            Err(ClientError::Config(_))
        ));
        let cfg = ClientConfig::new(["a:1"]).request_timeout(Duration::ZERO);
        assert!(matches!(cfg.validate(), Err(ClientError::Config(_))));
    }

    #[test]
    fn normalize_refuses_bad_ports_and_paths() {
        assert!(normalize_endpoint("a:99999").is_err());
        assert!(normalize_endpoint(":2379").is_err());
        assert!(normalize_endpoint("http://a:1/x").is_err());
    }
}
