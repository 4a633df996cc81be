//! Exactly-once writes: which `(client_id, seq)` each attempt carries, as the server sees it
//! — retries repeat the seq, concurrent writes never share a session, an expired session is
//! replaced — against real tonic servers with scripted answers (see `fake/`).

mod fake;

use std::sync::Arc;
use std::time::Duration;

use client::{Client, ClientConfig, ClientError, KeyRange, TxnRequest};
use fake::{unavailable_with_leader, Action, Fake};
use tokio::sync::Barrier;
use tonic::Status;

async fn client(endpoints: &[&str]) -> Client {
    let cfg = ClientConfig::new(endpoints.iter().copied()).request_timeout(Duration::from_secs(5));
    Client::connect(cfg).await.unwrap()
}

fn expired() -> Status {
    Status::failed_precondition(
        "raftkv: session of client 1 expired or unknown (seq 2); start a new session",
    )
}

#[tokio::test]
async fn a_write_retried_after_leader_changed_repeats_its_seq() {
    let b = Fake::healthy(2).await;
    let b_url = b.url.clone();
    let a = Fake::scripted(1, move |_, n| match n {
        0 => Action::Fail(Status::unavailable("etcdserver: leader changed")),
        _ => Action::Fail(unavailable_with_leader(
            "etcdserver: leader changed",
            &b_url,
        )),
    })
    .await;
    let c = client(&[&a.url]).await;

    c.put("k", "v").await.unwrap();
    let tries: Vec<_> = a.sessions().into_iter().chain(b.sessions()).collect();
    assert_eq!(tries.len(), 3, "two failures on A, the success on B");
    let (client_id, seq) = tries[0];
    assert_ne!(client_id, 0);
    assert_eq!(seq, 1);
    assert!(tries.iter().all(|t| *t == (client_id, 1)), "{tries:?}");

    // The next write takes the next seq of the same (now confirmed) session.
    c.put("k", "w").await.unwrap();
    assert_eq!(b.sessions().last(), Some(&(client_id, 2)));
}

#[tokio::test]
async fn concurrent_writes_never_share_a_session() {
    // The server holds each put until a second one is in flight, so both are outstanding at
    // once; then both answer.
    let barrier = Arc::new(Barrier::new(2));
    let a = Fake::scripted(1, move |seen, _| match seen.method {
        "SessionPut" => Action::Meet(barrier.clone()),
        _ => Action::Ok,
    })
    .await;
    let c = client(&[&a.url]).await;

    let (c1, c2) = (c.clone(), c.clone());
    let (r1, r2) = tokio::join!(
        tokio::spawn(async move { c1.put("x", "1").await }),
        tokio::spawn(async move { c2.put("y", "2").await }),
    );
    r1.unwrap().unwrap();
    r2.unwrap().unwrap();
    let sessions = a.sessions();
    assert_eq!(sessions.len(), 2);
    assert_ne!(
        sessions[0].0, sessions[1].0,
        "two writes in flight shared a client id"
    );
    assert!(sessions.iter().all(|s| s.1 == 1));

    // Both sessions went back to the pool; the next write reuses one with seq 2.
    c.append("x", "+").await.unwrap();
    let (id, seq) = *a.sessions().last().unwrap();
    assert!(id == sessions[0].0 || id == sessions[1].0);
    assert_eq!(seq, 2);
}

#[tokio::test]
async fn every_write_kind_carries_a_session_and_advances_it() {
    let a = Fake::healthy(1).await;
    let c = client(&[&a.url]).await;
    c.put("k", "v").await.unwrap();
    c.append("k", "+").await.unwrap();
    c.delete_range(KeyRange::prefix("k").delete_request())
        .await
        .unwrap();
    c.txn(TxnRequest::default()).await.unwrap();
    c.delete("k").await.unwrap();

    let methods: Vec<_> = a.seen().iter().map(|s| s.method).collect();
    assert_eq!(
        methods,
        [
            "SessionPut",
            "Append",
            "SessionDeleteRange",
            "SessionTxn",
            "SessionDeleteRange"
        ]
    );
    let sessions = a.sessions();
    let id = sessions[0].0;
    assert_eq!(sessions, (1..=5).map(|seq| (id, seq)).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_session_expired_before_any_attempt_was_sent_is_replaced_transparently() {
    // The server evicted the session between two writes: the second write's first attempt
    // is refused as expired, so it certainly was not applied — the client starts a new
    // session (seq 1) and the write succeeds.
    let a = Fake::scripted(1, |_, n| match n {
        1 => Action::Fail(expired()),
        _ => Action::Ok,
    })
    .await;
    let c = client(&[&a.url]).await;
    c.put("k", "1").await.unwrap();
    c.put("k", "2").await.unwrap();

    let s = a.sessions();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].1, 1);
    assert_eq!(s[1], (s[0].0, 2));
    assert_ne!(s[2].0, s[0].0, "a fresh client id");
    assert_eq!(s[2].1, 1);
}

#[tokio::test]
async fn a_session_expired_after_an_attempt_that_may_have_applied_is_reported() {
    let a = Fake::scripted(1, |_, n| match n {
        1 => Action::Fail(Status::unavailable("etcdserver: leader changed")),
        2 => Action::Fail(expired()),
        _ => Action::Ok,
    })
    .await;
    let c = client(&[&a.url]).await;
    c.put("k", "1").await.unwrap();
    let err = c.put("k", "2").await.unwrap_err();
    assert!(matches!(err, ClientError::SessionExpired(_)), "{err:?}");

    // The expired session is never used again.
    c.put("k", "3").await.unwrap();
    let s = a.sessions();
    assert_eq!(s[1], (s[0].0, 2));
    assert_eq!(s[2], (s[0].0, 2), "the retry repeated seq 2");
    assert_ne!(s[3].0, s[0].0);
    assert_eq!(s[3].1, 1);
}

#[tokio::test]
async fn a_failed_first_write_does_not_poison_the_pool() {
    // The first write of a session fails finally: the server may never have seen the client,
    // so the session is not reused (its seq 2 would be refused as expired).
    let a = Fake::scripted(1, |_, n| match n {
        0 => Action::Fail(Status::invalid_argument("etcdserver: key is not provided")),
        _ => Action::Ok,
    })
    .await;
    let c = client(&[&a.url]).await;
    assert!(c.put("", "v").await.is_err());
    c.put("k", "v").await.unwrap();
    let s = a.sessions();
    assert_ne!(s[0].0, s[1].0);
    assert_eq!(s[1].1, 1);
}
