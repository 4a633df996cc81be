//! Typed identities and the data the core persists.
//!
//! Owns: `NodeId`, `Term`, `LogIndex`, `EntryId`, `Entry`, `HardState`, snapshots and the
//! membership `Configuration`. Must never: perform I/O or interpret entry payload bytes.

use bytes::Bytes;
use std::collections::BTreeSet;
use std::fmt;

macro_rules! newtype_u64 {
    ($(#[$m:meta])* $name:ident, $prefix:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);
        impl $name {
            /// The raw number.
            pub const fn get(self) -> u64 {
                self.0
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

newtype_u64!(
    /// A member of the cluster. `NodeId(0)` is reserved to mean "none".
    NodeId,
    "n"
);
newtype_u64!(
    /// A Raft term (§5.1). Monotonic on every node.
    Term,
    "t"
);
newtype_u64!(
    /// A position in the replicated log; the first real entry has index 1, index 0 is the
    /// empty-log sentinel.
    LogIndex,
    "i"
);

impl NodeId {
    /// "No node", used for `vote` and `leader` when unset.
    pub const NONE: NodeId = NodeId(0);
    /// True when this is not `NONE`.
    pub fn is_some(self) -> bool {
        self.0 != 0
    }
}

impl Term {
    /// The next term.
    pub fn next(self) -> Term {
        Term(self.0 + 1)
    }
}

impl LogIndex {
    /// The index after this one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }
    /// The index before this one (saturating at 0).
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
    /// `self + n`.
    pub fn plus(self, n: u64) -> LogIndex {
        LogIndex(self.0 + n)
    }
}

/// The identity of one log entry: its index and the term it was created in. Two logs that
/// hold the same `EntryId` are identical up to it (Log Matching, §5.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct EntryId {
    pub term: Term,
    pub index: LogIndex,
}

impl EntryId {
    pub const fn new(term: Term, index: LogIndex) -> Self {
        EntryId { term, index }
    }
    /// True when a log ending at `self` is at least as up-to-date as one ending at `other`
    /// (§5.4.1: compare last terms, then lengths).
    pub fn is_up_to_date_with(self, other: EntryId) -> bool {
        (self.term, self.index) >= (other.term, other.index)
    }
}

/// What an entry carries. The core never decodes `Normal` payloads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EntryKind {
    /// An application command.
    Normal,
    /// The empty entry a new leader appends to commit entries of earlier terms (§5.4.2, §8).
    Noop,
    /// A membership change; the payload is an encoded `Configuration`.
    Config,
}

/// One log entry.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub term: Term,
    pub index: LogIndex,
    pub kind: EntryKind,
    pub data: Bytes,
}

impl Entry {
    pub fn id(&self) -> EntryId {
        EntryId::new(self.term, self.index)
    }
    /// Bytes this entry counts for in message and memory limits (payload plus a fixed
    /// header estimate).
    pub fn size_bytes(&self) -> usize {
        self.data.len() + ENTRY_OVERHEAD_BYTES
    }
}

/// Fixed per-entry size added to the payload when sizing messages.
pub const ENTRY_OVERHEAD_BYTES: usize = 24;

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}@{:?}:{:?}[{}B]",
            self.index,
            self.term,
            self.kind,
            self.data.len()
        )
    }
}

/// What must be durable before this node answers any RPC (§5, Figure 2 "persistent state").
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct HardState {
    pub term: Term,
    pub vote: NodeId,
    pub commit: LogIndex,
}

/// The members of the cluster: `voters` elect leaders and make up every quorum (a majority
/// of `voters`); `learners` receive the log and snapshots but neither vote nor count.
#[derive(Clone, PartialEq, Eq, Default, Debug)]
pub struct Configuration {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
}

/// First byte of an encoded configuration that has learners (see [`Configuration::encode`]).
const CONF_FORMAT_WITH_LEARNERS: u8 = 1;

impl Configuration {
    /// Voters only.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Configuration {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }
    pub fn with_learners(
        voters: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
    ) -> Self {
        Configuration {
            voters: voters.into_iter().collect(),
            learners: learners.into_iter().collect(),
        }
    }
    /// Number of votes that make a majority.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
    /// Whether `id` is a voter.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }
    /// Voter or learner.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.contains(id) || self.is_learner(id)
    }
    /// Every voter and learner, in id order.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.union(&self.learners).copied()
    }
    /// Encode as bytes (for `EntryKind::Config` payloads and snapshot metadata). Without
    /// learners: the voter ids, 8 bytes each (little endian) — the original format, so every
    /// voters-only configuration keeps its bytes. With learners: `[1][voters: u32 LE][voter
    /// ids][learner ids]` (length ≡ 5 mod 8, so the two never collide).
    pub fn encode(&self) -> Bytes {
        let ids = 8 * (self.voters.len() + self.learners.len());
        let mut v = Vec::with_capacity(5 + ids);
        if !self.learners.is_empty() {
            v.push(CONF_FORMAT_WITH_LEARNERS);
            v.extend_from_slice(&(self.voters.len() as u32).to_le_bytes());
        }
        for id in self.voters.iter().chain(&self.learners) {
            v.extend_from_slice(&id.0.to_le_bytes());
        }
        Bytes::from(v)
    }
    /// Decode what `encode` produced.
    pub fn decode(b: &[u8]) -> Result<Self, crate::Error> {
        let ids = |b: &[u8]| -> Vec<NodeId> {
            b.chunks_exact(8)
                .map(|c| NodeId(u64::from_le_bytes(c.try_into().expect("8 bytes"))))
                .collect()
        };
        if b.len().is_multiple_of(8) {
            return Ok(Configuration::new(ids(b)));
        }
        if b.len() % 8 != 5 || b[0] != CONF_FORMAT_WITH_LEARNERS {
            return Err(crate::Error::Corrupt(
                "configuration bytes of an unknown format",
            ));
        }
        let n = u32::from_le_bytes(b[1..5].try_into().expect("4 bytes")) as usize;
        let all = ids(&b[5..]);
        if n > all.len() {
            return Err(crate::Error::Corrupt(
                "configuration voter count beyond its ids",
            ));
        }
        let conf = Configuration::with_learners(all[..n].iter().copied(), all[n..].iter().copied());
        if conf.voters.len() != n
            || conf.learners.len() != all.len() - n
            || conf.voters.intersection(&conf.learners).next().is_some()
        {
            return Err(crate::Error::Corrupt("configuration lists a member twice"));
        }
        Ok(conf)
    }
}

/// One single-server membership change (dissertation §4.1): a configuration differs from
/// the previous one by at most one voter, so any two consecutive majorities overlap.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConfChange {
    /// A new non-voting member that receives the log (then [`ConfChange::PromoteLearner`]).
    AddLearner(NodeId),
    /// A new voter, directly.
    AddVoter(NodeId),
    /// Make a caught-up learner a voter.
    PromoteLearner(NodeId),
    /// Remove a voter or learner (possibly the leader itself, which then steps down once
    /// the change commits).
    Remove(NodeId),
}

/// Metadata of a snapshot: the last entry it covers and the configuration at that point.
#[derive(Clone, PartialEq, Eq, Default, Debug)]
pub struct SnapshotMeta {
    pub last: EntryId,
    pub config: Configuration,
}

/// A state-machine snapshot. `data` is opaque to the core.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Bytes,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Snapshot({:?}, {:?}, {}B)",
            self.meta.last,
            self.meta.config,
            self.data.len()
        )
    }
}
