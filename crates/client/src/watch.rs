//! [`Watcher`]: a watch on the cluster that outlives the member serving it — the events of
//! a key range from a start revision on, resumed on another member when the stream breaks,
//! from the revision after the last one received, so that no event is lost or repeated.
//!
//! Owns: the watch stream, its resumption and the watch's errors. Must never: hand out an
//! event twice or skip one (a member that cannot resume where the watch is, because the
//! revision is older than its window, ends the watch with [`ClientError::Compacted`]), or
//! look for a member longer than the client's request timeout at a time.

use std::time::Duration;

use proto::etcdserverpb::watch_client::WatchClient;
use proto::etcdserverpb::{watch_request, WatchCreateRequest, WatchRequest, WatchResponse};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Streaming;

use crate::client::Client;
use crate::endpoints::Target;
use crate::error::ClientError;
use crate::keys::KeyRange;

/// Longest pause between two attempts to reopen a broken watch.
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// What to watch.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    /// First revision to report (0: from now on).
    pub start_revision: i64,
    /// Include each event's previous key/value.
    pub prev_kv: bool,
}

/// An open watch (see the module docs). Not `Clone`: one reader.
pub struct Watcher {
    client: Client,
    range: KeyRange,
    opts: WatchOptions,
    /// Revision of the next event to hand out; 0 until the first stream said where "now" is.
    next: i64,
    stream: Option<Open>,
}

struct Open {
    target: Target,
    /// Kept so the request side of the stream stays open.
    _requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("range", &self.range)
            .field("next", &self.next)
            .field(
                "member",
                &self.stream.as_ref().map(|s| s.target.url.clone()),
            )
            .finish()
    }
}

impl Client {
    /// Watch `range`: [`Watcher::next`] hands out its events in revision order. Opens the
    /// stream at once (a start revision the cluster no longer has fails here).
    pub async fn watch(&self, range: KeyRange, opts: WatchOptions) -> Result<Watcher, ClientError> {
        let mut w = Watcher {
            client: self.clone(),
            range,
            next: opts.start_revision.max(0),
            opts,
            stream: None,
        };
        w.reopen().await?;
        Ok(w)
    }
}

impl Watcher {
    /// The next response with events (progress notifications are skipped); every event of
    /// each revision it holds, in order. Resumes on another member when the stream breaks.
    pub async fn next(&mut self) -> Result<WatchResponse, ClientError> {
        loop {
            let Some(open) = self.stream.as_mut() else {
                self.reopen().await?;
                continue;
            };
            match open.responses.message().await {
                Ok(Some(resp)) => {
                    if resp.canceled {
                        self.stream = None;
                        return Err(canceled(resp));
                    }
                    let Some(last) = resp.events.last() else {
                        continue; // progress
                    };
                    let first = resp.events[0].kv.as_ref().map_or(0, |kv| kv.mod_revision);
                    debug_assert!(first >= self.next, "an event before the resume point");
                    self.next = last.kv.as_ref().map_or(self.next, |kv| kv.mod_revision + 1);
                    return Ok(resp);
                }
                Ok(None) | Err(_) => {
                    let failed = open.target.clone();
                    self.stream = None;
                    self.client.endpoints_ref().on_failure(&failed, None);
                }
            }
        }
    }

    /// The revision the next event will have at the least.
    pub fn next_revision(&self) -> i64 {
        self.next
    }

    /// The member serving the watch now, if a stream is open.
    pub fn member(&self) -> Option<String> {
        self.stream.as_ref().map(|s| s.target.url.to_string())
    }

    /// Open a stream on some member, from `next` (or now), within the request timeout.
    async fn reopen(&mut self) -> Result<(), ClientError> {
        let cfg = self.client.config().clone();
        let started = Instant::now();
        let deadline = started + cfg.request_timeout;
        let mut tried = Vec::new();
        let mut backoff = Duration::from_millis(20);
        loop {
            let target = self.client.endpoints_ref().current();
            match self.open_on(&target, cfg.response_bytes_max).await {
                Ok(open) => {
                    self.stream = Some(open);
                    return Ok(());
                }
                Err(Fatal(e)) => return Err(e),
                Err(Retry(e)) => {
                    tried.push(target.url.to_string());
                    self.client.endpoints_ref().on_failure(&target, None);
                    let now = Instant::now();
                    if now + backoff >= deadline {
                        tried.dedup();
                        return Err(ClientError::Unavailable {
                            tried,
                            last: e,
                            maybe_applied: false,
                            elapsed: now - started,
                        });
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    async fn open_on(&mut self, target: &Target, limit: usize) -> Result<Open, OpenError> {
        let (tx, rx) = mpsc::channel(4);
        let create = WatchCreateRequest {
            key: self.range.key.clone(),
            range_end: self.range.range_end.clone(),
            start_revision: self.next,
            prev_kv: self.opts.prev_kv,
            ..Default::default()
        };
        tx.send(WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
        })
        .await
        .expect("the receiver is ours");
        let requests = tokio_stream::wrappers::ReceiverStream::new(rx);
        let attempt = self.client.config().attempt_timeout;
        let opened = tokio::time::timeout(attempt, async {
            let mut responses = WatchClient::new(target.channel.clone())
                .max_decoding_message_size(limit)
                .watch(requests)
                .await
                .map_err(|s| Retry(s.message().to_string()))?
                .into_inner();
            let created = match responses.message().await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return Err(Retry(
                        "the stream ended before the watch was created".into(),
                    ))
                }
                Err(s) => return Err(Retry(s.message().to_string())),
            };
            Ok((responses, created))
        })
        .await
        .map_err(|_| Retry(format!("no watch created within {attempt:?}")))?;
        let (responses, created) = opened?;
        if !created.created {
            return Err(Fatal(ClientError::InvalidArgument(format!(
                "the member answered a watch with {created:?}"
            ))));
        }
        if created.canceled {
            return Err(Fatal(canceled(created)));
        }
        if self.next == 0 {
            // From now on: now is the created response's revision.
            self.next = created.header.as_ref().map_or(0, |h| h.revision) + 1;
        }
        Ok(Open {
            target: target.clone(),
            _requests: tx,
            responses,
        })
    }
}

enum OpenError {
    /// This member did not open the watch; another may.
    Retry(String),
    /// The watch cannot be opened (compacted, refused).
    Fatal(ClientError),
}
use OpenError::{Fatal, Retry};

fn canceled(resp: WatchResponse) -> ClientError {
    if resp.compact_revision != 0 {
        ClientError::Compacted {
            compact_revision: resp.compact_revision,
            reason: resp.cancel_reason,
        }
    } else {
        ClientError::InvalidArgument(format!("watch canceled: {}", resp.cancel_reason))
    }
}
