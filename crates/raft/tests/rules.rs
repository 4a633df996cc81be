//! Rule-level tests of the core: each feeds exact messages into one node and asserts the
//! exact messages and persistence actions that come out (the paper's Figure 2 rules, §5.x).

use bytes::Bytes;
use raft::*;

fn conf(n: u64) -> Configuration {
    Configuration::new((1..=n).map(NodeId))
}

fn cfg(id: u64) -> Config {
    let mut c = Config::new(NodeId(id));
    c.election_ticks = 10;
    c.heartbeat_ticks = 2;
    c
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::Normal,
        data: Bytes::new(),
    }
}

fn node_with(id: u64, n: u64, term: u64, entries: Vec<Entry>) -> Raft {
    let hs = HardState {
        term: Term(term),
        ..Default::default()
    };
    Raft::new(
        cfg(id),
        InitialState {
            hard_state: hs,
            snapshot: None,
            entries,
            config: conf(n),
        },
    )
    .unwrap()
}

fn msg(from: u64, to: u64, term: u64, body: MessageBody) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body,
    }
}

fn vote_req(last_index: u64, last_term: u64) -> MessageBody {
    MessageBody::Vote(VoteRequest {
        pre_vote: false,
        last: EntryId::new(Term(last_term), LogIndex(last_index)),
        transfer: false,
    })
}

/// Drain one Ready and advance; returns it for inspection.
fn take(r: &mut Raft) -> Ready {
    let rd = r.ready();
    let out = Ready {
        hard_state: rd.hard_state,
        entries: rd.entries.clone(),
        messages: rd.messages.clone(),
        persisted_messages: rd.persisted_messages.clone(),
        committed_entries: rd.committed_entries.clone(),
        must_sync: rd.must_sync,
        ..Default::default()
    };
    r.advance(rd);
    out
}

fn granted(m: &Message) -> bool {
    matches!(
        m.body,
        MessageBody::VoteResponse(VoteResponse { granted: true, .. })
    )
}

/// §5.2 + Figure 2: a vote is persisted before the grant leaves, one vote per term.
#[test]
fn vote_grant_is_durable_and_unique_per_term() {
    let mut r = node_with(1, 3, 1, vec![]);
    r.step(msg(2, 1, 2, vote_req(0, 0))).unwrap();
    let rd = take(&mut r);
    assert_eq!(rd.hard_state.unwrap().vote, NodeId(2));
    assert_eq!(rd.hard_state.unwrap().term, Term(2));
    assert!(rd.must_sync);
    assert!(rd.messages.is_empty(), "a grant must wait for persistence");
    assert_eq!(rd.persisted_messages.len(), 1);
    assert!(granted(&rd.persisted_messages[0]));
    // Another candidate in the same term is refused.
    r.step(msg(3, 1, 2, vote_req(0, 0))).unwrap();
    let rd = take(&mut r);
    let all: Vec<_> = rd.messages.iter().chain(&rd.persisted_messages).collect();
    assert_eq!(all.len(), 1);
    assert!(!granted(all[0]));
}

/// §5.4.1: votes only for candidates whose log is at least as up-to-date.
#[test]
fn up_to_date_rule() {
    let log = vec![entry(1, 1), entry(2, 2)];
    // Older last term: refused even if longer.
    let mut r = node_with(1, 3, 2, log.clone());
    r.step(msg(2, 1, 3, vote_req(5, 1))).unwrap();
    assert!(!take(&mut r).messages.iter().chain(&[]).any(granted));
    // Same last term, shorter: refused.
    let mut r = node_with(1, 3, 2, log.clone());
    r.step(msg(2, 1, 3, vote_req(1, 2))).unwrap();
    let rd = take(&mut r);
    assert!(!rd
        .messages
        .iter()
        .chain(&rd.persisted_messages)
        .any(granted));
    // Same last term, same length: granted.
    let mut r = node_with(1, 3, 2, log);
    r.step(msg(2, 1, 3, vote_req(2, 2))).unwrap();
    assert!(take(&mut r).persisted_messages.iter().any(granted));
}

/// A candidate's own vote must be durable before its RequestVotes leave (else a crash could
/// let it vote twice in one term).
#[test]
fn candidate_requests_wait_for_persistence() {
    let mut c = cfg(1);
    c.pre_vote = false;
    let mut r = Raft::new(c, InitialState::bootstrap(conf(3))).unwrap();
    r.campaign();
    let rd = take(&mut r);
    assert_eq!(r.role(), Role::Candidate);
    assert_eq!(rd.hard_state.unwrap().vote, NodeId(1));
    assert!(rd.messages.is_empty());
    assert_eq!(rd.persisted_messages.len(), 2);
}

fn elected_leader(n: u64, log: Vec<Entry>, term: u64) -> Raft {
    let mut c = cfg(1);
    c.pre_vote = false;
    let hs = HardState {
        term: Term(term),
        ..Default::default()
    };
    let mut r = Raft::new(
        c,
        InitialState {
            hard_state: hs,
            snapshot: None,
            entries: log,
            config: conf(n),
        },
    )
    .unwrap();
    r.campaign();
    take(&mut r);
    let t = r.term().get();
    for v in 2..=n / 2 + 1 {
        let body = MessageBody::VoteResponse(VoteResponse {
            pre_vote: false,
            granted: true,
        });
        r.step(msg(v, 1, t, body)).unwrap();
    }
    assert!(r.is_leader());
    r
}

fn accepted(from: u64, term: u64, index: u64) -> Message {
    msg(
        from,
        1,
        term,
        MessageBody::AppendResponse(AppendResponse {
            outcome: AppendOutcome::Accepted {
                match_index: LogIndex(index),
            },
            commit: LogIndex(0),
            read_seq: 0,
        }),
    )
}

/// Figure 8 / §5.4.2: an old-term entry replicated on a majority is not committed by counting;
/// it commits only with an entry of the current term.
#[test]
fn figure_8_no_commit_of_old_term_by_counting() {
    let mut r = elected_leader(3, vec![entry(1, 1), entry(2, 2)], 3);
    let t = r.term().get();
    let rd = take(&mut r); // the no-op at index 3 goes out (and is persisted)
    assert_eq!(rd.entries.last().unwrap().index, LogIndex(3));
    assert!(
        rd.messages.iter().all(|m| !m.requires_durability()),
        "leader appends go before persisting"
    );
    r.step(accepted(2, t, 2)).unwrap();
    assert_eq!(
        r.commit_index(),
        LogIndex(0),
        "must not commit term-2 entry by counting replicas"
    );
    r.step(accepted(2, t, 3)).unwrap();
    assert_eq!(r.commit_index(), LogIndex(3));
}

/// The leader counts itself only once its own entries are durable.
#[test]
fn leader_self_ack_waits_for_persistence() {
    let mut r = elected_leader(3, vec![], 1);
    let t = r.term().get();
    let rd = r.ready(); // not yet advanced: the no-op is not durable on the leader
    r.step(accepted(2, t, 1)).unwrap();
    assert_eq!(
        r.commit_index(),
        LogIndex(0),
        "leader not durable: 1 of 3 is no quorum"
    );
    r.advance(rd);
    assert_eq!(
        r.commit_index(),
        LogIndex(1),
        "leader + one follower durable = quorum of 3"
    );
    // With 5 nodes, one follower ack is not enough before the leader persisted.
    let mut r = elected_leader(5, vec![], 1);
    let t = r.term().get();
    let rd = r.ready();
    r.step(accepted(2, t, 1)).unwrap();
    r.step(accepted(3, t, 1)).unwrap();
    assert_eq!(
        r.commit_index(),
        LogIndex(0),
        "leader not durable: 2 of 5 is no quorum"
    );
    r.advance(rd);
    assert_eq!(r.commit_index(), LogIndex(1));
}

/// 6.824 fast backup: a follower with 50 conflicting entries is repaired in a couple of
/// round trips, not 50.
#[test]
fn fast_backup_skips_conflicting_term() {
    let mut leader_log: Vec<Entry> = (1..=10).map(|i| entry(i, 1)).collect();
    leader_log.extend((11..=60).map(|i| entry(i, 3)));
    let mut follower_log: Vec<Entry> = (1..=10).map(|i| entry(i, 1)).collect();
    follower_log.extend((11..=60).map(|i| entry(i, 2)));
    let mut l = elected_leader(3, leader_log, 3);
    let mut f = node_with(2, 3, 3, follower_log);
    take(&mut l);
    let mut round_trips = 0;
    let mut to_leader: Vec<Message> = Vec::new();
    let mut pending: Vec<Message> = Vec::new();
    l.step(accepted(3, l.term().get(), 0)).ok(); // node 3 is irrelevant
                                                 // heartbeat to start
    for _ in 0..2 {
        l.tick();
    }
    pending.extend(
        take(&mut l)
            .messages
            .into_iter()
            .filter(|m| m.to == NodeId(2)),
    );
    while !pending.is_empty() && round_trips < 10 {
        round_trips += 1;
        for m in pending.drain(..) {
            f.step(m).unwrap();
        }
        to_leader.extend(take(&mut f).persisted_messages);
        for m in to_leader.drain(..) {
            l.step(m).unwrap();
        }
        pending.extend(
            take(&mut l)
                .messages
                .into_iter()
                .filter(|m| m.to == NodeId(2)),
        );
        if f.last_entry_id() == l.last_entry_id()
            && pending
                .iter()
                .all(|m| matches!(&m.body, MessageBody::Append(a) if a.entries.is_empty()))
        {
            break;
        }
    }
    assert_eq!(f.last_entry_id(), l.last_entry_id());
    assert!(round_trips <= 3, "took {round_trips} round trips");
}

/// Pipelining is bounded by `inflight_msgs_max`, and each message by `msg_bytes_max`.
#[test]
fn inflight_and_byte_limits() {
    let mut c = cfg(1);
    c.pre_vote = false;
    c.inflight_msgs_max = 2;
    c.msg_bytes_max = 1000;
    let mut r = Raft::new(c, InitialState::bootstrap(conf(2))).unwrap();
    r.campaign();
    take(&mut r);
    r.step(msg(
        2,
        1,
        1,
        MessageBody::VoteResponse(VoteResponse {
            pre_vote: false,
            granted: true,
        }),
    ))
    .unwrap();
    take(&mut r);
    r.step(accepted(2, 1, 1)).unwrap(); // follower now in replicate state
    take(&mut r);
    for _ in 0..20 {
        r.propose(Bytes::from(vec![0u8; 300])).unwrap();
    }
    let rd = take(&mut r);
    let appends: Vec<_> = rd
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::Append(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(appends.len(), 2, "window of 2 in-flight appends");
    for a in appends {
        let bytes: usize = a.entries.iter().map(Entry::size_bytes).sum();
        assert!(bytes <= 1000 && !a.entries.is_empty(), "{bytes} bytes");
    }
}

#[test]
fn uncommitted_bytes_limit_refuses_proposals() {
    let mut c = cfg(1);
    c.pre_vote = false;
    c.uncommitted_bytes_max = 1000;
    let mut r = Raft::new(c, InitialState::bootstrap(conf(3))).unwrap();
    r.campaign();
    r.step(msg(
        2,
        1,
        1,
        MessageBody::VoteResponse(VoteResponse {
            pre_vote: false,
            granted: true,
        }),
    ))
    .unwrap();
    let mut refused = None;
    for i in 0..10 {
        if let Err(e) = r.propose(Bytes::from(vec![0u8; 300])) {
            refused = Some((i, e));
            break;
        }
    }
    let (i, e) = refused.expect("limit must refuse");
    assert!(i >= 2, "refused too early at {i}");
    assert!(matches!(e, ProposeError::UncommittedLimit { .. }));
}

/// A stale leader learns the new term from any follower's answer and steps down (§5.1).
#[test]
fn stale_append_gets_higher_term_reply() {
    let mut r = node_with(1, 3, 5, vec![]);
    let body = MessageBody::Append(AppendRequest {
        prev: EntryId::default(),
        entries: vec![],
        commit: LogIndex(0),
        read_seq: 0,
    });
    r.step(msg(2, 1, 3, body)).unwrap();
    let rd = take(&mut r);
    let all: Vec<_> = rd.messages.iter().chain(&rd.persisted_messages).collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].term, Term(5));
    assert!(matches!(all[0].body, MessageBody::AppendResponse(_)));
}

/// Restart input is validated: bad durable state is an error, never a panic.
#[test]
fn restart_rejects_inconsistent_state() {
    let bad_gap = InitialState {
        hard_state: HardState {
            term: Term(2),
            ..Default::default()
        },
        snapshot: None,
        entries: vec![entry(1, 1), entry(3, 1)],
        config: conf(3),
    };
    assert!(matches!(Raft::new(cfg(1), bad_gap), Err(Error::Corrupt(_))));
    let commit_beyond = InitialState {
        hard_state: HardState {
            term: Term(2),
            vote: NodeId::NONE,
            commit: LogIndex(5),
        },
        snapshot: None,
        entries: vec![entry(1, 1)],
        config: conf(3),
    };
    assert!(matches!(
        Raft::new(cfg(1), commit_beyond),
        Err(Error::Corrupt(_))
    ));
    let term_behind = InitialState {
        hard_state: HardState {
            term: Term(1),
            ..Default::default()
        },
        snapshot: None,
        entries: vec![entry(1, 2)],
        config: conf(3),
    };
    assert!(matches!(
        Raft::new(cfg(1), term_behind),
        Err(Error::Corrupt(_))
    ));
    let mut c = cfg(1);
    c.election_ticks = 1;
    assert!(matches!(
        Raft::new(c, InitialState::bootstrap(conf(3))),
        Err(Error::Config(_))
    ));
    let m = msg(2, 9, 1, MessageBody::TimeoutNow);
    let mut r = node_with(1, 3, 1, vec![]);
    assert!(matches!(r.step(m), Err(Error::WrongRecipient { .. })));
}

/// Randomized election timeouts lie in [E, 2E) and depend on the seed.
#[test]
fn election_timeout_is_randomized_in_range() {
    let mut firsts = std::collections::BTreeSet::new();
    for seed in 0..50 {
        let mut c = cfg(1);
        c.seed = seed;
        let mut r = Raft::new(c, InitialState::bootstrap(conf(3))).unwrap();
        let mut ticks = 0;
        while r.role() == Role::Follower {
            r.tick();
            ticks += 1;
            assert!(ticks < 20, "timeout beyond 2E");
        }
        assert!(ticks >= 10, "timeout below E: {ticks}");
        firsts.insert(ticks);
    }
    assert!(firsts.len() > 3, "timeouts not randomized: {firsts:?}");
}

/// Figure 2 ("reply false if term < currentTerm") for candidates outside our configuration:
/// we never send them anything ourselves — our configuration may be the stale one — so a
/// candidate campaigning below our term must learn it from the refusal, or it could never
/// get our vote. (Found by the simulator: seed 4887 with membership changes, no PreVote.)
/// A member candidate below our term gets no answer, as before: we reach it ourselves.
#[test]
fn a_stale_candidate_outside_the_configuration_learns_our_term_from_the_refusal() {
    let mut r = node_with(2, 2, 10, vec![]);
    r.step(msg(3, 2, 5, vote_req(7, 4))).unwrap();
    let rd = take(&mut r);
    let all: Vec<&Message> = rd.messages.iter().chain(&rd.persisted_messages).collect();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!((all[0].to, all[0].term), (NodeId(3), Term(10)));
    assert!(matches!(
        all[0].body,
        MessageBody::VoteResponse(VoteResponse {
            pre_vote: false,
            granted: false
        })
    ));
    r.step(msg(1, 2, 5, vote_req(7, 4))).unwrap();
    let rd = take(&mut r);
    assert!(rd.messages.is_empty() && rd.persisted_messages.is_empty());
}
