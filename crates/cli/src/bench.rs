//! `raftkv bench`: a closed-loop load generator over the raw etcd v3 gRPC API, so one code
//! path drives raftkv and etcd alike.
//!
//! Owns: the bench flags and their validation into a [`Plan`], and the order of a run —
//! connect, (leader first), prefill, warm up, measure, report. Submodules:
//! - [`workload`]: pure request generation (key names, values, op choice, the CAS cache);
//! - [`driver`]: connections, the client tasks, the progress bar, the measured window;
//! - [`report`]: merging per-client results, the table and the JSON object.
//!
//! Must never: use raftkv's own client library (sessions, redirection, retries would make the
//! two systems take different paths), retry a failed request (it is counted by gRPC code and
//! the client moves on), count warmup or prefill requests, or record latency anywhere but
//! from just before a request is issued to its response.

mod driver;
mod grpc;
mod report;
mod workload;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use std::time::Duration;

pub use workload::Op;

/// Shown after the flags by `raftkv bench --help`.
const AFTER_LONG_HELP: &str = "\
How it measures:
  Each request is one raw etcd v3 KV call (Put, Range, Txn) over gRPC; the same tool drives
  raftkv and etcd alike. Closed loop: each of --clients clients issues its next request when
  the previous one returned; latency runs from just before a request is issued to its
  response (HDR histogram, microsecond precision). Clients are spread round-robin over
  --conns HTTP/2 connections, and the connections round-robin over --endpoints and over
  --threads load threads (a connection and its clients share one thread). Failed
  requests are not retried; they are counted by gRPC code. Warmup requests (--warmup) and
  prefill writes (--prefill) are not counted.

Examples:
  raftkv bench --op put --clients 64 --duration 10s
  raftkv bench --endpoints 127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 \\
      --op get --clients 64 --leader-first --json
  raftkv bench --op mixed --read-ratio 0.9 --key-space 100000 --total 50000
  raftkv bench --op txn --clients 16 --duration 5s --quiet
  raftkv bench --endpoints 127.0.0.1:12379 --op get-serializable --value-size 1024";

/// Flags of `raftkv bench`.
#[derive(Args, Debug, Clone)]
#[command(after_long_help = AFTER_LONG_HELP)]
pub struct BenchArgs {
    /// Client endpoints as host:port (or http://host:port), comma-separated.
    #[arg(long, default_value = "127.0.0.1:2379", value_delimiter = ',')]
    pub endpoints: Vec<String>,

    /// Concurrent clients, each with one outstanding request at a time.
    #[arg(long, default_value_t = 16)]
    pub clients: u32,

    /// gRPC (HTTP/2) connections shared by the clients. [default: min(clients, 8), but at
    /// least one per endpoint while there are enough clients]
    #[arg(long)]
    pub conns: Option<u32>,

    /// Load threads. Each runs its own event loop with its share of the connections and
    /// the clients on them, so a request and its response stay on one thread. At most
    /// --conns.
    #[arg(long, default_value_t = 1)]
    pub threads: u32,

    /// What each request does: put; get (linearizable Range); get-serializable
    /// (serializable Range); mixed (--read-ratio linearizable gets, the rest puts); txn
    /// (compare mod_revision of one key, then put it; else read it).
    #[arg(long, value_enum, default_value_t = Op::Put)]
    pub op: Op,

    /// Share of reads for --op mixed (0.0 to 1.0).
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,

    /// Number of distinct keys (key-<n>, zero-padded), chosen uniformly at random.
    #[arg(long, default_value_t = 10_000)]
    pub key_space: u64,

    /// Bytes per value written.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,

    /// How long to measure (e.g. 10s, 1m). [default: 10s unless --total is given]
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "total")]
    pub duration: Option<Duration>,

    /// Measure this many requests instead of a duration.
    #[arg(long)]
    pub total: Option<u64>,

    /// Run the load this long before measuring (not counted); 0s for none.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub warmup: Duration,

    /// Write every key of the key space once before measuring. [default: on for get,
    /// get-serializable and mixed; off for put and txn]
    #[arg(long, overrides_with = "no_prefill")]
    pub prefill: bool,

    /// Do not prefill, whatever the op.
    #[arg(long, overrides_with = "prefill")]
    pub no_prefill: bool,

    /// Ask every endpoint for its status first and put the leader's endpoint first in the
    /// list (so a single client or connection talks to the leader, as on any system).
    #[arg(long)]
    pub leader_first: bool,

    /// Deadline of each request; one that runs out counts as a DeadlineExceeded error.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub request_timeout: Duration,

    /// Seed of the key and op choices (client i uses seed + i).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Print one JSON object with every number instead of the table.
    #[arg(long)]
    pub json: bool,

    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// When the measured window ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// After this long.
    Duration(Duration),
    /// After this many requests (successful or not).
    Total(u64),
}

/// Validated settings of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// `http://host:port` per endpoint, in the order given.
    pub endpoints: Vec<String>,
    pub clients: u32,
    pub conns: u32,
    pub threads: u32,
    pub op: Op,
    /// Set for `mixed` only.
    pub read_ratio: Option<f64>,
    pub key_space: u64,
    pub value_size_bytes: usize,
    pub stop: Stop,
    pub warmup: Duration,
    pub prefill: bool,
    pub leader_first: bool,
    pub request_timeout: Duration,
    pub seed: u64,
}

/// The largest key space (keys stay short and the prefill bounded).
const KEY_SPACE_MAX: u64 = 1_000_000_000;
/// The largest value (etcd's default request limit is 1.5 MiB).
const VALUE_SIZE_MAX_BYTES: usize = 1 << 20;
/// The most clients and connections one run opens.
const CLIENTS_MAX: u32 = 100_000;
/// Default connection count cap.
const CONNS_DEFAULT_MAX: u32 = 8;

impl Plan {
    /// Check `args` and fill in the defaults that depend on other flags.
    pub fn from_args(args: &BenchArgs) -> anyhow::Result<Plan> {
        let endpoints = normalize_endpoints(&args.endpoints)?;
        if args.clients == 0 || args.clients > CLIENTS_MAX {
            bail!("--clients must be between 1 and {CLIENTS_MAX}");
        }
        let conns = match args.conns {
            Some(c) if c == 0 || c > args.clients => {
                bail!("--conns must be between 1 and --clients ({})", args.clients)
            }
            Some(c) => c,
            None => default_conns(args.clients, endpoints.len()),
        };
        if args.threads == 0 || args.threads > conns {
            bail!("--threads must be between 1 and the connection count ({conns})");
        }
        if args.key_space == 0 || args.key_space > KEY_SPACE_MAX {
            bail!("--key-space must be between 1 and {KEY_SPACE_MAX}");
        }
        if args.value_size > VALUE_SIZE_MAX_BYTES {
            bail!("--value-size must be at most {VALUE_SIZE_MAX_BYTES} bytes");
        }
        let read_ratio = match args.op {
            Op::Mixed if !(0.0..=1.0).contains(&args.read_ratio) => {
                bail!("--read-ratio must be between 0.0 and 1.0")
            }
            Op::Mixed => Some(args.read_ratio),
            _ => None,
        };
        let stop = match (args.duration, args.total) {
            (_, Some(0)) => bail!("--total must be at least 1"),
            (_, Some(n)) => Stop::Total(n),
            (Some(d), None) if d.is_zero() => bail!("--duration must be positive"),
            (Some(d), None) => Stop::Duration(d),
            (None, None) => Stop::Duration(Duration::from_secs(10)),
        };
        if args.request_timeout.is_zero() {
            bail!("--request-timeout must be positive");
        }
        let prefill = if args.prefill {
            true
        } else if args.no_prefill {
            false
        } else {
            args.op.reads()
        };
        Ok(Plan {
            endpoints,
            clients: args.clients,
            conns,
            threads: args.threads,
            op: args.op,
            read_ratio,
            key_space: args.key_space,
            value_size_bytes: args.value_size,
            stop,
            warmup: args.warmup,
            prefill,
            leader_first: args.leader_first,
            request_timeout: args.request_timeout,
            seed: args.seed,
        })
    }
}

/// min(clients, 8), raised to one connection per endpoint while there are clients for them.
fn default_conns(clients: u32, endpoints: usize) -> u32 {
    let endpoints = u32::try_from(endpoints).unwrap_or(u32::MAX);
    clients.min(CONNS_DEFAULT_MAX.max(endpoints))
}

/// `host:port` or `http://host:port` → `http://host:port`; refuses empty lists, https and
/// paths.
fn normalize_endpoints(raw: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in raw.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        if e.starts_with("https://") {
            bail!("endpoint {e}: TLS is not supported by raftkv bench");
        }
        let hostport = e.strip_prefix("http://").unwrap_or(e);
        let (host, port) = hostport
            .rsplit_once(':')
            .with_context(|| format!("endpoint {e}: expected host:port"))?;
        if host.is_empty() || host.contains('/') || port.parse::<u16>().is_err() {
            bail!("endpoint {e}: expected host:port (port 1-65535)");
        }
        out.push(format!("http://{hostport}"));
    }
    if out.is_empty() {
        bail!("--endpoints is empty");
    }
    Ok(out)
}

/// `endpoints` with `leader` moved to the front; the others keep their order.
fn leader_first(endpoints: &[String], leader: &str) -> Vec<String> {
    let mut out: Vec<String> = endpoints.iter().filter(|e| *e == leader).cloned().collect();
    out.extend(endpoints.iter().filter(|e| *e != leader).cloned());
    out
}

impl ValueEnum for Op {
    fn value_variants<'a>() -> &'a [Self] {
        &[Op::Put, Op::Get, Op::GetSerializable, Op::Mixed, Op::Txn]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

/// Run the benchmark `args` describes and print its report on stdout.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut plan = Plan::from_args(&args)?;
    let progress = driver::Progress::new(!args.quiet);
    let leader = if plan.leader_first {
        let leader = driver::find_leader(&plan).await?;
        plan.endpoints = leader_first(&plan.endpoints, &leader);
        Some(leader)
    } else {
        None
    };
    let results = driver::run(&plan, &progress).await?;
    progress.finish();
    let report = report::Report::new(&plan, leader, results);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn plan(argv: &[&str]) -> anyhow::Result<Plan> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied()))?;
        Plan::from_args(&cli.args)
    }

    #[test]
    fn defaults_are_put_16_clients_8_conns_10s_on_the_local_endpoint() {
        let p = plan(&[]).unwrap();
        assert_eq!(p.endpoints, ["http://127.0.0.1:2379"]);
        assert_eq!((p.clients, p.conns), (16, 8));
        assert_eq!(p.op, Op::Put);
        assert_eq!(p.stop, Stop::Duration(Duration::from_secs(10)));
        assert_eq!(p.warmup, Duration::from_secs(1));
        assert_eq!((p.key_space, p.value_size_bytes), (10_000, 256));
        assert_eq!(p.read_ratio, None);
        assert!(!p.prefill, "puts need no prefill");
    }

    #[test]
    fn conns_default_to_min_of_clients_and_8_but_cover_every_endpoint() {
        assert_eq!(plan(&["--clients", "1"]).unwrap().conns, 1);
        assert_eq!(plan(&["--clients", "4"]).unwrap().conns, 4);
        assert_eq!(plan(&["--clients", "256"]).unwrap().conns, 8);
        assert_eq!(default_conns(256, 10), 10);
        assert_eq!(default_conns(2, 10), 2);
        assert_eq!(plan(&["--clients", "4", "--conns", "2"]).unwrap().conns, 2);
        assert!(plan(&["--clients", "4", "--conns", "5"]).is_err());
        assert!(plan(&["--conns", "0"]).is_err());
        assert!(plan(&["--clients", "0"]).is_err());
    }

    #[test]
    fn endpoints_accept_host_port_and_http_urls_only() {
        let p = plan(&[
            "--endpoints",
            "127.0.0.1:2379,http://localhost:22379, 10.0.0.1:1",
        ]);
        assert_eq!(
            p.unwrap().endpoints,
            [
                "http://127.0.0.1:2379",
                "http://localhost:22379",
                "http://10.0.0.1:1"
            ]
        );
        for bad in ["https://a:1", "a", "a:b", ":1", "a:70000", "a/b:1", ","] {
            assert!(plan(&["--endpoints", bad]).is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn duration_and_total_are_exclusive_and_positive() {
        let p = plan(&["--total", "300"]).unwrap();
        assert_eq!(p.stop, Stop::Total(300));
        let p = plan(&["--duration", "3s", "--warmup", "0s"]).unwrap();
        assert_eq!(p.stop, Stop::Duration(Duration::from_secs(3)));
        assert_eq!(p.warmup, Duration::ZERO);
        assert!(plan(&["--total", "1", "--duration", "1s"]).is_err());
        assert!(plan(&["--total", "0"]).is_err());
        assert!(plan(&["--duration", "0s"]).is_err());
        assert!(plan(&["--duration", "ten"]).is_err());
    }

    #[test]
    fn prefill_defaults_on_for_reads_and_flags_override() {
        for (op, on) in [
            ("put", false),
            ("get", true),
            ("get-serializable", true),
            ("mixed", true),
            ("txn", false),
        ] {
            assert_eq!(plan(&["--op", op]).unwrap().prefill, on, "{op}");
        }
        assert!(plan(&["--op", "put", "--prefill"]).unwrap().prefill);
        assert!(!plan(&["--op", "get", "--no-prefill"]).unwrap().prefill);
        assert!(
            plan(&["--op", "get", "--no-prefill", "--prefill"])
                .unwrap()
                .prefill
        );
    }

    #[test]
    fn read_ratio_applies_to_mixed_only_and_is_a_share() {
        let p = plan(&["--op", "mixed"]).unwrap();
        assert_eq!(p.read_ratio, Some(0.9));
        let p = plan(&["--op", "mixed", "--read-ratio", "0.5"]).unwrap();
        assert_eq!(p.read_ratio, Some(0.5));
        assert!(plan(&["--op", "mixed", "--read-ratio", "1.5"]).is_err());
        assert!(plan(&["--op", "mixed", "--read-ratio", "-0.1"]).is_err());
        assert_eq!(plan(&["--op", "get"]).unwrap().read_ratio, None);
        assert!(plan(&["--op", "scan"]).is_err());
    }

    #[test]
    fn long_help_explains_the_measurement_and_shows_examples() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Closed loop"), "{help}");
        assert!(
            help.contains("Examples:\n  raftkv bench --op put"),
            "{help}"
        );
    }

    #[test]
    fn leader_first_moves_only_the_leader() {
        let e: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(leader_first(&e, "c"), ["c", "a", "b"]);
        assert_eq!(leader_first(&e, "a"), ["a", "b", "c"]);
        assert_eq!(leader_first(&e, "x"), ["a", "b", "c"]);
    }

    #[test]
    fn key_space_and_value_size_are_bounded() {
        assert!(plan(&["--key-space", "0"]).is_err());
        assert!(plan(&["--key-space", "1000000001"]).is_err());
        assert!(plan(&["--value-size", "0"]).is_ok());
        assert!(plan(&["--value-size", "1048577"]).is_err());
        assert!(plan(&["--request-timeout", "0s"]).is_err());
    }
}
