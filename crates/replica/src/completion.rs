//! What a node owes the clients waiting on it.
//!
//! Owns: the [`Completion`] enum and [`ProposalError`]. Must never: carry anything a client
//! could mistake for success when the outcome is not known.

use bytes::Bytes;
use raft::{EntryId, LogIndex};
use thiserror::Error;

/// The outcome of a proposal or read, keyed by the caller's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// The proposed entry committed and was applied; `result` is what the state machine
    /// returned for it.
    Applied {
        token: u64,
        id: EntryId,
        result: Bytes,
    },
    /// The proposal did not commit (or its fate is unknown); the client may retry.
    Failed { token: u64, error: ProposalError },
    /// The read may now be served from the local state machine (applied ≥ `index`).
    ReadReady { token: u64, index: LogIndex },
    /// The read could not be confirmed; retry, possibly at another node.
    ReadFailed { token: u64 },
}

impl Completion {
    /// The caller's token this completion answers.
    pub fn token(&self) -> u64 {
        match self {
            Completion::Applied { token, .. }
            | Completion::Failed { token, .. }
            | Completion::ReadReady { token, .. }
            | Completion::ReadFailed { token } => *token,
        }
    }
}

/// Why a proposal failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProposalError {
    /// Another entry committed at the proposal's index: the proposal is lost for good.
    #[error("proposal {proposed:?} lost: {committed:?} committed at its index")]
    Overwritten {
        proposed: EntryId,
        committed: EntryId,
    },
    /// A snapshot up to `snapshot` was installed over the proposal's index, so this node never
    /// saw which entry committed there: the proposal may or may not have been applied.
    #[error("outcome of {proposed:?} unknown: snapshot up to {snapshot:?} installed")]
    OutcomeUnknown {
        proposed: EntryId,
        snapshot: EntryId,
    },
}
