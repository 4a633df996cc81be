//! Failover of a 3-member cluster of real `raftkv serve` processes: SIGKILL the leader, time
//! until the survivors elect a new one and until a write through a survivor is acknowledged,
//! restart the killed member, wait until it caught up; repeat.
//!
//! Per kill, three clocks start just before `kill(pid, SIGKILL)`:
//! - **elected**: a survivor's `Maintenance.Status` names a leader other than the killed one
//!   in a term above the killed leader's (each survivor polled every 2 ms);
//! - **probe write**: the first raw `KV.Put` acknowledged by a survivor. One probe per
//!   survivor sends a put with a short per-attempt timeout and sends the next one as soon as
//!   an attempt fails (after 1 ms when the failure came back at once) — no fixed sleep;
//! - **client library**: the first acknowledgement, in a term above the killed leader's, of
//!   the background writers (the `client` crate with the three endpoints, its default
//!   timeouts and retries) that write continuously through the whole run.
//!
//! Owns: the order of one kill (settle, find the leader, kill, measure, restart, catch up) and
//! the per-kill record. Must never: count an acknowledgement from before the kill (a probe
//! attempt starts after the kill, a writer's counts only in a later term), or kill while the
//! restarted member has not caught up.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tonic::transport::Channel;

use crate::procs::{self, Procs, Sample};

/// The knobs of one run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub kills: usize,
    /// Background writers (client library, closed loop).
    pub writers: usize,
    /// Per-attempt timeout of the probe's raw puts.
    pub probe_attempt: Duration,
    /// Time between a member caught up and the next kill (plus up to one heartbeat of
    /// jitter, so kills fall anywhere in the heartbeat cycle).
    pub settle: Duration,
    /// Bytes of every value written.
    pub value_bytes: usize,
    /// Give up on one kill's measurement after this long.
    pub give_up: Duration,
}

/// What one kill measured.
#[derive(Clone, Debug)]
pub struct Kill {
    pub killed: String,
    pub old_term: u64,
    pub new_leader: String,
    pub new_term: u64,
    /// Kill → a survivor reports the new leader.
    pub elected: Duration,
    /// Kill → first raw put acknowledged by a survivor, and which one.
    pub probe_write: Duration,
    pub probe_via: String,
    /// Kill → first acknowledgement of a background (client library) write in a later term.
    pub library_write: Option<Duration>,
    /// Restart → the restarted member applied what the leader had committed at restart.
    pub caught_up: Duration,
}

impl Kill {
    pub fn json(&self) -> serde_json::Value {
        let ms = |d: Duration| procs::round2(d.as_secs_f64() * 1e3);
        serde_json::json!({
            "killed": self.killed,
            "old_term": self.old_term,
            "new_leader": self.new_leader,
            "new_term": self.new_term,
            "elected_ms": ms(self.elected),
            "probe_write_ms": ms(self.probe_write),
            "probe_via": self.probe_via,
            "library_write_ms": self.library_write.map(ms),
            "caught_up_ms": ms(self.caught_up),
        })
    }
}

/// Every kill's record plus what the background writers did.
#[derive(Clone, Debug)]
pub struct Report {
    pub kills: Vec<Kill>,
    pub writes_acked: u64,
    pub writes_failed: u64,
    pub elapsed: Duration,
}

impl Report {
    pub fn elected(&self) -> Sample {
        Sample::new(self.kills.iter().map(|k| k.elected))
    }
    pub fn probe_write(&self) -> Sample {
        Sample::new(self.kills.iter().map(|k| k.probe_write))
    }
    pub fn library_write(&self) -> Sample {
        Sample::new(self.kills.iter().filter_map(|k| k.library_write))
    }
    /// Elected → first probe write, per kill.
    pub fn elected_to_write(&self) -> Sample {
        Sample::new(
            self.kills
                .iter()
                .map(|k| k.probe_write.saturating_sub(k.elected)),
        )
    }
    pub fn caught_up(&self) -> Sample {
        Sample::new(self.kills.iter().map(|k| k.caught_up))
    }
}

/// One acknowledged background write: when, and the term of the answering member.
#[derive(Clone, Copy)]
struct Ack {
    at: Instant,
    term: u64,
}

#[derive(Default)]
struct WriterLog {
    acks: Vec<Ack>,
    failed: u64,
}

/// The cluster as the measurement sees it: member ids and a channel to each member.
struct View {
    ids: Vec<u64>,
    channels: Vec<Channel>,
}

const STATUS_TIMEOUT: Duration = Duration::from_millis(200);

impl View {
    fn name_of(&self, procs: &Procs, id: u64) -> String {
        match self.ids.iter().position(|&m| m == id) {
            Some(i) => procs.spec(i).name.clone(),
            None => format!("{id:x}"),
        }
    }

    /// (member index of the leader, its term) once every running member names the same
    /// leader, which runs and reports itself leading.
    async fn settled_leader(
        &self,
        procs: &Procs,
        within: Duration,
    ) -> Result<(usize, u64), String> {
        let until = Instant::now() + within;
        let mut last = String::from("no member answered");
        while Instant::now() < until {
            let mut seen = Vec::new();
            for (i, ch) in self.channels.iter().enumerate() {
                if !procs.is_running(i) {
                    continue;
                }
                match procs::status(ch, STATUS_TIMEOUT).await {
                    Ok(s) => seen.push((s.leader, s.raft_term)),
                    Err(e) => last = format!("{}: {}", procs.spec(i).name, e.message()),
                }
            }
            let running = (0..procs.len()).filter(|&i| procs.is_running(i)).count();
            if seen.len() == running && seen.iter().all(|s| s.0 != 0 && s == &seen[0]) {
                if let Some(l) = self.ids.iter().position(|&m| m == seen[0].0) {
                    if procs.is_running(l) {
                        return Ok((l, seen[0].1));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!(
            "no settled leader within {within:?}; last error: {last}"
        ))
    }
}

/// Runs the plan on `procs` (started, members not running yet).
pub async fn run(procs: &mut Procs, plan: &Plan) -> Result<Report, String> {
    procs.start_all()?;
    let channels: Vec<Channel> = procs
        .client_urls()
        .iter()
        .map(|u| procs::channel(u))
        .collect();
    let mut ids = Vec::new();
    for (i, ch) in channels.iter().enumerate() {
        let until = Instant::now() + Duration::from_secs(30);
        let id = loop {
            match procs::status(ch, STATUS_TIMEOUT).await {
                Ok(s) => break s.header.map_or(0, |h| h.member_id),
                Err(e) if Instant::now() > until => {
                    return Err(format!("{} never answered: {}", procs.spec(i).name, e))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        ids.push(id);
    }
    let view = View { ids, channels };
    view.settled_leader(procs, Duration::from_secs(30)).await?;

    let log = Arc::new(Mutex::new(WriterLog::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = client::Client::connect(client::ClientConfig::new(procs.client_urls()))
        .await
        .map_err(|e| e.to_string())?;
    let mut writers = Vec::new();
    for w in 0..plan.writers {
        writers.push(tokio::spawn(write_loop(
            client.clone(),
            w,
            plan.value_bytes,
            log.clone(),
            stop.clone(),
        )));
    }
    let started = Instant::now();
    let mut kills = Vec::new();
    for k in 0..plan.kills {
        let kill = one_kill(procs, &view, plan, &log).await?;
        eprintln!(
            "kill {:>2}/{}: {} (term {}) -> {} leads (term {}): elected {:.1} ms, probe write \
             {:.1} ms via {}, client library {}, restarted member caught up in {:.0} ms  [load {}]",
            k + 1,
            plan.kills,
            kill.killed,
            kill.old_term,
            kill.new_leader,
            kill.new_term,
            kill.elected.as_secs_f64() * 1e3,
            kill.probe_write.as_secs_f64() * 1e3,
            kill.probe_via,
            kill.library_write
                .map_or("-".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3)),
            kill.caught_up.as_secs_f64() * 1e3,
            procs::load_average(),
        );
        kills.push(kill);
        if let Some((name, status)) = procs.exited() {
            return Err(format!("member {name} exited on its own: {status}"));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let log = log.lock().expect("writer log");
    Ok(Report {
        kills,
        writes_acked: log.acks.len() as u64,
        writes_failed: log.failed,
        elapsed: started.elapsed(),
    })
}

async fn write_loop(
    client: client::Client,
    writer: usize,
    value_bytes: usize,
    log: Arc<Mutex<WriterLog>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let value = vec![b'w'; value_bytes];
    let mut n = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let key = format!("load-{writer}-{}", n % 1000);
        n += 1;
        let r = client.put(key, value.clone()).await;
        let mut log = log.lock().expect("writer log");
        match r {
            Ok(resp) => log.acks.push(Ack {
                at: Instant::now(),
                term: resp.header.map_or(0, |h| h.raft_term),
            }),
            Err(_) => log.failed += 1,
        }
    }
}

async fn one_kill(
    procs: &mut Procs,
    view: &View,
    plan: &Plan,
    log: &Mutex<WriterLog>,
) -> Result<Kill, String> {
    let jitter_ms = rand::thread_rng().gen_range(0..=procs.options().heartbeat_ms);
    tokio::time::sleep(plan.settle + Duration::from_millis(jitter_ms)).await;
    let (leader, old_term) = view.settled_leader(procs, Duration::from_secs(30)).await?;
    let killed_id = view.ids[leader];
    let survivors: Vec<usize> = (0..procs.len()).filter(|&i| i != leader).collect();

    let killed_at = procs.kill(leader);
    let give_up = killed_at + plan.give_up;
    let elected = watch_election(view, &survivors, killed_id, old_term, killed_at, give_up);
    let probe = probe_write(view, &survivors, plan, old_term, killed_at, give_up);
    let ((elected_after, new_id, new_term), (probe_after, via)) = tokio::try_join!(elected, probe)?;
    let library = loop {
        let first = {
            let log = log.lock().expect("writer log");
            log.acks
                .iter()
                .rev()
                .take_while(|a| a.at > killed_at)
                .filter(|a| a.term > old_term)
                .map(|a| a.at)
                .min()
        };
        if first.is_some() || Instant::now() > give_up || plan.writers == 0 {
            break first.map(|at| at - killed_at);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    let (_, restarted_at) = procs.spawn(leader)?;
    let caught_up = catch_up(procs, view, leader, restarted_at).await?;
    Ok(Kill {
        killed: procs.spec(leader).name.clone(),
        old_term,
        new_leader: view.name_of(procs, new_id),
        new_term,
        elected: elected_after,
        probe_write: probe_after,
        probe_via: procs.spec(via).name.clone(),
        library_write: library,
        caught_up,
    })
}

/// Polls the survivors until one names a new leader in a later term: (time since the kill,
/// leader id, term).
async fn watch_election(
    view: &View,
    survivors: &[usize],
    killed: u64,
    old_term: u64,
    killed_at: Instant,
    give_up: Instant,
) -> Result<(Duration, u64, u64), String> {
    let watchers = survivors.iter().map(|&i| {
        let ch = view.channels[i].clone();
        async move {
            loop {
                if let Ok(s) = procs::status(&ch, STATUS_TIMEOUT).await {
                    if s.leader != 0 && s.leader != killed && s.raft_term > old_term {
                        return Ok((Instant::now(), s.leader, s.raft_term));
                    }
                }
                if Instant::now() > give_up {
                    return Err("no new leader reported".to_string());
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let (at, id, term) = first_ok(watchers.collect()).await?;
    Ok((at - killed_at, id, term))
}

/// Raw puts to every survivor until one is acknowledged: (time since the kill, survivor).
async fn probe_write(
    view: &View,
    survivors: &[usize],
    plan: &Plan,
    old_term: u64,
    killed_at: Instant,
    give_up: Instant,
) -> Result<(Duration, usize), String> {
    let value = vec![b'p'; plan.value_bytes];
    let probes = survivors.iter().map(|&i| {
        let ch = view.channels[i].clone();
        let value = value.clone();
        async move {
            let key = format!("probe-{i}");
            loop {
                let sent = Instant::now();
                match procs::put(&ch, key.as_bytes(), &value, plan.probe_attempt).await {
                    Ok(r) if r.header.map_or(0, |h| h.raft_term) > old_term => {
                        return Ok((Instant::now(), i))
                    }
                    Ok(_) => {}
                    Err(_) if sent.elapsed() < Duration::from_millis(1) => {
                        tokio::time::sleep(Duration::from_millis(1)).await
                    }
                    Err(_) => {}
                }
                if Instant::now() > give_up {
                    return Err("no probe write acknowledged".to_string());
                }
            }
        }
    });
    let (at, via) = first_ok(probes.collect()).await?;
    Ok((at - killed_at, via))
}

/// The first of `futures` to succeed (the others are dropped), or the last error.
async fn first_ok<T, F>(futures: Vec<F>) -> Result<T, String>
where
    F: std::future::Future<Output = Result<T, String>>,
{
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(move |cx| {
        let mut last_err = None;
        let mut i = 0;
        while i < pending.len() {
            match pending[i].as_mut().poll(cx) {
                std::task::Poll::Ready(Ok(v)) => return std::task::Poll::Ready(Ok(v)),
                std::task::Poll::Ready(Err(e)) => {
                    last_err = Some(e);
                    drop(pending.swap_remove(i));
                }
                std::task::Poll::Pending => i += 1,
            }
        }
        if pending.is_empty() {
            return std::task::Poll::Ready(Err(last_err.unwrap_or_else(|| "nothing ran".into())));
        }
        std::task::Poll::Pending
    })
    .await
}

/// Waits until member `i` (just restarted) applied everything the leader had committed when
/// it was restarted; returns the time since the restart.
async fn catch_up(
    procs: &Procs,
    view: &View,
    i: usize,
    restarted_at: Instant,
) -> Result<Duration, String> {
    let (leader, _) = view.settled_leader(procs, Duration::from_secs(30)).await?;
    let target = procs::status(&view.channels[leader], STATUS_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?
        .raft_index;
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(s) = procs::status(&view.channels[i], STATUS_TIMEOUT).await {
            if s.raft_applied_index >= target {
                return Ok(restarted_at.elapsed());
            }
        }
        if Instant::now() > until {
            return Err(format!(
                "{} did not catch up to index {target} in 60 s",
                procs.spec(i).name
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
