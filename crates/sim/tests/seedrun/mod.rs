//! What the seeded-run tests share (`seeds.rs`, `kv_seeds.rs`): reading their environment
//! variables, and running a range of seeds across threads with each seed's panic caught and
//! kept with its message. Each seed runs on one thread from start to end, so its trace
//! depends on the seed alone.

use std::cell::RefCell;
use std::panic;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The environment variable `name` as a number, or `default` when it is unset.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

thread_local! {
    /// The last panic message (with its location) on this thread.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Run seeds `start .. start + seeds` on every core: `run` each, `passed` with each report
/// that came back. Returns the seeds that panicked with their messages, sorted by seed.
pub fn run_all<R>(
    start: u64,
    seeds: u64,
    run: impl Fn(u64) -> R + Sync,
    passed: impl Fn(R) + Sync,
) -> Vec<(u64, String)> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let next = AtomicU64::new(start);
    let failures: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
    }));
    std::thread::scope(|s| {
        for _ in 0..threads.min(seeds.max(1)) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= start + seeds {
                    break;
                }
                match panic::catch_unwind(panic::AssertUnwindSafe(|| run(seed))) {
                    Ok(report) => passed(report),
                    Err(_) => {
                        let why = LAST_PANIC
                            .with(|p| p.borrow_mut().take())
                            .unwrap_or_default();
                        failures.lock().unwrap().push((seed, why));
                    }
                }
            });
        }
    });
    panic::set_hook(default_hook);
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    failures
}

#[test]
fn a_panicking_seed_is_reported_with_its_message_and_the_others_pass() {
    let passed = Mutex::new(Vec::new());
    let failures = run_all(
        10,
        6,
        |seed| {
            assert!(seed != 13, "boom at {seed}");
            seed
        },
        |seed| passed.lock().unwrap().push(seed),
    );
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, 13);
    assert!(failures[0].1.contains("boom at 13"), "{}", failures[0].1);
    let mut passed = passed.into_inner().unwrap();
    passed.sort();
    assert_eq!(passed, vec![10, 11, 12, 14, 15]);
}
