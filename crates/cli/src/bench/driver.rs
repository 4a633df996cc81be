//! The bench's network side: the load threads (each a single-threaded event loop), one
//! HTTP/2 connection per `--conns`, one task per client, the measured window, the prefill,
//! and the progress bar.
//!
//! Owns: spreading connections round-robin over the endpoints and over the load threads,
//! clients round-robin over the connections (a client runs on its connection's thread),
//! moving every thread through the same phases (connect, prefill, measure), the closed loop
//! (a client issues its next request when the previous one returned), and deciding per
//! request whether it belongs to the warmup, the measured window, or comes too late. Must
//! never: retry a request, reconnect (a connection that fails fails the calls on it), share
//! a histogram between clients (each keeps its own [`Tally`]; they are merged after the
//! run), or draw on stdout (the progress bar uses stderr).

use super::grpc::{Conn, Rpc};
use super::report::{Measured, Tally};
use super::workload::{self, CasCache, KeySpace, Kind, Workload};
use super::{Plan, Stop};
use anyhow::{anyhow, bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use proto::etcdserverpb::maintenance_client::MaintenanceClient;
use proto::etcdserverpb::{
    PutRequest, PutResponse, RangeRequest, RangeResponse, StatusRequest, TxnRequest, TxnResponse,
};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Endpoint;

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

/// Connection `j` goes to endpoint `j % endpoints`; fails if the endpoint cannot be reached.
async fn connect(plan: &Plan, j: usize) -> anyhow::Result<Conn> {
    let url = &plan.endpoints[j % plan.endpoints.len()];
    Conn::connect(url, CONNECT_TIMEOUT)
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// What the load threads do next; the coordinator moves every thread through the same
/// phases.
#[derive(Clone)]
enum Go {
    /// Connected; wait.
    Wait,
    /// Write every key once (shared counter: each key is written by one client).
    Prefill(Arc<AtomicU64>),
    /// Run the warmup and the measured window.
    Measure(Arc<Window>),
    /// Another thread failed: stop.
    Abort,
}

/// Which of the plan's connections and clients load thread `t` of `threads` owns:
/// connection `j` belongs to thread `j % threads`, client `i` rides connection
/// `i % conns`. A connection's clients and its HTTP/2 tasks so share one event loop, and a
/// request and its response never hop between threads.
#[derive(Clone, Copy, Debug)]
struct Shard {
    t: usize,
    threads: usize,
}

impl Shard {
    fn conns(self, plan: &Plan) -> impl Iterator<Item = usize> {
        (self.t..plan.conns as usize).step_by(self.threads)
    }

    /// `(client, index of its connection among this shard's)`.
    fn clients(self, plan: &Plan) -> impl Iterator<Item = (usize, usize)> {
        let conns = plan.conns as usize;
        (0..plan.clients as usize)
            .filter(move |i| (i % conns) % self.threads == self.t)
            .map(move |i| (i, (i % conns) / self.threads))
    }
}

/// Run the bench's load: `plan.threads` threads, each with its own single-threaded event
/// loop, its share of the connections and the clients on them. Connect (every connection
/// must come up), prefill if the plan says so, then warm up and measure.
pub async fn run(plan: &Plan, progress: &Progress) -> anyhow::Result<Measured> {
    let threads = plan.threads as usize;
    let (go_tx, go_rx) = tokio::sync::watch::channel(Go::Wait);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let live = Arc::new(Live::default());
    let mut handles = Vec::new();
    for t in 0..threads {
        let shard = Shard { t, threads };
        let (plan, go_rx, done_tx, live) =
            (plan.clone(), go_rx.clone(), done_tx.clone(), live.clone());
        let handle = std::thread::Builder::new()
            .name(format!("bench-load-{t}"))
            .spawn(move || -> Vec<Tally> {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = done_tx.send(Err(anyhow!("load thread runtime: {e}")));
                        return Vec::new();
                    }
                };
                rt.block_on(shard_main(plan, shard, go_rx, done_tx, live))
            })
            .context("starting a load thread")?;
        handles.push(handle);
    }
    drop(done_tx);
    let outcome = coordinate(plan, progress, &go_tx, &mut done_rx, live).await;
    if outcome.is_err() {
        let _ = go_tx.send(Go::Abort);
    }
    let joined = tokio::task::spawn_blocking(move || {
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench load thread panicked"))
            .collect::<Vec<_>>()
    })
    .await
    .expect("joining the load threads");
    let window_start = outcome?;
    Ok(Measured {
        window_start,
        tallies: joined.into_iter().flatten().collect(),
    })
}

/// Wait for one report from every load thread; the first error wins.
async fn all_done(
    threads: usize,
    done_rx: &mut tokio::sync::mpsc::UnboundedReceiver<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    for _ in 0..threads {
        match done_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e),
            None => bail!("a load thread stopped early"),
        }
    }
    Ok(())
}

/// The coordinator's side of [`run`]: phase by phase, with the progress bar; returns the
/// measured window's start.
async fn coordinate(
    plan: &Plan,
    progress: &Progress,
    go_tx: &tokio::sync::watch::Sender<Go>,
    done_rx: &mut tokio::sync::mpsc::UnboundedReceiver<anyhow::Result<()>>,
    live: Arc<Live>,
) -> anyhow::Result<Instant> {
    let threads = plan.threads as usize;
    all_done(threads, done_rx).await?;
    if plan.prefill {
        progress.phase("prefill", plan.key_space);
        let next = Arc::new(AtomicU64::new(0));
        let _ = go_tx.send(Go::Prefill(next.clone()));
        let ticker = tick(progress, move |bar| {
            bar.set_position(next.load(Ordering::Relaxed));
        });
        let prefilled = all_done(threads, done_rx).await;
        ticker.abort();
        prefilled?;
    }
    let window_start = Instant::now() + plan.warmup;
    let window = Arc::new(Window::new(window_start, plan.stop));
    let ticker = show_progress(plan, progress, window_start, live);
    let _ = go_tx.send(Go::Measure(window));
    // The threads end when their clients do; `run` joins them.
    all_done(threads, done_rx).await?;
    ticker.abort();
    Ok(window_start)
}

/// One load thread: connect its connections, then follow the coordinator's phases.
async fn shard_main(
    plan: Plan,
    shard: Shard,
    mut go_rx: tokio::sync::watch::Receiver<Go>,
    done_tx: tokio::sync::mpsc::UnboundedSender<anyhow::Result<()>>,
    live: Arc<Live>,
) -> Vec<Tally> {
    let mut conns = Vec::new();
    for j in shard.conns(&plan) {
        match connect(&plan, j).await {
            Ok(c) => conns.push(c),
            Err(e) => {
                let _ = done_tx.send(Err(e));
                return Vec::new();
            }
        }
    }
    let _ = done_tx.send(Ok(()));
    let mut go = next_phase(&mut go_rx).await;
    if let Go::Prefill(next) = go {
        let _ = done_tx.send(prefill(&plan, shard, &conns, next).await);
        go = next_phase(&mut go_rx).await;
    }
    match go {
        Go::Measure(window) => {
            let tallies = measure(&plan, shard, &conns, window, live).await;
            let _ = done_tx.send(Ok(()));
            tallies
        }
        _ => Vec::new(),
    }
}

/// The coordinator's next phase (it sends the next one only after every thread reported on
/// the last, so none is missed); [`Go::Abort`] if it is gone.
async fn next_phase(go_rx: &mut tokio::sync::watch::Receiver<Go>) -> Go {
    match go_rx.changed().await {
        Ok(()) => go_rx.borrow_and_update().clone(),
        Err(_) => Go::Abort,
    }
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

/// This shard's clients write keys until every key of the key space was written once
/// (`next` is shared by all shards). Not measured; any error fails the run.
async fn prefill(
    plan: &Plan,
    shard: Shard,
    conns: &[Conn],
    next: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let value = workload::value(plan.value_size_bytes, plan.seed);
    let mut tasks = tokio::task::JoinSet::new();
    for (_, c) in shard.clients(plan) {
        let conn = conns[c].clone();
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
                let put = workload::put(key, value.clone());
                let call = conn.unary::<_, PutResponse>(Rpc::Put, &put);
                match tokio::time::timeout(timeout, call).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(status)) => return Err(anyhow!("prefill put {name}: {status}")),
                    Err(_) => return Err(anyhow!("prefill put {name}: no answer in {timeout:?}")),
                }
            }
        });
    }
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined.context("prefill task panicked").and_then(|r| r) {
            result = Err(e);
            tasks.abort_all();
        }
    }
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

/// What every client of every load thread shares: the counters the progress bar reads
/// while clients run, and the txn workload's cache of revisions.
#[derive(Default)]
struct Live {
    ops: AtomicU64,
    errors: AtomicU64,
    cas: Mutex<CasCache>,
}

/// Run this shard's closed-loop clients through the warmup and the measured window.
async fn measure(
    plan: &Plan,
    shard: Shard,
    conns: &[Conn],
    window: Arc<Window>,
    live: Arc<Live>,
) -> Vec<Tally> {
    let value = workload::value(plan.value_size_bytes, plan.seed);
    let mut tasks = Vec::new();
    for (i, c) in shard.clients(plan) {
        let conn = conns[c].clone();
        let w = Workload::new(
            plan.op,
            plan.read_ratio.unwrap_or(0.0),
            KeySpace::new(plan.key_space),
            plan.seed.wrapping_add(i as u64),
        );
        let client = Client {
            conn,
            workload: w,
            value: value.clone(),
            timeout: plan.request_timeout,
            window: window.clone(),
            live: live.clone(),
        };
        tasks.push(tokio::spawn(client.run()));
    }
    let mut tallies = Vec::new();
    for t in tasks {
        tallies.push(t.await.expect("a bench client panicked"));
    }
    tallies
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
    conn: Conn,
    workload: Workload,
    value: Vec<u8>,
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
        self.live.cas.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The call's answer: the txn response for a txn (the CAS cache learns from it).
    async fn send(&mut self, call: Call) -> Result<Option<TxnResponse>, tonic::Status> {
        match call {
            Call::Put(r) => self
                .conn
                .unary::<_, PutResponse>(Rpc::Put, &r)
                .await
                .map(|_| None),
            Call::Range(r) => self
                .conn
                .unary::<_, RangeResponse>(Rpc::Range, &r)
                .await
                .map(|_| None),
            Call::Txn(r) => self.conn.unary(Rpc::Txn, &r).await.map(Some),
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

    fn plan(clients: u32, conns: u32, threads: u32) -> Plan {
        Plan::from_args(&crate::bench::BenchArgs {
            endpoints: vec![
                "127.0.0.1:1".into(),
                "127.0.0.1:2".into(),
                "127.0.0.1:3".into(),
            ],
            clients,
            conns: Some(conns),
            threads,
            op: workload::Op::Put,
            read_ratio: 0.9,
            key_space: 10,
            value_size: 1,
            duration: None,
            total: None,
            warmup: Duration::ZERO,
            prefill: false,
            no_prefill: false,
            leader_first: false,
            request_timeout: Duration::from_secs(1),
            seed: 1,
            json: false,
            quiet: true,
        })
        .expect("valid plan")
    }

    #[test]
    fn shards_split_connections_and_keep_each_client_with_its_connection() {
        for (clients, conns, threads) in [(1, 1, 1), (16, 8, 1), (64, 8, 2), (256, 8, 3), (7, 7, 7)]
        {
            let p = plan(clients, conns, threads);
            let mut seen_conns = Vec::new();
            let mut seen_clients = Vec::new();
            for t in 0..threads as usize {
                let shard = Shard {
                    t,
                    threads: threads as usize,
                };
                let mine: Vec<usize> = shard.conns(&p).collect();
                for (i, local) in shard.clients(&p) {
                    // The client rides connection i % conns, and that one is this shard's.
                    assert_eq!(
                        mine[local],
                        i % conns as usize,
                        "{clients}/{conns}/{threads}"
                    );
                    seen_clients.push(i);
                }
                seen_conns.extend(mine);
            }
            seen_conns.sort_unstable();
            seen_clients.sort_unstable();
            assert_eq!(seen_conns, (0..conns as usize).collect::<Vec<_>>());
            assert_eq!(seen_clients, (0..clients as usize).collect::<Vec<_>>());
        }
    }

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
