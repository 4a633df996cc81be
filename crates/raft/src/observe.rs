//! How a node looks to an observer: the names and summaries that the server's admin
//! telemetry and the simulator's trace recorder both publish (the dashboard's event schema,
//! documented in the server crate's `admin` module), so a live stream and a simulated trace
//! classify messages and logs the same way.
//!
//! Owns: [`MsgKind`] (a message's kind as the dashboard and the metrics name it),
//! [`MsgSummary`] (the entries / index / ok of a message event), [`LogTail`] (the last entries
//! of a node's log), and the schema's names of roles and entry kinds.
//! Must never: change the node (everything here reads `&Raft` or a message), or rename a
//! string without a new schema version: pages and recorded traces depend on them.

use crate::message::{AppendOutcome, MessageBody};
use crate::node::Raft;
use crate::ready::Role;
use crate::types::{EntryKind, LogIndex};

/// The kind of a Raft message. `kind as usize` is its position in [`MsgKind::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgKind {
    Vote,
    PreVote,
    VoteResponse,
    PreVoteResponse,
    Append,
    Heartbeat,
    AppendResponse,
    Snapshot,
    SnapshotResponse,
    TimeoutNow,
    ReadIndex,
    ReadIndexResponse,
}

impl MsgKind {
    pub const ALL: [MsgKind; 12] = [
        MsgKind::Vote,
        MsgKind::PreVote,
        MsgKind::VoteResponse,
        MsgKind::PreVoteResponse,
        MsgKind::Append,
        MsgKind::Heartbeat,
        MsgKind::AppendResponse,
        MsgKind::Snapshot,
        MsgKind::SnapshotResponse,
        MsgKind::TimeoutNow,
        MsgKind::ReadIndex,
        MsgKind::ReadIndexResponse,
    ];

    /// A heartbeat is an AppendEntries without entries.
    pub fn of(body: &MessageBody) -> MsgKind {
        match body {
            MessageBody::Vote(v) if v.pre_vote => MsgKind::PreVote,
            MessageBody::Vote(_) => MsgKind::Vote,
            MessageBody::VoteResponse(v) if v.pre_vote => MsgKind::PreVoteResponse,
            MessageBody::VoteResponse(_) => MsgKind::VoteResponse,
            MessageBody::Append(a) if a.entries.is_empty() => MsgKind::Heartbeat,
            MessageBody::Append(_) => MsgKind::Append,
            MessageBody::AppendResponse(_) => MsgKind::AppendResponse,
            MessageBody::Snapshot(_) => MsgKind::Snapshot,
            MessageBody::SnapshotResponse(_) => MsgKind::SnapshotResponse,
            MessageBody::TimeoutNow => MsgKind::TimeoutNow,
            MessageBody::ReadIndex { .. } => MsgKind::ReadIndex,
            MessageBody::ReadIndexResponse { .. } => MsgKind::ReadIndexResponse,
        }
    }

    /// The schema's name (`kind` of a `msg` event, `type` label of the metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            MsgKind::Vote => "vote",
            MsgKind::PreVote => "prevote",
            MsgKind::VoteResponse => "vote_resp",
            MsgKind::PreVoteResponse => "prevote_resp",
            MsgKind::Append => "append",
            MsgKind::Heartbeat => "heartbeat",
            MsgKind::AppendResponse => "append_resp",
            MsgKind::Snapshot => "snapshot",
            MsgKind::SnapshotResponse => "snapshot_resp",
            MsgKind::TimeoutNow => "timeout_now",
            MsgKind::ReadIndex => "read_index",
            MsgKind::ReadIndexResponse => "read_index_resp",
        }
    }

    /// Votes, pre-votes, their answers and TimeoutNow: the messages of an election.
    pub fn is_election(self) -> bool {
        matches!(
            self,
            MsgKind::Vote
                | MsgKind::PreVote
                | MsgKind::VoteResponse
                | MsgKind::PreVoteResponse
                | MsgKind::TimeoutNow
        )
    }
}

/// What a `msg` event says about a message besides its kind and term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgSummary {
    pub kind: MsgKind,
    /// Entries carried (appends).
    pub entries: u32,
    /// Append: last index carried; append response: match or rejected index; vote: the
    /// candidate's last index; snapshot: its last index; read index response: the index.
    pub index: u64,
    /// Vote response: granted; append response: accepted; snapshot response: installed;
    /// read index response: answered. `None` for requests.
    pub ok: Option<bool>,
}

impl MsgSummary {
    pub fn of(body: &MessageBody) -> MsgSummary {
        let (entries, index, ok) = match body {
            MessageBody::Vote(v) => (0, v.last.index.0, None),
            MessageBody::VoteResponse(v) => (0, 0, Some(v.granted)),
            MessageBody::Append(a) => (
                a.entries.len() as u32,
                a.prev.index.0 + a.entries.len() as u64,
                None,
            ),
            MessageBody::AppendResponse(r) => match r.outcome {
                AppendOutcome::Accepted { match_index } => (0, match_index.0, Some(true)),
                AppendOutcome::Rejected { rejected_prev, .. } => (0, rejected_prev.0, Some(false)),
            },
            MessageBody::Snapshot(s) => (0, s.meta.last.index.0, None),
            MessageBody::SnapshotResponse(s) => (0, s.snapshot_index.0, Some(s.installed)),
            MessageBody::TimeoutNow | MessageBody::ReadIndex { .. } => (0, 0, None),
            MessageBody::ReadIndexResponse { index, .. } => {
                (0, index.map_or(0, |i| i.0), Some(index.is_some()))
            }
        };
        MsgSummary {
            kind: MsgKind::of(body),
            entries,
            index,
            ok,
        }
    }
}

impl Raft {
    /// Ticks since the election timer was last reset (by a leader's message, a vote granted
    /// or a change of role or term). A voter that is not leader campaigns once it reaches
    /// its randomized timeout, drawn from [E, 2E).
    pub fn election_elapsed_ticks(&self) -> u32 {
        self.election_elapsed
    }

    /// Leader: ticks since it last sent a heartbeat round.
    pub fn heartbeat_elapsed_ticks(&self) -> u32 {
        self.heartbeat_elapsed
    }
}

/// The schema's name of a role.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Follower => "follower",
        Role::PreCandidate => "pre_candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

/// The schema's name of an entry kind.
pub fn entry_kind_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::Normal => "normal",
        EntryKind::Noop => "noop",
        EntryKind::Config => "config",
    }
}

/// The last entries of a node's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogTail {
    pub first_index: u64,
    pub commit: u64,
    /// The snapshot's last entry `(index, term)`: the log starts after it.
    pub snapshot: (u64, u64),
    /// `(index, term, kind)`, oldest first.
    pub entries: Vec<(u64, u64, EntryKind)>,
}

impl LogTail {
    /// The last `n` (≥ 1) entries of `raft`'s in-memory log.
    pub fn of(raft: &Raft, n: usize) -> LogTail {
        let last = raft.last_index().0;
        let lo = last.saturating_sub(n as u64 - 1).max(raft.first_index().0);
        let st = raft.status();
        LogTail {
            first_index: raft.first_index().0,
            commit: raft.commit_index().0,
            snapshot: (st.snapshot.index.0, st.snapshot.term.0),
            entries: raft
                .entries_from(LogIndex(lo))
                .iter()
                .take(n)
                .map(|e| (e.index.0, e.term.0, e.kind))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{VoteRequest, VoteResponse};
    use crate::types::{EntryId, Term};

    #[test]
    fn the_all_list_is_in_declaration_order() {
        assert!(MsgKind::ALL
            .iter()
            .enumerate()
            .all(|(i, &k)| k as usize == i));
    }

    #[test]
    fn votes_are_election_messages_and_carry_their_answer() {
        let vote = MessageBody::Vote(VoteRequest {
            pre_vote: true,
            last: EntryId {
                term: Term(2),
                index: LogIndex(7),
            },
            transfer: false,
        });
        let s = MsgSummary::of(&vote);
        assert_eq!((s.kind, s.index, s.ok), (MsgKind::PreVote, 7, None));
        assert!(s.kind.is_election() && s.kind.as_str() == "prevote");
        let granted = MsgSummary::of(&MessageBody::VoteResponse(VoteResponse {
            pre_vote: false,
            granted: true,
        }));
        assert_eq!(
            (granted.kind, granted.ok),
            (MsgKind::VoteResponse, Some(true))
        );
        assert!(!MsgKind::Heartbeat.is_election());
    }
}
