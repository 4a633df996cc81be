//! ReadIndex linearizable reads (dissertation §6.4), batched by rounds.
//!
//! Owns: the leader's queue of reads awaiting leadership confirmation, the round sequence
//! numbers carried in appends and echoed in answers, and reads forwarded by followers. A read
//! registered in round `s` is confirmed when a quorum (counting the leader) has answered a
//! message of the current term carrying a round ≥ `s`; many reads share one round.
//!
//! A follower batches too: the reads it receives before its next `Ready` share one
//! `ReadIndex` request to the leader (a batch id, not each read's context, goes on the wire);
//! the answer serves them all — each read arrived before the request left, so the leader's
//! commit index at its receipt is a valid read index for every one. Batch ids are never
//! reused: they count up from a value drawn from the node's seed, so an answer that outlived
//! a restart of this node cannot match a batch of the new process.
//! Must never: answer a read before the leader has committed an entry of its own term, or
//! answer one after losing leadership.

use crate::message::{Message, MessageBody};
use crate::node::Raft;
use crate::ready::{ReadFailure, ReadState, Role};
use crate::types::{LogIndex, NodeId};
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Copy, Debug)]
struct PendingRead {
    from: NodeId,
    ctx: u64,
    index: LogIndex,
    seq: u64,
}

#[derive(Default, Debug)]
pub(crate) struct ReadOnly {
    /// Current round; messages carry it.
    seq: u64,
    /// True once a message carrying `seq` has been sent (a new read then needs a new round).
    seq_sent: bool,
    /// Reads waiting for the leader's first commit in its term.
    waiting_commit: Vec<(NodeId, u64)>,
    /// Reads waiting for a quorum to confirm their round, in round order.
    pending: VecDeque<PendingRead>,
    /// Follower: batches forwarded to the leader, not yet answered: batch id → contexts.
    forwarded: BTreeMap<u64, Vec<u64>>,
    /// Follower: the batch whose request is still in the outbox (joinable until `ready`).
    open_batch: Option<u64>,
    /// Follower: the next batch id.
    next_batch: u64,
}

impl ReadOnly {
    /// Batch ids start at a value derived from `seed` (never 0 in practice, never reused).
    pub(crate) fn new(seed: u64) -> ReadOnly {
        ReadOnly {
            next_batch: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17),
            ..ReadOnly::default()
        }
    }

    /// The outbox was handed to the driver: a new read needs a new batch.
    pub(crate) fn close_batch(&mut self) {
        self.open_batch = None;
    }

    pub(crate) fn current_seq(&self) -> u64 {
        self.seq
    }

    pub(crate) fn mark_round_sent(&mut self) {
        self.seq_sent = true;
    }

    pub(crate) fn reset_for_new_term(&mut self) {
        debug_assert!(self.pending.is_empty() && self.waiting_commit.is_empty());
        self.seq_sent = true;
    }

    /// A round for a new read: reuse the current one if it has not been sent yet.
    fn round_for_new_read(&mut self) -> u64 {
        if self.seq_sent {
            self.seq += 1;
            self.seq_sent = false;
        }
        self.seq
    }

    /// Leader lost leadership: every read it holds fails.
    pub(crate) fn fail_leader_reads(
        &mut self,
        me: NodeId,
        term: crate::types::Term,
        failures: &mut Vec<ReadFailure>,
        msgs: &mut Vec<Message>,
    ) {
        let waiting = self.waiting_commit.drain(..);
        let pending = self.pending.drain(..).map(|r| (r.from, r.ctx));
        for (from, ctx) in waiting.chain(pending) {
            if from == me {
                failures.push(ReadFailure { ctx });
            } else {
                msgs.push(Message {
                    from: me,
                    to: from,
                    term,
                    body: MessageBody::ReadIndexResponse { ctx, index: None },
                });
            }
        }
    }

    /// The leader we forwarded to is gone: those reads fail.
    pub(crate) fn fail_forwarded(&mut self, failures: &mut Vec<ReadFailure>) {
        self.open_batch = None;
        failures.extend(
            std::mem::take(&mut self.forwarded)
                .into_values()
                .flatten()
                .map(|ctx| ReadFailure { ctx }),
        );
    }
}

impl Raft {
    /// Follower: forward read `ctx` to `leader`, in the open batch or a new one.
    pub(crate) fn forward_read(&mut self, leader: NodeId, ctx: u64) {
        let batch = match self.read_only.open_batch {
            Some(b) => b,
            None => {
                let b = self.read_only.next_batch;
                self.read_only.next_batch = b.wrapping_add(1);
                debug_assert!(!self.read_only.forwarded.contains_key(&b));
                self.read_only.open_batch = Some(b);
                self.send(leader, MessageBody::ReadIndex { ctx: b });
                b
            }
        };
        self.read_only.forwarded.entry(batch).or_default().push(ctx);
    }

    /// A read arrives at the leader, from itself or forwarded by `from`.
    pub(crate) fn leader_read(&mut self, from: NodeId, ctx: u64) {
        debug_assert_eq!(self.role, Role::Leader);
        if self.log.term_at(self.log.committed) != Some(self.term) {
            // Until an entry of this term commits, our commit index may be stale (§6.4 step 1).
            self.read_only.waiting_commit.push((from, ctx));
            return;
        }
        self.register_read(from, ctx);
    }

    fn register_read(&mut self, from: NodeId, ctx: u64) {
        let index = self.log.committed;
        if self.conf.quorum() <= usize::from(self.is_voter()) {
            return self.answer_read(from, ctx, index); // single-voter cluster
        }
        let seq = self.read_only.round_for_new_read();
        self.read_only.pending.push_back(PendingRead {
            from,
            ctx,
            index,
            seq,
        });
        // The next heartbeat round (sent at the next `ready`) carries `seq`; one round serves
        // every read registered until then.
        self.pending_read_round = true;
    }

    fn answer_read(&mut self, from: NodeId, ctx: u64, index: LogIndex) {
        if from == self.id {
            self.read_states.push(ReadState { ctx, index });
        } else {
            self.send(
                from,
                MessageBody::ReadIndexResponse {
                    ctx,
                    index: Some(index),
                },
            );
        }
    }

    /// The leader just committed: the first commit of its term releases waiting reads.
    pub(crate) fn on_commit_in_term(&mut self) {
        if self.read_only.waiting_commit.is_empty() {
            return;
        }
        for (from, ctx) in std::mem::take(&mut self.read_only.waiting_commit) {
            self.register_read(from, ctx);
        }
    }

    /// A follower answered a message of our term carrying round `seq`.
    pub(crate) fn read_only_ack(&mut self, from: NodeId, seq: u64) {
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        if seq <= pr.read_seq_acked {
            return;
        }
        pr.read_seq_acked = seq;
        if self.read_only.pending.is_empty() {
            return;
        }
        let me = self.id;
        let confirmed = self.quorum_index(|raft, v| {
            if v == me {
                u64::MAX
            } else {
                raft.progress.get(&v).map_or(0, |p| p.read_seq_acked)
            }
        });
        while self
            .read_only
            .pending
            .front()
            .is_some_and(|r| r.seq <= confirmed)
        {
            let r = self.read_only.pending.pop_front().expect("front");
            self.answer_read(r.from, r.ctx, r.index);
        }
    }

    /// Not the leader: refuse a forwarded read so the follower can retry elsewhere.
    pub(crate) fn reject_forwarded_read(&mut self, from: NodeId, ctx: u64) {
        self.send(from, MessageBody::ReadIndexResponse { ctx, index: None });
    }

    /// Follower: the leader answered a forwarded batch.
    pub(crate) fn forwarded_read_done(&mut self, batch: u64, index: Option<LogIndex>) {
        let Some(ctxs) = self.read_only.forwarded.remove(&batch) else {
            return; // already failed (leader changed) or unknown
        };
        if self.read_only.open_batch == Some(batch) {
            self.read_only.open_batch = None; // answered before `ready`: never join it
        }
        for ctx in ctxs {
            match index {
                Some(index) => self.read_states.push(ReadState { ctx, index }),
                None => self.read_failures.push(ReadFailure { ctx }),
            }
        }
    }
}
