//! The numbers of a run: each client's [`Tally`], merged into one [`Report`], shown as a
//! small table or as one JSON object.
//!
//! Owns: what is counted (successful requests as `ops`, failures per gRPC code as
//! `errors`), how throughput is derived (ops ÷ the measured window: from its start to the
//! last counted response), the percentiles (one HDR histogram of successful requests'
//! latencies in microseconds, 3 significant digits, up to 60 s), and the JSON field names
//! (`compare-etcd.sh` reads them). Must never: measure anything itself or drop a client's
//! numbers.

use super::{Plan, Stop};
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The largest latency the histogram holds exactly; longer ones are recorded as this.
pub const LATENCY_MAX_US: u64 = 60_000_000;

/// An empty latency histogram: 1 µs to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("static histogram bounds are valid")
}

/// One client's counts over the measured window.
#[derive(Debug)]
pub struct Tally {
    /// Latencies of successful requests, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Successful requests.
    pub ops: u64,
    /// Failed requests by gRPC code name (`Unavailable`, `DeadlineExceeded`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Successful reads and writes (a txn counts as a write).
    pub reads: u64,
    pub writes: u64,
    /// Txns whose compare held (the put ran) and whose compare failed (the read ran).
    pub txn_succeeded: u64,
    pub txn_failed_compare: u64,
    /// Successful warmup requests (not in any other number; lets a caller relate server-side
    /// counters taken over the whole run to requests).
    pub warmup_ops: u64,
    /// When the last counted request (successful or not) returned.
    pub last_done: Option<Instant>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            latency_us: histogram(),
            ops: 0,
            errors: BTreeMap::new(),
            reads: 0,
            writes: 0,
            txn_succeeded: 0,
            txn_failed_compare: 0,
            warmup_ops: 0,
            last_done: None,
        }
    }
}

impl Tally {
    /// Record one successful request that took `latency`.
    pub fn success(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency_us.saturating_record(us);
        self.ops += 1;
    }

    pub fn error(&mut self, code: &str) {
        *self.errors.entry(code.to_string()).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms of one run share their bounds");
        self.ops += other.ops;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        self.reads += other.reads;
        self.writes += other.writes;
        self.txn_succeeded += other.txn_succeeded;
        self.txn_failed_compare += other.txn_failed_compare;
        self.warmup_ops += other.warmup_ops;
        self.last_done = self.last_done.max(other.last_done);
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The merged result of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub plan: Plan,
    /// The endpoint that reported itself leader (with --leader-first).
    pub leader: Option<String>,
    pub ops: u64,
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    pub reads: u64,
    pub writes: u64,
    pub txn_succeeded: u64,
    pub txn_failed_compare: u64,
    pub warmup_ops: u64,
    pub elapsed: Duration,
    pub throughput_ops_per_s: f64,
    pub latency_us: Latency,
}

/// What the driver hands over: the measured window's start and every client's tally.
pub struct Measured {
    pub window_start: Instant,
    pub tallies: Vec<Tally>,
}

impl Report {
    pub fn new(plan: &Plan, leader: Option<String>, measured: Measured) -> Report {
        let mut all = Tally::default();
        for t in measured.tallies {
            all.merge(t);
        }
        let elapsed = all.last_done.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(measured.window_start)
        });
        Report::from_tally(plan, leader, all, elapsed)
    }

    fn from_tally(plan: &Plan, leader: Option<String>, all: Tally, elapsed: Duration) -> Report {
        let secs = elapsed.as_secs_f64();
        Report {
            plan: plan.clone(),
            leader,
            ops: all.ops,
            errors: all.errors.values().sum(),
            reads: all.reads,
            writes: all.writes,
            txn_succeeded: all.txn_succeeded,
            txn_failed_compare: all.txn_failed_compare,
            warmup_ops: all.warmup_ops,
            elapsed,
            throughput_ops_per_s: if secs > 0.0 {
                all.ops as f64 / secs
            } else {
                0.0
            },
            latency_us: Latency::of(&all.latency_us),
            errors_by_code: all.errors,
        }
    }

    /// Every number and setting as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let p = &self.plan;
        let l = &self.latency_us;
        json!({
            "op": p.op.name(),
            "endpoints": p.endpoints,
            "leader_endpoint": self.leader,
            "clients": p.clients,
            "conns": p.conns,
            "threads": p.threads,
            "key_space": p.key_space,
            "value_size": p.value_size_bytes,
            "read_ratio": p.read_ratio,
            "warmup_s": p.warmup.as_secs_f64(),
            "duration_s": match p.stop { Stop::Duration(d) => Some(d.as_secs_f64()), Stop::Total(_) => None },
            "total": match p.stop { Stop::Total(n) => Some(n), Stop::Duration(_) => None },
            "prefill": p.prefill,
            "ops": self.ops,
            "errors": self.errors,
            "errors_by_code": self.errors_by_code,
            "reads": self.reads,
            "writes": self.writes,
            "txn_succeeded": self.txn_succeeded,
            "txn_failed_compare": self.txn_failed_compare,
            "warmup_ops": self.warmup_ops,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "throughput_ops_s": self.throughput_ops_per_s,
            "latency_us": {
                "min": l.min, "mean": l.mean, "p50": l.p50, "p90": l.p90,
                "p99": l.p99, "p99_9": l.p99_9, "max": l.max,
            },
        })
    }

    /// A small human-readable table (latencies in milliseconds).
    pub fn table(&self) -> String {
        let p = &self.plan;
        let mut s = String::new();
        let what = match p.read_ratio {
            Some(r) => format!(
                "mixed ({:.0}% get, {:.0}% put)",
                r * 100.0,
                100.0 - r * 100.0
            ),
            None => p.op.name().to_string(),
        };
        let _ = writeln!(
            s,
            "{what}: {} clients over {} connections ({} load thread(s)) to {} endpoint(s), {} B values, {} keys",
            p.clients,
            p.conns,
            p.threads,
            p.endpoints.len(),
            p.value_size_bytes,
            p.key_space
        );
        if let Some(leader) = &self.leader {
            let _ = writeln!(s, "leader        {leader}");
        }
        let _ = writeln!(s, "ops           {}", self.ops);
        let _ = writeln!(
            s,
            "errors        {}{}",
            self.errors,
            errors_detail(&self.errors_by_code)
        );
        let _ = writeln!(s, "elapsed       {:.3} s", self.elapsed.as_secs_f64());
        let _ = writeln!(s, "throughput    {:.1} ops/s", self.throughput_ops_per_s);
        if p.op == super::Op::Txn {
            let _ = writeln!(
                s,
                "txn           {} put, {} compare failed",
                self.txn_succeeded, self.txn_failed_compare
            );
        }
        let l = &self.latency_us;
        let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
        let _ = writeln!(
            s,
            "latency (ms)  {:>9} {:>9} {:>9} {:>9} {:>9}",
            "p50", "p90", "p99", "p99.9", "max"
        );
        let _ = writeln!(
            s,
            "              {:>9} {:>9} {:>9} {:>9} {:>9}",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p99_9),
            ms(l.max)
        );
        s
    }
}

fn errors_detail(by_code: &BTreeMap<String, u64>) -> String {
    if by_code.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = by_code.iter().map(|(c, n)| format!("{c} {n}")).collect();
    format!(" ({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Op;

    fn plan(op: Op, stop: Stop) -> Plan {
        Plan {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            clients: 2,
            conns: 1,
            threads: 1,
            op,
            read_ratio: (op == Op::Mixed).then_some(0.9),
            key_space: 100,
            value_size_bytes: 256,
            stop,
            warmup: Duration::from_secs(1),
            prefill: false,
            leader_first: false,
            request_timeout: Duration::from_secs(10),
            seed: 1,
        }
    }

    fn tallies() -> Measured {
        let start = Instant::now();
        let mut a = Tally::default();
        for ms in 1..=100 {
            a.success(Duration::from_millis(ms));
        }
        a.writes = 100;
        a.last_done = Some(start + Duration::from_secs(1));
        let mut b = Tally::default();
        for _ in 0..100 {
            b.success(Duration::from_micros(500));
        }
        b.writes = 100;
        b.error("Unavailable");
        b.error("Unavailable");
        b.error("DeadlineExceeded");
        b.warmup_ops = 7;
        b.last_done = Some(start + Duration::from_secs(2));
        Measured {
            window_start: start,
            tallies: vec![a, b],
        }
    }

    #[test]
    fn tallies_merge_into_ops_errors_by_code_and_a_throughput_over_the_window() {
        let r = Report::new(&plan(Op::Put, Stop::Total(203)), None, tallies());
        assert_eq!((r.ops, r.errors, r.writes), (200, 3, 200));
        assert_eq!(r.errors_by_code["Unavailable"], 2);
        assert_eq!(r.errors_by_code["DeadlineExceeded"], 1);
        assert_eq!(r.warmup_ops, 7, "warmup requests are kept apart");
        assert_eq!(r.elapsed, Duration::from_secs(2), "until the last response");
        assert!((r.throughput_ops_per_s - 100.0).abs() < 1e-9);
        let l = r.latency_us;
        assert_eq!(l.min, 500);
        // 200 samples: 100 of 0.5 ms, then 1, 2, ..., 100 ms.
        assert!((79_900..=80_100).contains(&l.p90), "{l:?}");
        assert!((97_900..=98_100).contains(&l.p99), "{l:?}");
        assert!((99_900..=100_100).contains(&l.max), "{l:?}");
        assert!(l.p50 <= 1000, "half the requests took 0.5 ms: {l:?}");
    }

    #[test]
    fn latencies_beyond_the_histogram_saturate_instead_of_failing() {
        let mut t = Tally::default();
        t.success(Duration::from_secs(3600));
        t.success(Duration::ZERO);
        assert_eq!(t.ops, 2);
        assert!(t.latency_us.max() >= LATENCY_MAX_US * 999 / 1000);
        assert_eq!(t.latency_us.min(), 1);
    }

    #[test]
    fn an_empty_run_reports_zeros_not_nan() {
        let m = Measured {
            window_start: Instant::now(),
            tallies: vec![Tally::default()],
        };
        let r = Report::new(&plan(Op::Get, Stop::Total(1)), None, m);
        assert_eq!(r.throughput_ops_per_s, 0.0);
        assert_eq!(r.latency_us, Latency::default());
        let j = r.to_json();
        assert_eq!(j["throughput_ops_s"], 0.0);
    }

    #[test]
    fn json_has_every_number_under_stable_names() {
        let stop = Stop::Duration(Duration::from_secs(10));
        let r = Report::new(&plan(Op::Mixed, stop), Some("http://a:1".into()), tallies());
        let j = r.to_json();
        for field in [
            "op",
            "endpoints",
            "leader_endpoint",
            "clients",
            "conns",
            "threads",
            "key_space",
            "value_size",
            "read_ratio",
            "warmup_s",
            "duration_s",
            "total",
            "prefill",
            "ops",
            "errors",
            "errors_by_code",
            "reads",
            "writes",
            "txn_succeeded",
            "txn_failed_compare",
            "warmup_ops",
            "elapsed_s",
            "throughput_ops_s",
            "latency_us",
        ] {
            assert!(j.get(field).is_some(), "{field} missing from {j}");
        }
        assert_eq!(j["op"], "mixed");
        assert_eq!(j["ops"], 200);
        assert_eq!(j["errors"], 3);
        assert_eq!(j["errors_by_code"]["Unavailable"], 2);
        assert_eq!(j["warmup_ops"], 7);
        assert_eq!(j["duration_s"], 10.0);
        assert!(j["total"].is_null());
        assert_eq!(j["read_ratio"], 0.9);
        assert_eq!(j["leader_endpoint"], "http://a:1");
        for p in ["min", "mean", "p50", "p90", "p99", "p99_9", "max"] {
            assert!(j["latency_us"][p].as_f64().unwrap() > 0.0, "latency_us.{p}");
        }
    }

    #[test]
    fn the_table_shows_counts_errors_and_percentiles_in_ms() {
        let r = Report::new(&plan(Op::Put, Stop::Total(203)), None, tallies());
        let t = r.table();
        assert!(
            t.starts_with("put: 2 clients over 1 connections (1 load thread(s)) to 1 endpoint(s)"),
            "{t}"
        );
        assert!(t.contains("ops           200\n"), "{t}");
        assert!(
            t.contains("errors        3 (DeadlineExceeded 1, Unavailable 2)\n"),
            "{t}"
        );
        assert!(t.contains("throughput    100.0 ops/s\n"), "{t}");
        assert!(t.contains("p99.9"), "{t}");
        let last = t.lines().last().unwrap();
        let cols: Vec<f64> = last
            .split_whitespace()
            .map(|c| c.parse().unwrap())
            .collect();
        assert_eq!(cols.len(), 5, "{last}");
        assert!(
            cols.windows(2).all(|w| w[0] <= w[1]),
            "percentiles ascend: {last}"
        );
        assert!((cols[4] - 100.0).abs() < 0.2, "max ≈ 100 ms: {last}");
    }
}
