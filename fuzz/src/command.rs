//! Oracle of the `client_command_decode` target: the bytes a committed log entry, a reply and
//! a snapshot carry into the `kv` state machine.
//!
//! - As a log entry — a `Command`, or a `MetaCommand` when it starts with `META_FORMAT`:
//!   decoding never panics, and what decodes re-encodes to exactly its bytes (the codecs are
//!   canonical). Applied on a machine holding keys, sessions and meta entries it never
//!   panics; a command's replies decode, also when applied again as a retry (a session
//!   write's retry gets the same reply bytes); a meta command changes the meta map only; the
//!   state after it survives snapshot → restore unchanged. An entry that does not decode is
//!   answered with an encoded `KvError::Decode` and changes nothing.
//! - As a reply: `decode_result` never panics; what decodes re-encodes to its bytes.
//! - As a snapshot, raw and sealed (behind the header of format 1 and of the current format,
//!   with a valid checksum appended, so that the body is explored, not just the checksum
//!   check): `KvStateMachine::try_restore` never panics; a refusal leaves the machine as it
//!   was; an accepted snapshot restores into a machine that re-encodes to the same bytes
//!   (when it was of the current format and its session table within the bound) and whose
//!   snapshot restores into an equal machine.

use kv::{
    decode_result, encode_result, Command, KvError, KvStateMachine, MetaCommand, PutRequest,
    SNAPSHOT_FORMAT, SNAPSHOT_MAGIC,
};
use raft::LogIndex;
use std::fmt::Debug;
use std::sync::OnceLock;

pub fn check(data: &[u8]) {
    entry(data);
    reply(data);
    snapshot(data);
    for format in [SNAPSHOT_FORMAT_1, SNAPSHOT_FORMAT] {
        let mut sealed = SNAPSHOT_MAGIC.to_vec();
        sealed.push(format);
        sealed.extend_from_slice(data);
        let crc = crc32c::crc32c(&sealed);
        sealed.extend_from_slice(&crc.to_le_bytes());
        snapshot(&sealed);
    }
}

/// The snapshot format before the meta section, still restored.
const SNAPSHOT_FORMAT_1: u8 = 1;

/// A machine with keys, sessions and a meta entry: the state an entry usually meets.
pub fn populated() -> KvStateMachine {
    static MACHINE: OnceLock<KvStateMachine> = OnceLock::new();
    MACHINE
        .get_or_init(|| {
            let mut sm = KvStateMachine::default();
            let cmds = [
                Command::with_session(PutRequest::new("a", "1"), 1, 1),
                Command::new(PutRequest::new("b", "22")),
                Command::with_session(PutRequest::new("b/c", ""), 2, 1),
                Command::with_session(PutRequest::new("k", "v"), 1, 2),
                Command::new(PutRequest::new(&b"\xff\xff"[..], "top")),
            ];
            for (i, c) in cmds.iter().enumerate() {
                sm.apply_command(LogIndex(i as u64 + 1), c);
            }
            let meta = MetaCommand::Put {
                key: "member/1".into(),
                value: "n1".into(),
            };
            let index = LogIndex(sm.applied_index().0 + 1);
            assert!(sm.apply_bytes(index, &meta.encode()).is_empty());
            sm
        })
        .clone()
}

fn entry(data: &[u8]) {
    let mut sm = populated();
    let index = LogIndex(sm.applied_index().0 + 1);
    if MetaCommand::is_meta(data) {
        return meta_entry(sm, index, data);
    }
    let Ok(cmd) = Command::decode(data) else {
        let before = sm.clone();
        let reply = sm.apply_bytes(index, data);
        refused(&reply, &before, &sm);
        return;
    };
    assert_eq!(&cmd.encode()[..], data, "{cmd:?} re-encodes differently");
    let first = sm.apply_bytes(index, data);
    let _ = decode_result(&first).expect("a reply decodes");
    let retry = sm.apply_bytes(LogIndex(index.0 + 1), data);
    let _ = decode_result(&retry).expect("a reply decodes");
    if cmd.session.is_some() && cmd.request.is_write() {
        assert_eq!(retry, first, "a retry of {cmd:?} is answered differently");
    }
    survives_snapshot(&sm, &cmd);
}

/// A meta command changes the meta map only, and answers nothing or `MetaFull`.
fn meta_entry(mut sm: KvStateMachine, index: LogIndex, data: &[u8]) {
    let before = sm.clone();
    let reply = sm.apply_bytes(index, data);
    let Ok(cmd) = MetaCommand::decode(data) else {
        return refused(&reply, &before, &sm);
    };
    assert_eq!(&cmd.encode()[..], data, "{cmd:?} re-encodes differently");
    assert_eq!(
        *sm.store(),
        *before.store(),
        "{cmd:?} changed the key space"
    );
    assert_eq!(
        sm.sessions(),
        before.sessions(),
        "{cmd:?} changed a session"
    );
    match &cmd {
        MetaCommand::Put { key, value } if reply.is_empty() => {
            assert_eq!(sm.meta().get(key), Some(value));
        }
        MetaCommand::Put { .. } => assert!(matches!(
            decode_result(&reply),
            Ok(Err(KvError::MetaFull { .. }))
        )),
        MetaCommand::Delete { key } => {
            assert!(reply.is_empty() && !sm.meta().contains_key(key));
        }
    }
    survives_snapshot(&sm, &cmd);
}

/// An undecodable entry is answered with its decode error and changes nothing but the
/// applied index.
fn refused(reply: &[u8], before: &KvStateMachine, after: &KvStateMachine) {
    assert!(
        matches!(decode_result(reply), Ok(Err(KvError::Decode(_)))),
        "an undecodable entry is answered with its decode error"
    );
    assert_eq!(
        *after.store(),
        *before.store(),
        "an undecodable entry changed a key"
    );
    assert_eq!(after.sessions(), before.sessions());
    assert_eq!(after.meta(), before.meta());
}

fn survives_snapshot(sm: &KvStateMachine, after: &dyn Debug) {
    let snap = sm.encode_snapshot();
    let mut restored = KvStateMachine::default();
    restored
        .try_restore(&snap)
        .unwrap_or_else(|e| panic!("the snapshot after {after:?} is refused: {e}"));
    assert_eq!(&restored, sm);
}

fn reply(data: &[u8]) {
    if let Ok(result) = decode_result(data) {
        assert_eq!(
            &encode_result(&result)[..],
            data,
            "{result:?} re-encodes differently"
        );
    }
}

fn snapshot(data: &[u8]) {
    let mut sm = populated();
    let before = sm.clone();
    if sm.try_restore(data).is_err() {
        assert_eq!(sm, before, "a refused snapshot changes nothing");
        return;
    }
    let again = sm.encode_snapshot();
    // (An older format is rewritten in the current one; a session table over the bound was
    // cut down to it on restore.)
    if data[SNAPSHOT_MAGIC.len()] == SNAPSHOT_FORMAT
        && sm.sessions().len() < sm.sessions().sessions_max()
    {
        assert_eq!(
            &again[..],
            data,
            "an accepted snapshot re-encodes differently"
        );
    }
    let mut other = KvStateMachine::default();
    other
        .try_restore(&again)
        .expect("a re-encoded snapshot restores");
    assert_eq!(other, sm);
}

/// Valid inputs to start mutating from: entries (every request kind, with and without a
/// session), a reply, a snapshot body (without header and checksum, as [`check`] seals it),
/// a whole snapshot, and meta commands.
pub fn seeds() -> Vec<Vec<u8>> {
    use kv::{
        AppendRequest, Compare, CompareResult, CompareTarget, DeleteRangeRequest, RangeRequest,
        RequestOp, TxnRequest,
    };
    let txn = TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal,
            target: CompareTarget::Value("1".into()),
            key: "a".into(),
            range_end: Default::default(),
        }],
        success: vec![
            RequestOp::Put(PutRequest::new("a", "2")),
            RequestOp::Txn(TxnRequest {
                compare: vec![],
                success: vec![RequestOp::Range(RangeRequest::key("b"))],
                failure: vec![],
            }),
        ],
        failure: vec![RequestOp::DeleteRange(DeleteRangeRequest {
            key: "b".into(),
            range_end: "c".into(),
            prev_kv: true,
        })],
    };
    let entries = [
        Command::new(RangeRequest::key("a")),
        Command::with_session(PutRequest::new("a", "x"), 1, 3),
        Command::new(DeleteRangeRequest {
            key: "a".into(),
            range_end: vec![0].into(),
            prev_kv: false,
        }),
        Command::with_session(txn, 2, 2),
        Command::with_session(
            AppendRequest {
                key: "log".into(),
                suffix: "line;".into(),
            },
            3,
            1,
        ),
    ];
    let mut out: Vec<Vec<u8>> = entries.iter().map(|c| c.encode().to_vec()).collect();
    let mut sm = populated();
    let index = sm.applied_index().0 + 1;
    out.push(sm.apply_bytes(LogIndex(index), &out[3]).to_vec());
    let snap = sm.encode_snapshot().to_vec();
    out.push(snap[SNAPSHOT_MAGIC.len() + 1..snap.len() - 4].to_vec());
    out.push(snap);
    let metas = [
        MetaCommand::Put {
            key: "member/2".into(),
            value: "n2".into(),
        },
        MetaCommand::Delete {
            key: "member/1".into(),
        },
    ];
    out.extend(metas.iter().map(|m| m.encode().to_vec()));
    out
}
