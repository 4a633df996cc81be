//! The simulated network's topology and counters.
//!
//! Owns: who may talk to whom (per-node connected flags, as 6.824's `connect`/`disconnect`,
//! and per-directed-link flags for partitions and one-way loss), which messages are
//! requests, and the RPC/byte counters ([`NetStats`]). Must never: decide randomness (the
//! cluster draws every random number from its one RNG) or hold messages.

use raft::{Message, MessageBody, NodeId};
use std::collections::BTreeMap;

/// Message counters since the last reset. `rpcs` counts request-type messages sent (6.824
/// counts an RPC once, request and reply together); `bytes` counts request bytes sent plus
/// response bytes delivered (`Message::size_bytes`); `by_kind` counts every message sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub rpcs: u64,
    pub bytes: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
}

/// True for request-type messages (the ones that expect an answer, or carry an order).
pub fn is_request(msg: &Message) -> bool {
    matches!(
        msg.body,
        MessageBody::Vote(_)
            | MessageBody::Append(_)
            | MessageBody::Snapshot(_)
            | MessageBody::TimeoutNow
            | MessageBody::ReadIndex { .. }
    )
}

/// Connectivity of `n` nodes: a message from `a` to `b` passes when both are connected and
/// the directed link `a → b` is up.
#[derive(Clone, Debug)]
pub struct Topology {
    n: usize,
    connected: Vec<bool>,
    links: Vec<bool>,
}

impl Topology {
    pub fn new(n: usize) -> Self {
        Topology {
            n,
            connected: vec![true; n],
            links: vec![true; n * n],
        }
    }

    /// One more node, connected, its links up in both directions with every node.
    pub fn add_node(&mut self) {
        let n = self.n + 1;
        let mut links = vec![true; n * n];
        for a in 0..self.n {
            for b in 0..self.n {
                links[a * n + b] = self.links[a * self.n + b];
            }
        }
        self.n = n;
        self.links = links;
        self.connected.push(true);
    }

    pub fn can_send(&self, from: usize, to: usize) -> bool {
        self.connected[from] && self.connected[to] && self.links[from * self.n + to]
    }

    pub fn set_connected(&mut self, node: usize, up: bool) {
        self.connected[node] = up;
    }

    pub fn is_connected(&self, node: usize) -> bool {
        self.connected[node]
    }

    pub fn set_link(&mut self, from: usize, to: usize, up: bool) {
        self.links[from * self.n + to] = up;
    }

    pub fn link(&self, from: usize, to: usize) -> bool {
        self.links[from * self.n + to]
    }

    /// Nodes talk only within their group; nodes in no group are isolated.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        let mut group_of = vec![usize::MAX; self.n];
        for (g, members) in groups.iter().enumerate() {
            for id in members.iter() {
                group_of[id.0 as usize - 1] = g;
            }
        }
        for a in 0..self.n {
            for b in 0..self.n {
                let same = group_of[a] != usize::MAX && group_of[a] == group_of[b];
                self.links[a * self.n + b] = same || a == b;
            }
        }
    }

    /// Everyone connected, every link up.
    pub fn heal(&mut self) {
        self.connected.fill(true);
        self.links.fill(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_isolates_unlisted_nodes_and_heal_restores() {
        let mut t = Topology::new(4);
        t.partition(&[&[NodeId(1), NodeId(2)], &[NodeId(3)]]);
        assert!(t.can_send(0, 1) && t.can_send(1, 0));
        assert!(!t.can_send(0, 2) && !t.can_send(2, 3) && !t.can_send(3, 0));
        t.heal();
        assert!(t.can_send(3, 0));
        t.set_link(0, 1, false);
        assert!(!t.can_send(0, 1) && t.can_send(1, 0), "one-way loss");
        t.set_connected(2, false);
        assert!(!t.can_send(2, 0) && !t.can_send(0, 2));
    }

    #[test]
    fn an_added_node_keeps_the_partition_of_the_others_and_talks_to_everyone() {
        let mut t = Topology::new(3);
        t.partition(&[&[NodeId(1)], &[NodeId(2), NodeId(3)]]);
        t.add_node();
        assert!(!t.can_send(0, 1) && t.can_send(1, 2), "old links unchanged");
        for other in 0..3 {
            assert!(t.can_send(3, other) && t.can_send(other, 3));
        }
        t.partition(&[&[NodeId(4), NodeId(1)]]);
        assert!(t.can_send(3, 0) && !t.can_send(3, 1));
    }
}
