//! raftkv's linearizability checker: does a concurrent history of key/value operations have
//! a legal sequential order that respects real time?
//!
//! Module map:
//! - [`model`]: the sequential specification — [`Input`] (`Get`, `Put`, `Append`, `Delete`,
//!   a one-key `Cas` transaction), [`Output`], and [`KeyState::apply`];
//! - [`history`]: [`Operation`] (client, input, output, invoke and return times) and
//!   [`History`], a thread-safe recorder whose times the caller supplies;
//! - [`realtime`]: [`TimedHistory`], the same recorder stamped by `std::time::Instant`, for
//!   real-process harnesses — the only module that reads a clock;
//! - [`checker`]: [`check`] / [`check_with`], per-key partitioning,
//!   [`CheckConfig`], [`CheckResult`];
//! - `search` (private): one key's search — Wing & Gong with Lowe's just-in-time
//!   linearization, as porcupine does — and `search::reduce`, the orders it may skip for
//!   operations that never returned;
//! - `memo` (private): the reached (linearized set, model state) configurations, with
//!   dominance for operations that never returned;
//! - `lookahead` (private): prunes configurations from which the next read (or other
//!   observer) can no longer be satisfied, and rejects at once values no write could build;
//! - `rules` (private): the model compiled to interned states for the search;
//! - `explain` (private): the readable account of an illegal key.
//!
//! Speed (release build, see `examples/check_speed.rs`): a 10,000-operation, 10-client
//! history checks in milliseconds over 100 keys and about a second on one key with every
//! client in flight. Proving a history illegal can take longer than finding a linearization
//! — the search must rule out every order — and [`CheckConfig`] bounds it in steps.
//!
//! Owns: the meaning of "linearizable" for raftkv's client operations. Must never: depend on
//! another crate of ours, read a clock (outside [`realtime`]), spawn threads, or use
//! randomness; the same history always gets the same answer and explanation.
//!
//! Operations that never returned (a timeout, a crashed client) have `output` and `ret`
//! `None`: they may take effect at any point after their call, or never.
//!
//! ```
//! use check::{check, CheckResult, History, Input, Output};
//!
//! let history = History::new();
//! let put = history.invoke(1, Input::put("x", "a"), 0);
//! history.complete(put, Output::Written, 10);
//! let get = history.invoke(2, Input::get("x"), 5); // overlaps the put: may see either
//! history.complete(get, Output::absent(), 12);
//! history.invoke(3, Input::put("x", "b"), 11); // never returned: may or may not apply
//! assert_eq!(check(&history.operations()), CheckResult::Ok);
//!
//! // A read invoked after the put returned must see it.
//! let stale = history.invoke(2, Input::get("x"), 20);
//! history.complete(stale, Output::absent(), 30);
//! let CheckResult::Illegal { key, explanation } = check(&history.operations()) else {
//!     panic!("a stale read is not linearizable");
//! };
//! assert_eq!(key, b"x");
//! assert!(explanation.starts_with(
//!     r#"Get("x") by client 2 at [20, 30] returned absent, but the longest linearizable prefix has "x" = "#
//! ));
//! ```

pub mod checker;
mod explain;
pub mod history;
mod lookahead;
mod memo;
pub mod model;
pub mod realtime;
mod rules;
mod search;

pub use checker::{check, check_with, CheckConfig, CheckReport, CheckResult};
pub use history::{History, OpId, Operation};
pub use model::{Input, KeyState, Output};
pub use realtime::TimedHistory;
