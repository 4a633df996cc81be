//! Proposals and reads waiting for the log to reach them.
//!
//! Owns: the token ↔ (index, term) bookkeeping that turns applied entries into
//! [`Completion`]s. Must never: answer a proposal before an entry at its index has applied,
//! or answer a read before the state machine has applied its read index.

use crate::completion::{Completion, ProposalError};
use bytes::Bytes;
use raft::{EntryId, LogIndex, Term};
use std::collections::BTreeMap;

/// Waiting proposals and reads of one node.
#[derive(Default, Debug)]
pub struct Waiters {
    /// Proposals by index. More than one can wait at an index (proposed in different terms
    /// by this node); at most one of them can commit.
    proposals: BTreeMap<LogIndex, Vec<(Term, u64)>>,
    /// Confirmed reads waiting for `applied ≥ index`.
    reads: BTreeMap<LogIndex, Vec<u64>>,
    proposals_len: usize,
}

impl Waiters {
    /// Remember that `token` waits for the entry `id`.
    pub fn add_proposal(&mut self, id: EntryId, token: u64) {
        self.proposals
            .entry(id.index)
            .or_default()
            .push((id.term, token));
        self.proposals_len += 1;
    }

    /// Whether a proposal waits for the entry at `index`.
    pub fn waits_for(&self, index: LogIndex) -> bool {
        self.proposals.contains_key(&index)
    }

    /// The entry `id` was applied with `result`: complete the proposals at its index.
    pub fn applied(&mut self, id: EntryId, result: &Bytes, out: &mut Vec<Completion>) {
        let Some(waiting) = self.proposals.remove(&id.index) else {
            return;
        };
        self.proposals_len -= waiting.len();
        for (term, token) in waiting {
            let proposed = EntryId::new(term, id.index);
            out.push(if term == id.term {
                Completion::Applied {
                    token,
                    id,
                    result: result.clone(),
                }
            } else {
                Completion::Failed {
                    token,
                    error: ProposalError::Overwritten {
                        proposed,
                        committed: id,
                    },
                }
            });
        }
    }

    /// A snapshot up to `snapshot` replaced the state: proposals it covers have an unknown
    /// outcome (this node never applied their entries one by one).
    pub fn snapshot_installed(&mut self, snapshot: EntryId, out: &mut Vec<Completion>) {
        let rest = self.proposals.split_off(&snapshot.index.next());
        let covered = std::mem::replace(&mut self.proposals, rest);
        for (index, waiting) in covered {
            self.proposals_len -= waiting.len();
            for (term, token) in waiting {
                let proposed = EntryId::new(term, index);
                let error = ProposalError::OutcomeUnknown { proposed, snapshot };
                out.push(Completion::Failed { token, error });
            }
        }
    }

    /// A read was confirmed at `index`; answer it now if `applied` reached it.
    pub fn read_confirmed(
        &mut self,
        token: u64,
        index: LogIndex,
        applied: LogIndex,
        out: &mut Vec<Completion>,
    ) {
        if index <= applied {
            out.push(Completion::ReadReady { token, index });
        } else {
            self.reads.entry(index).or_default().push(token);
        }
    }

    /// The state machine reached `applied`: answer the reads waiting for it.
    pub fn reads_ready(&mut self, applied: LogIndex, out: &mut Vec<Completion>) {
        while let Some(entry) = self.reads.first_entry() {
            if *entry.key() > applied {
                break;
            }
            let index = *entry.key();
            for token in entry.remove() {
                out.push(Completion::ReadReady { token, index });
            }
        }
    }

    /// Proposals still waiting.
    pub fn pending_proposals(&self) -> usize {
        self.proposals_len
    }

    /// Confirmed reads still waiting for the state machine.
    pub fn pending_reads(&self) -> usize {
        self.reads.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(term: u64, index: u64) -> EntryId {
        EntryId::new(Term(term), LogIndex(index))
    }

    #[test]
    fn proposal_completes_only_with_its_own_term() {
        let mut w = Waiters::default();
        w.add_proposal(id(2, 5), 1);
        w.add_proposal(id(3, 5), 2);
        let mut out = Vec::new();
        w.applied(id(3, 5), &Bytes::from_static(b"r"), &mut out);
        assert_eq!(out.len(), 2);
        assert!(matches!(
            &out[0],
            Completion::Failed {
                token: 1,
                error: ProposalError::Overwritten { .. }
            }
        ));
        assert!(matches!(&out[1], Completion::Applied { token: 2, result, .. } if result == "r"));
        assert_eq!(w.pending_proposals(), 0);
    }

    #[test]
    fn snapshot_makes_covered_proposals_unknown() {
        let mut w = Waiters::default();
        w.add_proposal(id(1, 3), 1);
        w.add_proposal(id(1, 4), 2);
        w.add_proposal(id(1, 9), 3);
        let mut out = Vec::new();
        w.snapshot_installed(id(1, 4), &mut out);
        assert_eq!(
            out.iter().map(Completion::token).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(w.pending_proposals(), 1);
    }

    #[test]
    fn reads_wait_for_applied() {
        let mut w = Waiters::default();
        let mut out = Vec::new();
        w.read_confirmed(1, LogIndex(3), LogIndex(3), &mut out);
        w.read_confirmed(2, LogIndex(5), LogIndex(3), &mut out);
        w.read_confirmed(3, LogIndex(7), LogIndex(3), &mut out);
        assert_eq!(out.len(), 1);
        w.reads_ready(LogIndex(6), &mut out);
        assert_eq!(
            out.last(),
            Some(&Completion::ReadReady {
                token: 2,
                index: LogIndex(5)
            })
        );
        assert_eq!(w.pending_reads(), 1);
    }
}
