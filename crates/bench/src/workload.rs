//! The workload both implementations run, and the toy state machine they apply into.
//!
//! Owns: [`Params`] (proposal count, entry size, batching, window, compaction and tick
//! cadence, the Raft settings both cores get), the payload generator and [`Counter`], the
//! state machine. Must never: depend on either implementation.

/// One run's parameters. Both implementations get the same values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Proposals to commit (and apply on every node).
    pub proposals: u64,
    /// Payload bytes per proposal.
    pub entry_bytes: usize,
    /// At most this many proposals are offered to the leader per driver round.
    pub batch: u64,
    /// At most this many proposals may be proposed but not yet applied on the leader.
    pub window: u64,
    /// Every node compacts its log once it has applied this many entries since the last time.
    pub compact_every: u64,
    /// Every node gets one `tick()` every this many rounds (0 = never after the election).
    pub tick_every_rounds: u64,
    /// Election timeout E in ticks (both: randomized in [E, 2E)).
    pub election_ticks: u32,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: u32,
    /// In-flight AppendEntries per follower.
    pub inflight_msgs_max: usize,
    /// Entry bytes per AppendEntries.
    pub msg_bytes_max: usize,
    /// Uncommitted entry bytes after which proposals are refused.
    pub uncommitted_bytes_max: usize,
    /// Number of nodes (ids 1..=nodes); node 1 is made leader.
    pub nodes: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            proposals: 1_000_000,
            entry_bytes: 256,
            batch: 64,
            window: 4096,
            compact_every: 10_000,
            tick_every_rounds: 100,
            election_ticks: 10,
            heartbeat_ticks: 2,
            inflight_msgs_max: 256,
            msg_bytes_max: 1 << 20,
            uncommitted_bytes_max: 64 << 20,
            nodes: 3,
        }
    }
}

/// A fresh payload for proposal number `seq`: `entry_bytes` bytes, the sequence number in the
/// first 8 (little endian), the rest filled with its low byte. One allocation, `len == cap`.
pub fn payload(seq: u64, entry_bytes: usize) -> Vec<u8> {
    let mut v = vec![seq as u8; entry_bytes];
    let n = entry_bytes.min(8);
    v[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
    v
}

/// The state machine every node applies into: counts application entries and their bytes
/// and checks they arrive in order. Its snapshot is 24 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Application (non-empty) entries applied.
    pub entries: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Log index of the last entry applied (of any kind).
    pub applied_index: u64,
}

impl Counter {
    /// Apply the entry at `index`. Empty payloads (leader no-ops, config entries) only move
    /// `applied_index`.
    pub fn apply(&mut self, index: u64, data: &[u8]) {
        assert!(
            index == self.applied_index + 1,
            "applied out of order: {index} after {}",
            self.applied_index
        );
        self.applied_index = index;
        if data.is_empty() {
            return;
        }
        if data.len() >= 8 {
            let seq = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
            assert_eq!(
                seq, self.entries,
                "application entries applied out of order"
            );
        }
        self.entries += 1;
        self.bytes += data.len() as u64;
    }

    /// The state as snapshot bytes.
    pub fn encode(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.entries.to_le_bytes());
        out[8..16].copy_from_slice(&self.bytes.to_le_bytes());
        out[16..].copy_from_slice(&self.applied_index.to_le_bytes());
        out
    }

    /// Restore from [`Counter::encode`] output.
    pub fn decode(b: &[u8]) -> Counter {
        assert_eq!(b.len(), 24, "counter snapshot must be 24 bytes");
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Counter {
            entries: word(0),
            bytes: word(8),
            applied_index: word(16),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_carries_its_sequence_number() {
        let p = payload(0x0102, 256);
        assert_eq!(p.len(), 256);
        assert_eq!(p.capacity(), 256);
        assert_eq!(u64::from_le_bytes(p[..8].try_into().unwrap()), 0x0102);
    }

    #[test]
    fn counter_round_trips_and_skips_empty_entries() {
        let mut c = Counter::default();
        c.apply(1, &[]);
        c.apply(2, &payload(0, 256));
        c.apply(3, &payload(1, 256));
        assert_eq!(
            c,
            Counter {
                entries: 2,
                bytes: 512,
                applied_index: 3
            }
        );
        assert_eq!(Counter::decode(&c.encode()), c);
    }
}
