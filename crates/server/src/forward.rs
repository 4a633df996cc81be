//! Forwarding a follower's write to the leader over the peer transport: the request and
//! its answer are application frames on the connections the members already keep open
//! (see [`crate::transport::AppFrames`]), not a gRPC call on the client port — no HTTP/2,
//! no HPACK, no extra connection, and a batch of them shares the transport's flushes.
//!
//! Frames (payload of a peer frame, integers little-endian):
//! - request `[0x80][id: u64][timeout ms: u32][command]` — propose `command`, answer by
//!   `timeout` at the latest;
//! - reply `[0x81][id: u64][0][apply result]`, or `[0x81][id: u64][1][gRPC code: i32][message]`
//!   when it failed (a "not the leader" failure proposed nothing).
//!
//! Request ids start at a random value per process, so a reply that outlived a restart of
//! the member that asked never matches a new request; a reply is only taken from the member
//! the request went to.
//!
//! Owns: the frame format, the table of requests waiting for their reply, failing those
//! whose connection broke (the outcome is then unknown). Must never: answer a request with
//! another's reply, block a connection's task (the serving side spawns), or leave a waiter
//! behind after its caller gave up (the entry is removed on drop).

use crate::transport::{AppFrames, PeerLink};
use bytes::{BufMut, Bytes, BytesMut};
use raft::NodeId;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::oneshot;
use tonic::{Code, Status};

const T_REQUEST: u8 = 0x80;
const T_REPLY: u8 = 0x81;
const REQUEST_HEADER: usize = 1 + 8 + 4;
const REPLY_HEADER: usize = 1 + 8 + 1;

/// A decoded forwarding request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub timeout: Duration,
    pub command: Bytes,
}

/// The answer to a forwarded request, as the asking member sees it.
#[derive(Debug)]
pub enum Outcome {
    /// It applied on the leader: the apply result.
    Done(Bytes),
    /// The serving member answered with an error.
    Failed(Status),
    /// The frame was never queued (no such peer, over the frame limit): nothing proposed.
    NotSent,
    /// The connection broke before the reply came: it may or may not have applied.
    Lost,
}

/// A frame that did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("forwarding frame truncated")]
    Truncated,
    #[error("unknown forwarding frame tag {0:#x}")]
    Tag(u8),
    #[error("malformed forwarding reply")]
    Malformed,
}

/// Encode a request frame.
pub fn encode_request(id: u64, timeout: Duration, command: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(REQUEST_HEADER + command.len());
    b.put_u8(T_REQUEST);
    b.put_u64_le(id);
    b.put_u32_le(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
    b.put_slice(command);
    b.freeze()
}

/// Encode a reply frame: the apply result, or the failure.
pub fn encode_reply(id: u64, result: &Result<Bytes, Status>) -> Bytes {
    let body = match result {
        Ok(r) => r.len(),
        Err(s) => 4 + s.message().len(),
    };
    let mut b = BytesMut::with_capacity(REPLY_HEADER + body);
    b.put_u8(T_REPLY);
    b.put_u64_le(id);
    match result {
        Ok(r) => {
            b.put_u8(0);
            b.put_slice(r);
        }
        Err(s) => {
            b.put_u8(1);
            b.put_i32_le(s.code() as i32);
            b.put_slice(s.message().as_bytes());
        }
    }
    b.freeze()
}

/// A decoded frame.
#[derive(Debug)]
pub enum Frame {
    Request(Request),
    Reply {
        id: u64,
        result: Result<Bytes, Status>,
    },
}

/// Decode a frame; the command and result are slices of `frame`, not copies.
pub fn decode(frame: Bytes) -> Result<Frame, FrameError> {
    let tag = *frame.first().ok_or(FrameError::Truncated)?;
    let u64_at = |at: usize| u64::from_le_bytes(frame[at..at + 8].try_into().expect("8 bytes"));
    match tag {
        T_REQUEST => {
            if frame.len() < REQUEST_HEADER {
                return Err(FrameError::Truncated);
            }
            let ms = u32::from_le_bytes(frame[9..13].try_into().expect("4 bytes"));
            Ok(Frame::Request(Request {
                id: u64_at(1),
                timeout: Duration::from_millis(ms.into()),
                command: frame.slice(REQUEST_HEADER..),
            }))
        }
        T_REPLY => {
            if frame.len() < REPLY_HEADER {
                return Err(FrameError::Truncated);
            }
            let id = u64_at(1);
            let result = match frame[9] {
                0 => Ok(frame.slice(REPLY_HEADER..)),
                1 => {
                    let rest = &frame[REPLY_HEADER..];
                    if rest.len() < 4 {
                        return Err(FrameError::Truncated);
                    }
                    let code = i32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
                    let msg = std::str::from_utf8(&rest[4..]).map_err(|_| FrameError::Malformed)?;
                    Err(Status::new(Code::from_i32(code), msg))
                }
                _ => return Err(FrameError::Malformed),
            };
            Ok(Frame::Reply { id, result })
        }
        t => Err(FrameError::Tag(t)),
    }
}

/// The id of a request frame (`None` for a reply or a malformed frame).
fn request_id(frame: &[u8]) -> Option<u64> {
    match frame {
        [T_REQUEST, id @ ..] if id.len() >= 8 => {
            Some(u64::from_le_bytes(id[..8].try_into().expect("8 bytes")))
        }
        _ => None,
    }
}

/// Serves a request from a peer (set by the client API; must not block: it spawns).
pub type Serve = Box<dyn Fn(NodeId, Request) + Send + Sync>;

/// One member's forwarding state: its waiting requests and how it serves others'.
pub struct Forwarder {
    link: Arc<PeerLink>,
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Waiter>>,
    serve: OnceLock<Serve>,
}

struct Waiter {
    to: NodeId,
    /// Written to a connection: if it breaks, the outcome is unknown.
    written: bool,
    tx: oneshot::Sender<Outcome>,
}

/// Removes its request's waiter when the caller stops waiting.
struct Registered<'a> {
    fwd: &'a Forwarder,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.fwd
            .pending
            .lock()
            .expect("forward lock")
            .remove(&self.id);
    }
}

impl Forwarder {
    /// A forwarder on `link`, installed as its application-frame handler.
    pub fn install(link: Arc<PeerLink>) -> Arc<Forwarder> {
        let start = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let f = Arc::new(Forwarder {
            link: link.clone(),
            next: AtomicU64::new(start),
            pending: Mutex::new(HashMap::new()),
            serve: OnceLock::new(),
        });
        link.set_app(f.clone());
        f
    }

    /// Set how requests from peers are served (once).
    pub fn serve_with(&self, serve: Serve) {
        let _ = self.serve.set(serve);
    }

    /// Whether `to` is a peer this member can forward to.
    pub fn reaches(&self, to: NodeId) -> bool {
        self.link.has_peer(to)
    }

    /// Send `command` to `to` and wait for its reply — or until `give_up` resolves: then
    /// the outcome is [`Outcome::NotSent`] if the request was not written yet (and never
    /// will be), else [`Outcome::Lost`]. (The caller bounds the wait; a caller that stops
    /// polling also withdraws a request not yet written.)
    pub async fn call(
        &self,
        to: NodeId,
        command: &[u8],
        timeout: Duration,
        give_up: impl std::future::Future<Output = ()>,
    ) -> Outcome {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let previous = self.pending.lock().expect("forward lock").insert(
            id,
            Waiter {
                to,
                written: false,
                tx,
            },
        );
        debug_assert!(previous.is_none(), "forwarding request id {id} reused");
        let _registered = Registered { fwd: self, id };
        if !self
            .link
            .send(to, encode_request(id, timeout, command))
            .await
        {
            return Outcome::NotSent;
        }
        tokio::select! {
            o = rx => o.unwrap_or(Outcome::Lost),
            _ = give_up => match self.pending.lock().expect("forward lock").remove(&id) {
                Some(w) if !w.written => Outcome::NotSent,
                _ => Outcome::Lost,
            },
        }
    }

    /// End request `id` with `outcome` if it still waits and its waiter satisfies `when`.
    fn finish(&self, id: u64, when: impl FnOnce(&Waiter) -> bool, outcome: Outcome) {
        let mut pending = self.pending.lock().expect("forward lock");
        if pending.get(&id).is_some_and(when) {
            let w = pending.remove(&id).expect("present");
            let _ = w.tx.send(outcome);
        }
    }

    /// Answer request `id` of `to` (from the serving task; waits while the queue is full).
    pub async fn reply(&self, to: NodeId, id: u64, result: Result<Bytes, Status>) {
        let mut frame = encode_reply(id, &result);
        if frame.len() > self.link.frame_bytes_max() {
            frame = encode_reply(
                id,
                &Err(Status::internal("raftkv: result over the frame limit")),
            );
        }
        if !self.link.send(to, frame).await {
            tracing::debug!(
                peer = format_args!("{:x}", to.0),
                id,
                "forwarding reply not sent"
            );
        }
    }
}

impl AppFrames for Forwarder {
    fn frame(&self, from: NodeId, frame: Bytes) {
        match decode(frame) {
            Ok(Frame::Request(r)) => match self.serve.get() {
                Some(serve) => serve(from, r),
                None => tracing::debug!("forwarding request before the API started: dropped"),
            },
            Ok(Frame::Reply { id, result }) => {
                let outcome = match result {
                    Ok(r) => Outcome::Done(r),
                    Err(s) => Outcome::Failed(s),
                };
                // Only the member the request went to answers it.
                self.finish(id, |w| w.to == from, outcome);
            }
            Err(e) => {
                tracing::warn!(peer = format_args!("{:x}", from.0), error = %e, "bad forwarding frame dropped");
            }
        }
    }

    fn written(&self, to: NodeId, frame: &[u8]) -> bool {
        let Some(id) = request_id(frame) else {
            return true; // a reply: always written
        };
        match self.pending.lock().expect("forward lock").get_mut(&id) {
            Some(w) => {
                debug_assert_eq!(w.to, to);
                w.written = true;
                true
            }
            // Its caller gave up before it was written: it never will be.
            None => false,
        }
    }

    fn unsent(&self, to: NodeId, frame: &[u8]) {
        if let Some(id) = request_id(frame) {
            self.finish(id, |w| w.to == to && !w.written, Outcome::NotSent);
        }
    }

    fn connection_lost(&self, peer: NodeId) {
        let mut pending = self.pending.lock().expect("forward lock");
        // Requests still queued go on the next connection (or are reported unsent).
        for (_, w) in pending.extract_if(|_, w| w.to == peer && w.written) {
            let _ = w.tx.send(Outcome::Lost);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let f = encode_request(7, Duration::from_millis(1500), b"cmd");
        match decode(f).unwrap() {
            Frame::Request(r) => assert_eq!(
                r,
                Request {
                    id: 7,
                    timeout: Duration::from_millis(1500),
                    command: Bytes::from_static(b"cmd"),
                }
            ),
            other => panic!("{other:?}"),
        }
        match decode(encode_reply(u64::MAX, &Ok(Bytes::from_static(b"res")))).unwrap() {
            Frame::Reply { id, result } => {
                assert_eq!(id, u64::MAX);
                assert_eq!(result.unwrap(), Bytes::from_static(b"res"));
            }
            other => panic!("{other:?}"),
        }
        let failed = Err(Status::unavailable("raftkv: not the leader"));
        match decode(encode_reply(3, &failed)).unwrap() {
            Frame::Reply {
                id: 3,
                result: Err(s),
            } => {
                assert_eq!(s.code(), Code::Unavailable);
                assert_eq!(s.message(), "raftkv: not the leader");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_or_unknown_frames_are_errors() {
        let req = encode_request(1, Duration::from_secs(1), b"");
        for n in 0..req.len() {
            assert!(decode(req.slice(..n)).is_err(), "request cut at {n}");
        }
        let rep = encode_reply(1, &Err(Status::internal("x")));
        for n in 0..REPLY_HEADER + 4 {
            assert!(decode(rep.slice(..n)).is_err(), "reply cut at {n}");
        }
        assert_eq!(
            decode(Bytes::from_static(&[0x90])).unwrap_err(),
            FrameError::Tag(0x90)
        );
        let mut bad = BytesMut::from(&encode_reply(1, &Ok(Bytes::new()))[..]);
        bad[9] = 2;
        assert_eq!(decode(bad.freeze()).unwrap_err(), FrameError::Malformed);
        let mut bad = BytesMut::from(&encode_reply(1, &Err(Status::internal("ab")))[..]);
        let n = bad.len();
        bad[n - 1] = 0xff;
        assert_eq!(decode(bad.freeze()).unwrap_err(), FrameError::Malformed);
    }

    /// `f.call` of `cmd` to member 2 on a task, giving up when `give_up` resolves.
    fn spawn_call(
        f: &Arc<Forwarder>,
        cmd: &'static [u8],
        give_up: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<Outcome> {
        let f = f.clone();
        tokio::spawn(async move {
            f.call(NodeId(2), cmd, Duration::from_secs(1), give_up)
                .await
        })
    }

    /// A give-up future and the sender that fires it.
    fn give_up_signal() -> (
        oneshot::Sender<()>,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (tx, rx) = oneshot::channel::<()>();
        (tx, async {
            let _ = rx.await;
        })
    }

    #[tokio::test]
    async fn a_reply_reaches_only_its_request_and_a_lost_connection_fails_the_rest() {
        let link = Arc::new(PeerLink::new(1 << 20));
        let f = Forwarder::install(link.clone());
        // No queue to the peer: nothing is sent.
        assert!(matches!(
            f.call(
                NodeId(2),
                b"x",
                Duration::from_secs(1),
                std::future::pending()
            )
            .await,
            Outcome::NotSent
        ));
        assert!(f.pending.lock().unwrap().is_empty());

        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        link.set_queue_for_test(NodeId(2), tx);
        let call = spawn_call(&f, b"cmd", std::future::pending());
        let sent = rx.recv().await.unwrap();
        let Frame::Request(r) = decode(sent).unwrap() else {
            panic!("not a request")
        };
        assert_eq!(r.command, Bytes::from_static(b"cmd"));
        // From the wrong member, or for another id: ignored.
        f.frame(
            NodeId(3),
            encode_reply(r.id, &Ok(Bytes::from_static(b"wrong"))),
        );
        f.frame(
            NodeId(2),
            encode_reply(r.id.wrapping_add(1), &Ok(Bytes::from_static(b"wrong"))),
        );
        f.frame(
            NodeId(2),
            encode_reply(r.id, &Ok(Bytes::from_static(b"right"))),
        );
        match call.await.unwrap() {
            Outcome::Done(b) => assert_eq!(b, Bytes::from_static(b"right")),
            other => panic!("{other:?}"),
        }

        // A lost connection fails only what was written to it; what was never written
        // is reported unsent.
        let queued = spawn_call(&f, b"q", std::future::pending());
        let queued_frame = rx.recv().await.unwrap();
        let written = spawn_call(&f, b"w", std::future::pending());
        let written_frame = rx.recv().await.unwrap();
        f.written(NodeId(2), &written_frame);
        f.connection_lost(NodeId(3));
        f.connection_lost(NodeId(2));
        assert!(matches!(written.await.unwrap(), Outcome::Lost));
        assert_eq!(
            f.pending.lock().unwrap().len(),
            1,
            "the unwritten one waits on"
        );
        f.unsent(NodeId(2), &queued_frame);
        assert!(matches!(queued.await.unwrap(), Outcome::NotSent));
        assert!(f.pending.lock().unwrap().is_empty());

        // Giving up: a request not written yet is withdrawn (and then never written); one
        // already written has an unknown outcome.
        let (give_up, gave_up) = give_up_signal();
        let withdrawn = spawn_call(&f, b"g", gave_up);
        let withdrawn_frame = rx.recv().await.unwrap();
        give_up.send(()).unwrap();
        assert!(matches!(withdrawn.await.unwrap(), Outcome::NotSent));
        assert!(!f.written(NodeId(2), &withdrawn_frame), "never written now");
        let (give_up, gave_up) = give_up_signal();
        let unknown = spawn_call(&f, b"u", gave_up);
        let unknown_frame = rx.recv().await.unwrap();
        assert!(f.written(NodeId(2), &unknown_frame));
        give_up.send(()).unwrap();
        assert!(matches!(unknown.await.unwrap(), Outcome::Lost));
        assert!(f.pending.lock().unwrap().is_empty());

        // A caller that gives up leaves no waiter behind.
        let _ = tokio::time::timeout(
            Duration::from_millis(1),
            f.call(
                NodeId(2),
                b"cmd",
                Duration::from_secs(1),
                std::future::pending(),
            ),
        )
        .await;
        assert!(f.pending.lock().unwrap().is_empty());
    }
}
