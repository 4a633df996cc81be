//! Where calls go and when they stop: leader redirection, failover past dead members,
//! the deadline, final errors, endpoint discovery and per-endpoint status — against real
//! tonic servers with scripted answers (see `fake/`).

mod fake;

use std::sync::Arc;
use std::time::{Duration, Instant};

use client::{Client, ClientConfig, ClientError};
use fake::{dead_endpoint, unavailable_with_leader, Action, Fake, State};
use proto::etcdserverpb::Member;
use tonic::Status;

async fn client(endpoints: &[&str], timeout: Duration) -> Client {
    let cfg = ClientConfig::new(endpoints.iter().copied()).request_timeout(timeout);
    Client::connect(cfg).await.unwrap()
}

#[tokio::test]
async fn a_write_follows_the_leader_named_in_the_error_metadata_and_stays_there() {
    let leader = Fake::healthy(2).await;
    let leader_url = leader.url.clone();
    let follower = Fake::scripted(1, move |_, _| {
        Action::Fail(unavailable_with_leader(
            "etcdserver: leader changed",
            &leader_url,
        ))
    })
    .await;
    // Only the follower is configured: the leader is learned from the metadata.
    let c = client(&[&follower.url], Duration::from_secs(5)).await;

    let reply = c.put("k", "v").await.unwrap();
    assert_eq!(reply.header.unwrap().member_id, 2);
    assert_eq!(c.endpoints(), [follower.url.clone(), leader.url.clone()]);

    c.put("k", "w").await.unwrap();
    c.get("k").await.unwrap();
    assert_eq!(
        follower.seen().len(),
        1,
        "later calls went straight to the leader"
    );
    assert_eq!(leader.count("SessionPut"), 2);
    assert_eq!(leader.count("Range"), 1);
}

#[tokio::test]
async fn a_dead_endpoint_is_skipped() {
    let live = Fake::healthy(1).await;
    let dead = dead_endpoint();
    let c = client(&[&dead, &live.url], Duration::from_secs(5)).await;

    let started = Instant::now();
    c.put("k", "v").await.unwrap();
    let got = c.get("k").await.unwrap();
    assert_eq!(got.kvs[0].key, b"k");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(live.count("SessionPut"), 1);
}

#[tokio::test]
async fn a_leader_hint_pointing_at_a_dead_member_falls_back_to_the_others() {
    let dead = format!("http://{}", dead_endpoint());
    let hinting = Fake::scripted(1, move |_, n| {
        if n == 0 {
            Action::Fail(unavailable_with_leader("etcdserver: leader changed", &dead))
        } else {
            Action::Ok
        }
    })
    .await;
    let c = client(&[&hinting.url], Duration::from_secs(5)).await;
    c.put("k", "v").await.unwrap();
    assert_eq!(hinting.count("SessionPut"), 2);
}

#[tokio::test]
async fn the_deadline_bounds_a_call_when_no_member_can_serve() {
    let no_leader = || Action::Fail(Status::unavailable("etcdserver: no leader"));
    let a = Fake::scripted(1, move |_, _| no_leader()).await;
    let b = Fake::scripted(2, move |_, _| no_leader()).await;
    let dead = dead_endpoint();
    let timeout = Duration::from_millis(400);
    let c = client(&[&a.url, &b.url, &dead], timeout).await;

    let started = Instant::now();
    let err = c.put("k", "v").await.unwrap_err();
    let took = started.elapsed();
    assert!(took < 2 * timeout, "took {took:?}");
    assert!(took >= timeout, "gave up early, after {took:?}");
    let ClientError::Unavailable {
        tried,
        last,
        maybe_applied,
        ..
    } = err
    else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert_eq!(tried.len(), 3, "tried {tried:?}");
    assert!(!maybe_applied, "no attempt reached a leader: {last}");
    // Backoff between rounds: a handful of attempts, not a hot loop.
    let attempts = a.seen().len() + b.seen().len();
    assert!((2..=30).contains(&attempts), "{attempts} attempts");
}

#[tokio::test]
async fn a_write_whose_attempts_may_have_been_proposed_says_so_when_it_times_out() {
    let a = Fake::scripted(1, |_, _| {
        Action::Fail(Status::unavailable("etcdserver: leader changed"))
    })
    .await;
    let c = client(&[&a.url], Duration::from_millis(200)).await;
    let err = c.put("k", "v").await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Unavailable {
                maybe_applied: true,
                ..
            }
        ),
        "{err:?}"
    );
    // Every attempt repeated the one session seq.
    let sessions = a.sessions();
    assert!(sessions.len() >= 2);
    assert!(sessions.iter().all(|s| *s == sessions[0]));
}

#[tokio::test]
async fn an_attempt_that_hangs_is_abandoned_for_another_member() {
    // The first member never answers its first call; the client gives up on it after
    // attempt_timeout and retries (same seq) on the second.
    let gate = Arc::new(tokio::sync::Barrier::new(2)); // never reached by a second caller
    let stuck = Fake::scripted(1, move |_, _| Action::Meet(gate.clone())).await;
    let live = Fake::healthy(2).await;
    let cfg = ClientConfig::new([stuck.url.clone(), live.url.clone()])
        .attempt_timeout(Duration::from_millis(200));
    let c = Client::connect(cfg).await.unwrap();
    let started = Instant::now();
    c.put("k", "v").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(stuck.sessions(), live.sessions());
}

#[tokio::test]
async fn invalid_argument_is_not_retried() {
    let a = Fake::scripted(1, |_, _| {
        Action::Fail(Status::invalid_argument("etcdserver: key is not provided"))
    })
    .await;
    let b = Fake::healthy(2).await;
    let c = client(&[&a.url, &b.url], Duration::from_secs(5)).await;

    let err = c.put("", "v").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::InvalidArgument(m) if m == "key is not provided"),
        "{err:?}"
    );
    assert_eq!(a.seen().len(), 1);
    assert_eq!(b.seen().len(), 0);

    let err = c.get("").await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
    assert_eq!(a.seen().len(), 2);
}

#[tokio::test]
async fn too_large_is_reported_as_such_and_not_retried() {
    let a = Fake::scripted(1, |_, _| {
        Action::Fail(Status::invalid_argument(
            "etcdserver: request is too large (2000000 bytes, limit 1572864)",
        ))
    })
    .await;
    let c = client(&[&a.url], Duration::from_secs(5)).await;
    let err = c.put("k", vec![0u8; 16]).await.unwrap_err();
    assert!(matches!(err, ClientError::TooLarge(_)), "{err:?}");
    assert_eq!(a.seen().len(), 1);
}

#[tokio::test]
async fn linearizable_and_serializable_reads_are_retried_on_another_member() {
    let a = Fake::scripted(1, |_, _| {
        Action::Fail(Status::unavailable("etcdserver: no leader"))
    })
    .await;
    let b = Fake::healthy(2).await;
    let c = client(&[&a.url, &b.url], Duration::from_secs(5)).await;

    let got = c.get("k").await.unwrap();
    assert_eq!(got.header.unwrap().member_id, 2);
    let mut req = client::KeyRange::prefix("k").range_request();
    req.serializable = true;
    let got = c.range(req).await.unwrap();
    assert_eq!(got.header.unwrap().member_id, 2);
    assert_eq!(
        a.count("Range"),
        1,
        "the second read started where the first ended"
    );
    assert!(b.seen()[1].serializable);
}

#[tokio::test]
async fn sync_endpoints_learns_the_members_and_prefers_the_leader() {
    // A is configured and knows B (the leader) by its client URL.
    let b = Fake::healthy(2).await;
    let members = vec![
        Member {
            id: 1,
            name: "a".into(),
            peer_ur_ls: vec!["http://127.0.0.1:1".into()],
            client_ur_ls: vec![],
            is_learner: false,
        },
        Member {
            id: 2,
            name: "b".into(),
            peer_ur_ls: vec!["http://127.0.0.1:2".into()],
            client_ur_ls: vec![b.url.clone()],
            is_learner: false,
        },
    ];
    let state = State { leader: 2, members };
    let a = Fake::spawn(1, Arc::new(|_, _| Action::Ok), state).await;
    let c = client(&[&a.url], Duration::from_secs(5)).await;

    let list = c.sync_endpoints().await.unwrap();
    assert_eq!(list.members.len(), 2);
    assert_eq!(c.endpoints(), [a.url.clone(), b.url.clone()]);
    c.put("k", "v").await.unwrap();
    assert_eq!(b.count("SessionPut"), 1);
    assert_eq!(a.count("SessionPut"), 0);
    assert_eq!(
        c.leader_id().await.unwrap(),
        None,
        "B itself knows no leader"
    );
}

#[tokio::test]
async fn status_all_answers_for_every_endpoint_and_names_the_silent_ones() {
    let a = Fake::healthy(7).await;
    let dead = dead_endpoint();
    let c = client(&[&a.url, &dead], Duration::from_secs(5)).await;

    let started = Instant::now();
    let rows = c.status_all().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, a.url);
    assert_eq!(rows[0].1.as_ref().unwrap().header.unwrap().member_id, 7);
    assert_eq!(rows[1].0, format!("http://{dead}"));
    match &rows[1].1 {
        Err(ClientError::Unavailable { tried, .. }) => {
            assert_eq!(tried, &[format!("http://{dead}")])
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Asking one endpoint by name does not add it to the client's endpoints.
    let other = Fake::healthy(8).await;
    assert_eq!(
        c.status(&other.url)
            .await
            .unwrap()
            .header
            .unwrap()
            .member_id,
        8
    );
    assert_eq!(c.endpoints().len(), 2);
}

#[tokio::test]
async fn connect_does_not_need_a_live_member_but_refuses_a_bad_config() {
    let c = Client::connect(ClientConfig::new([dead_endpoint()])).await;
    assert!(c.is_ok());
    let bad = Client::connect(ClientConfig::new(["https://secure:2379"])).await;
    assert!(matches!(bad, Err(ClientError::Config(_))));
    let none = Client::connect(ClientConfig::new(Vec::<String>::new())).await;
    assert!(matches!(none, Err(ClientError::Config(_))));
}

fn member(id: u64) -> Member {
    Member {
        id,
        name: format!("m{id}"),
        peer_ur_ls: vec![format!("http://127.0.0.1:{id}")],
        client_ur_ls: vec![],
        is_learner: false,
    }
}

/// The first MemberRemove may have committed (the removed leader stepped down before it
/// answered); the retry finds the member gone: the removal is done, not an error.
#[tokio::test]
async fn a_remove_whose_retry_finds_the_member_gone_succeeds() {
    let state = State {
        leader: 1,
        members: vec![member(1), member(3)],
    };
    let a = Fake::spawn(
        1,
        Arc::new(|seen, n| match (seen.method, n) {
            ("MemberRemove", 0) => Action::Fail(Status::unavailable("etcdserver: leader changed")),
            ("MemberRemove", _) => Action::Fail(Status::not_found("etcdserver: member not found")),
            _ => Action::Ok,
        }),
        state,
    )
    .await;
    let c = client(&[&a.url], Duration::from_secs(5)).await;

    let removed = c.member_remove(2).await.unwrap();
    let ids: Vec<u64> = removed.members.iter().map(|m| m.id).collect();
    assert_eq!(ids, [1, 3], "answered with the current members");
    assert_eq!(a.count("MemberRemove"), 2);
    assert_eq!(a.count("MemberList"), 1);
}

/// Without an earlier attempt that may have applied, "not found" is the caller's error.
#[tokio::test]
async fn removing_an_unknown_member_is_an_error() {
    let a = Fake::scripted(1, |seen, _| match seen.method {
        "MemberRemove" => Action::Fail(Status::not_found("etcdserver: member not found")),
        _ => Action::Ok,
    })
    .await;
    let c = client(&[&a.url], Duration::from_secs(5)).await;

    match c.member_remove(9).await {
        Err(ClientError::Status(s)) => assert_eq!(s.code(), tonic::Code::NotFound),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(a.count("MemberRemove"), 1);
}
