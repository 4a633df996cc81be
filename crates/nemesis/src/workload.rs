//! The workload: concurrent clients issuing random operations and recording every one.
//!
//! Owns: the key space (at any time `hot_keys` keys are in use: half "log" keys that only see
//! `Append` and `Get`, half "register" keys that only see `Put` and `Get`; every
//! `generation_ops` operations the whole set moves to fresh names, so values stay small and
//! the checker's per-key histories short), the operation mix, the unique values (`Put`
//! writes `c<client>-<n>`, `Append` adds the token `c<client>-<n>;`), and how each outcome
//! enters the [`TimedHistory`]:
//!
//! - a reply → completed with its output;
//! - a failure after which the write certainly did not apply (`Unavailable` with
//!   `maybe_applied: false`, invalid argument, too large), or any failed read → cancelled
//!   (removed: it had no effect);
//! - a failure whose outcome is unknown (`Unavailable` that may have applied, session
//!   expired, any other server error on a write) → left pending: the checker lets it take
//!   effect at any time after its call, or never.
//!
//! Must never: reuse a value or token (the append audit relies on uniqueness), record an
//! operation as completed that did not return, cancel a write that may have applied, or
//! sleep between operations (clients run closed-loop; the only waits are the client
//! library's own retries).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use check::{Input, Output, TimedHistory};
use client::{Client, ClientConfig, ClientError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinHandle;

use crate::Error;

/// Prefix of the keys that only see `Append` and `Get`.
pub const LOG_PREFIX: &str = "log/";
/// Prefix of the keys that only see `Put` and `Get`.
pub const REGISTER_PREFIX: &str = "reg/";

/// How the clients behave.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    /// Concurrent clients, each with its own [`Client`] over every endpoint.
    pub clients: usize,
    /// Keys in use at once (half log keys, half register keys; at least 2).
    pub hot_keys: usize,
    /// Operations (over all clients) before the key set moves to fresh names.
    pub generation_ops: u64,
    /// Deadline of one client call, retries included.
    pub request_timeout: Duration,
    /// Most time one attempt of a call may take before the client tries another member.
    pub attempt_timeout: Duration,
    /// Seeds each client's choice of keys and operations.
    pub seed: u64,
    /// Read with `serializable: true` (a member's local copy, possibly stale) instead of a
    /// linearizable read. A canary for the checker: such a run is expected to fail.
    pub serializable_reads: bool,
}

/// The operation kinds, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Get,
    Put,
    Append,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Append => "append",
        }
    }
}

/// Outcomes of one kind of operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Returned a reply.
    pub ok: u64,
    /// Failed and certainly had no effect (cancelled from the history).
    pub failed: u64,
    /// Failed with an unknown outcome (left pending in the history).
    pub pending: u64,
}

impl OpCounts {
    pub fn total(&self) -> u64 {
        self.ok + self.failed + self.pending
    }

    fn add(&mut self, other: &OpCounts) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.pending += other.pending;
    }
}

/// What the clients did.
#[derive(Clone, Debug, Default)]
pub struct WorkloadStats {
    pub by_kind: BTreeMap<OpKind, OpCounts>,
    /// Failures by category (e.g. "unavailable (may have applied)").
    pub errors: BTreeMap<String, u64>,
    /// Errors the workload should never see (invalid argument, unexpected server codes):
    /// the first few, verbatim.
    pub unexpected: Vec<String>,
    /// How many unexpected errors there were in all.
    pub unexpected_count: u64,
}

const UNEXPECTED_SAMPLES_MAX: usize = 8;

impl WorkloadStats {
    /// Every kind together.
    pub fn total(&self) -> OpCounts {
        let mut total = OpCounts::default();
        for counts in self.by_kind.values() {
            total.add(counts);
        }
        total
    }

    fn merge(&mut self, other: WorkloadStats) {
        for (kind, counts) in &other.by_kind {
            self.by_kind.entry(*kind).or_default().add(counts);
        }
        for (category, n) in other.errors {
            *self.errors.entry(category).or_default() += n;
        }
        self.unexpected_count += other.unexpected_count;
        for sample in other.unexpected {
            if self.unexpected.len() < UNEXPECTED_SAMPLES_MAX {
                self.unexpected.push(sample);
            }
        }
    }

    fn count(&mut self, kind: OpKind, fate: &Fate) {
        let counts = self.by_kind.entry(kind).or_default();
        match fate {
            Fate::Returned(_) => counts.ok += 1,
            Fate::NoEffect { .. } => counts.failed += 1,
            Fate::Unknown { .. } => counts.pending += 1,
        }
        let (Fate::NoEffect { category, detail } | Fate::Unknown { category, detail }) = fate
        else {
            return;
        };
        *self.errors.entry(category.clone()).or_default() += 1;
        if let Some(detail) = detail {
            self.unexpected_count += 1;
            if self.unexpected.len() < UNEXPECTED_SAMPLES_MAX {
                self.unexpected.push(format!("{}: {detail}", kind.name()));
            }
        }
    }
}

/// How one call ended, as the history needs it.
#[derive(Debug)]
pub enum Fate {
    /// A reply: complete the operation with this output.
    Returned(Output),
    /// Certainly no effect: cancel it. `detail` is set for an error the workload should
    /// never see.
    NoEffect {
        category: String,
        detail: Option<String>,
    },
    /// Unknown outcome: leave it pending.
    Unknown {
        category: String,
        detail: Option<String>,
    },
}

/// Sorts a failed write (see the module docs).
pub fn write_fate(err: &ClientError) -> Fate {
    match err {
        ClientError::Unavailable {
            maybe_applied: false,
            ..
        } => Fate::NoEffect {
            category: "unavailable (not applied)".into(),
            detail: None,
        },
        ClientError::Unavailable {
            maybe_applied: true,
            ..
        } => Fate::Unknown {
            category: "unavailable (may have applied)".into(),
            detail: None,
        },
        ClientError::SessionExpired(_) => Fate::Unknown {
            category: "session expired (outcome unknown)".into(),
            detail: None,
        },
        // A watch's error: no write sees it, and nothing was proposed if one did.
        ClientError::InvalidArgument(_)
        | ClientError::TooLarge(_)
        | ClientError::Config(_)
        | ClientError::Compacted { .. } => Fate::NoEffect {
            category: "refused".into(),
            detail: Some(err.to_string()),
        },
        ClientError::Status(status) => Fate::Unknown {
            category: format!("server error {:?}", status.code()),
            detail: Some(err.to_string()),
        },
    }
}

/// Sorts a failed read: it had no effect whatever the error.
pub fn read_fate(err: &ClientError) -> Fate {
    let (category, detail) = match err {
        ClientError::Unavailable { .. } => ("unavailable (read)".to_string(), None),
        other => ("read error".to_string(), Some(other.to_string())),
    };
    Fate::NoEffect { category, detail }
}

/// How a `Get` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// ReadIndex: what the checker expects.
    Linearizable,
    /// The answering member's local copy (may be stale).
    Serializable,
}

/// Runs `input` through `client`.
pub async fn execute(client: &Client, input: &Input, reads: ReadMode) -> Fate {
    match input {
        Input::Get { key } => match get(client, key, reads).await {
            Ok(resp) => Fate::Returned(Output::Value(
                resp.kvs.into_iter().next().map(|kv| kv.value),
            )),
            Err(err) => read_fate(&err),
        },
        Input::Put { key, value } => match client.put(key.clone(), value.clone()).await {
            Ok(_) => Fate::Returned(Output::Written),
            Err(err) => write_fate(&err),
        },
        Input::Append { key, suffix } => match client.append(key.clone(), suffix.clone()).await {
            Ok(_) => Fate::Returned(Output::Written),
            Err(err) => write_fate(&err),
        },
        Input::Delete { .. } | Input::Cas { .. } => {
            unreachable!("the workload issues only get, put and append")
        }
    }
}

async fn get(
    client: &Client,
    key: &[u8],
    reads: ReadMode,
) -> Result<client::RangeResponse, ClientError> {
    let mut req = client::KeyRange::key(key.to_vec()).range_request();
    req.serializable = reads == ReadMode::Serializable;
    client.range(req).await
}

/// Records `input` by `client_id` in `history` around one call; returns how it ended.
pub async fn recorded(
    history: &TimedHistory,
    client: &Client,
    client_id: u64,
    input: Input,
    reads: ReadMode,
) -> Fate {
    let id = history.invoke(client_id, input.clone());
    let fate = execute(client, &input, reads).await;
    match &fate {
        Fate::Returned(output) => history.complete(id, output.clone()),
        Fate::NoEffect { .. } => history.cancel(id),
        Fate::Unknown { .. } => {}
    }
    fate
}

/// A client configuration for the harness: `request_timeout` for the whole call.
pub fn client_config(
    endpoints: &[String],
    request_timeout: Duration,
    attempt_timeout: Duration,
) -> ClientConfig {
    ClientConfig::new(endpoints.iter().cloned())
        .request_timeout(request_timeout)
        .attempt_timeout(attempt_timeout.min(request_timeout))
        .connect_timeout(Duration::from_secs(1))
}

/// The running clients.
pub struct Workload {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<WorkloadStats>>,
}

impl Workload {
    /// Starts `cfg.clients` clients (ids 1..=clients) on the current runtime.
    pub async fn start(
        endpoints: &[String],
        cfg: &WorkloadConfig,
        history: Arc<TimedHistory>,
    ) -> Result<Workload, Error> {
        assert!(cfg.hot_keys >= 2, "need a log key and a register key");
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(cfg.clients);
        for index in 0..cfg.clients {
            let client_id = index as u64 + 1;
            let client = Client::connect(client_config(
                endpoints,
                cfg.request_timeout,
                cfg.attempt_timeout,
            ))
            .await
            .map_err(Error::Client)?;
            let ctx = ClientLoop {
                client,
                client_id,
                rng: ChaCha8Rng::seed_from_u64(
                    cfg.seed ^ client_id.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                ),
                keys: KeyPlan {
                    hot_keys: cfg.hot_keys,
                    generation_ops: cfg.generation_ops.max(1),
                },
                history: history.clone(),
                reads: if cfg.serializable_reads {
                    ReadMode::Serializable
                } else {
                    ReadMode::Linearizable
                },
                stop: stop.clone(),
                issued: issued.clone(),
            };
            tasks.push(tokio::spawn(ctx.run()));
        }
        Ok(Workload { stop, tasks })
    }

    /// Tells every client to stop after its current call and waits for them (each call ends
    /// by its deadline).
    pub async fn finish(self) -> WorkloadStats {
        self.stop.store(true, Ordering::SeqCst);
        let mut stats = WorkloadStats::default();
        for task in self.tasks {
            match task.await {
                Ok(client_stats) => stats.merge(client_stats),
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            }
        }
        stats
    }
}

/// Which keys exist when.
#[derive(Clone, Copy, Debug)]
struct KeyPlan {
    hot_keys: usize,
    generation_ops: u64,
}

impl KeyPlan {
    /// The operation for the `issued`-th call overall, `n`-th of `client_id`.
    fn pick(&self, rng: &mut ChaCha8Rng, issued: u64, client_id: u64, n: u64) -> (OpKind, Input) {
        let generation = issued / self.generation_ops;
        let logs = self.hot_keys / 2;
        let slot = rng.gen_range(0..self.hot_keys);
        let read = rng.gen_bool(0.4);
        let unique = format!("c{client_id}-{n}");
        if slot < logs {
            let key = format!("{LOG_PREFIX}{generation:05}/{slot}");
            if read {
                (OpKind::Get, Input::get(key))
            } else {
                (OpKind::Append, Input::append(key, format!("{unique};")))
            }
        } else {
            let key = format!("{REGISTER_PREFIX}{generation:05}/{}", slot - logs);
            if read {
                (OpKind::Get, Input::get(key))
            } else {
                (OpKind::Put, Input::put(key, unique))
            }
        }
    }
}

struct ClientLoop {
    client: Client,
    client_id: u64,
    rng: ChaCha8Rng,
    keys: KeyPlan,
    history: Arc<TimedHistory>,
    reads: ReadMode,
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicU64>,
}

impl ClientLoop {
    async fn run(mut self) -> WorkloadStats {
        let mut stats = WorkloadStats::default();
        let mut n = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            n += 1;
            let issued = self.issued.fetch_add(1, Ordering::Relaxed);
            let (kind, input) = self.keys.pick(&mut self.rng, issued, self.client_id, n);
            let fate = recorded(
                &self.history,
                &self.client,
                self.client_id,
                input,
                self.reads,
            )
            .await;
            stats.count(kind, &fate);
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_move_to_fresh_names_each_generation_and_values_are_unique() {
        let plan = KeyPlan {
            hot_keys: 8,
            generation_ops: 100,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        for n in 0..300u64 {
            let (kind, input) = plan.pick(&mut rng, n, 3, n);
            let key = String::from_utf8(input.key().to_vec()).unwrap();
            let generation = format!("/{:05}/", n / 100);
            assert!(key.contains(&generation), "{key} in generation {n}");
            match (&kind, &input) {
                (OpKind::Append, Input::Append { suffix, .. }) => {
                    assert!(key.starts_with(LOG_PREFIX));
                    assert!(seen.insert(suffix.clone()));
                    assert!(suffix.ends_with(b";"));
                }
                (OpKind::Put, Input::Put { value, .. }) => {
                    assert!(key.starts_with(REGISTER_PREFIX));
                    assert!(seen.insert(value.clone()));
                }
                (OpKind::Get, Input::Get { .. }) => {}
                other => panic!("mismatched kind {other:?}"),
            }
        }
    }

    #[test]
    fn a_write_that_may_have_applied_stays_pending_and_one_that_did_not_is_cancelled() {
        let unavailable = |maybe_applied| ClientError::Unavailable {
            tried: vec![],
            last: String::new(),
            maybe_applied,
            elapsed: Duration::ZERO,
        };
        assert!(matches!(
            write_fate(&unavailable(true)),
            Fate::Unknown { detail: None, .. }
        ));
        assert!(matches!(
            write_fate(&unavailable(false)),
            Fate::NoEffect { detail: None, .. }
        ));
        assert!(matches!(
            write_fate(&ClientError::SessionExpired("x".into())),
            Fate::Unknown { .. }
        ));
        assert!(matches!(
            write_fate(&ClientError::InvalidArgument("bad".into())),
            Fate::NoEffect {
                detail: Some(_),
                ..
            }
        ));
        assert!(matches!(
            read_fate(&unavailable(true)),
            Fate::NoEffect { detail: None, .. }
        ));
    }
}
