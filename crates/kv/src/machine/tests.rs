//! [`KvStateMachine`]: sessions, apply of bad entries, snapshots and determinism.

use super::*;
use crate::command::decode_result;
use crate::types::*;
use crate::CommandResult;
use raft::Term;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn result(reply: &Bytes) -> CommandResult {
    decode_result(reply).expect("replies decode")
}

/// A machine with a little of everything: keys, a deleted key, a txn, appends, sessions.
fn busy_machine(config: KvConfig) -> KvStateMachine {
    let mut sm = KvStateMachine::new(config);
    for (i, cmd) in workload().iter().enumerate() {
        sm.apply(LogIndex(i as u64 + 1), &cmd.encode());
    }
    sm
}

fn workload() -> Vec<Command> {
    let txn = TxnRequest {
        compare: vec![Compare::new(
            b("a"),
            CompareResult::Equal,
            CompareTarget::Version(1),
        )],
        success: vec![PutRequest::new(b("t"), b("then")).into()],
        failure: vec![PutRequest::new(b("t"), b("else")).into()],
    };
    vec![
        Command::new(PutRequest::new(b("a"), b("1"))),
        Command::with_session(PutRequest::new(b("b"), b("2")), 1, 1),
        Command::with_session(AppendRequest::new(b("log"), b("x")), 2, 1),
        Command::with_session(AppendRequest::new(b("log"), b("y")), 2, 2),
        Command::new(DeleteRangeRequest::key(b("b"))),
        Command::with_session(txn, 3, 1),
        Command::with_session(PutRequest::new(Bytes::new(), b("bad")), 4, 1),
        Command::new(PutRequest::new(b("c"), b("3"))),
    ]
}

#[test]
fn a_retried_command_is_applied_once_and_gets_the_same_reply() {
    let mut sm = KvStateMachine::default();
    let cmd = Command::with_session(AppendRequest::new(b("k"), b("x")), 9, 1).encode();
    let first = sm.apply(LogIndex(1), &cmd);
    let again = sm.apply(LogIndex(2), &cmd);
    assert_eq!(first, again, "byte-identical reply");
    assert_eq!(sm.store().get(b"k").unwrap().value, "x", "appended once");
    assert_eq!(sm.revision(), 2);
    let Ok(Response::Append(a)) = result(&first) else {
        panic!()
    };
    assert_eq!((a.revision, a.version, a.value_len), (2, 1, 1));
}

#[test]
fn the_next_sequence_applies_and_older_ones_are_stale() {
    let mut sm = KvStateMachine::default();
    let append = |seq| Command::with_session(AppendRequest::new(b("k"), b("x")), 9, seq).encode();
    sm.apply(LogIndex(1), &append(1));
    sm.apply(LogIndex(2), &append(2));
    assert_eq!(sm.store().get(b"k").unwrap().value, "xx");
    let stale = sm.apply(LogIndex(3), &append(1));
    assert_eq!(
        result(&stale),
        Err(KvError::StaleSequence {
            client_id: 9,
            seq: 1,
            last_seq: 2
        })
    );
    assert_eq!(sm.store().get(b"k").unwrap().value, "xx");
    assert_eq!(sm.applied_index(), LogIndex(3));
}

#[test]
fn a_refused_request_is_remembered_like_any_reply() {
    let mut sm = KvStateMachine::default();
    let bad = Command::with_session(PutRequest::new(Bytes::new(), b("v")), 5, 1).encode();
    let r1 = sm.apply(LogIndex(1), &bad);
    assert_eq!(result(&r1), Err(KvError::EmptyKey));
    assert_eq!(sm.apply(LogIndex(2), &bad), r1);
    assert_eq!(sm.sessions().get(5).unwrap().last_seq, 1);
    assert_eq!(sm.revision(), 1);
}

#[test]
fn unknown_sessions_past_their_first_command_and_sequence_zero_are_refused() {
    let mut sm = KvStateMachine::default();
    let put = |seq| Command::with_session(PutRequest::new(b("k"), b("v")), 3, seq).encode();
    assert_eq!(
        result(&sm.apply(LogIndex(1), &put(2))),
        Err(KvError::SessionExpired {
            client_id: 3,
            seq: 2
        })
    );
    assert_eq!(
        result(&sm.apply(LogIndex(2), &put(0))),
        Err(KvError::InvalidSequence { client_id: 3 })
    );
    assert!(sm.store().is_empty() && sm.sessions().is_empty());
}

#[test]
fn evicted_sessions_expire_deterministically() {
    let mut sm = KvStateMachine::new(KvConfig { sessions_max: 2 });
    let put =
        |client, seq| Command::with_session(PutRequest::new(b("k"), b("v")), client, seq).encode();
    sm.apply(LogIndex(1), &put(1, 1));
    sm.apply(LogIndex(2), &put(2, 1));
    sm.apply(LogIndex(3), &put(3, 1)); // evicts client 1, the least recently used
    assert_eq!(sm.sessions().len(), 2);
    assert!(sm.sessions().get(1).is_none());
    assert_eq!(
        result(&sm.apply(LogIndex(4), &put(1, 2))),
        Err(KvError::SessionExpired {
            client_id: 1,
            seq: 2
        })
    );
    assert_eq!(sm.revision(), 4, "the expired command was not applied");
}

#[test]
fn ranges_ignore_sessions() {
    let mut sm = KvStateMachine::default();
    sm.apply(
        LogIndex(1),
        &Command::new(PutRequest::new(b("k"), b("v"))).encode(),
    );
    let read = Command::with_session(RangeRequest::key(b("k")), 8, 5).encode();
    let Ok(Response::Range(r)) = result(&sm.apply(LogIndex(2), &read)) else {
        panic!()
    };
    assert_eq!(r.kvs[0].value, "v");
    assert!(sm.sessions().is_empty());
}

#[test]
fn undecodable_entries_get_an_encoded_error_and_change_nothing() {
    let mut sm = busy_machine(KvConfig::default());
    let before = sm.encode_snapshot();
    for garbage in [
        &b""[..],
        &b"\x01"[..],
        &b"\x02\x00\x01"[..],
        &b"\x01\x00\x09"[..],
        &[0xff; 40][..],
    ] {
        let next = sm.applied_index().next();
        let reply = sm.apply(next, garbage);
        assert!(
            matches!(result(&reply), Err(KvError::Decode(_))),
            "{garbage:?}"
        );
    }
    // Only the applied index moved.
    let mut restored = KvStateMachine::default();
    restored.try_restore(&before).unwrap();
    assert_eq!(*restored.store(), *sm.store());
    assert_eq!(restored.sessions(), sm.sessions());
}

#[test]
fn noop_and_config_entries_advance_the_applied_index() {
    let mut sm = KvStateMachine::default();
    let e = |i, kind, data: &str| Entry {
        term: Term(1),
        index: LogIndex(i),
        kind,
        data: b(data),
    };
    assert_eq!(sm.apply_entry(&e(1, EntryKind::Noop, "")), Bytes::new());
    sm.apply_entry(&e(2, EntryKind::Normal, "")); // an empty normal entry: a decode error
    let put = Command::new(PutRequest::new(b("k"), b("v"))).encode();
    let reply = sm.apply_entry(&Entry {
        data: put,
        ..e(3, EntryKind::Normal, "")
    });
    assert!(result(&reply).is_ok());
    assert_eq!(sm.apply_entry(&e(4, EntryKind::Config, "")), Bytes::new());
    assert_eq!(sm.applied_index(), LogIndex(4));
}

#[test]
#[should_panic(expected = "apply once, in order")]
fn applying_an_index_twice_is_a_broken_invariant() {
    let mut sm = KvStateMachine::default();
    let put = Command::new(PutRequest::new(b("k"), b("v"))).encode();
    sm.apply(LogIndex(1), &put);
    sm.apply(LogIndex(1), &put);
}

#[test]
fn snapshot_round_trips_the_whole_state() {
    let sm = busy_machine(KvConfig::default());
    assert!(sm.sessions().len() >= 3 && sm.store().len() >= 3);
    let snap = sm.snapshot();
    assert_eq!(&snap[..4], b"RKVS");
    let mut other = KvStateMachine::default();
    other.restore(&snap);
    assert_eq!(other, sm);
    assert_eq!(other.snapshot(), snap);
    // The restored machine carries on exactly like the original.
    let mut a = sm.clone();
    let retry = workload()[3].encode();
    let next = sm.applied_index().next();
    assert_eq!(a.apply(next, &retry), other.apply(next, &retry));
}

#[test]
fn an_empty_machine_round_trips() {
    let sm = KvStateMachine::default();
    let mut other = busy_machine(KvConfig::default());
    other.try_restore(&sm.snapshot()).unwrap();
    assert_eq!(other, sm);
    assert_eq!(other.revision(), 1);
}

#[test]
fn same_commands_give_byte_identical_snapshots() {
    let a = busy_machine(KvConfig::default());
    let b = busy_machine(KvConfig::default());
    assert_eq!(a.snapshot(), b.snapshot());
    // And a machine restored mid-way then fed the rest ends identical too.
    let cmds = workload();
    let mut first_half = KvStateMachine::default();
    for (i, c) in cmds[..4].iter().enumerate() {
        first_half.apply(LogIndex(i as u64 + 1), &c.encode());
    }
    let mut c = KvStateMachine::default();
    c.restore(&first_half.snapshot());
    for (i, cmd) in cmds.iter().enumerate().skip(4) {
        c.apply(LogIndex(i as u64 + 1), &cmd.encode());
    }
    assert_eq!(c.snapshot(), a.snapshot());
}

#[test]
fn every_corrupted_byte_is_refused_and_changes_nothing() {
    let snap = busy_machine(KvConfig::default()).snapshot();
    let mut target = KvStateMachine::default();
    target.apply(
        LogIndex(1),
        &Command::new(PutRequest::new(b("keep"), b("me"))).encode(),
    );
    let before = target.clone();
    for i in 0..snap.len() {
        let mut bad = snap.to_vec();
        bad[i] ^= 0x40;
        assert!(target.try_restore(&bad).is_err(), "flip at byte {i}");
        assert_eq!(target, before);
    }
    for len in 0..snap.len() {
        assert!(
            target.try_restore(&snap[..len]).is_err(),
            "truncated to {len}"
        );
    }
    assert_eq!(target, before);
}

#[test]
fn a_checksummed_but_invalid_snapshot_is_refused() {
    // Keys out of order, with a correct checksum: the decoder checks invariants too.
    let mut w = Writer::new();
    w.raw(&SNAPSHOT_MAGIC);
    w.u8(SNAPSHOT_FORMAT);
    w.varint(5);
    w.zigzag(3);
    w.len(2);
    for k in ["b", "a"] {
        codec::put_kv(
            &mut w,
            &crate::KeyValue {
                key: b(k),
                value: b("v"),
                create_revision: 2,
                mod_revision: 2,
                version: 1,
                lease: 0,
            },
        );
    }
    w.len(0);
    let crc = crc32c::crc32c(w.as_slice());
    w.u32_le(crc);
    let snap = w.finish();
    let mut sm = KvStateMachine::default();
    assert!(matches!(
        sm.try_restore(&snap),
        Err(KvError::Decode(DecodeError::Invalid { .. }))
    ));
    let mut v2 = snap.to_vec();
    v2[4] = SNAPSHOT_FORMAT + 1;
    let n = v2.len();
    let crc = crc32c::crc32c(&v2[..n - 4]);
    v2[n - 4..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        sm.try_restore(&v2),
        Err(KvError::Decode(DecodeError::Version {
            found: SNAPSHOT_FORMAT + 1
        }))
    );
    assert_eq!(
        sm.try_restore(b"NOPE\x01\0\0\0\0"),
        Err(KvError::Decode(DecodeError::Magic))
    );
}

#[test]
#[should_panic(expected = "refusing a corrupt kv snapshot")]
fn restore_of_a_corrupt_snapshot_panics_with_a_clear_message() {
    let mut sm = KvStateMachine::default();
    sm.restore(b"RKVS\x01garbage");
}

#[test]
fn restoring_into_a_smaller_session_bound_evicts_the_least_recently_used() {
    let big = busy_machine(KvConfig::default());
    let mut small = KvStateMachine::new(KvConfig { sessions_max: 1 });
    small.try_restore(&big.snapshot()).unwrap();
    assert_eq!(small.sessions().len(), 1);
    let (kept, _) = big
        .sessions()
        .iter()
        .max_by_key(|(_, s)| s.last_index)
        .unwrap();
    assert!(small.sessions().get(kept).is_some());
}

#[test]
fn meta_commands_change_the_meta_map_only_and_ride_in_the_snapshot() {
    let mut sm = busy_machine(KvConfig::default());
    let (rev, keys) = (sm.revision(), sm.store().len());
    let i = sm.applied_index().0;
    let put = |k: &str, v: &str| MetaCommand::Put {
        key: b(k),
        value: b(v),
    };
    assert!(sm
        .apply(LogIndex(i + 1), &put("member/1", "a").encode())
        .is_empty());
    assert!(sm
        .apply(LogIndex(i + 2), &put("member/2", "b").encode())
        .is_empty());
    let del = MetaCommand::Delete { key: b("member/1") };
    assert!(sm.apply(LogIndex(i + 3), &del.encode()).is_empty());
    assert_eq!(sm.revision(), rev, "no revision for metadata");
    assert_eq!(sm.store().len(), keys, "no key for metadata");
    assert_eq!(sm.meta().len(), 1);
    assert_eq!(sm.meta().get(&b("member/2")), Some(&b("b")));
    let every_key = RangeRequest {
        range_end: b("\0"),
        ..RangeRequest::key(b("\0"))
    };
    let all = sm.read(&every_key).unwrap();
    assert_eq!(all.kvs.len(), keys);
    assert!(all.kvs.iter().all(|kv| !kv.key.starts_with(b"member/")));
    let mut other = KvStateMachine::default();
    other.try_restore(&sm.snapshot()).unwrap();
    assert_eq!(other, sm);
    let garbage = [crate::META_FORMAT, 9];
    let r = sm.apply(LogIndex(i + 4), &garbage);
    assert!(matches!(result(&r), Err(KvError::Decode(_))));
    assert_eq!(sm.meta().len(), 1);
}

#[test]
fn the_meta_map_is_bounded_the_same_way_on_every_node() {
    let mut sm = KvStateMachine::default();
    for i in 0..crate::META_ENTRIES_MAX as u64 {
        let c = MetaCommand::Put {
            key: Bytes::from(format!("k{i}")),
            value: b("v"),
        };
        assert!(sm.apply(LogIndex(i + 1), &c.encode()).is_empty());
    }
    let n = crate::META_ENTRIES_MAX as u64;
    let new = MetaCommand::Put {
        key: b("one more"),
        value: b("v"),
    };
    assert_eq!(
        result(&sm.apply(LogIndex(n + 1), &new.encode())),
        Err(KvError::MetaFull { max: n })
    );
    let update = MetaCommand::Put {
        key: b("k0"),
        value: b("w"),
    };
    assert!(sm.apply(LogIndex(n + 2), &update.encode()).is_empty());
    assert_eq!(sm.meta().get(&b("k0")), Some(&b("w")));
}

#[test]
fn a_format_1_snapshot_without_meta_still_restores() {
    let sm = busy_machine(KvConfig::default());
    let snap = sm.snapshot();
    // Format 1 is format 2 without the meta section (here: an empty one, one byte).
    let n = snap.len();
    let mut v1 = snap[..n - 5].to_vec();
    v1[4] = 1;
    let crc = crc32c::crc32c(&v1);
    v1.extend_from_slice(&crc.to_le_bytes());
    let mut other = KvStateMachine::default();
    other.try_restore(&v1).unwrap();
    assert_eq!(other, sm);
}

#[test]
fn applying_unobserved_changes_the_state_exactly_as_applying_with_replies() {
    // Every kind of entry: the workload's commands (sessions, a refused one, txn, appends,
    // deletes), a duplicate and a stale retry, meta commands, undecodable bytes, no-ops.
    let mut entries: Vec<(EntryKind, Bytes)> = workload()
        .iter()
        .map(|c| (EntryKind::Normal, c.encode()))
        .collect();
    let retried = Command::with_session(AppendRequest::new(b("log"), b("y")), 2, 2).encode();
    let stale = Command::with_session(AppendRequest::new(b("log"), b("x")), 2, 1).encode();
    entries.extend([
        (EntryKind::Normal, retried),
        (EntryKind::Normal, stale),
        (EntryKind::Noop, Bytes::new()),
        (
            EntryKind::Normal,
            MetaCommand::Put {
                key: b("m"),
                value: b("1"),
            }
            .encode(),
        ),
        (EntryKind::Normal, b("\u{1}garbage")),
        (EntryKind::Config, Bytes::new()),
    ]);
    let (mut observed, mut unobserved) = (KvStateMachine::default(), KvStateMachine::default());
    for (i, (kind, data)) in entries.into_iter().enumerate() {
        let entry = Entry {
            term: Term(1),
            index: LogIndex(i as u64 + 1),
            kind,
            data,
        };
        observed.apply_entry(&entry);
        unobserved.apply_entry_unobserved(&entry);
        assert_eq!(observed, unobserved, "after entry {}", i + 1);
    }
    assert_eq!(observed.encode_snapshot(), unobserved.encode_snapshot());
}

#[test]
fn a_reader_sees_every_apply_and_restore_and_a_clone_is_separate() {
    let mut sm = KvStateMachine::default();
    let reader = sm.reader();
    let value_of = |r: &KvReader, k: &str| {
        r.read(&RangeRequest::key(b(k)))
            .unwrap()
            .kvs
            .first()
            .map(|kv| kv.value.clone())
    };
    assert_eq!(value_of(&reader, "k"), None);
    sm.apply(
        LogIndex(1),
        &Command::new(PutRequest::new(b("k"), b("1"))).encode(),
    );
    assert_eq!(value_of(&reader, "k"), Some(b("1")));
    assert_eq!(reader.revision(), sm.revision());

    // A clone is another machine: applying to it leaves the reader's alone.
    let mut other = sm.clone();
    other.apply(
        LogIndex(2),
        &Command::new(PutRequest::new(b("k"), b("2"))).encode(),
    );
    assert_eq!(value_of(&reader, "k"), Some(b("1")));
    assert_ne!(other, sm);

    // A restore replaces the state the reader sees (it is not left on the old one).
    sm.restore(&other.snapshot());
    assert_eq!(value_of(&reader, "k"), Some(b("2")));
    assert_eq!(sm, other);
}
