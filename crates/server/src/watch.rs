//! etcd's `Watch` service: one bidirectional stream per call, many watchers per stream,
//! each fed from this member's applied state through the node's [`WatchHub`].
//!
//! Like etcd, every member serves watches from what it applied: a follower's events come
//! when it applies them, in the same revision order as everywhere. raftkv keeps no MVCC
//! history, only the hub's window of recent events: a watcher may start anywhere inside
//! it (a client resuming after a reconnect, or "get at revision R, watch from R + 1");
//! before it, the watcher is created and at once canceled with `compact_revision` set and
//! etcd's "required revision has been compacted", as etcd answers for a compacted revision.
//!
//! Order on a stream: everything for the client — created, events, progress, canceled —
//! goes through one queue, and whatever must line up with the applied revisions (a
//! registration and the replay of the window, a cancellation, a progress report) is put
//! on it from the node's loop, between two applies. So a watcher's created response comes
//! before its events, its events come in revision order with nothing missing or doubled,
//! and a progress response's revision is never followed by an event at or below it.
//!
//! A watcher whose events pile up (the client reads too slowly) past
//! [`QUEUED_EVENTS_MAX`] is canceled with `compact_revision` = the first revision it did
//! not get, so that the client can resume there if the window still holds it.
//!
//! Owns: the stream's watch ids (etcd's: chosen by the client or counted from 0), request
//! validation, the mapping to `WatchResponse`s, periodic progress notifications for
//! watchers that asked (as etcd: only to a watcher that got no events since the last
//! tick), and unregistering every watcher when the stream ends.
//! Must never: block the node's loop (sinks only push onto an unbounded queue they bound
//! themselves), keep a watcher registered after its stream ended, or hold the server's
//! shutdown (a stream ends when the node stops).

use crate::api::Api;
use crate::convert::key_value;
use bytes::Bytes;
use kv::{Event, EventKind, KeyRange, Registered, WatchHub, WatchNotice, WatchSink, WatchSpec};
use proto::etcdserverpb as pb;
use proto::etcdserverpb::watch_server::Watch;
use proto::mvccpb;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

/// Events queued for one stream, not yet taken for sending, beyond which the watcher that
/// adds more is canceled.
pub const QUEUED_EVENTS_MAX: usize = 100_000;
/// Responses buffered towards the client.
const OUT_BUFFER: usize = 64;
/// etcd's text for a start revision no longer available.
pub const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
/// etcd's text for a client-chosen watch id already in use on the stream.
pub const DUPLICATE_ID: &str = "mvcc: duplicate watch ID provided on the WatchStream";

/// What goes to the client, in order.
#[derive(Debug)]
enum Item {
    Created {
        watch_id: i64,
        revision: i64,
    },
    Events {
        watch_id: i64,
        revision: i64,
        events: Vec<Event>,
    },
    Canceled {
        watch_id: i64,
        /// The registration it ends, when it did not end by a cancel request (which removed
        /// it from the stream's table already).
        serial: Option<u64>,
        revision: i64,
        compact_revision: i64,
        reason: String,
    },
    Progress {
        watch_id: i64,
        revision: i64,
    },
}

/// A watcher's sink: its notices become items on its stream's queue.
struct StreamSink {
    watch_id: i64,
    serial: u64,
    tx: mpsc::UnboundedSender<Item>,
    queued: Arc<AtomicUsize>,
}

impl WatchSink for StreamSink {
    fn notify(&mut self, notice: WatchNotice) -> bool {
        let watch_id = self.watch_id;
        match notice {
            WatchNotice::Events { revision, events } => {
                let queued = self.queued.fetch_add(events.len(), Ordering::Relaxed) + events.len();
                if queued > QUEUED_EVENTS_MAX {
                    self.queued.fetch_sub(events.len(), Ordering::Relaxed);
                    let _ = self.tx.send(Item::Canceled {
                        watch_id,
                        serial: Some(self.serial),
                        revision,
                        compact_revision: revision,
                        reason: format!(
                            "raftkv: the watcher fell behind (over {QUEUED_EVENTS_MAX} events \
                             waiting to be sent); watch again from compact_revision"
                        ),
                    });
                    return false;
                }
                self.tx
                    .send(Item::Events {
                        watch_id,
                        revision,
                        events,
                    })
                    .is_ok()
            }
            WatchNotice::Compacted { compact_revision } => {
                let _ = self.tx.send(Item::Canceled {
                    watch_id,
                    serial: Some(self.serial),
                    revision: compact_revision - 1,
                    compact_revision,
                    reason: COMPACTED.to_string(),
                });
                false
            }
        }
    }
}

/// The `Watch` service of one member.
#[derive(Clone)]
pub struct WatchService {
    api: Api,
    hub: WatchHub,
    stop: CancellationToken,
    progress_interval: Duration,
}

impl WatchService {
    /// `progress_interval`: how often a watcher that asked for progress notifications gets
    /// one (etcd: 10 minutes).
    pub fn new(
        api: Api,
        hub: WatchHub,
        stop: CancellationToken,
        progress_interval: Duration,
    ) -> Self {
        WatchService {
            api,
            hub,
            stop,
            progress_interval,
        }
    }
}

#[tonic::async_trait]
impl Watch for WatchService {
    async fn watch(
        &self,
        req: Request<Streaming<pb::WatchRequest>>,
    ) -> Result<Response<BoxStream<pb::WatchResponse>>, Status> {
        let (out_tx, mut out_rx) = mpsc::channel(OUT_BUFFER);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let stream = WatchStream {
            svc: self.clone(),
            watchers: HashMap::new(),
            next_id: 0,
            serial: 0,
            ev_tx,
            queued: Arc::new(AtomicUsize::new(0)),
        };
        tokio::spawn(stream.run(req.into_inner(), ev_rx, out_tx));
        let out = futures_util::stream::poll_fn(move |cx| out_rx.poll_recv(cx));
        Ok(Response::new(Box::pin(out)))
    }
}

/// A registered watcher of the stream.
struct Watching {
    id: kv::WatcherId,
    /// Events went out for it since the last progress tick (etcd then skips its
    /// notification: the events told the client as much).
    sent_events: bool,
    /// Which create of the stream registered it (a client may reuse a watch id).
    serial: u64,
    progress_notify: bool,
}

struct WatchStream {
    svc: WatchService,
    /// Watch id → its registration in the hub.
    watchers: HashMap<i64, Watching>,
    /// Next automatic watch id (etcd counts from 0).
    next_id: i64,
    /// Creates so far.
    serial: u64,
    ev_tx: mpsc::UnboundedSender<Item>,
    queued: Arc<AtomicUsize>,
}

impl WatchStream {
    async fn run(
        mut self,
        mut incoming: Streaming<pb::WatchRequest>,
        mut ev_rx: mpsc::UnboundedReceiver<Item>,
        out: mpsc::Sender<Result<pb::WatchResponse, Status>>,
    ) {
        let mut progress = tokio::time::interval(self.svc.progress_interval);
        progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        progress.tick().await;
        let stop = self.svc.stop.clone();
        // The client may close its side and still read (etcd goes on sending then too).
        let mut requests_done = false;
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => {
                    let _ = out.send(Err(stopping())).await;
                    break;
                }
                _ = out.closed() => break, // the client is gone
                item = ev_rx.recv() => {
                    let Some(item) = item else { break };
                    let resp = self.response(item);
                    if out.send(Ok(resp)).await.is_err() {
                        break; // the client is gone
                    }
                }
                req = incoming.message(), if !requests_done => match req {
                    Ok(Some(req)) => {
                        if let Err(status) = self.handle(req).await {
                            let _ = out.send(Err(status)).await;
                            break;
                        }
                    }
                    Ok(None) => requests_done = true,
                    Err(_) => break, // the stream broke
                },
                _ = progress.tick(), if self.watchers.values().any(|w| w.progress_notify) => {
                    let ids: Vec<i64> = self
                        .watchers
                        .iter()
                        .filter(|(_, w)| w.progress_notify && !w.sent_events)
                        .map(|(id, _)| *id)
                        .collect();
                    self.watchers.values_mut().for_each(|w| w.sent_events = false);
                    if self.progress(ids).await.is_err() {
                        break;
                    }
                }
            }
        }
        self.unregister_all().await;
    }

    fn response(&mut self, item: Item) -> pb::WatchResponse {
        let header = self.svc.api.header();
        match item {
            Item::Created { watch_id, revision } => pb::WatchResponse {
                header: header.at(revision),
                watch_id,
                created: true,
                ..Default::default()
            },
            Item::Events {
                watch_id,
                revision,
                events,
            } => {
                self.queued.fetch_sub(events.len(), Ordering::Relaxed);
                if let Some(w) = self.watchers.get_mut(&watch_id) {
                    w.sent_events = true;
                }
                pb::WatchResponse {
                    header: header.at(revision),
                    watch_id,
                    events: events.into_iter().map(event).collect(),
                    ..Default::default()
                }
            }
            Item::Canceled {
                watch_id,
                serial,
                revision,
                compact_revision,
                reason,
            } => {
                if serial.is_some() && self.watchers.get(&watch_id).map(|w| w.serial) == serial {
                    self.watchers.remove(&watch_id);
                }
                pb::WatchResponse {
                    header: header.at(revision),
                    watch_id,
                    canceled: true,
                    compact_revision,
                    cancel_reason: reason,
                    ..Default::default()
                }
            }
            Item::Progress { watch_id, revision } => pb::WatchResponse {
                header: header.at(revision),
                watch_id,
                ..Default::default()
            },
        }
    }

    async fn handle(&mut self, req: pb::WatchRequest) -> Result<(), Status> {
        use pb::watch_request::RequestUnion;
        match req.request_union {
            Some(RequestUnion::CreateRequest(c)) => self.create(c).await,
            Some(RequestUnion::CancelRequest(c)) => self.cancel(c.watch_id).await,
            // etcd answers with watch id -1: for every watcher of the stream.
            Some(RequestUnion::ProgressRequest(_)) => self.progress(vec![-1]).await,
            None => Ok(()),
        }
    }

    /// An item the stream task puts on its own queue (after what is already there).
    fn push(&self, item: Item) {
        let _ = self.ev_tx.send(item);
    }

    /// Run `f` on the node's loop, between two applies, with the hub and the stream's queue:
    /// what it queues lines up with the applied revisions.
    async fn on_loop<R: Send + 'static>(
        &self,
        f: impl FnOnce(&WatchHub, &mpsc::UnboundedSender<Item>) -> R + Send + 'static,
    ) -> Result<R, Status> {
        let (hub, tx) = (self.svc.hub.clone(), self.ev_tx.clone());
        self.svc
            .api
            .handle()
            .local(move |_, _| f(&hub, &tx))
            .await
            .map_err(|_| stopping())
    }

    async fn create(&mut self, c: pb::WatchCreateRequest) -> Result<(), Status> {
        let watch_id = if c.watch_id != 0 {
            c.watch_id
        } else {
            while self.watchers.contains_key(&self.next_id) {
                self.next_id += 1;
            }
            self.next_id
        };
        let refuse = |this: &Self, reason: String| {
            let revision = this.svc.hub.revision();
            this.push(Item::Created { watch_id, revision });
            this.push(Item::Canceled {
                watch_id,
                serial: None,
                revision,
                compact_revision: 0,
                reason,
            });
        };
        if c.watch_id < 0 {
            refuse(self, format!("raftkv: invalid watch id {}", c.watch_id));
            return Ok(());
        }
        if self.watchers.contains_key(&watch_id) {
            refuse(self, DUPLICATE_ID.to_string());
            return Ok(());
        }
        let range = match KeyRange::new(&Bytes::from(c.key), &Bytes::from(c.range_end)) {
            Ok(r) => r,
            Err(e) => {
                refuse(self, format!("etcdserver: {e}"));
                return Ok(());
            }
        };
        let (mut no_put, mut no_delete) = (false, false);
        for f in &c.filters {
            match pb::watch_create_request::FilterType::try_from(*f) {
                Ok(pb::watch_create_request::FilterType::Noput) => no_put = true,
                Ok(pb::watch_create_request::FilterType::Nodelete) => no_delete = true,
                Err(_) => {
                    refuse(self, format!("etcdserver: invalid watch filter {f}"));
                    return Ok(());
                }
            }
        }
        if c.watch_id == 0 {
            self.next_id += 1;
        }
        let spec = WatchSpec {
            range,
            start_revision: c.start_revision,
            no_put,
            no_delete,
            prev_kv: c.prev_kv,
        };
        self.serial += 1;
        let serial = self.serial;
        let sink = StreamSink {
            watch_id,
            serial,
            tx: self.ev_tx.clone(),
            queued: self.queued.clone(),
        };
        // On the node's loop: no write applies between the revision the watcher starts
        // from and its registration, and the created response precedes the window's events.
        let registered = self
            .on_loop(move |hub, tx| {
                let _ = tx.send(Item::Created {
                    watch_id,
                    revision: hub.revision(),
                });
                hub.register(spec, Box::new(sink))
            })
            .await?;
        match registered {
            Registered::Watching { id, .. } => {
                self.watchers.insert(
                    watch_id,
                    Watching {
                        id,
                        sent_events: false,
                        serial,
                        progress_notify: c.progress_notify,
                    },
                );
            }
            Registered::Compacted {
                compact_revision,
                revision,
            } => self.push(Item::Canceled {
                watch_id,
                serial: None,
                revision,
                compact_revision,
                reason: COMPACTED.to_string(),
            }),
            // The sink already queued why (it fell behind during the replay).
            Registered::Gone { .. } => {}
        }
        Ok(())
    }

    async fn cancel(&mut self, watch_id: i64) -> Result<(), Status> {
        // etcd ignores a cancel of an id it does not know.
        let Some(w) = self.watchers.remove(&watch_id) else {
            return Ok(());
        };
        self.on_loop(move |hub, tx| {
            hub.unregister(w.id);
            let _ = tx.send(Item::Canceled {
                watch_id,
                serial: None,
                revision: hub.revision(),
                compact_revision: 0,
                reason: String::new(),
            });
        })
        .await
    }

    /// A progress response for each of `ids`, at the revision applied when it is queued.
    async fn progress(&mut self, ids: Vec<i64>) -> Result<(), Status> {
        self.on_loop(move |hub, tx| {
            hub.at_revision(|revision| {
                for watch_id in ids {
                    let _ = tx.send(Item::Progress { watch_id, revision });
                }
            })
        })
        .await
    }

    async fn unregister_all(&mut self) {
        let ids: Vec<kv::WatcherId> = self.watchers.drain().map(|(_, w)| w.id).collect();
        if ids.is_empty() {
            return;
        }
        // A stopped node has no watchers left to remove.
        let _ = self
            .on_loop(move |hub, _| {
                for id in ids {
                    hub.unregister(id);
                }
            })
            .await;
    }
}

fn stopping() -> Status {
    Status::unavailable("raftkv: the member is stopping")
}

fn event(e: Event) -> mvccpb::Event {
    mvccpb::Event {
        r#type: match e.kind {
            EventKind::Put => mvccpb::event::EventType::Put as i32,
            EventKind::Delete => mvccpb::event::EventType::Delete as i32,
        },
        kv: Some(key_value(e.kv)),
        prev_kv: e.prev_kv.map(key_value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_at(revision: i64) -> Event {
        Event {
            kind: EventKind::Put,
            kv: kv::KeyValue {
                key: "k".into(),
                mod_revision: revision,
                ..Default::default()
            },
            prev_kv: None,
        }
    }

    #[test]
    fn a_sink_past_its_queue_bound_cancels_at_the_first_revision_it_missed() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(QUEUED_EVENTS_MAX - 1));
        let mut sink = StreamSink {
            watch_id: 3,
            serial: 1,
            tx,
            queued: queued.clone(),
        };
        let fits = WatchNotice::Events {
            revision: 10,
            events: vec![put_at(10)],
        };
        assert!(sink.notify(fits));
        let over = WatchNotice::Events {
            revision: 11,
            events: vec![put_at(11)],
        };
        assert!(!sink.notify(over), "the watcher is dropped");
        assert!(matches!(
            rx.try_recv().unwrap(),
            Item::Events { revision: 10, .. }
        ));
        match rx.try_recv().unwrap() {
            Item::Canceled {
                watch_id: 3,
                serial: Some(1),
                compact_revision: 11,
                reason,
                ..
            } => assert!(reason.contains("fell behind"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(queued.load(Ordering::Relaxed), QUEUED_EVENTS_MAX);
    }

    #[test]
    fn a_compacted_watcher_is_canceled_with_etcds_reason() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut sink = StreamSink {
            watch_id: 0,
            serial: 4,
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
        };
        assert!(!sink.notify(WatchNotice::Compacted {
            compact_revision: 42
        }));
        match rx.try_recv().unwrap() {
            Item::Canceled {
                compact_revision: 42,
                revision: 41,
                reason,
                ..
            } => assert_eq!(reason, COMPACTED),
            other => panic!("{other:?}"),
        }
    }
}
