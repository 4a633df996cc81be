//! A 6.824-style test harness over [`sim::Cluster`], on **virtual time**.
//!
//! Owns: the 6.824 tester helpers (`check_one_leader`, `check_terms`, `check_no_leader`,
//! `n_committed`, `one`, `wait`, `crash1`/`start1`), the scaling of every 6.824 wall-clock bound
//! to our election timeout, cooperative "goroutines" ([`Task`]) interleaved with virtual time,
//! and failure messages that print the seed and the one command that replays it.
//! Must never: sleep on a real clock, use an unseeded RNG, or reach into the core's internals
//! beyond its public observers.
//!
//! # Time scaling
//!
//! The 6.824 tester measures everything against a **1 s election-timeout yardstick**
//! (`RaftElectionTimeout`). Our simulator runs the core with a 10 ms tick, `E = 15` ticks, so a
//! follower's election timeout is drawn from `[150, 300)` ms and the leader heartbeats every
//! 50 ms. The yardstick here is the largest election timeout, [`YARDSTICK_MS`] = 300 ms, and
//! every 6.824 wall-clock bound is multiplied by `YARDSTICK_MS / 1000` ([`scaled`]):
//!
//! | 6.824 (wall clock)                              | here (virtual)          |
//! |-------------------------------------------------|-------------------------|
//! | `RaftElectionTimeout` = 1 s ("sleep 1 s")       | 300 ms                  |
//! | "2 s with no commit / no leader"                | 600 ms                  |
//! | checkOneLeader: 10 rounds of 450–550 ms (~5 s)  | 10 rounds of 135–165 ms |
//! | one(): 10 s total, 2 s per attempt, 20 ms polls | 3 s, 600 ms, 6 ms       |
//! | one(): 50 ms pause when no peer accepts Start   | 15 ms                   |
//! | wait(): 10 ms doubling sleeps, capped ~1 s      | 3 ms doubling, ~300 ms  |
//! | Figure 8 sleeps: 0–499 ms (10%), else 0–12 ms   | 0–149 ms, else 0–3 ms   |
//! | churn: 0.7 s between fault rounds               | 210 ms                  |
//! | churn client polls 10/20/50/100/200 ms, 79+17·i | 3/6/15/30/60 ms, 23+5·i |
//! | labrpc unreliable jitter 0–26 ms                | 0–7 ms                  |
//! | long reordering: 2/3 of replies held 200–2200 ms| 60–660 ms               |
//! | ConcurrentStarts / Count retry pause 3 s        | 900 ms                  |
//!
//! **Counts stay absolute**: RPCs (≤ 30 to elect, ≤ 42 for the 12-`Start` burst), bytes
//! (≤ 200,000 for 10 × 5,000-byte commands), iterations (Figure 8: 1000), persisted Raft
//! state (< 2,000 bytes with a snapshot every 10 entries).
//!
//! **Idle RPCs (TestCount)**: 6.824 allows ≤ 60 RPCs in one yardstick (1 s) of idleness for 3
//! peers, i.e. ≤ 30 heartbeat rounds per election timeout to 2 followers; the handout's own
//! rule is ≤ 10 heartbeats/s = 10 rounds per yardstick. We idle for one scaled yardstick
//! (300 ms) and assert both the 6.824 count (≤ 60) and the handout's ratio (≤ 10 rounds per
//! yardstick × 2 followers = 20). Our 50 ms heartbeat gives 6 rounds per yardstick (12 RPCs) —
//! the same heartbeats-per-election-timeout ratio class as 6.824's 100 ms / 1 s.
//!
//! # Concurrency
//!
//! 6.824 goroutines become [`Task`]s: small state machines the harness wakes at their next
//! virtual time while the foreground script sleeps, waits or calls `one`. Everything runs on
//! the simulator's single thread, so an interleaving is a function of the seed.
//!
//! # Seeds, reproduction, measurements
//!
//! [`run_seeds`] runs a scenario for seeds `1..=SEEDS` (20; each seed fixes the simulator's
//! RNG and the script's own [`ScriptRng`]). A failure names the seed, the virtual time and
//! every node's state, and prints the replay command:
//! `RAFTKV_SCENARIO_SEED=<seed> cargo test --profile checked -p sim --test <file> -- --exact <test>`.
//! `RAFTKV_SCENARIO_SEEDS=N` runs seeds `1..=N` instead (stress), and
//! `RAFTKV_SCENARIO_VERBOSE=1` (with `-- --nocapture`) prints each scenario's measurements
//! (RPC counts, bytes, step-down and transfer times, snapshot sizes).
//!
//! # Indexes
//!
//! Our leaders append a no-op when elected (§5.4.2, §8); 6.824's Raft does not. Where 6.824
//! asserts an absolute index, the scenarios assert the same relation to indexes this run
//! committed; `applied`/`n_committed` report commands only, and [`Harness::is_noop`] tells
//! no-op indexes apart.
#![allow(dead_code)]

pub mod kv;

use bytes::Bytes;
use raft::{EntryId, EntryKind, LogIndex, NodeId, Role, Term};
use sim::{Cluster, LongReorder, NetConfig, SimConfig};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;

/// The largest election timeout of the simulated cluster, standing in for 6.824's 1 s
/// `RaftElectionTimeout`.
pub const YARDSTICK_MS: u64 = 300;

/// A 6.824 wall-clock duration (ms) scaled to virtual ms on our yardstick.
pub const fn scaled(ms_6824: u64) -> u64 {
    ms_6824 * YARDSTICK_MS / 1000
}

/// 6.824 `RaftElectionTimeout` (1 s), scaled.
pub const ELECTION_TIMEOUT_MS: u64 = scaled(1000);
/// The simulator's tick.
pub const TICK_MS: u64 = 10;
/// The simulator's base election timeout E (ticks); followers time out in [E, 2E).
pub const ELECTION_TICKS: u32 = 15;
/// The simulator's heartbeat interval (ticks).
pub const HEARTBEAT_TICKS: u32 = 5;

const ONE_TOTAL_MS: u64 = scaled(10_000);
const ONE_COMMIT_MS: u64 = scaled(2_000);
const ONE_POLL_MS: u64 = scaled(20);
const ONE_NO_LEADER_PAUSE_MS: u64 = scaled(50);
const LEADER_ROUND_MIN_MS: u64 = scaled(450);
const LEADER_ROUND_MAX_MS: u64 = scaled(550);
const WAIT_FIRST_SLEEP_MS: u64 = scaled(10);

/// Env var that replaces a test's seed list with one seed.
pub const SEED_ENV: &str = "RAFTKV_SCENARIO_SEED";
/// Env var that runs every scenario over seeds `1..=N` instead of its own list.
pub const SEEDS_ENV: &str = "RAFTKV_SCENARIO_SEEDS";
/// Env var that makes scenarios print their measurements (with `--nocapture`).
pub const VERBOSE_ENV: &str = "RAFTKV_SCENARIO_VERBOSE";

/// Which scenario is running, for failure messages: the test binary (file) and test name.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub file: &'static str,
    pub name: &'static str,
}

/// `scenario!("initial_election_3a")` names the current test file and the test.
#[macro_export]
macro_rules! scenario {
    ($name:literal) => {
        $crate::common::Scenario {
            file: module_path!(),
            name: $name,
        }
    };
}

impl Scenario {
    /// The one command that replays `seed`.
    pub fn repro(&self, seed: u64) -> String {
        format!(
            "{SEED_ENV}={seed} cargo test --profile checked -p sim --test {} -- --exact {}",
            self.file.split("::").next().unwrap_or(self.file),
            self.name
        )
    }
}

/// Seeds each scenario runs by default: `1..=SEEDS` (the whole suite stays at a few seconds).
pub const SEEDS: u64 = 20;

/// The seeds to run: the single seed in `RAFTKV_SCENARIO_SEED`, else `1..=N` with
/// `RAFTKV_SCENARIO_SEEDS=N` (stress runs), else `1..=default_count`.
pub fn seeds(default_count: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var(SEED_ENV) {
        return vec![s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={s} is not a u64"))];
    }
    let n = match std::env::var(SEEDS_ENV) {
        Ok(n) => n
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEEDS_ENV}={n} is not a u64")),
        Err(_) => default_count,
    };
    (1..=n).collect()
}

/// Runs `body` once per seed (see [`seeds`]); on a failure prints the seed and the replay
/// command, then re-raises the panic.
pub fn run_seeds(sc: Scenario, default_count: u64, body: impl Fn(u64)) {
    for seed in seeds(default_count) {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| body(seed))) {
            eprintln!(
                "\n*** {} FAILED with seed {seed}\n*** reproduce: {}\n",
                sc.name,
                sc.repro(seed)
            );
            resume_unwind(e);
        }
    }
}

/// Which network a scenario runs on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Net {
    /// No loss, near-zero delay (6.824 `reliable`).
    Reliable,
    /// labrpc unreliable: 10% request loss, 10% reply loss, scaled 0–26 ms jitter.
    Unreliable,
}

/// The reliable network.
pub fn net_reliable() -> NetConfig {
    NetConfig::reliable()
}

/// labrpc's unreliable mode (§4) with its jitter scaled to our yardstick.
pub fn net_unreliable() -> NetConfig {
    let mut net = NetConfig::unreliable();
    net.drop_request = 0.1;
    net.drop_response = 0.1;
    net.delay_ms = (0, scaled(26));
    net
}

/// Unreliable plus labrpc's long reordering: 2/3 of replies held 200–2,200 ms (scaled).
pub fn net_long_reordering() -> NetConfig {
    let mut net = net_unreliable();
    net.long_reorder = Some(LongReorder {
        fraction: 2.0 / 3.0,
        min_ms: scaled(200),
        max_ms: scaled(2200),
    });
    net
}

/// The simulator configuration every scenario starts from: `nodes` peers, our timing, PreVote
/// and CheckQuorum on, no snapshots.
pub fn config(nodes: usize, seed: u64, net: Net) -> SimConfig {
    let mut cfg = SimConfig::new(nodes, seed);
    cfg.tick_ms = TICK_MS;
    cfg.election_ticks = ELECTION_TICKS;
    cfg.heartbeat_ticks = HEARTBEAT_TICKS;
    cfg.pre_vote = true;
    cfg.check_quorum = true;
    cfg.snapshot_every = None;
    cfg.net = match net {
        Net::Reliable => net_reliable(),
        Net::Unreliable => net_unreliable(),
    };
    cfg
}

/// A small deterministic RNG for test scripts (SplitMix64), seeded from the scenario seed so
/// the script's choices do not perturb the simulator's own RNG stream.
#[derive(Clone, Debug)]
pub struct ScriptRng(u64);

impl ScriptRng {
    pub fn new(seed: u64) -> Self {
        ScriptRng(seed ^ 0x5EED_6824_5EED_6824)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, n)`.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }
    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `per_mille / 1000` (6.824's `rand.Int() % 1000 < p`).
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// A command whose payload is the 8-byte little-endian encoding of `x` (6.824 uses ints).
pub fn cmd(x: u64) -> Bytes {
    Bytes::copy_from_slice(&x.to_le_bytes())
}

/// Decodes a [`cmd`] payload; `None` for anything else (e.g. a no-op's empty payload).
pub fn cmd_value(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Short printable form of a command for messages.
pub fn show(b: &[u8]) -> String {
    match cmd_value(b) {
        Some(x) => format!("{x}"),
        None => format!("<{} bytes>", b.len()),
    }
}

/// A 6.824 goroutine: a state machine woken at virtual times it chooses.
pub trait Task {
    /// Do what is due at `h.now()`; return the absolute virtual time to be woken next, or
    /// `None` when finished. Must not call the harness's sleeping methods.
    fn poll(&mut self, h: &mut Harness) -> Option<u64>;
}

struct Slot {
    task: Box<dyn Task>,
    wake_ms: u64,
}

/// The 6.824 tester over one simulated cluster.
pub struct Harness {
    pub c: Cluster,
    pub sc: Scenario,
    pub seed: u64,
    pub rng: ScriptRng,
    tasks: Vec<Slot>,
}

impl Harness {
    pub fn new(sc: Scenario, cfg: SimConfig) -> Harness {
        let seed = cfg.seed;
        Harness {
            c: Cluster::new(cfg),
            sc,
            seed,
            rng: ScriptRng::new(seed),
            tasks: Vec::new(),
        }
    }

    /// Stops the test with `msg`, the seed, the virtual time and the replay command.
    #[track_caller]
    pub fn fail(&self, msg: impl AsRef<str>) -> ! {
        panic!(
            "[{} seed={} t={}ms] {}\n  nodes:{}\n  reproduce: {}",
            self.sc.name,
            self.seed,
            self.now(),
            msg.as_ref(),
            self.describe(),
            self.sc.repro(self.seed)
        )
    }

    /// One line per node: up/down, connected, role, term, last log entry, commit, applied.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for id in self.ids() {
            let conn = if self.c.is_connected(id) {
                ""
            } else {
                " (disconnected)"
            };
            match self.c.raft(id) {
                None => {
                    out += &format!(
                        "\n    {id:?}: down{conn}, applied {:?}",
                        self.c.applied_index(id)
                    )
                }
                Some(r) => {
                    let last = r.last_index();
                    out += &format!(
                        "\n    {id:?}: {:?} {:?}{conn}, last {last:?}@{:?}, commit {:?}, applied {:?}",
                        r.role(),
                        r.term(),
                        r.term_at(last),
                        r.commit_index(),
                        r.applied_index()
                    );
                }
            }
        }
        out
    }

    /// Prints a measurement when `RAFTKV_SCENARIO_VERBOSE` is set (run with `--nocapture`).
    pub fn note(&self, msg: impl AsRef<str>) {
        if std::env::var_os(VERBOSE_ENV).is_some() {
            eprintln!(
                "[{} seed={} t={}ms] {}",
                self.sc.name,
                self.seed,
                self.now(),
                msg.as_ref()
            );
        }
    }

    /// Asserts `cond`, failing with `msg` otherwise.
    #[track_caller]
    pub fn check(&self, cond: bool, msg: impl FnOnce() -> String) {
        if !cond {
            self.fail(msg());
        }
    }

    // ---- topology ------------------------------------------------------------------------

    pub fn ids(&self) -> Vec<NodeId> {
        self.c.ids()
    }
    pub fn n(&self) -> usize {
        self.c.ids().len()
    }
    /// 6.824's `(i + k) % servers` with our 1-based ids.
    pub fn peer(&self, id: NodeId, k: u64) -> NodeId {
        let n = self.n() as u64;
        NodeId((id.0 - 1 + k) % n + 1)
    }
    /// A uniformly random node (6.824 `rand.Int() % servers`).
    pub fn random_node(&mut self) -> NodeId {
        let n = self.n() as u64;
        NodeId(self.rng.below(n) + 1)
    }
    /// Up and attached to the network (6.824 `connected[i]` with `rafts[i] != nil`).
    pub fn connected(&self, id: NodeId) -> bool {
        self.c.is_up(id) && self.c.is_connected(id)
    }
    pub fn now(&self) -> u64 {
        self.c.now_ms()
    }

    pub fn disconnect(&mut self, id: NodeId) {
        self.c.disconnect(id);
    }
    pub fn connect(&mut self, id: NodeId) {
        self.c.connect(id);
    }
    /// 6.824 `crash1`: detach from the network and crash (unsynced state is lost).
    pub fn crash1(&mut self, id: NodeId) {
        self.c.disconnect(id);
        if self.c.is_up(id) {
            self.c.crash(id);
        }
    }
    /// 6.824 `start1`: crash if running, restart from durable state, and leave the node
    /// detached until the script calls [`Harness::connect`].
    pub fn start1(&mut self, id: NodeId) {
        self.crash1(id);
        self.c.restart(id);
        self.c.disconnect(id);
    }

    /// 6.824 `rafts[id].Start(cmd)`: `Some(entry id)` if `id` is up and accepted it.
    pub fn start(&mut self, id: NodeId, data: Bytes) -> Option<EntryId> {
        if !self.c.is_up(id) {
            return None;
        }
        self.c.propose(id, data).ok()
    }

    pub fn term(&self, id: NodeId) -> Option<Term> {
        self.c.raft(id).map(|r| r.term())
    }
    pub fn role(&self, id: NodeId) -> Option<Role> {
        self.c.raft(id).map(|r| r.role())
    }
    pub fn is_leader(&self, id: NodeId) -> bool {
        self.c.raft(id).is_some_and(|r| r.is_leader())
    }

    /// Largest persisted Raft state (hard state + log) over all nodes (6.824 `LogSize`).
    pub fn max_log_bytes(&self) -> usize {
        self.ids()
            .into_iter()
            .map(|id| self.c.persisted_log_bytes(id))
            .max()
            .unwrap_or(0)
    }

    /// True when some node's in-memory log holds a no-op at `index` (leader no-ops occupy
    /// indexes that 6.824's tester, whose Raft has no no-op, never sees).
    pub fn is_noop(&self, index: LogIndex) -> bool {
        self.ids().into_iter().any(|id| {
            self.c
                .raft(id)
                .and_then(|r| r.entry(index))
                .is_some_and(|e| e.kind == EntryKind::Noop)
        })
    }

    /// A fresh random command (6.824 `rand.Int()`).
    pub fn rand_cmd(&mut self) -> Bytes {
        cmd(self.rng.next_u64() >> 1)
    }

    // ---- virtual time with tasks ---------------------------------------------------------

    /// Starts a goroutine; it is first woken at the current time.
    pub fn spawn(&mut self, task: impl Task + 'static) {
        let wake_ms = self.now();
        self.tasks.push(Slot {
            task: Box::new(task),
            wake_ms,
        });
    }

    /// Number of goroutines still running.
    pub fn tasks_running(&self) -> usize {
        self.tasks.len()
    }

    fn poll_due_tasks(&mut self) {
        let now = self.now();
        if !self.tasks.iter().any(|s| s.wake_ms <= now) {
            return;
        }
        let mut tasks = std::mem::take(&mut self.tasks);
        tasks.retain_mut(|slot| {
            if slot.wake_ms > now {
                return true;
            }
            match slot.task.poll(self) {
                Some(wake) => {
                    // A task that asks to run again "now" is woken one ms later (no spin).
                    slot.wake_ms = wake.max(now + 1);
                    true
                }
                None => false,
            }
        });
        tasks.append(&mut self.tasks); // tasks spawned by tasks
        self.tasks = tasks;
    }

    fn next_task_wake(&self) -> Option<u64> {
        self.tasks.iter().map(|s| s.wake_ms).min()
    }

    /// Advances virtual time to `t_ms`, waking goroutines on time.
    pub fn sleep_until(&mut self, t_ms: u64) {
        loop {
            self.poll_due_tasks();
            let now = self.now();
            if now >= t_ms {
                // Let whatever is due "now" happen (a 0 ms sleep still yields).
                self.c.run_for(0);
                return;
            }
            let next = self
                .next_task_wake()
                .map_or(t_ms, |w| w.min(t_ms))
                .max(now + 1);
            self.c.run_for(next - now);
        }
    }

    /// 6.824 `time.Sleep(ms)` on virtual time.
    pub fn sleep(&mut self, ms: u64) {
        let t = self.now() + ms;
        self.sleep_until(t);
    }

    /// Runs until `pred` holds (checked after every simulator event) or `max_ms` pass, waking
    /// goroutines on time. Returns whether `pred` became true.
    pub fn run_until(&mut self, max_ms: u64, mut pred: impl FnMut(&Cluster) -> bool) -> bool {
        let end = self.now() + max_ms;
        loop {
            if pred(&self.c) {
                return true;
            }
            self.poll_due_tasks();
            let now = self.now();
            if now >= end {
                return pred(&self.c);
            }
            let next = self
                .next_task_wake()
                .map_or(end, |w| w.min(end))
                .max(now + 1);
            if self.c.run_until(next - now, &mut pred) {
                return true;
            }
        }
    }

    /// Waits (at most `max_ms`) for every goroutine to finish.
    pub fn join(&mut self, max_ms: u64) {
        let end = self.now() + max_ms;
        while !self.tasks.is_empty() {
            if self.now() >= end {
                self.fail(format!(
                    "{} goroutine(s) still running after {max_ms} ms",
                    self.tasks.len()
                ));
            }
            let next = self.next_task_wake().unwrap_or(end).min(end);
            self.sleep_until(next.max(self.now() + 1));
        }
    }

    // ---- the 6.824 checks ----------------------------------------------------------------

    /// Connected nodes claiming leadership, grouped by term.
    pub fn leaders_by_term(&self) -> BTreeMap<Term, Vec<NodeId>> {
        let mut by_term: BTreeMap<Term, Vec<NodeId>> = BTreeMap::new();
        for (id, term) in self.c.leaders() {
            if self.connected(id) {
                by_term.entry(term).or_default().push(id);
            }
        }
        by_term
    }

    /// 6.824 `checkOneLeader`: up to 10 rounds of a (scaled) 450–550 ms sleep; fails at once if
    /// a term has two leaders; returns the leader of the highest term; fails if none appears.
    pub fn check_one_leader(&mut self) -> NodeId {
        for _ in 0..10 {
            let ms = self.rng.range(LEADER_ROUND_MIN_MS, LEADER_ROUND_MAX_MS);
            self.sleep(ms);
            let by_term = self.leaders_by_term();
            for (term, ids) in &by_term {
                if ids.len() > 1 {
                    self.fail(format!(
                        "term {term} has {} (>1) leaders: {ids:?}",
                        ids.len()
                    ));
                }
            }
            if let Some((_, ids)) = by_term.iter().next_back() {
                return ids[0];
            }
        }
        self.fail(format!(
            "expected one leader, got none after 10 rounds (~{} ms)",
            10 * (LEADER_ROUND_MIN_MS + LEADER_ROUND_MAX_MS) / 2
        ))
    }

    /// 6.824 `checkTerms`: all connected nodes agree on the term; returns it.
    pub fn check_terms(&self) -> Term {
        let terms: Vec<(NodeId, Term)> = self
            .ids()
            .into_iter()
            .filter(|&id| self.connected(id))
            .filter_map(|id| Some((id, self.term(id)?)))
            .collect();
        let Some(&(_, t0)) = terms.first() else {
            self.fail("check_terms: no connected node")
        };
        if terms.iter().any(|&(_, t)| t != t0) {
            self.fail(format!("servers disagree on term: {terms:?}"));
        }
        t0
    }

    /// 6.824 `checkNoLeader`: no connected node believes it is leader.
    pub fn check_no_leader(&self) {
        for id in self.ids() {
            if self.connected(id) && self.is_leader(id) {
                self.fail(format!(
                    "expected no leader among connected servers, but {id:?} claims to be leader"
                ));
            }
        }
    }

    /// 6.824 `nCommitted(index)`: how many nodes applied an entry at `index`, and which one.
    /// (The simulator itself fails on two nodes applying different entries at one index.)
    pub fn n_committed(&self, index: LogIndex) -> (usize, Option<Bytes>) {
        self.c.n_committed(index)
    }

    /// 6.824 `one(cmd, expectedServers, retry)`; returns the index the command committed at.
    pub fn one(&mut self, data: Bytes, expected: usize, retry: bool) -> LogIndex {
        let result = Rc::new(Cell::new(None));
        let mut op = One::new(self, data, expected, retry, result.clone());
        while let Some(wake) = op.poll(self) {
            self.sleep_until(wake.max(self.now() + 1));
        }
        result.get().expect("one() finished without an index")
    }

    /// Starts a 6.824 `go cfg.one(...)`; the index lands in the returned cell when done.
    pub fn spawn_one(
        &mut self,
        data: Bytes,
        expected: usize,
        retry: bool,
    ) -> Rc<Cell<Option<LogIndex>>> {
        let result = Rc::new(Cell::new(None));
        let op = One::new(self, data, expected, retry, result.clone());
        self.spawn(op);
        result
    }

    /// 6.824 `wait(index, n, startTerm)`: polls with doubling sleeps (scaled) until `n` nodes
    /// applied `index`; `None` if some node's term moved past `start_term` first; fails if fewer
    /// than `n` applied it in the end.
    pub fn wait(&mut self, index: LogIndex, n: usize, start_term: Option<Term>) -> Option<Bytes> {
        let mut to = WAIT_FIRST_SLEEP_MS;
        for _ in 0..30 {
            if self.n_committed(index).0 >= n {
                break;
            }
            self.sleep(to);
            if to < ELECTION_TIMEOUT_MS {
                to *= 2;
            }
            if let Some(st) = start_term {
                if self
                    .ids()
                    .into_iter()
                    .any(|id| self.term(id).is_some_and(|t| t > st))
                {
                    return None;
                }
            }
        }
        let (nd, data) = self.n_committed(index);
        if nd < n {
            self.fail(format!("only {nd} decided for index {index:?}; wanted {n}"));
        }
        data
    }

    /// Proposes `data` on `id` (which must accept) and waits up to one()'s per-attempt budget
    /// for `n` nodes to apply it at that index.
    pub fn commit_on(&mut self, id: NodeId, data: Bytes, n: usize) -> LogIndex {
        let Some(e) = self.start(id, data.clone()) else {
            self.fail(format!(
                "{id:?} refused Start({}) (role {:?})",
                show(&data),
                self.role(id)
            ))
        };
        let ok = self.run_until(ONE_COMMIT_MS, |c| {
            let (nd, got) = c.n_committed(e.index);
            nd >= n && got.as_ref() == Some(&data)
        });
        if !ok {
            let (nd, _) = self.n_committed(e.index);
            self.fail(format!(
                "Start({}) on {id:?} at {:?} applied on {nd} < {n} nodes",
                show(&data),
                e.index
            ));
        }
        e.index
    }

    /// The largest commit index any node has (a read started now must return at least this).
    pub fn max_commit(&self) -> LogIndex {
        self.ids()
            .into_iter()
            .filter_map(|id| self.c.raft(id).map(|r| r.commit_index()))
            .max()
            .unwrap_or_default()
    }

    /// Commands applied by `id`, decoded (no-ops and foreign payloads skipped).
    pub fn applied_values(&self, id: NodeId) -> Vec<u64> {
        self.c
            .applied(id)
            .iter()
            .filter_map(|(_, d)| cmd_value(d))
            .collect()
    }
}

/// The state machine behind `one()`: offer the command to each connected node in turn until
/// one accepts, then poll for it to be applied on `expected` nodes at that index.
pub struct One {
    data: Bytes,
    expected: usize,
    retry: bool,
    t0_ms: u64,
    cursor: usize,
    waiting: Option<(LogIndex, u64)>,
    result: Rc<Cell<Option<LogIndex>>>,
}

impl One {
    fn new(
        h: &Harness,
        data: Bytes,
        expected: usize,
        retry: bool,
        result: Rc<Cell<Option<LogIndex>>>,
    ) -> One {
        One {
            data,
            expected,
            retry,
            t0_ms: h.now(),
            cursor: 0,
            waiting: None,
            result,
        }
    }
}

impl Task for One {
    fn poll(&mut self, h: &mut Harness) -> Option<u64> {
        let now = h.now();
        loop {
            if let Some((index, since_ms)) = self.waiting {
                let (nd, got) = h.n_committed(index);
                if nd > 0 && nd >= self.expected && got.as_ref() == Some(&self.data) {
                    self.result.set(Some(index));
                    return None;
                }
                if now - since_ms < ONE_COMMIT_MS {
                    return Some(now + ONE_POLL_MS);
                }
                if !self.retry {
                    h.fail(format!(
                        "one({}) failed to reach agreement: index {index:?} applied on {nd} < {} nodes \
                         (or a different command: {:?}) within {ONE_COMMIT_MS} ms, no retry",
                        show(&self.data),
                        self.expected,
                        got.map(|g| show(&g))
                    ));
                }
                self.waiting = None;
            }
            if now - self.t0_ms >= ONE_TOTAL_MS {
                h.fail(format!(
                    "one({}) failed to reach agreement on {} nodes within {ONE_TOTAL_MS} ms",
                    show(&self.data),
                    self.expected
                ));
            }
            let ids = h.ids();
            for _ in 0..ids.len() {
                self.cursor = (self.cursor + 1) % ids.len();
                let id = ids[self.cursor];
                if h.connected(id) {
                    if let Some(e) = h.start(id, self.data.clone()) {
                        self.waiting = Some((e.index, now));
                        break;
                    }
                }
            }
            if self.waiting.is_none() {
                return Some(now + ONE_NO_LEADER_PAUSE_MS);
            }
        }
    }
}

/// Values a churn client saw committed (shared with the script).
pub type Seen = Rc<RefCell<Vec<u64>>>;

/// The TestBackup3B script (6.824 `TestBackup3B`). `on_rejoin` runs right after the original
/// leader, its follower and the last cut-off peer are reconnected (before their 50 commits).
pub fn backup_script(h: &mut Harness, mut on_rejoin: impl FnMut(&mut Harness, [NodeId; 3])) {
    let c = h.rand_cmd();
    h.one(c, 5, true);

    // Put leader and one follower in a partition.
    let leader1 = h.check_one_leader();
    for k in 2..=4 {
        h.disconnect(h.peer(leader1, k));
    }

    // Submit lots of commands that won't commit.
    for _ in 0..50 {
        let c = h.rand_cmd();
        h.start(leader1, c);
    }
    h.sleep(ELECTION_TIMEOUT_MS / 2);
    h.disconnect(leader1);
    h.disconnect(h.peer(leader1, 1));

    // Allow other partition to recover.
    for k in 2..=4 {
        h.connect(h.peer(leader1, k));
    }

    // Lots of successful commands to new group.
    for _ in 0..50 {
        let c = h.rand_cmd();
        h.one(c, 3, true);
    }

    // Now another partitioned leader and one follower.
    let leader2 = h.check_one_leader();
    let mut other = h.peer(leader1, 2);
    if leader2 == other {
        other = h.peer(leader2, 1);
    }
    h.disconnect(other);

    // Lots more commands that won't commit.
    for _ in 0..50 {
        let c = h.rand_cmd();
        h.start(leader2, c);
    }
    h.sleep(ELECTION_TIMEOUT_MS / 2);

    // Bring original leader back to life.
    for id in h.ids() {
        h.disconnect(id);
    }
    let side = [leader1, h.peer(leader1, 1), other];
    for id in side {
        h.connect(id);
    }
    on_rejoin(h, side);

    // Lots of successful commands to new group.
    for _ in 0..50 {
        let c = h.rand_cmd();
        h.one(c, 3, true);
    }

    // Now everyone.
    for id in h.ids() {
        h.connect(id);
    }
    let c = h.rand_cmd();
    h.one(c, 5, true);
}
