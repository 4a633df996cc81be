//! What a simulated cluster looks like: network fault model and node settings.
//!
//! Owns: [`NetConfig`], [`LongReorder`], [`SimConfig`] and their defaults (the 6.824 labrpc
//! numbers, and small WAL segments so that rolling and segment removal happen in every run).
//! Must never: hold state that changes while a simulation runs.

use kv::KvConfig;
use storage::DiskOptions;

/// Responses held back for a long time (6.824 `LongReordering`): with probability
/// `fraction`, a response gets an extra delay in `[min_ms, max_ms]`, skewed towards short
/// (labrpc draws `min + rand(0 ..= rand(0 ..= max - min))`).
#[derive(Clone, Debug, PartialEq)]
pub struct LongReorder {
    pub fraction: f64,
    pub min_ms: u64,
    pub max_ms: u64,
}

/// Network fault model (6.824 labrpc §4 and more). Probabilities are in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct NetConfig {
    /// Loss of request-type messages (Vote, Append, Snapshot, TimeoutNow, ReadIndex).
    pub drop_request: f64,
    /// Loss of response-type messages.
    pub drop_response: f64,
    /// Uniform one-way delay range `[lo, hi]` in ms.
    pub delay_ms: (u64, u64),
    /// Probability that a message is delivered twice (each copy with its own delay).
    pub duplicate: f64,
    /// Long reordering of responses.
    pub long_reorder: Option<LongReorder>,
}

impl NetConfig {
    /// No loss, no duplication, 0–1 ms delay.
    pub fn reliable() -> Self {
        NetConfig {
            drop_request: 0.0,
            drop_response: 0.0,
            delay_ms: (0, 1),
            duplicate: 0.0,
            long_reorder: None,
        }
    }

    /// labrpc `Reliable(false)`: 10% of requests and 10% of responses lost, 0–26 ms delay.
    pub fn unreliable() -> Self {
        NetConfig {
            drop_request: 0.1,
            drop_response: 0.1,
            delay_ms: (0, 26),
            ..NetConfig::reliable()
        }
    }

    /// labrpc `LongReordering(true)`: 2/3 of responses held back 200–2,200 ms.
    pub fn with_long_reordering(self) -> Self {
        NetConfig {
            long_reorder: Some(LongReorder {
                fraction: 2.0 / 3.0,
                min_ms: 200,
                max_ms: 2200,
            }),
            ..self
        }
    }
}

/// A simulated cluster: size, timing, core switches and limits, faults.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    /// Node ids are `NodeId(1..=nodes)`.
    pub nodes: usize,
    pub tick_ms: u64,
    /// E: election timeouts are drawn from [E, 2E) ticks.
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Snapshot the state machine every N applied entries (6.824 3D uses 10).
    pub snapshot_every: Option<u64>,
    /// Serialize and write snapshots as the server does, off the node's thread: the node
    /// hands out a job, which runs (and the log compacts) a random 1..=
    /// [`crate::cluster::SNAPSHOT_JOB_MS_MAX`] ms later, while the node goes on; a crash in
    /// between sometimes finishes the file first (an orphan recovery must drop).
    pub snapshot_background: bool,
    /// Sync the WAL as the server does, on a sync thread: a batch's writes go to the file,
    /// the node goes on (sending what needs no durability), and the sync completes a random
    /// 0..=[`crate::cluster::SYNC_MS_MAX`] ms later, releasing the messages and the entries
    /// that waited for it. A crash in between loses the unsynced writes (or keeps a prefix).
    pub sync_deferred: bool,
    pub msg_bytes_max: usize,
    pub inflight_msgs_max: usize,
    /// Size of one InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// On a crash, sometimes let every completed but unsynced write survive, with the write
    /// in flight torn (see [`crate::disk::restart_mode`]). Off: a crash keeps exactly what
    /// was synced.
    pub crash_keeps_unsynced_prefix: bool,
    /// Each node's write-ahead log: segment size and write buffer.
    pub disk: DiskOptions,
    pub net: NetConfig,
    /// Run the KV state machine on every node, next to the recorder (`None`: the recorder
    /// alone, as the Raft-level scenarios want). See [`crate::machine::NodeMachine`].
    pub kv: Option<KvConfig>,
}

impl SimConfig {
    /// The WAL's shape in the simulator unless a test says otherwise: 4 KiB segments (a
    /// simulated minute rolls dozens) and a 256-byte write buffer (most records reach the
    /// file one by one, so a power cut can land between any two of them).
    pub const DISK_DEFAULT: DiskOptions = DiskOptions {
        segment_bytes: 4 << 10,
        write_buffer_bytes: 256,
        preallocate_bytes: 1 << 10,
    };

    /// `nodes` nodes, 10 ms ticks, election timeout [150, 300) ms, heartbeat 50 ms, PreVote
    /// and CheckQuorum on, no snapshots, reliable network, [`SimConfig::DISK_DEFAULT`], no KV.
    pub fn new(nodes: usize, seed: u64) -> Self {
        SimConfig {
            seed,
            nodes,
            tick_ms: 10,
            election_ticks: 15,
            heartbeat_ticks: 5,
            pre_vote: true,
            check_quorum: true,
            snapshot_every: None,
            snapshot_background: false,
            sync_deferred: false,
            msg_bytes_max: 1 << 20,
            inflight_msgs_max: 64,
            snapshot_chunk_bytes: 1 << 20,
            crash_keeps_unsynced_prefix: false,
            disk: SimConfig::DISK_DEFAULT,
            net: NetConfig::reliable(),
            kv: None,
        }
    }
}
