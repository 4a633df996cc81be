//! Benchmarks of the durable write-ahead log (`storage::DiskStore`) on the real disk.
//!
//! Module map:
//! - [`group_commit`]: N appender threads, one owner thread that holds the store and lets the
//!   sync thread cover many appends with one `fdatasync` (the way the server drives it);
//! - [`raw`]: the physical bound — one writer doing `write` 256 B + `fdatasync` on a plain file;
//! - [`recovery`]: writing a large log once, and timing `DiskStore::open` + `initial_state`
//!   in a child process that reports its peak RSS;
//! - [`Latencies`]: exact percentiles of per-append latencies.
//!
//! Owns: the workloads and their measurements. Must never: reach into the store's internals
//! (only its public API), or report a number it did not measure.

pub mod group_commit;
pub mod raw;
pub mod recovery;

use raft::{Configuration, NodeId};
use std::time::Duration;
use storage::Identity;

/// The identity every benchmark directory is created with (a one-node cluster).
pub fn bench_identity() -> Identity {
    Identity {
        cluster_id: 0xBE7C,
        node_id: NodeId(1),
        bootstrap: Configuration::new([NodeId(1)]),
    }
}

/// Every append's latency, in nanoseconds, for exact percentiles.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    nanos: Vec<u64>,
    sorted: bool,
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.nanos
            .push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    pub fn merge(&mut self, other: Latencies) {
        self.nanos.extend(other.nanos);
        self.sorted = false;
    }

    pub fn count(&self) -> usize {
        self.nanos.len()
    }

    /// The `q`-quantile (0.0 ..= 1.0), nearest rank; zero when empty.
    pub fn quantile(&mut self, q: f64) -> Duration {
        assert!((0.0..=1.0).contains(&q), "quantile {q} out of range");
        if self.nanos.is_empty() {
            return Duration::ZERO;
        }
        if !self.sorted {
            self.nanos.sort_unstable();
            self.sorted = true;
        }
        let rank = ((q * self.nanos.len() as f64).ceil() as usize).clamp(1, self.nanos.len());
        Duration::from_nanos(self.nanos[rank - 1])
    }
}

/// Appends per second and bytes per second of one throughput case.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// What ran: "raw" or "group commit".
    pub name: &'static str,
    pub appenders: usize,
    pub entry_bytes: usize,
    /// Appends acknowledged durable.
    pub appends: u64,
    /// `fdatasync` calls that covered them.
    pub syncs: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
}

impl Throughput {
    pub fn appends_per_sec(&self) -> f64 {
        self.appends as f64 / self.elapsed.as_secs_f64()
    }

    /// Payload megabytes (10^6 B) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.appends_per_sec() * self.entry_bytes as f64 / 1e6
    }

    pub fn appends_per_sync(&self) -> f64 {
        self.appends as f64 / self.syncs.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut l = Latencies::default();
        for n in (1..=100).rev() {
            l.record(Duration::from_nanos(n));
        }
        assert_eq!(l.quantile(0.5), Duration::from_nanos(50));
        assert_eq!(l.quantile(0.99), Duration::from_nanos(99));
        assert_eq!(l.quantile(1.0), Duration::from_nanos(100));
        assert_eq!(l.quantile(0.0), Duration::from_nanos(1));
        assert_eq!(Latencies::default().quantile(0.5), Duration::ZERO);
    }
}
