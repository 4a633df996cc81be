//! The bench's network side: one HTTP/2 connection per `--conns`, one task per client, the
//! measured window, the prefill, and the progress bar.
//!
//! Owns: spreading connections round-robin over the endpoints and clients round-robin over
//! the connections, the closed loop (a client issues its next request when the previous one
//! returned), and deciding per request whether it belongs to the warmup, the measured window,
//! or comes too late. Must never: retry a request, reconnect behind the caller's back beyond
//! what a tonic channel does on its own, share a histogram between clients (each keeps its own
//! [`Tally`]; they are merged after the run), or draw on stdout (the progress bar uses stderr).

use super::report::{Measured, Tally};
use super::workload::{self, CasCache, KeySpace, Kind, Workload};
use super::{Plan, Stop};
use anyhow::{anyhow, bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use proto::etcdserverpb::kv_client::KvClient;
use proto::etcdserverpb::maintenance_client::MaintenanceClient;
use proto::etcdserverpb::{PutRequest, RangeRequest, StatusRequest, TxnRequest, TxnResponse};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// How long connecting to one endpoint may take before the run fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the progress bar is redrawn.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// The progress bar on stderr (hidden when stderr is not a terminal or with --quiet).
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        let bar = if enabled && std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        Progress { bar }
    }

    fn phase(&self, prefix: &'static str, len: u64) {
        let style = ProgressStyle::with_template("{prefix:>8} [{bar:30}] {msg}")
            .expect("static template is valid")
            .progress_chars("=> ");
        self.bar.set_style(style);
        self.bar.set_prefix(prefix);
        self.bar.set_length(len);
        self.bar.set_position(0);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn open(url: &str) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(url.to_string())
        .with_context(|| format!("endpoint {url}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true))
}

/// `plan.conns` connections, connection `j` to endpoint `j % endpoints`; fails if any
/// endpoint cannot be reached.
pub async fn connect(plan: &Plan) -> anyhow::Result<Vec<Channel>> {
    let mut conns = Vec::new();
    for j in 0..plan.conns as usize {
        let url = &plan.endpoints[j % plan.endpoints.len()];
        let channel = open(url)?
            .connect()
            .await
            .with_context(|| format!("connecting to {url}"))?;
        conns.push(channel);
    }
    Ok(conns)
}

/// The endpoint whose member reports itself as the leader (Maintenance.Status).
pub async fn find_leader(plan: &Plan) -> anyhow::Result<String> {
    let mut leader_id = 0;
    for url in &plan.endpoints {
        let channel = open(url)?
            .connect()
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let status = MaintenanceClient::new(channel)
            .status(StatusRequest {})
            .await
            .with_context(|| format!("status of {url}"))?
            .into_inner();
        let member_id = status.header.map_or(0, |h| h.member_id);
        if status.leader != 0 && status.leader == member_id {
            return Ok(url.clone());
        }
        leader_id = leader_id.max(status.leader);
    }
    bail!("no endpoint is the leader (leader id reported: {leader_id:x}); give its endpoint too")
}

/// Write every key of the key space once, `plan.clients` at a time. Not measured; any error
/// fails the run.
pub async fn prefill(plan: &Plan, conns: &[Channel], progress: &Progress) -> anyhow::Result<()> {
    progress.phase("prefill", plan.key_space);
    let next = Arc::new(AtomicU64::new(0));
    let value = workload::value(plan.value_size_bytes, plan.seed);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..plan.clients as usize {
        let mut kv = KvClient::new(conns[i % conns.len()].clone());
        let (next, value, keys) = (next.clone(), value.clone(), KeySpace::new(plan.key_space));
        let timeout = plan.request_timeout;
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= keys.count() {
                    return Ok(());
                }
                let key = keys.key(n);
                let name = String::from_utf8_lossy(&key).into_owned();
                match tokio::time::timeout(timeout, kv.put(workload::put(key, value.clone()))).await
                {
                    Ok(Ok(_)) => {}
                    Ok(Err(status)) => return Err(anyhow!("prefill put {name}: {status}")),
                    Err(_) => return Err(anyhow!("prefill put {name}: no answer in {timeout:?}")),
                }
            }
        });
    }
    let ticker = tick(progress, move |bar| {
        bar.set_position(next.load(Ordering::Relaxed));
    });
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined.context("prefill task panicked").and_then(|r| r) {
            result = Err(e);
            tasks.abort_all();
        }
    }
    ticker.abort();
    result
}

/// Redraw the progress bar every [`PROGRESS_INTERVAL`] until aborted.
fn tick(
    progress: &Progress,
    mut update: impl FnMut(&ProgressBar) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let bar = progress.bar.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(PROGRESS_INTERVAL);
        loop {
            interval.tick().await;
            update(&bar);
        }
    })
}

/// Which requests count: those issued from `start` on, until `end` or until `total` were
/// admitted.
struct Window {
    start: Instant,
    end: Option<Instant>,
    total: Option<u64>,
    admitted: AtomicU64,
}

/// Where a request issued at some instant belongs.
#[derive(Debug, PartialEq, Eq)]
enum Slot {
    Warmup,
    Counted,
    Stop,
}

impl Window {
    fn new(start: Instant, stop: Stop) -> Window {
        let (end, total) = match stop {
            Stop::Duration(d) => (Some(start + d), None),
            Stop::Total(n) => (None, Some(n)),
        };
        Window {
            start,
            end,
            total,
            admitted: AtomicU64::new(0),
        }
    }

    fn slot(&self, issued: Instant) -> Slot {
        if issued < self.start {
            return Slot::Warmup;
        }
        if self.end.is_some_and(|end| issued >= end) {
            return Slot::Stop;
        }
        if let Some(total) = self.total {
            if self.admitted.fetch_add(1, Ordering::Relaxed) >= total {
                return Slot::Stop;
            }
        }
        Slot::Counted
    }
}

/// Counters the progress bar reads while clients run.
#[derive(Default)]
struct Live {
    ops: AtomicU64,
    errors: AtomicU64,
}

/// Run the warmup and the measured window with `plan.clients` closed-loop clients.
pub async fn measure(plan: &Plan, conns: &[Channel], progress: &Progress) -> Measured {
    let window_start = Instant::now() + plan.warmup;
    let window = Arc::new(Window::new(window_start, plan.stop));
    let live = Arc::new(Live::default());
    let value = workload::value(plan.value_size_bytes, plan.seed);
    let cas = Arc::new(Mutex::new(CasCache::default()));
    let mut tasks = Vec::new();
    for i in 0..plan.clients as usize {
        let kv = KvClient::new(conns[i % conns.len()].clone());
        let w = Workload::new(
            plan.op,
            plan.read_ratio.unwrap_or(0.0),
            KeySpace::new(plan.key_space),
            plan.seed.wrapping_add(i as u64),
        );
        let client = Client {
            kv,
            workload: w,
            value: value.clone(),
            cas: cas.clone(),
            timeout: plan.request_timeout,
            window: window.clone(),
            live: live.clone(),
        };
        tasks.push(tokio::spawn(client.run()));
    }
    let ticker = show_progress(plan, progress, window_start, live);
    let mut tallies = Vec::new();
    for t in tasks {
        tallies.push(t.await.expect("a bench client panicked"));
    }
    ticker.abort();
    Measured {
        window_start,
        tallies,
    }
}

fn show_progress(
    plan: &Plan,
    progress: &Progress,
    window_start: Instant,
    live: Arc<Live>,
) -> tokio::task::JoinHandle<()> {
    let stop = plan.stop;
    let len = match stop {
        Stop::Duration(d) => d.as_millis() as u64,
        Stop::Total(n) => n,
    };
    progress.phase("warmup", len);
    let mut measuring = false;
    tick(progress, move |bar| {
        let now = Instant::now();
        if now < window_start {
            return;
        }
        if !measuring {
            measuring = true;
            bar.set_prefix("measure");
        }
        let ops = live.ops.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        let secs = now.duration_since(window_start).as_secs_f64().max(1e-3);
        bar.set_position(match stop {
            Stop::Duration(_) => now.duration_since(window_start).as_millis() as u64,
            Stop::Total(_) => ops + errors,
        });
        bar.set_message(format!(
            "{ops} ops, {:.0} ops/s, {errors} errors",
            ops as f64 / secs
        ));
    })
}

/// One etcd KV call, built before the clock starts.
enum Call {
    Put(PutRequest),
    Range(RangeRequest),
    Txn(TxnRequest),
}

/// One closed-loop client.
struct Client {
    kv: KvClient<Channel>,
    workload: Workload,
    value: Vec<u8>,
    cas: Arc<Mutex<CasCache>>,
    timeout: Duration,
    window: Arc<Window>,
    live: Arc<Live>,
}

impl Client {
    async fn run(mut self) -> Tally {
        let mut tally = Tally::default();
        loop {
            let (kind, n) = self.workload.next();
            let key = self.workload.keys().key(n);
            let call = match kind {
                Kind::Put => Call::Put(workload::put(key, self.value.clone())),
                Kind::Get { serializable } => Call::Range(workload::range(key, serializable)),
                Kind::Txn => {
                    let expected = self.cas_cache().expected(n);
                    Call::Txn(workload::cas(key, expected, self.value.clone()))
                }
            };
            let issued = Instant::now();
            let slot = self.window.slot(issued);
            if slot == Slot::Stop {
                return tally;
            }
            let outcome = tokio::time::timeout(self.timeout, self.send(call)).await;
            let latency = issued.elapsed();
            if let Ok(Ok(Some(txn))) = &outcome {
                self.cas_cache().learn(n, txn);
            }
            match slot {
                Slot::Counted => self.count(&mut tally, kind, outcome, latency, issued + latency),
                _ if matches!(outcome, Ok(Ok(_))) => tally.warmup_ops += 1,
                _ => {}
            }
        }
    }

    fn cas_cache(&self) -> std::sync::MutexGuard<'_, CasCache> {
        // A panic under this lock leaves at worst a stale revision: a failed compare.
        self.cas.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The call's answer: the txn response for a txn (the CAS cache learns from it).
    async fn send(&mut self, call: Call) -> Result<Option<TxnResponse>, tonic::Status> {
        match call {
            Call::Put(r) => self.kv.put(r).await.map(|_| None),
            Call::Range(r) => self.kv.range(r).await.map(|_| None),
            Call::Txn(r) => self.kv.txn(r).await.map(|t| Some(t.into_inner())),
        }
    }

    fn count(
        &self,
        tally: &mut Tally,
        kind: Kind,
        outcome: Result<Result<Option<TxnResponse>, tonic::Status>, tokio::time::error::Elapsed>,
        latency: Duration,
        done: Instant,
    ) {
        tally.last_done = Some(done);
        match outcome {
            Ok(Ok(txn)) => {
                tally.success(latency);
                match kind {
                    Kind::Get { .. } => tally.reads += 1,
                    Kind::Put | Kind::Txn => tally.writes += 1,
                }
                match txn {
                    Some(t) if t.succeeded => tally.txn_succeeded += 1,
                    Some(_) => tally.txn_failed_compare += 1,
                    None => {}
                }
                self.live.ops.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(status)) => {
                tally.error(&format!("{:?}", status.code()));
                self.live.errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                tally.error("DeadlineExceeded");
                self.live.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_window_counts_from_its_start_until_its_end() {
        let start = Instant::now() + Duration::from_secs(1);
        let w = Window::new(start, Stop::Duration(Duration::from_secs(2)));
        assert_eq!(w.slot(start - Duration::from_millis(1)), Slot::Warmup);
        assert_eq!(w.slot(start), Slot::Counted);
        assert_eq!(w.slot(start + Duration::from_millis(1999)), Slot::Counted);
        assert_eq!(w.slot(start + Duration::from_secs(2)), Slot::Stop);
    }

    #[test]
    fn a_total_window_admits_exactly_total_requests_after_the_warmup() {
        let start = Instant::now();
        let w = Window::new(start, Stop::Total(3));
        assert_eq!(w.slot(start - Duration::from_millis(1)), Slot::Warmup);
        let later = start + Duration::from_secs(100);
        let slots: Vec<Slot> = (0..5).map(|_| w.slot(later)).collect();
        assert_eq!(
            slots,
            [
                Slot::Counted,
                Slot::Counted,
                Slot::Counted,
                Slot::Stop,
                Slot::Stop
            ]
        );
    }
}
