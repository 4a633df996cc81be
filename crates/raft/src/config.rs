//! Configuration of one core instance.
//!
//! Owns: timing (in ticks), feature switches, every limit, and the RNG seed. Must never: read
//! the environment or a clock.

use crate::error::Error;
use crate::types::NodeId;

/// How one node's core behaves. Every limit has its unit in its name.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id (never `NodeId::NONE`).
    pub id: NodeId,
    /// E: a follower's election timeout is drawn uniformly from [E, 2E) ticks.
    pub election_ticks: u32,
    /// A leader sends heartbeats every this many ticks. Must be < `election_ticks`.
    pub heartbeat_ticks: u32,
    /// Run a PreVote round before incrementing the term.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a quorum for an election timeout, and
    /// followers that recently heard from a leader ignore vote requests (leader lease).
    pub check_quorum: bool,
    /// AppendEntries messages in flight per follower in the replicate state.
    pub inflight_msgs_max: usize,
    /// Upper bound on the entry bytes in one AppendEntries (at least one entry is always sent).
    pub msg_bytes_max: usize,
    /// Proposals are refused while this many bytes of entries are uncommitted (0 = no limit).
    pub uncommitted_bytes_max: usize,
    /// Size of one InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Seed of the core's RNG (election timeouts).
    pub seed: u64,
}

impl Config {
    /// Defaults suitable for a 100 ms tick... or any tick: 10 ticks election, 1 heartbeat.
    pub fn new(id: NodeId) -> Self {
        Config {
            id,
            election_ticks: 10,
            heartbeat_ticks: 2,
            pre_vote: true,
            check_quorum: true,
            inflight_msgs_max: 256,
            msg_bytes_max: 1 << 20,
            uncommitted_bytes_max: 64 << 20,
            snapshot_chunk_bytes: 1 << 20,
            seed: id.0,
        }
    }

    /// Reject configurations the core cannot run with.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |why: &str| Err(Error::Config(why.to_string()));
        if !self.id.is_some() {
            return fail("id must not be 0");
        }
        if self.heartbeat_ticks == 0 {
            return fail("heartbeat_ticks must be > 0");
        }
        if self.election_ticks <= self.heartbeat_ticks {
            return fail("election_ticks must be greater than heartbeat_ticks");
        }
        if self.inflight_msgs_max == 0 {
            return fail("inflight_msgs_max must be > 0");
        }
        if self.msg_bytes_max == 0 || self.snapshot_chunk_bytes == 0 {
            return fail("msg_bytes_max and snapshot_chunk_bytes must be > 0");
        }
        Ok(())
    }
}
