//! Real `raftkv serve` children on loopback, for the process benchmarks (`failover`,
//! `restart`): start, SIGKILL, restart, and the gRPC calls that ask them how they are.
//!
//! Owns: each member's ports (member `i` serves clients on `base_port + 10·i`, peers on the
//! next port), its data directory and log file (`<dir>/n<i>/`, `<dir>/n<i>.log`, appended to
//! across restarts), its child process, and raw etcd calls with a per-call timeout
//! ([`status`], [`put`], [`get`]).
//!
//! Every child is spawned with `PR_SET_PDEATHSIG = SIGKILL` from the thread that made the
//! [`Procs`] (drive it from one long-lived thread, e.g. a current-thread tokio runtime's), so
//! a benchmark that dies takes its members with it; dropping a [`Procs`] kills them too.
//! Must never: signal a process it did not spawn, inherit the caller's `RAFTKV_*` settings
//! (only the benchmark's flags count), or retry a call (callers decide; a probe's timing is
//! the point).

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use proto::etcdserverpb::kv_client::KvClient;
use proto::etcdserverpb::maintenance_client::MaintenanceClient;
use proto::etcdserverpb::{PutRequest, PutResponse, RangeRequest, StatusRequest, StatusResponse};
use tonic::transport::{Channel, Endpoint};

/// How every member is started.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The `raftkv` binary.
    pub bin: PathBuf,
    /// Holds every member's data directory and log.
    pub dir: PathBuf,
    /// Number of members.
    pub members: usize,
    /// Client port of member 1; member `i` (from 0) uses `base_port + 10·i` and the next one.
    pub base_port: u16,
    pub heartbeat_ms: u64,
    pub election_ms: u64,
    /// `--snapshot-count` (0: never snapshot).
    pub snapshot_count: u64,
    /// `RAFTKV_LOG` of the members.
    pub log_filter: String,
    /// `--initial-cluster-token`.
    pub token: String,
}

/// One member's fixed identity.
#[derive(Clone, Debug)]
pub struct MemberSpec {
    /// `n1`, `n2`, …
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
}

impl MemberSpec {
    /// `http://127.0.0.1:<client port>`.
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }
}

/// The member children of one benchmark.
pub struct Procs {
    opts: ServeOptions,
    initial_cluster: String,
    specs: Vec<MemberSpec>,
    children: Vec<Option<Child>>,
    /// Killed children not reaped yet (reaped before the member starts again, or on drop).
    killed: Vec<Option<Child>>,
}

impl Procs {
    /// The layout of `opts` with no member running yet; fails when a port is taken.
    pub fn new(opts: ServeOptions) -> Result<Procs, String> {
        assert!(
            (1..=9).contains(&opts.members),
            "{} members: 1 to 9 supported",
            opts.members
        );
        let specs: Vec<MemberSpec> = (0..opts.members)
            .map(|i| {
                let client_port = opts.base_port + 10 * i as u16;
                MemberSpec {
                    name: format!("n{}", i + 1),
                    client_port,
                    peer_port: client_port + 1,
                    data_dir: opts.dir.join(format!("n{}", i + 1)),
                    log_path: opts.dir.join(format!("n{}.log", i + 1)),
                }
            })
            .collect();
        for s in &specs {
            for port in [s.client_port, s.peer_port] {
                std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
                    format!(
                        "port {port} ({}) is not free: {e}; pick --base-port",
                        s.name
                    )
                })?;
            }
        }
        std::fs::create_dir_all(&opts.dir)
            .map_err(|e| format!("creating {}: {e}", opts.dir.display()))?;
        let initial_cluster = specs
            .iter()
            .map(|s| format!("{}=http://127.0.0.1:{}", s.name, s.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let children = specs.iter().map(|_| None).collect();
        let killed = specs.iter().map(|_| None).collect();
        Ok(Procs {
            opts,
            initial_cluster,
            specs,
            children,
            killed,
        })
    }

    /// Starts every member.
    pub fn start_all(&mut self) -> Result<(), String> {
        for i in 0..self.specs.len() {
            self.spawn(i)?;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    pub fn spec(&self, i: usize) -> &MemberSpec {
        &self.specs[i]
    }

    pub fn options(&self) -> &ServeOptions {
        &self.opts
    }

    /// Every member's client URL, in member order.
    pub fn client_urls(&self) -> Vec<String> {
        self.specs.iter().map(MemberSpec::client_url).collect()
    }

    /// Member `i`'s process id, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(Child::id)
    }

    /// Whether member `i` has a child (started and not killed since).
    pub fn is_running(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    /// Starts member `i` on its data directory (it must not run); returns the wall-clock
    /// and monotonic time just before the spawn.
    pub fn spawn(&mut self, i: usize) -> Result<(SystemTime, Instant), String> {
        assert!(self.children[i].is_none(), "member {i} already runs");
        if let Some(mut dead) = self.killed[i].take() {
            let _ = dead.wait();
        }
        let s = &self.specs[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&s.log_path)
            .map_err(|e| format!("opening {}: {e}", s.log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let o = &self.opts;
        let mut cmd = Command::new(&o.bin);
        cmd.arg("serve")
            .args(["--name", &s.name])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &o.token])
            .arg("--data-dir")
            .arg(&s.data_dir)
            .args(["--listen-client-urls", &s.client_url()])
            .args(["--heartbeat-interval", &o.heartbeat_ms.to_string()])
            .args(["--election-timeout", &o.election_ms.to_string()])
            .args(["--snapshot-count", &o.snapshot_count.to_string()]);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("RAFTKV_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("RAFTKV_LOG", &o.log_filter)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // SAFETY: prctl is async-signal-safe and the closure touches no parent memory.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let wall = SystemTime::now();
        let at = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawning {} for {}: {e}", o.bin.display(), s.name))?;
        self.children[i] = Some(child);
        Ok((wall, at))
    }

    /// SIGKILLs member `i` and returns the time just before the signal. The child is reaped
    /// later (when it starts again, or on drop), so the caller's clock starts at once.
    pub fn kill(&mut self, i: usize) -> Instant {
        let child = self.children[i].take().expect("killing a member that runs");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        let at = Instant::now();
        // SAFETY: signalling our own child, not yet reaped.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        self.killed[i] = Some(child);
        at
    }

    /// SIGTERMs member `i` (a clean stop) and waits for it, at most `grace`, then kills it.
    pub fn stop(&mut self, i: usize, grace: Duration) {
        let Some(mut child) = self.children[i].take() else {
            return;
        };
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: signalling our own child, not yet reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Whether a running member exited on its own (a crash): its name and exit status.
    pub fn exited(&mut self) -> Option<(String, String)> {
        for (i, c) in self.children.iter_mut().enumerate() {
            if let Some(child) = c {
                if let Ok(Some(status)) = child.try_wait() {
                    *c = None;
                    return Some((self.specs[i].name.clone(), status.to_string()));
                }
            }
        }
        None
    }

    /// Kills every member that runs and reaps every killed one.
    pub fn kill_all(&mut self) {
        for i in 0..self.children.len() {
            if self.children[i].is_some() {
                self.kill(i);
            }
            if let Some(mut dead) = self.killed[i].take() {
                let _ = dead.wait();
            }
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// A lazily connected channel to `url` (connect timeout 1 s).
pub fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_string())
        .expect("a valid URL")
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .connect_lazy()
}

fn timed<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(timeout);
    req
}

/// `Maintenance.Status` of one member, within `timeout`.
pub async fn status(ch: &Channel, timeout: Duration) -> Result<StatusResponse, tonic::Status> {
    let mut client = MaintenanceClient::new(ch.clone());
    let call = client.status(timed(StatusRequest {}, timeout));
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r.map(tonic::Response::into_inner),
        Err(_) => Err(tonic::Status::deadline_exceeded("status: no answer")),
    }
}

/// One raw `KV.Put` (no session, no retry), within `timeout`.
pub async fn put(
    ch: &Channel,
    key: &[u8],
    value: &[u8],
    timeout: Duration,
) -> Result<PutResponse, tonic::Status> {
    let msg = PutRequest {
        key: key.to_vec(),
        value: value.to_vec(),
        ..PutRequest::default()
    };
    let mut client = KvClient::new(ch.clone());
    let call = client.put(timed(msg, timeout));
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r.map(tonic::Response::into_inner),
        Err(_) => Err(tonic::Status::deadline_exceeded("put: no answer")),
    }
}

/// One raw linearizable `KV.Range` of `key` (no retry), within `timeout`; returns the
/// response header's revision.
pub async fn get(ch: &Channel, key: &[u8], timeout: Duration) -> Result<i64, tonic::Status> {
    let msg = RangeRequest {
        key: key.to_vec(),
        ..RangeRequest::default()
    };
    let mut client = KvClient::new(ch.clone());
    let call = client.range(timed(msg, timeout));
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => Ok(r?.into_inner().header.map_or(0, |h| h.revision)),
        Err(_) => Err(tonic::Status::deadline_exceeded("range: no answer")),
    }
}

/// `<dir of this binary>/raftkv` (`target/release/raftkv` next to `target/release/failover`).
pub fn default_raftkv_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("raftkv")))
        .unwrap_or_else(|| PathBuf::from("target/release/raftkv"))
}

/// The `raftkv` binary a benchmark starts: `given` (its `--raftkv`), else the one beside this
/// binary; an error that says how to build it when it is missing.
pub fn raftkv_bin(given: Option<PathBuf>) -> Result<PathBuf, String> {
    let bin = given.unwrap_or_else(default_raftkv_bin);
    if !bin.exists() {
        return Err(format!(
            "{} not found: cargo build --release -p cli (or pass --raftkv)",
            bin.display()
        ));
    }
    Ok(bin)
}

/// `<cargo target dir>/<name>`, found from this binary's path.
pub fn default_work_dir(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join(name)))
        .unwrap_or_else(|| std::env::temp_dir().join(name))
}

/// The machine the numbers come from: `nproc`, CPU model, load averages now.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs ({model}), load average {}", load_average())
}

/// `/proc/loadavg`'s three load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Removes `dir` (a benchmark's own work directory) if it exists.
pub fn remove_dir(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", dir.display())),
    }
}

/// Exact order statistics of a few durations.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    sorted_ms: Vec<f64>,
}

impl Sample {
    pub fn new(values: impl IntoIterator<Item = Duration>) -> Sample {
        let mut sorted_ms: Vec<f64> = values.into_iter().map(|d| d.as_secs_f64() * 1e3).collect();
        sorted_ms.sort_by(f64::total_cmp);
        Sample { sorted_ms }
    }

    pub fn len(&self) -> usize {
        self.sorted_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted_ms.is_empty()
    }

    /// The `q`-quantile in ms, nearest rank, except that the median of an even count is the
    /// mean of the two middle values; `NaN` when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let n = self.sorted_ms.len();
        if n == 0 {
            return f64::NAN;
        }
        if (q - 0.5).abs() < f64::EPSILON && n.is_multiple_of(2) {
            return (self.sorted_ms[n / 2 - 1] + self.sorted_ms[n / 2]) / 2.0;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.sorted_ms[rank - 1]
    }

    pub fn median_ms(&self) -> f64 {
        self.quantile_ms(0.5)
    }

    pub fn min_ms(&self) -> f64 {
        self.sorted_ms.first().copied().unwrap_or(f64::NAN)
    }

    pub fn max_ms(&self) -> f64 {
        self.sorted_ms.last().copied().unwrap_or(f64::NAN)
    }

    /// `{"n", "min_ms", "median_ms", "p90_ms", "max_ms"}`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "n": self.len(),
            "min_ms": round2(self.min_ms()),
            "median_ms": round2(self.median_ms()),
            "p90_ms": round2(self.quantile_ms(0.9)),
            "max_ms": round2(self.max_ms()),
        })
    }
}

/// `x` rounded to two decimals.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_quantiles_are_exact() {
        let s = Sample::new((1..=20).map(Duration::from_millis));
        assert_eq!(s.median_ms(), 10.5);
        assert_eq!(s.quantile_ms(0.9), 18.0);
        assert_eq!(s.max_ms(), 20.0);
        let odd = Sample::new([3, 1, 2].map(Duration::from_millis));
        assert_eq!(odd.median_ms(), 2.0);
        assert!(Sample::new([]).median_ms().is_nan());
    }
}
