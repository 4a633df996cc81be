//! [`KvSim`]: the KV service on a simulated cluster, driven by 6.824-style clerks in virtual
//! time, every operation recorded in a [`check::History`].
//!
//! A clerk ([`ClerkId`]) has an exactly-once session (its client id and a sequence number per
//! write) and a shuffled list of the servers it may reach (6.824 `makeClient(to)`). One
//! operation at a time, it sends the request to the server it believes leads; that node
//! - for `Put`/`Append`: proposes `kv::Command::with_session(request, client, seq)` and
//!   answers once the entry applied, with the KV state machine's reply;
//! - for `Get`: starts a ReadIndex and, once the node applied the read index, answers from its
//!   own `KvStateMachine` (a linearizable read, not through the log).
//!
//! `NotLeader` (with a hint, taken when the clerk may reach it), a failed proposal or read, a
//! lost message or no answer within [`ClerkConfig::attempt_timeout_ms`] make the clerk try the
//! next server, retrying a write with the **same** sequence number until it gets a reply;
//! after a whole round of servers failed it pauses [`ClerkConfig::round_backoff_ms`].
//!
//! The client ↔ server network is labrpc's with long delays off: each message takes the
//! cluster's [`NetConfig`] delay and may be lost (`drop_request` / `drop_response`; the clerk
//! learns of a loss when the reply would have come, as labrpc's `Call` returning false) or, on
//! a duplicating network, delivered twice; a server that is down or disconnected fails the call
//! after 0–[`ClerkConfig::unreachable_fail_ms_max`] ms. Requests that arrive after the clerk
//! gave up on them are still handled by the server (a late duplicate write is proposed, and the
//! session table must refuse to apply it twice). Server-to-server partitions do not cut clerks
//! off: as in 6.824's `partition`, a clerk reaches every server in its list that is up and
//! connected.
//!
//! History times are simulated microseconds: the event's ms × 1000 plus its order within that
//! ms, so an operation precedes another exactly when it returned, in simulated order, before
//! the other was invoked. Operations still outstanding stay pending (may or may not apply).
//!
//! ```
//! use sim::{KvOp, KvReply, KvSim, SimConfig};
//! let mut k = KvSim::new(SimConfig::new(3, 7)); // the KV service on 3 nodes
//! let all = k.cluster().ids();
//! let ck = k.add_clerk(&all);
//! assert_eq!(k.call(ck, KvOp::append("k", "a"), 5_000), Some(KvReply::Written));
//! k.cluster_mut().crash(all[0]); // maybe the leader: the clerk fails over
//! assert_eq!(k.call(ck, KvOp::append("k", "b"), 5_000), Some(KvReply::Written));
//! let got = k.call(ck, KvOp::get("k"), 5_000);
//! assert_eq!(got, Some(KvReply::Value(Some("ab".into()))));
//! assert!(check::check(&k.operations()).is_ok());
//! ```
//!
//! Owns: the clerks, their programs ([`Program`]), the client network, the history, and the
//! matching of node completions to clerk attempts.
//! Must never: read the wall clock or any randomness but the cluster's seeded RNG, reach into a
//! node beyond `Cluster`'s public calls, or let an exactly-once violation (a write of the
//! current sequence answered with an error) pass without failing the run.

use crate::cluster::Cluster;
use crate::config::{NetConfig, SimConfig};
use bytes::Bytes;
use check::{History, Input, OpId, Operation, Output};
use kv::{decode_result, AppendRequest, Command, KvConfig, PutRequest, RangeRequest, Response};
use raft::{NodeId, ProposeError};
use rand::seq::SliceRandom;
use rand::Rng;
use replica::Completion;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    Get { key: Bytes },
    Put { key: Bytes, value: Bytes },
    Append { key: Bytes, suffix: Bytes },
}

impl KvOp {
    pub fn get(key: impl Into<Bytes>) -> KvOp {
        KvOp::Get { key: key.into() }
    }
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>) -> KvOp {
        KvOp::Put {
            key: key.into(),
            value: value.into(),
        }
    }
    pub fn append(key: impl Into<Bytes>, suffix: impl Into<Bytes>) -> KvOp {
        KvOp::Append {
            key: key.into(),
            suffix: suffix.into(),
        }
    }

    pub fn key(&self) -> &Bytes {
        match self {
            KvOp::Get { key } | KvOp::Put { key, .. } | KvOp::Append { key, .. } => key,
        }
    }

    pub fn is_write(&self) -> bool {
        !matches!(self, KvOp::Get { .. })
    }

    /// The checker's view of it.
    pub fn input(&self) -> Input {
        match self {
            KvOp::Get { key } => Input::get(key.to_vec()),
            KvOp::Put { key, value } => Input::put(key.to_vec(), value.to_vec()),
            KvOp::Append { key, suffix } => Input::append(key.to_vec(), suffix.to_vec()),
        }
    }

    /// The log entry of this write, as number `seq` of `client_id`'s session (`None`: no
    /// session).
    fn command(&self, session: Option<(u64, u64)>) -> Bytes {
        let request: kv::Request = match self {
            KvOp::Put { key, value } => PutRequest::new(key.clone(), value.clone()).into(),
            KvOp::Append { key, suffix } => AppendRequest::new(key.clone(), suffix.clone()).into(),
            KvOp::Get { .. } => unreachable!("a Get is not logged"),
        };
        match session {
            Some((client_id, seq)) => Command::with_session(request, client_id, seq),
            None => Command::new(request),
        }
        .encode()
    }
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvReply {
    /// A `Get`: the value, `None` when the key is absent.
    Value(Option<Bytes>),
    /// A `Put` or `Append` was applied (exactly once).
    Written,
}

impl KvReply {
    fn output(&self) -> Output {
        match self {
            KvReply::Value(v) => Output::Value(v.as_ref().map(|b| b.to_vec())),
            KvReply::Written => Output::Written,
        }
    }
}

/// A clerk, by its position in [`KvSim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClerkId(pub usize);

/// A scripted operation, to ask for its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// A completed scripted operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    pub reply: KvReply,
    pub call_ms: u64,
    pub ret_ms: u64,
}

/// A clerk's retry timing (simulated ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClerkConfig {
    /// Give up on an attempt that got no answer after this long.
    pub attempt_timeout_ms: u64,
    /// A call to a server that is down or disconnected fails after 0 to this many ms.
    pub unreachable_fail_ms_max: u64,
    /// Pause after a whole round of servers failed.
    pub round_backoff_ms: u64,
    /// Gets go through ReadIndex (on: linearizable). Off — only for the negative controls
    /// that prove the checks catch stale reads — a node answers from whatever it applied.
    pub read_index: bool,
    /// Writes carry the clerk's session (on: exactly once). Off — only for the negative
    /// controls that prove the checks catch duplicates — a retried write may apply twice.
    pub sessions: bool,
}

impl ClerkConfig {
    /// Timing on the cluster's election-timeout yardstick `Y` = the largest election timeout
    /// (2·E ticks; 300 ms for [`SimConfig::new`]), which stands for 6.824's 1 s: an attempt
    /// waits `2Y/3` (200 ms, a kvserver's wait for its entry to apply), an unreachable server
    /// fails the call within `Y/10` (labrpc's 0–99 ms), a failed round pauses two ticks.
    pub fn for_sim(cfg: &SimConfig) -> ClerkConfig {
        let y = yardstick_ms(cfg);
        ClerkConfig {
            attempt_timeout_ms: 2 * y / 3,
            unreachable_fail_ms_max: y / 10,
            round_backoff_ms: 2 * cfg.tick_ms,
            read_index: true,
            sessions: true,
        }
    }
}

/// The largest election timeout of `cfg` (2·E ticks): the yardstick standing for 6.824's
/// 1 s `electionTimeout`.
pub fn yardstick_ms(cfg: &SimConfig) -> u64 {
    2 * u64::from(cfg.election_ticks) * cfg.tick_ms
}

/// What a clerk does on its own, one operation after another, until stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// 6.824 `GenericTest`'s client loop (see [`GenericClient`]).
    Generic(GenericClient),
    /// 6.824 `TestUnreliableOneKey`: `upto` appends of `"x <me> <n> y"` to `key`.
    Appends {
        key: Bytes,
        me: u64,
        next: u64,
        upto: u64,
    },
}

/// 6.824 `GenericTest`'s client body, client `cli` of `nclients`:
/// - without random keys: key = `cli`, first `Put(key, "")`; then 50% `Append(key, "x cli j
///   y")`, else `Get(key)`, which must equal the value the client predicts (it alone writes
///   the key);
/// - with random keys: key uniform over the `nclients` keys; 50% append, 10% of the rest
///   `Put(key, "x cli j y")`, else `Get`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericClient {
    pub cli: u64,
    pub nclients: u64,
    pub random_keys: bool,
    /// Appends (and puts) issued so far: 6.824's `j`.
    pub j: u64,
    /// The predicted value of the client's own key (without random keys).
    pub last: Vec<u8>,
    started: bool,
}

impl GenericClient {
    pub fn new(cli: u64, nclients: u64, random_keys: bool) -> Self {
        GenericClient {
            cli,
            nclients,
            random_keys,
            j: 0,
            last: Vec::new(),
            started: false,
        }
    }

    /// The client's own key (6.824 `strconv.Itoa(cli)`).
    pub fn own_key(&self) -> Bytes {
        Bytes::from(self.cli.to_string())
    }

    /// The value of the `j`-th append of client `cli`.
    pub fn element(cli: u64, j: u64) -> String {
        format!("x {cli} {j} y")
    }

    fn next(&mut self, rng: &mut impl Rng) -> KvOp {
        if !self.started {
            self.started = true;
            if !self.random_keys {
                return KvOp::put(self.own_key(), "");
            }
        }
        let key = if self.random_keys {
            Bytes::from(rng.gen_range(0..self.nclients).to_string())
        } else {
            self.own_key()
        };
        let nv = GenericClient::element(self.cli, self.j);
        if rng.gen_range(0..1000) < 500 {
            if !self.random_keys {
                self.last.extend_from_slice(nv.as_bytes());
            }
            self.j += 1;
            KvOp::append(key, nv)
        } else if self.random_keys && rng.gen_range(0..1000) < 100 {
            self.j += 1;
            KvOp::put(key, nv)
        } else {
            KvOp::get(key)
        }
    }

    /// 6.824: "get wrong value" — a Get of the client's own key must equal its prediction.
    fn check(&self, op: &KvOp, reply: &KvReply) -> Result<(), String> {
        if self.random_keys || op.is_write() {
            return Ok(());
        }
        let want = KvReply::Value(Some(Bytes::from(self.last.clone())));
        if *reply != want {
            return Err(format!(
                "client {}: get wrong value, key {:?}, wanted {:?}, got {:?}",
                self.cli,
                op.key(),
                String::from_utf8_lossy(&self.last),
                reply
            ));
        }
        Ok(())
    }
}

impl Program {
    /// Check the reply to the program's last operation.
    fn check(&self, op: &KvOp, reply: &KvReply) -> Result<(), String> {
        match self {
            Program::Generic(g) => g.check(op, reply),
            Program::Appends { .. } => Ok(()),
        }
    }

    /// The next operation (`None`: finished).
    fn next(&mut self, rng: &mut impl Rng) -> Option<KvOp> {
        match self {
            Program::Generic(g) => Some(g.next(rng)),
            Program::Appends {
                key,
                me,
                next,
                upto,
            } => {
                if *next >= *upto {
                    return None;
                }
                *next += 1;
                let suffix = GenericClient::element(*me, *next - 1);
                Some(KvOp::append(key.clone(), suffix))
            }
        }
    }
}

/// Counts over the whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStats {
    pub ops_started: u64,
    pub ops_completed: u64,
    /// Attempts sent (the first try of an operation and every retry).
    pub attempts: u64,
    pub retries_wrong_leader: u64,
    pub retries_failed: u64,
    pub retries_timeout: u64,
    pub requests_lost: u64,
    pub replies_lost: u64,
    pub requests_duplicated: u64,
    /// Requests that reached a server after their clerk had given up on them.
    pub late_requests: u64,
}

struct InFlight {
    op: KvOp,
    ticket: Option<Ticket>,
    hist: OpId,
    /// The session sequence number of a write (0 for a read).
    seq: u64,
    attempt: u64,
    /// An attempt is outstanding (else the clerk waits to send the next one).
    live: bool,
    call_ms: u64,
}

struct Clerk {
    client_id: u64,
    servers: Vec<NodeId>,
    leader: usize,
    seq: u64,
    failures_in_row: usize,
    op: Option<InFlight>,
    program: Option<Program>,
    stopping: bool,
    /// The operation the clerk had in flight when it died (it stays pending).
    abandoned: Option<KvOp>,
}

#[derive(Clone, Debug)]
enum Outcome {
    Ok(KvReply),
    WrongLeader(Option<NodeId>),
    Failed,
}

#[derive(Clone, Debug)]
enum Body {
    Write(Bytes),
    Read(Bytes),
}

enum EvKind {
    Request {
        clerk: usize,
        attempt: u64,
        node: NodeId,
        body: Body,
    },
    Reply {
        clerk: usize,
        attempt: u64,
        outcome: Outcome,
    },
    Timeout {
        clerk: usize,
        attempt: u64,
    },
    Retry {
        clerk: usize,
        attempt: u64,
    },
}

struct Ev {
    at_ms: u64,
    seq: u64,
    kind: EvKind,
}

impl PartialEq for Ev {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}
impl Eq for Ev {}
impl PartialOrd for Ev {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ev {
    /// Reversed, so `BinaryHeap` pops the earliest `(time, seq)` first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ms, other.seq).cmp(&(self.at_ms, self.seq))
    }
}

/// An attempt waiting at a node: which clerk, which attempt (and, for a read, its key).
struct Waiting {
    clerk: usize,
    attempt: u64,
    key: Option<Bytes>,
}

/// Read contexts start here, far from any token a test script picks.
const READ_CTX_BASE: u64 = 1 << 48;

/// The KV service on a [`Cluster`] with clerks. See the module docs.
pub struct KvSim {
    c: Cluster,
    cfg: ClerkConfig,
    clerks: Vec<Clerk>,
    history: History,
    queue: BinaryHeap<Ev>,
    ev_seq: u64,
    /// Per node: completions already looked at.
    cursors: Vec<usize>,
    /// (node index, proposal token or read ctx) → the attempt waiting for it.
    waiting: BTreeMap<(usize, u64), Waiting>,
    next_ctx: u64,
    next_attempt: u64,
    next_ticket: u64,
    done: BTreeMap<Ticket, Done>,
    /// (ms, history stamps taken at it).
    stamp: (u64, u64),
    stats: KvStats,
    repro: String,
}

impl KvSim {
    /// A cluster running the KV service (`cfg.kv` defaults to [`KvConfig::default`]) and no
    /// clerks yet.
    pub fn new(mut cfg: SimConfig) -> KvSim {
        cfg.kv.get_or_insert_with(KvConfig::default);
        let clerk_cfg = ClerkConfig::for_sim(&cfg);
        let nodes = cfg.nodes;
        let seed = cfg.seed;
        KvSim {
            c: Cluster::new(cfg),
            cfg: clerk_cfg,
            clerks: Vec::new(),
            history: History::new(),
            queue: BinaryHeap::new(),
            ev_seq: 0,
            cursors: vec![0; nodes],
            waiting: BTreeMap::new(),
            next_ctx: READ_CTX_BASE,
            next_attempt: 1,
            next_ticket: 1,
            done: BTreeMap::new(),
            stamp: (0, 0),
            stats: KvStats::default(),
            repro: format!("(seed {seed})"),
        }
    }

    /// The command printed by failures to replay this run.
    pub fn set_repro(&mut self, repro: impl Into<String>) {
        self.repro = repro.into();
    }

    pub fn repro(&self) -> &str {
        &self.repro
    }

    pub fn set_clerk_config(&mut self, cfg: ClerkConfig) {
        self.cfg = cfg;
    }

    pub fn clerk_config(&self) -> ClerkConfig {
        self.cfg
    }

    pub fn cluster(&self) -> &Cluster {
        &self.c
    }

    /// For faults and observation: partitions, crashes, restarts, network changes.
    pub fn cluster_mut(&mut self) -> &mut Cluster {
        &mut self.c
    }

    pub fn now_ms(&self) -> u64 {
        self.c.now_ms()
    }

    pub fn seed(&self) -> u64 {
        self.c.seed()
    }

    pub fn stats(&self) -> &KvStats {
        &self.stats
    }

    /// Every operation so far (outstanding ones pending), in invocation order.
    pub fn operations(&self) -> Vec<Operation> {
        self.history.operations()
    }

    /// Stop the run: what went wrong, the seed, the time, every node, and the replay command.
    #[track_caller]
    pub fn fail(&self, what: impl AsRef<str>) -> ! {
        panic!(
            "[kv seed={} t={}ms] {}\n  nodes:\n{}  reproduce: {}",
            self.c.seed(),
            self.c.now_ms(),
            what.as_ref(),
            self.c.describe(),
            self.repro
        )
    }

    // ----- clerks -----

    /// A new clerk with a fresh session that may reach `servers` (shuffled, as 6.824's
    /// `random_handles`; it first tries the first of them).
    pub fn add_clerk(&mut self, servers: &[NodeId]) -> ClerkId {
        assert!(!servers.is_empty(), "a clerk needs a server to talk to");
        let mut servers = servers.to_vec();
        servers.shuffle(self.c.rng());
        self.clerks.push(Clerk {
            client_id: self.clerks.len() as u64 + 1,
            servers,
            leader: 0,
            seq: 0,
            failures_in_row: 0,
            op: None,
            program: None,
            stopping: false,
            abandoned: None,
        });
        ClerkId(self.clerks.len() - 1)
    }

    /// 6.824 `ConnectClient(ck, to)`: the servers the clerk may reach from now on.
    pub fn set_servers(&mut self, clerk: ClerkId, servers: &[NodeId]) {
        let mut servers = servers.to_vec();
        servers.shuffle(self.c.rng());
        let ck = &mut self.clerks[clerk.0];
        ck.servers = servers;
        ck.leader = 0;
    }

    /// The client id of the clerk's session (also its client id in the history).
    pub fn client_id(&self, clerk: ClerkId) -> u64 {
        self.clerks[clerk.0].client_id
    }

    pub fn is_idle(&self, clerk: ClerkId) -> bool {
        self.clerks[clerk.0].op.is_none()
    }

    /// Whether every clerk is idle (programs finished or stopped).
    pub fn all_idle(&self) -> bool {
        self.clerks.iter().all(|c| c.op.is_none())
    }

    /// Invoke `op` on an idle clerk; its result appears in [`KvSim::result`].
    pub fn start(&mut self, clerk: ClerkId, op: KvOp) -> Ticket {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.begin(clerk.0, op, Some(ticket));
        ticket
    }

    /// A scripted operation's result, once it completed.
    pub fn result(&self, ticket: Ticket) -> Option<&Done> {
        self.done.get(&ticket)
    }

    /// Invoke `op` and run until it completes (`Some(reply)`) or `max_ms` pass (`None`: it
    /// stays outstanding, and the clerk busy).
    pub fn call(&mut self, clerk: ClerkId, op: KvOp, max_ms: u64) -> Option<KvReply> {
        let t = self.start(clerk, op);
        self.run_until(max_ms, |k| k.result(t).is_some());
        self.result(t).map(|d| d.reply.clone())
    }

    /// Let the clerk run `program` on its own from now on (it must be idle).
    pub fn run_program(&mut self, clerk: ClerkId, program: Program) {
        assert!(self.is_idle(clerk), "a clerk runs one program at a time");
        let ck = &mut self.clerks[clerk.0];
        ck.program = Some(program);
        ck.stopping = false;
        self.next_from_program(clerk.0, None);
    }

    /// Tell every program to stop: each clerk finishes the operation it has in flight, then
    /// idles (6.824's `done_clients`).
    pub fn stop_programs(&mut self) {
        for ck in &mut self.clerks {
            ck.stopping = true;
        }
    }

    /// The clerk dies: the operation it has in flight is never completed (it stays pending in
    /// the history: it may or may not take effect, now or later, as a request still on the
    /// wire may yet be applied), and it starts nothing more. Returns that operation.
    pub fn abandon(&mut self, clerk: ClerkId) -> Option<KvOp> {
        let ck = &mut self.clerks[clerk.0];
        ck.stopping = true;
        let op = ck.op.take().map(|f| f.op);
        if op.is_some() {
            ck.abandoned = op.clone();
        }
        op
    }

    /// The operation the clerk abandoned when it died, if any.
    pub fn abandoned(&self, clerk: ClerkId) -> Option<&KvOp> {
        self.clerks[clerk.0].abandoned.as_ref()
    }

    /// The clerk's program (its state, e.g. a [`GenericClient`]'s `j`).
    pub fn program(&self, clerk: ClerkId) -> Option<&Program> {
        self.clerks[clerk.0].program.as_ref()
    }

    // ----- time -----

    /// Advance virtual time by `ms`.
    pub fn run_for(&mut self, ms: u64) {
        self.run_until(ms, |_| false);
    }

    /// Run until `pred` holds (checked after every cluster and client event) or `max_ms`
    /// pass; returns whether it held.
    pub fn run_until(&mut self, max_ms: u64, mut pred: impl FnMut(&KvSim) -> bool) -> bool {
        let end = self.c.now_ms() + max_ms;
        loop {
            if pred(self) {
                return true;
            }
            let now = self.c.now_ms();
            if self.queue.peek().is_some_and(|e| e.at_ms <= now) {
                let ev = self.queue.pop().expect("peeked");
                self.process(ev);
                continue;
            }
            if now >= end {
                return false;
            }
            let next = self.queue.peek().map_or(end, |e| e.at_ms.min(end));
            let seen = self.c.completions_total();
            self.c
                .run_until(next - now, |c| c.completions_total() != seen);
            self.collect_completions();
        }
    }

    // ----- internals -----

    fn schedule(&mut self, at_ms: u64, kind: EvKind) {
        self.ev_seq += 1;
        self.queue.push(Ev {
            at_ms,
            seq: self.ev_seq,
            kind,
        });
    }

    /// A history time: simulated µs, ordered like the events that take them.
    fn stamp(&mut self) -> u64 {
        let now = self.c.now_ms();
        if self.stamp.0 != now {
            self.stamp = (now, 0);
        }
        let t = now * 1000 + self.stamp.1.min(999);
        self.stamp.1 += 1;
        t
    }

    fn net(&self) -> &NetConfig {
        self.c.net()
    }

    fn delay_ms(&mut self) -> u64 {
        let (lo, hi) = self.net().delay_ms;
        if hi > lo {
            self.c.rng().gen_range(lo..=hi)
        } else {
            lo
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.c.rng().gen_bool(p.min(1.0))
    }

    fn reachable(&self, node: NodeId) -> bool {
        self.c.is_up(node) && self.c.is_connected(node)
    }

    fn begin(&mut self, clerk: usize, op: KvOp, ticket: Option<Ticket>) {
        assert!(
            self.clerks[clerk].op.is_none(),
            "clerk {clerk} already has an operation in flight"
        );
        let seq = if op.is_write() {
            self.clerks[clerk].seq += 1;
            self.clerks[clerk].seq
        } else {
            0
        };
        let call = self.stamp();
        let hist = self
            .history
            .invoke(self.clerks[clerk].client_id, op.input(), call);
        self.stats.ops_started += 1;
        self.clerks[clerk].op = Some(InFlight {
            op,
            ticket,
            hist,
            seq,
            attempt: 0,
            live: false,
            call_ms: self.c.now_ms(),
        });
        self.send_attempt(clerk);
    }

    /// Send the clerk's operation to the server it believes leads.
    fn send_attempt(&mut self, clerk: usize) {
        let attempt = self.next_attempt;
        self.next_attempt += 1;
        self.stats.attempts += 1;
        let ck = &mut self.clerks[clerk];
        let node = ck.servers[ck.leader % ck.servers.len()];
        let client_id = ck.client_id;
        let f = ck.op.as_mut().expect("an operation in flight");
        f.attempt = attempt;
        f.live = true;
        let session = self.cfg.sessions.then_some((client_id, f.seq));
        let body = match &f.op {
            KvOp::Get { key } => Body::Read(key.clone()),
            op => Body::Write(op.command(session)),
        };
        let now = self.c.now_ms();
        let timeout = now + self.cfg.attempt_timeout_ms;
        self.schedule(timeout, EvKind::Timeout { clerk, attempt });
        if !self.reachable(node) {
            self.unreachable(clerk, attempt);
            return;
        }
        let drop = self.net().drop_request;
        if self.chance(drop) {
            self.stats.requests_lost += 1;
            let at = now + self.delay_ms();
            let outcome = Outcome::Failed;
            self.schedule(
                at,
                EvKind::Reply {
                    clerk,
                    attempt,
                    outcome,
                },
            );
            return;
        }
        let dup = self.net().duplicate;
        let copies = if self.chance(dup) { 2 } else { 1 };
        for _ in 0..copies {
            let at = now + self.delay_ms();
            let body = body.clone();
            self.schedule(
                at,
                EvKind::Request {
                    clerk,
                    attempt,
                    node,
                    body,
                },
            );
        }
        self.stats.requests_duplicated += copies - 1;
    }

    /// labrpc: a call to a server that is gone fails after 0–99 ms (scaled).
    fn unreachable(&mut self, clerk: usize, attempt: u64) {
        let max = self.cfg.unreachable_fail_ms_max;
        let at = self.c.now_ms() + self.c.rng().gen_range(0..=max);
        let outcome = Outcome::Failed;
        self.schedule(
            at,
            EvKind::Reply {
                clerk,
                attempt,
                outcome,
            },
        );
    }

    /// A server answers attempt `attempt` of `clerk` now: the reply may be lost (the clerk
    /// then sees a failed call when it would have arrived).
    fn reply(&mut self, clerk: usize, attempt: u64, outcome: Outcome) {
        let at = self.c.now_ms() + self.delay_ms();
        let drop = self.net().drop_response;
        let outcome = if self.chance(drop) {
            self.stats.replies_lost += 1;
            Outcome::Failed
        } else {
            outcome
        };
        self.schedule(
            at,
            EvKind::Reply {
                clerk,
                attempt,
                outcome,
            },
        );
    }

    fn current(&self, clerk: usize, attempt: u64) -> bool {
        self.clerks[clerk]
            .op
            .as_ref()
            .is_some_and(|f| f.live && f.attempt == attempt)
    }

    fn process(&mut self, ev: Ev) {
        match ev.kind {
            EvKind::Request {
                clerk,
                attempt,
                node,
                body,
            } => self.arrive(clerk, attempt, node, body),
            EvKind::Reply {
                clerk,
                attempt,
                outcome,
            } => {
                if self.current(clerk, attempt) {
                    self.outcome(clerk, outcome);
                }
            }
            EvKind::Timeout { clerk, attempt } => {
                if self.current(clerk, attempt) {
                    self.stats.retries_timeout += 1;
                    self.retry(clerk, None);
                }
            }
            EvKind::Retry { clerk, attempt } => {
                let waiting = self.clerks[clerk]
                    .op
                    .as_ref()
                    .is_some_and(|f| !f.live && f.attempt == attempt);
                if waiting {
                    self.send_attempt(clerk);
                }
            }
        }
    }

    /// A request reaches `node`.
    fn arrive(&mut self, clerk: usize, attempt: u64, node: NodeId, body: Body) {
        if !self.reachable(node) {
            if self.current(clerk, attempt) {
                self.unreachable(clerk, attempt);
            }
            return;
        }
        let late = !self.current(clerk, attempt);
        let n = node.0 as usize - 1;
        match body {
            Body::Write(cmd) => {
                if late {
                    self.stats.late_requests += 1;
                }
                match self.c.propose_with_token(node, cmd) {
                    Ok((_, token)) => {
                        let w = Waiting {
                            clerk,
                            attempt,
                            key: None,
                        };
                        self.waiting.insert((n, token), w);
                    }
                    Err(ProposeError::NotLeader { leader_hint }) => {
                        self.reply(clerk, attempt, Outcome::WrongLeader(leader_hint))
                    }
                    Err(_) => self.reply(clerk, attempt, Outcome::Failed),
                }
            }
            Body::Read(key) => {
                if late {
                    return; // a read nobody waits for has no effect
                }
                if !self.cfg.read_index {
                    let outcome = self.read_outcome(n, &key);
                    self.reply(clerk, attempt, outcome);
                    return;
                }
                let ctx = self.next_ctx;
                self.next_ctx += 1;
                match self.c.read_index(node, ctx) {
                    Ok(()) => {
                        let w = Waiting {
                            clerk,
                            attempt,
                            key: Some(key),
                        };
                        self.waiting.insert((n, ctx), w);
                    }
                    Err(_) => self.reply(clerk, attempt, Outcome::WrongLeader(None)),
                }
            }
        }
    }

    /// Turn the nodes' new completions into replies to the attempts waiting for them.
    fn collect_completions(&mut self) {
        for n in 0..self.cursors.len() {
            let id = NodeId(n as u64 + 1);
            let all = self.c.completions(id);
            if all.len() == self.cursors[n] {
                continue;
            }
            let new: Vec<Completion> = all[self.cursors[n]..].to_vec();
            self.cursors[n] = all.len();
            for comp in new {
                self.completion(n, comp);
            }
        }
    }

    fn completion(&mut self, n: usize, comp: Completion) {
        let Some(w) = self.waiting.remove(&(n, comp.token())) else {
            return;
        };
        if !self.current(w.clerk, w.attempt) {
            return;
        }
        let outcome = match comp {
            Completion::Applied { result, .. } => self.write_outcome(w.clerk, &result),
            Completion::ReadReady { .. } => {
                let key = w.key.expect("a read has a key");
                self.read_outcome(n, &key)
            }
            Completion::Failed { .. } | Completion::ReadFailed { .. } => Outcome::Failed,
        };
        self.reply(w.clerk, w.attempt, outcome);
    }

    /// The reply to the clerk's current write: exactly once means it must be the write's own
    /// result (first application or the session's cached copy of it), never an error.
    fn write_outcome(&self, clerk: usize, result: &[u8]) -> Outcome {
        match decode_result(result) {
            Ok(Ok(Response::Put(_) | Response::Append(_))) => Outcome::Ok(KvReply::Written),
            other => {
                let ck = &self.clerks[clerk];
                let f = ck.op.as_ref().expect("in flight");
                self.fail(format!(
                    "exactly-once violated: client {} write seq {} ({:?}) was answered {other:?}",
                    ck.client_id, f.seq, f.op
                ))
            }
        }
    }

    fn read_outcome(&self, n: usize, key: &Bytes) -> Outcome {
        let id = NodeId(n as u64 + 1);
        let Some(sm) = self.c.kv(id) else {
            return Outcome::Failed;
        };
        match sm.read(&RangeRequest::key(key.clone())) {
            Ok(r) => Outcome::Ok(KvReply::Value(r.kvs.first().map(|kv| kv.value.clone()))),
            Err(e) => self.fail(format!("n{} could not serve Get({key:?}): {e}", n + 1)),
        }
    }

    fn outcome(&mut self, clerk: usize, outcome: Outcome) {
        match outcome {
            Outcome::Ok(reply) => self.finish(clerk, reply),
            Outcome::WrongLeader(hint) => {
                self.stats.retries_wrong_leader += 1;
                self.retry(clerk, hint);
            }
            Outcome::Failed => {
                self.stats.retries_failed += 1;
                self.retry(clerk, None);
            }
        }
    }

    /// The attempt failed: next server (the hinted leader if the clerk may reach it), now or
    /// after a pause once a whole round failed.
    fn retry(&mut self, clerk: usize, hint: Option<NodeId>) {
        let ck = &mut self.clerks[clerk];
        let f = ck.op.as_mut().expect("in flight");
        f.live = false;
        let attempt = f.attempt;
        let current = ck.servers[ck.leader % ck.servers.len()];
        ck.leader = match hint.and_then(|h| ck.servers.iter().position(|&s| s == h)) {
            Some(i) if ck.servers[i] != current => i,
            _ => (ck.leader + 1) % ck.servers.len(),
        };
        ck.failures_in_row += 1;
        if ck.failures_in_row.is_multiple_of(ck.servers.len()) {
            let at = self.c.now_ms() + self.cfg.round_backoff_ms;
            self.schedule(at, EvKind::Retry { clerk, attempt });
        } else {
            self.send_attempt(clerk);
        }
    }

    fn finish(&mut self, clerk: usize, reply: KvReply) {
        let ret = self.stamp();
        let now = self.c.now_ms();
        let ck = &mut self.clerks[clerk];
        let f = ck.op.take().expect("in flight");
        ck.failures_in_row = 0;
        self.history.complete(f.hist, reply.output(), ret);
        self.stats.ops_completed += 1;
        if let Some(t) = f.ticket {
            let done = Done {
                reply: reply.clone(),
                call_ms: f.call_ms,
                ret_ms: now,
            };
            self.done.insert(t, done);
        }
        self.next_from_program(clerk, Some((&f.op, &reply)));
    }

    fn next_from_program(&mut self, clerk: usize, last: Option<(&KvOp, &KvReply)>) {
        let ck = &mut self.clerks[clerk];
        let Some(mut program) = ck.program.take() else {
            return;
        };
        let stopping = ck.stopping;
        if let Some((op, reply)) = last {
            if let Err(e) = program.check(op, reply) {
                self.fail(e);
            }
        }
        let next = if stopping {
            None
        } else {
            program.next(self.c.rng())
        };
        self.clerks[clerk].program = Some(program);
        if let Some(op) = next {
            self.begin(clerk, op, None);
        }
    }
}

/// 6.824 `checkClntAppends`: `value` holds each of client `cli`'s `count` appends exactly once
/// and in order.
pub fn check_client_appends(cli: u64, value: &[u8], count: u64) -> Result<(), String> {
    let v = String::from_utf8_lossy(value);
    let mut last_off: Option<usize> = None;
    for j in 0..count {
        let wanted = GenericClient::element(cli, j);
        let Some(off) = v.find(&wanted) else {
            return Err(format!(
                "client {cli}: missing element {wanted:?} in Append result {v:?}"
            ));
        };
        if v.rfind(&wanted) != Some(off) {
            return Err(format!(
                "client {cli}: duplicate element {wanted:?} in Append result"
            ));
        }
        if last_off.is_some_and(|l| off <= l) {
            return Err(format!(
                "client {cli}: wrong order for element {wanted:?} in Append result"
            ));
        }
        last_off = Some(off);
    }
    Ok(())
}

/// [`check_client_appends`] for a client that died with its last append (`count - 1`) in
/// flight: appends `0..count - 1` exactly once and in order, the last at most once and, if
/// present, after them.
pub fn check_client_appends_last_maybe(cli: u64, value: &[u8], count: u64) -> Result<(), String> {
    assert!(count >= 1, "the abandoned append is one of the count");
    check_client_appends(cli, value, count - 1)?;
    let v = String::from_utf8_lossy(value);
    let wanted = GenericClient::element(cli, count - 1);
    let Some(off) = v.find(&wanted) else {
        return Ok(());
    };
    if v.rfind(&wanted) != Some(off) {
        return Err(format!(
            "client {cli}: abandoned element {wanted:?} applied twice"
        ));
    }
    let before = (count >= 2).then(|| GenericClient::element(cli, count - 2));
    if before.is_some_and(|b| v.find(&b).is_some_and(|b_off| b_off > off)) {
        return Err(format!(
            "client {cli}: abandoned element {wanted:?} applied before an earlier one"
        ));
    }
    Ok(())
}

/// 6.824 `checkConcurrentAppends`: for every client `i`, `value` holds its `counts[i]` appends
/// exactly once and in order.
pub fn check_concurrent_appends(value: &[u8], counts: &[u64]) -> Result<(), String> {
    for (i, &n) in counts.iter().enumerate() {
        check_client_appends(i as u64, value, n)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_checks_find_missing_duplicate_and_reordered_elements() {
        let ok = "x 0 0 yx 1 0 yx 0 1 y";
        assert!(check_concurrent_appends(ok.as_bytes(), &[2, 1]).is_ok());
        let missing = check_client_appends(0, b"x 0 0 y", 2).unwrap_err();
        assert!(missing.contains("missing"), "{missing}");
        let dup = check_client_appends(0, b"x 0 0 yx 0 0 y", 1).unwrap_err();
        assert!(dup.contains("duplicate"), "{dup}");
        let order = check_client_appends(0, b"x 0 1 yx 0 0 y", 2).unwrap_err();
        assert!(order.contains("order"), "{order}");
        assert!(check_client_appends_last_maybe(0, b"x 0 0 y", 2).is_ok());
        assert!(check_client_appends_last_maybe(0, b"x 0 0 yx 0 1 y", 2).is_ok());
        assert!(check_client_appends_last_maybe(0, b"x 0 1 yx 0 0 y", 2).is_err());
        assert!(check_client_appends_last_maybe(0, b"x 0 0 yx 0 1 yx 0 1 y", 2).is_err());
        assert!(check_client_appends_last_maybe(0, b"", 1).is_ok());
    }

    #[test]
    fn a_clerk_puts_and_gets_through_a_three_node_cluster() {
        let mut k = KvSim::new(SimConfig::new(3, 11));
        let ids = k.cluster().ids();
        let ck = k.add_clerk(&ids);
        assert_eq!(
            k.call(ck, KvOp::put("a", "1"), 5_000),
            Some(KvReply::Written)
        );
        assert_eq!(
            k.call(ck, KvOp::append("a", "2"), 1_000),
            Some(KvReply::Written)
        );
        assert_eq!(
            k.call(ck, KvOp::get("a"), 1_000),
            Some(KvReply::Value(Some(Bytes::from("12"))))
        );
        assert_eq!(
            k.call(ck, KvOp::get("b"), 1_000),
            Some(KvReply::Value(None))
        );
        assert_eq!(check::check(&k.operations()), check::CheckResult::Ok);
    }

    #[test]
    fn a_write_retried_after_a_lost_reply_applies_once() {
        let mut cfg = SimConfig::new(3, 12);
        cfg.net.drop_response = 0.5;
        let mut k = KvSim::new(cfg);
        let ids = k.cluster().ids();
        let ck = k.add_clerk(&ids);
        for i in 0..30 {
            let r = k.call(ck, KvOp::append("k", format!("{i},")), 20_000);
            assert_eq!(r, Some(KvReply::Written), "append {i}");
        }
        assert!(k.stats().replies_lost > 0, "{:?}", k.stats());
        let want: String = (0..30).map(|i| format!("{i},")).collect();
        assert_eq!(
            k.call(ck, KvOp::get("k"), 20_000),
            Some(KvReply::Value(Some(Bytes::from(want))))
        );
    }
}
