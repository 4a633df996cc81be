//! The messages Raft nodes exchange, as plain Rust enums.
//!
//! Owns: one variant per RPC with typed fields. Must never: contain wire encoding (protobuf
//! lives at the edge, in `proto`/`server`) or I/O. The transport adds the cluster id.

use crate::types::{Entry, EntryId, LogIndex, NodeId, SnapshotMeta, Term};
use bytes::Bytes;

/// A message between two nodes. Every message carries the sender's term.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
}

/// Which RPC a message is.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MessageBody {
    /// RequestVote (§5.2) or PreVote (§9.6 of the dissertation). For a PreVote, `Message::term`
    /// is the term the candidate *would* campaign in; the sender has not adopted it.
    Vote(VoteRequest),
    /// Answer to `Vote`. A granted PreVote carries the requested term; a rejection carries the
    /// voter's term.
    VoteResponse(VoteResponse),
    /// AppendEntries (§5.3); a heartbeat is one with no entries.
    Append(AppendRequest),
    /// Answer to `Append`.
    AppendResponse(AppendResponse),
    /// One chunk of InstallSnapshot (§7, Figure 13).
    Snapshot(SnapshotChunk),
    /// Answer to a snapshot chunk.
    SnapshotResponse(SnapshotResponse),
    /// Leadership transfer: the receiver should campaign at once (§3.10 of the dissertation).
    TimeoutNow,
    /// A follower forwards a ReadIndex request to the leader.
    ReadIndex { ctx: u64 },
    /// The leader's answer to a forwarded ReadIndex: the read index, or `None` if it could not
    /// serve it (no longer leader).
    ReadIndexResponse { ctx: u64, index: Option<LogIndex> },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VoteRequest {
    pub pre_vote: bool,
    /// The candidate's last log entry (for the up-to-date rule, §5.4.1).
    pub last: EntryId,
    /// Set when campaigning because of `TimeoutNow`: voters ignore their leader lease.
    pub transfer: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VoteResponse {
    pub pre_vote: bool,
    pub granted: bool,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AppendRequest {
    /// The entry immediately preceding `entries` (prevLogIndex/prevLogTerm).
    pub prev: EntryId,
    pub entries: Vec<Entry>,
    /// The leader's commit index (leaderCommit).
    pub commit: LogIndex,
    /// The leader's ReadIndex round when it sent this; echoed in the response.
    pub read_seq: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's up to `match_index`.
    Accepted { match_index: LogIndex },
    /// The follower has no entry matching `rejected_prev`; `hint` says where to retry.
    Rejected {
        rejected_prev: LogIndex,
        hint: ConflictHint,
    },
}

/// Fast-backtracking hint (6.824 "accelerated log backtracking").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ConflictHint {
    /// Term of the follower's entry at the rejected index, if it has one.
    pub term: Option<Term>,
    /// First index of `term` in the follower's log, or the follower's last index + 1 when its
    /// log is too short.
    pub index: LogIndex,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AppendResponse {
    pub outcome: AppendOutcome,
    /// The follower's commit index, so the leader knows whether it must still send commits.
    pub commit: LogIndex,
    /// Echo of `AppendRequest::read_seq`.
    pub read_seq: u64,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SnapshotChunk {
    pub meta: SnapshotMeta,
    /// Byte offset of `data` within the snapshot.
    pub offset: u64,
    /// Total snapshot size in bytes.
    pub total_bytes: u64,
    pub data: Bytes,
    pub read_seq: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SnapshotResponse {
    /// Which snapshot this answers (its last index).
    pub snapshot_index: LogIndex,
    /// The offset the follower expects next; equals the total size once installed.
    pub next_offset: u64,
    /// True once the follower installed the whole snapshot (its log matches up to
    /// `snapshot_index`).
    pub installed: bool,
    pub read_seq: u64,
}

impl Message {
    /// True for messages that promise durable state (vote grants, append and snapshot acks,
    /// a candidate's own vote request): they may be sent only after the `Ready` that produced
    /// them is persisted.
    pub fn requires_durability(&self) -> bool {
        match &self.body {
            MessageBody::Vote(v) => !v.pre_vote,
            MessageBody::VoteResponse(v) => !v.pre_vote && v.granted,
            MessageBody::AppendResponse(_) | MessageBody::SnapshotResponse(_) => true,
            _ => false,
        }
    }

    /// Approximate encoded size, for byte limits and accounting.
    pub fn size_bytes(&self) -> usize {
        const HEADER: usize = 32;
        HEADER
            + match &self.body {
                MessageBody::Append(a) => a.entries.iter().map(Entry::size_bytes).sum(),
                MessageBody::Snapshot(s) => s.data.len() + 8 * s.meta.config.voters.len(),
                _ => 16,
            }
    }

    /// Short name of the RPC, for traces and counters.
    pub fn kind_name(&self) -> &'static str {
        match &self.body {
            MessageBody::Vote(v) if v.pre_vote => "PreVote",
            MessageBody::Vote(_) => "RequestVote",
            MessageBody::VoteResponse(v) if v.pre_vote => "PreVoteResponse",
            MessageBody::VoteResponse(_) => "RequestVoteResponse",
            MessageBody::Append(a) if a.entries.is_empty() => "Heartbeat",
            MessageBody::Append(_) => "AppendEntries",
            MessageBody::AppendResponse(_) => "AppendEntriesResponse",
            MessageBody::Snapshot(_) => "InstallSnapshot",
            MessageBody::SnapshotResponse(_) => "InstallSnapshotResponse",
            MessageBody::TimeoutNow => "TimeoutNow",
            MessageBody::ReadIndex { .. } => "ReadIndex",
            MessageBody::ReadIndexResponse { .. } => "ReadIndexResponse",
        }
    }
}
