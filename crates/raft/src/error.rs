//! Errors the core returns to its driver, scoped per operation.
//!
//! Owns: the error enums. Must never: carry I/O errors (the core does no I/O).

use crate::types::{LogIndex, NodeId};
use thiserror::Error;

/// Errors constructing the core or stepping a message into it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("corrupt input: {0}")]
    Corrupt(&'static str),
    #[error("message from {from:?} addressed to {to:?}, but this node is {me:?}")]
    WrongRecipient {
        from: NodeId,
        to: NodeId,
        me: NodeId,
    },
    #[error("message from {0:?}, which is not a member of the configuration")]
    UnknownSender(NodeId),
    #[error("invalid message from {from:?}: {why}")]
    InvalidMessage { from: NodeId, why: &'static str },
}

/// Why a proposal was not accepted. Nothing was appended.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProposeError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("a leadership transfer is in progress")]
    TransferInProgress,
    #[error("too many uncommitted bytes ({uncommitted_bytes} > {limit_bytes})")]
    UncommittedLimit {
        uncommitted_bytes: usize,
        limit_bytes: usize,
    },
}

/// Why a ReadIndex request could not be started.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReadError {
    #[error("no known leader to confirm the read")]
    NoLeader,
}

/// Why a leadership transfer could not be started.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TransferError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("{0:?} is not a voter")]
    UnknownTarget(NodeId),
    #[error("already the leader")]
    AlreadyLeader,
}

/// Why a snapshot could not be taken.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CompactError {
    #[error("index {index:?} is not applied yet (applied {applied:?})")]
    NotApplied { index: LogIndex, applied: LogIndex },
    #[error("index {index:?} is already compacted (snapshot at {snapshot:?})")]
    AlreadyCompacted { index: LogIndex, snapshot: LogIndex },
}

/// Why a membership change was refused. Nothing was appended.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfChangeError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("a leadership transfer is in progress")]
    TransferInProgress,
    #[error("the leader has not yet committed an entry of its term; retry shortly")]
    LeaderNotReady,
    #[error(
        "the membership change at index {index:?} has not committed yet; one change at a time"
    )]
    ChangeInProgress { index: LogIndex },
    #[error("{0:?} is already a member")]
    AlreadyMember(NodeId),
    #[error("{0:?} is not a member")]
    NotMember(NodeId),
    #[error("{0:?} is not a learner")]
    NotLearner(NodeId),
    #[error("learner {id:?} is behind (matched {matched:?} of {committed:?} committed); promote it once it has caught up")]
    LearnerBehind {
        id: NodeId,
        matched: LogIndex,
        committed: LogIndex,
    },
    #[error("{0:?} is the last voter; a cluster needs one")]
    LastVoter(NodeId),
    #[error("node id 0 is reserved")]
    InvalidId,
}
