//! Oracle of the `peer_frame_decode` target: what a member reads from a peer connection.
//!
//! The input is tried two ways. As one frame payload: `server::wire::decode` never panics, and
//! a decoded message survives encode → decode unchanged and (but for a snapshot chunk, whose
//! configuration decodes from unsorted ids too) re-encodes to exactly its bytes. As a whole
//! connection, read the way `transport::serve_conn` reads it: the fixed [`Hello`] (which
//! re-encodes to its bytes), the attribute block (which decodes exactly when
//! `Members::learn_encoded` accepts it, is learned as decoded, and re-encodes to its bytes —
//! or, with a string over the encoder's 1024-byte cut, to a block that still decodes), then
//! `[len: u32 LE][payload]` frames, each checked as above.

use bytes::Bytes;
use raft::{Message, MessageBody};
use server::members::{Attrs, Member, Members, ATTRS_BYTES_MAX};
use server::transport::Hello;
use server::wire;

/// Frame limit of the connection check (the transport's own limit only bounds its cost).
const FRAME_BYTES_MAX: usize = 1 << 20;
/// Longest string `Attrs::encode` writes whole.
const ATTR_STR_BYTES_MAX: usize = 1024;

pub fn check(data: &[u8]) {
    frame(data);
    connection(data);
}

/// One payload; returns the message if it decoded.
fn frame(payload: &[u8]) -> Option<Message> {
    let msg = wire::decode(Bytes::copy_from_slice(payload)).ok()?;
    let again = wire::encode(&msg);
    assert_eq!(
        wire::decode(again.clone()).as_ref(),
        Ok(&msg),
        "encode → decode changed the message"
    );
    if !matches!(msg.body, MessageBody::Snapshot(_)) {
        assert_eq!(&again[..], payload, "{msg:?} re-encodes differently");
    }
    Some(msg)
}

/// The bytes as a connection: hello, attributes, frames — until the first refusal, where
/// the transport closes the connection.
fn connection(data: &[u8]) {
    let Some((fixed, rest)) = data.split_first_chunk::<{ Hello::BYTES }>() else {
        return;
    };
    let Ok(hello) = Hello::decode(fixed) else {
        return;
    };
    assert_eq!(&hello.encode(&[])[..Hello::BYTES], &fixed[..]);
    let Some((n, rest)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let n = usize::from(u16::from_le_bytes(*n));
    if n > ATTRS_BYTES_MAX || rest.len() < n {
        return;
    }
    let (block, mut rest) = rest.split_at(n);
    if !attrs(hello, block) {
        return;
    }
    while let Some((len, r)) = rest.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        if len > FRAME_BYTES_MAX || r.len() < len {
            return;
        }
        if frame(&r[..len]).is_none() {
            return;
        }
        rest = &r[len..];
    }
}

/// The attribute block of `hello`'s sender; whether the transport keeps the connection.
fn attrs(hello: Hello, block: &[u8]) -> bool {
    let decoded = Attrs::decode_with_admin(block);
    let unknown_sender = Members::new([]).learn_encoded(hello.from, block);
    assert_eq!(unknown_sender.is_ok(), decoded.is_ok());
    let Ok((attrs, admin)) = decoded else {
        return false;
    };
    let members = Members::new([Member {
        id: hello.from,
        name: attrs.name.clone(),
        peer_urls: vec![],
        client_urls: vec![],
    }]);
    members
        .learn_encoded(hello.from, block)
        .expect("a block that decodes is learned");
    let learned = members.get(hello.from).expect("a known member");
    assert_eq!(learned.client_urls, attrs.client_urls);
    assert_eq!(members.admin_url(hello.from), admin);

    let again = members.encode_attrs(hello.from, &attrs);
    let (again_attrs, again_admin) =
        Attrs::decode_with_admin(&again).expect("an encoded block decodes");
    let short = |s: &String| s.len() <= ATTR_STR_BYTES_MAX;
    if short(&attrs.name) && attrs.client_urls.iter().all(short) && admin.iter().all(short) {
        assert_eq!(again, block, "{attrs:?} re-encodes differently");
    } else {
        assert!(attrs.name.starts_with(&again_attrs.name));
        assert!(again_attrs.client_urls.len() <= attrs.client_urls.len());
        for (cut, whole) in again_attrs.client_urls.iter().zip(&attrs.client_urls) {
            assert!(whole.starts_with(cut.as_str()));
        }
        if let Some(cut) = &again_admin {
            assert!(admin.as_ref().is_some_and(|whole| whole.starts_with(cut)));
        }
    }
    true
}

/// Valid inputs to start mutating from: a hello with attributes and frames, and frames.
pub fn seeds() -> Vec<Vec<u8>> {
    use raft::{
        AppendRequest, Configuration, Entry, EntryId, EntryKind, LogIndex, NodeId, SnapshotChunk,
        SnapshotMeta, Term, VoteRequest,
    };
    let msg = |body| Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(3),
        body,
    };
    let frames = [
        msg(MessageBody::Vote(VoteRequest {
            pre_vote: true,
            last: EntryId::new(Term(2), LogIndex(9)),
            transfer: false,
        })),
        msg(MessageBody::Append(AppendRequest {
            prev: EntryId::new(Term(2), LogIndex(4)),
            entries: vec![Entry {
                term: Term(3),
                index: LogIndex(5),
                kind: EntryKind::Normal,
                data: Bytes::from_static(b"entry"),
            }],
            commit: LogIndex(4),
            read_seq: 1,
        })),
        msg(MessageBody::Snapshot(SnapshotChunk {
            meta: SnapshotMeta {
                last: EntryId::new(Term(3), LogIndex(10)),
                config: Configuration::with_learners([NodeId(1), NodeId(2)], [NodeId(3)]),
            },
            offset: 0,
            total_bytes: 4,
            data: Bytes::from_static(b"snap"),
            read_seq: 0,
        })),
        msg(MessageBody::ReadIndexResponse {
            ctx: 7,
            index: Some(LogIndex(9)),
        }),
    ]
    .map(|m| wire::encode(&m).to_vec());
    let members = Members::new([Member {
        id: NodeId(1),
        name: "n1".into(),
        peer_urls: vec![],
        client_urls: vec![],
    }]);
    members.set_admin_url(NodeId(1), "http://127.0.0.1:2381".into());
    let block = members.encode_attrs(
        NodeId(1),
        &Attrs {
            name: "n1".into(),
            client_urls: vec!["http://127.0.0.1:2379".into()],
        },
    );
    let mut conn = Hello {
        cluster_id: 0xc1,
        from: NodeId(1),
        to: NodeId(2),
    }
    .encode(&block);
    for f in &frames {
        conn.extend_from_slice(&(f.len() as u32).to_le_bytes());
        conn.extend_from_slice(f);
    }
    let mut out = vec![conn];
    out.extend(frames);
    out
}
