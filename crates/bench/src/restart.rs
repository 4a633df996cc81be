//! Restart of a member whose WAL holds many entries: how long from spawning `raftkv serve` on
//! its data directory until it serves a linearizable read and a write.
//!
//! The data directory is genuine: a cluster of real `raftkv serve` processes (one member, or
//! three) is started empty and driven with raw `KV.Put`s of small values from many concurrent
//! clients until its log holds the asked number of entries, then stopped cleanly (SIGTERM). It
//! is kept (with a `generated.json` naming its parameters) and reused by later runs with the
//! same parameters.
//!
//! Per run, clocks start just before the spawn:
//! - **WAL recovered** and **member serving** (the gRPC port answers): the timestamps of the
//!   member's own log lines "WAL recovered" (with its segment and entry counts) and "raftkv
//!   member serving", against the wall clock at spawn; **replay**: the duration its line "log
//!   replayed into the state machine" reports (applying the committed log at start);
//! - **first read** / **first write**: the first linearizable `KV.Range` / raw `KV.Put`
//!   acknowledged through the restarted member (probes resent as soon as an attempt fails,
//!   after 1 ms when it failed at once). Between "serving" and the first read the member
//!   applies its log into the state machine (and, alone, elects itself).
//!
//! Each run SIGKILLs the member (a crash: everything acknowledged is on disk) and starts it
//! again; with three members, a follower is restarted while the other two keep serving.
//!
//! Owns: generating the directory, one restart's record. Must never: count a probe answered
//! before the spawn, or reuse a directory generated with other parameters.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::procs::{self, Procs};

/// How the data directory is generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generate {
    /// Puts written (the log then holds these plus a few leader and membership entries).
    pub entries: u64,
    pub value_bytes: usize,
    /// Distinct keys written, round-robin (`key-<n>`).
    pub key_space: u64,
    /// Concurrent writers.
    pub clients: usize,
}

impl Generate {
    fn json(&self, members: usize, snapshot_count: u64) -> serde_json::Value {
        serde_json::json!({
            "entries": self.entries,
            "value_bytes": self.value_bytes,
            "key_space": self.key_space,
            "members": members,
            "snapshot_count": snapshot_count,
        })
    }
}

/// What one restart measured (times since the spawn).
#[derive(Clone, Debug)]
pub struct Restart {
    pub wal_recovered: Option<Duration>,
    /// Segments and entries the member says it recovered.
    pub wal_segments: Option<u64>,
    pub wal_entries: Option<u64>,
    pub member_serving: Option<Duration>,
    /// The member's own "log replayed into the state machine" line: entries applied at
    /// start and how long that took.
    pub replayed_entries: Option<u64>,
    pub replay: Option<Duration>,
    pub first_read: Duration,
    pub first_write: Duration,
    /// Peak resident memory of the member once it served (`VmHWM`), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// CPU time (user + system, every thread) the member had used once it served: what the
    /// restart costs regardless of how many other processes share the cores.
    pub cpu_to_serving: Option<Duration>,
}

impl Restart {
    /// Both a read and a write were served.
    pub fn serving(&self) -> Duration {
        self.first_read.max(self.first_write)
    }

    pub fn json(&self) -> serde_json::Value {
        let ms = |d: Duration| procs::round2(d.as_secs_f64() * 1e3);
        serde_json::json!({
            "wal_recovered_ms": self.wal_recovered.map(ms),
            "wal_segments": self.wal_segments,
            "wal_entries": self.wal_entries,
            "member_serving_ms": self.member_serving.map(ms),
            "replayed_entries": self.replayed_entries,
            "replay_ms": self.replay.map(ms),
            "first_read_ms": ms(self.first_read),
            "first_write_ms": ms(self.first_write),
            "serving_ms": ms(self.serving()),
            "peak_rss_bytes": self.peak_rss_bytes,
            "cpu_to_serving_ms": self.cpu_to_serving.map(ms),
        })
    }
}

const MARKER: &str = "generated.json";

/// Generates the directory of `procs` unless a matching one exists; returns whether it did
/// and how long the writing took. Leaves no member running.
pub async fn ensure_generated(procs: &mut Procs, g: &Generate) -> Result<Option<Duration>, String> {
    let opts = procs.options().clone();
    let want = g.json(opts.members, opts.snapshot_count);
    let marker = opts.dir.join(MARKER);
    if let Ok(text) = std::fs::read_to_string(&marker) {
        if serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .as_ref()
            == Some(&want)
        {
            return Ok(None);
        }
    }
    for i in 0..procs.len() {
        procs::remove_dir(&procs.spec(i).data_dir)?;
        let _ = std::fs::remove_file(&procs.spec(i).log_path);
    }
    let _ = std::fs::remove_file(&marker);
    procs.start_all()?;
    let channels: Vec<_> = procs
        .client_urls()
        .iter()
        .map(|u| procs::channel(u))
        .collect();
    wait_writable(&channels, Duration::from_secs(30)).await?;
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..g.clients {
        // Several HTTP/2 connections per member: one connection's streams share one task.
        let ch = procs::channel(&procs.client_urls()[c % channels.len()]);
        let (next, done, g) = (next.clone(), done.clone(), g.clone());
        tasks.push(tokio::spawn(async move {
            let value = vec![b'v'; g.value_bytes];
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= g.entries {
                    return Ok::<(), String>(());
                }
                let key = format!("key-{:08}", n % g.key_space);
                let mut tries = 0;
                while let Err(e) =
                    procs::put(&ch, key.as_bytes(), &value, Duration::from_secs(10)).await
                {
                    tries += 1;
                    if tries > 20 {
                        return Err(format!("put {key}: {e}"));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let progress = {
        let done = done.clone();
        let total = g.entries;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let d = done.load(Ordering::Relaxed);
                eprintln!(
                    "generating: {d}/{total} puts ({:.0}/s)",
                    d as f64 / started.elapsed().as_secs_f64()
                );
            }
        })
    };
    let mut failure = None;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(e.to_string()),
        }
    }
    progress.abort();
    let took = started.elapsed();
    // Let the runtime close the writers' connections first: a member stops cleanly only
    // once its clients are gone, and `stop` blocks this (the runtime's) thread.
    drop(channels);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..procs.len() {
        procs.stop(i, Duration::from_secs(30));
    }
    if let Some(e) = failure {
        return Err(format!("generating: {e}"));
    }
    std::fs::write(&marker, format!("{want:#}\n")).map_err(|e| e.to_string())?;
    Ok(Some(took))
}

async fn wait_writable(
    channels: &[tonic::transport::Channel],
    within: Duration,
) -> Result<(), String> {
    let until = Instant::now() + within;
    loop {
        match procs::put(&channels[0], b"hello", b"world", Duration::from_secs(1)).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > until => return Err(format!("cluster not writable: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// For three members: starts the two that are not `victim` (the restarted one) and waits
/// until they serve writes. No-op with one member.
pub async fn start_others(procs: &mut Procs, victim: usize) -> Result<(), String> {
    if procs.len() == 1 {
        return Ok(());
    }
    for i in 0..procs.len() {
        if i != victim && !procs.is_running(i) {
            procs.spawn(i)?;
        }
    }
    let others: Vec<_> = (0..procs.len())
        .filter(|&i| i != victim)
        .map(|i| procs::channel(&procs.spec(i).client_url()))
        .collect();
    wait_writable(&others, Duration::from_secs(60)).await
}

/// One restart of member `victim` (not running): spawn, probe, read its log. Leaves it
/// running.
pub async fn restart_once(procs: &mut Procs, victim: usize) -> Result<Restart, String> {
    let spec = procs.spec(victim).clone();
    let log_offset = std::fs::metadata(&spec.log_path).map_or(0, |m| m.len());
    let ch = procs::channel(&spec.client_url());
    let (wall, spawned_at) = procs.spawn(victim)?;
    let pid = procs.pid(victim);
    let give_up = spawned_at + Duration::from_secs(120);
    let read = async {
        loop {
            let sent = Instant::now();
            match procs::get(&ch, b"key-00000000", Duration::from_millis(500)).await {
                Ok(_) => return Ok(spawned_at.elapsed()),
                Err(e) if Instant::now() > give_up => return Err(format!("no read served: {e}")),
                Err(_) if sent.elapsed() < Duration::from_millis(1) => {
                    tokio::time::sleep(Duration::from_millis(1)).await
                }
                Err(_) => {}
            }
        }
    };
    let write = async {
        loop {
            let sent = Instant::now();
            match procs::put(&ch, b"restart-probe", b"x", Duration::from_millis(500)).await {
                Ok(_) => return Ok(spawned_at.elapsed()),
                Err(e) if Instant::now() > give_up => return Err(format!("no write served: {e}")),
                Err(_) if sent.elapsed() < Duration::from_millis(1) => {
                    tokio::time::sleep(Duration::from_millis(1)).await
                }
                Err(_) => {}
            }
        }
    };
    let (first_read, first_write) = tokio::try_join!(read, write)?;
    let cpu_to_serving = pid.and_then(cpu_time);
    let peak_rss_bytes = pid.and_then(peak_rss);
    let lines = read_from(&spec.log_path, log_offset);
    let since_spawn = |needle: &str| {
        lines
            .lines()
            .find(|l| l.contains(needle))
            .and_then(log_time)
            .and_then(|t| t.duration_since(wall).ok())
    };
    let recovered_line = lines.lines().find(|l| l.contains("WAL recovered"));
    let replayed_line = lines
        .lines()
        .find(|l| l.contains("log replayed into the state machine"));
    Ok(Restart {
        wal_recovered: since_spawn("WAL recovered"),
        wal_segments: recovered_line.and_then(|l| field(l, "segments")),
        wal_entries: recovered_line.and_then(|l| field(l, "entries")),
        member_serving: since_spawn("raftkv member serving"),
        replayed_entries: replayed_line.and_then(|l| field(l, "entries")),
        replay: replayed_line
            .and_then(|l| field(l, "ms"))
            .map(Duration::from_millis),
        first_read,
        first_write,
        peak_rss_bytes,
        cpu_to_serving,
    })
}

/// Bytes of every file under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_string(&mut text);
        }
    }
    text
}

fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User + system CPU time of process `pid` so far (`/proc/<pid>/stat`, clock-tick resolution).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesized command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second).ok().filter(|&t| t > 0)?;
    Some(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// `name=<number>` in a log line.
fn field(line: &str, name: &str) -> Option<u64> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The RFC 3339 UTC timestamp a `tracing` log line starts with
/// (`2026-12-02T06:12:00.123456Z`).
fn log_time(line: &str) -> Option<SystemTime> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let secs: f64 = t.next()?.parse().ok()?;
    let days = days_from_civil(y, m, day);
    let whole = days * 86_400 + h * 3_600 + min * 60;
    let total = Duration::from_secs(u64::try_from(whole).ok()?) + Duration::from_secs_f64(secs);
    Some(SystemTime::UNIX_EPOCH + total)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_give_their_time_and_fields() {
        let line = "2026-12-02T06:12:00.250000Z  INFO server::runtime: WAL recovered node=1 \
                    dir=/x segments=5 entries=1000000";
        let t = log_time(line).unwrap();
        let secs = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        // date -u -d 2026-12-02T06:12:00Z +%s
        assert!((secs - 1_796_191_920.25).abs() < 1e-6, "{secs}");
        assert_eq!(field(line, "segments"), Some(5));
        assert_eq!(field(line, "entries"), Some(1_000_000));
        assert_eq!(field(line, "node"), Some(1));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
