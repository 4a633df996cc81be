//! How fast the state machine applies a log at startup: 1M put commands (100-byte values over
//! 100,000 keys, as `target/release/restart` writes them), without and with sessions, applied
//! through [`KvStateMachine::apply_bytes`] the way a restarted member replays its WAL.
//!
//! ```text
//! cargo run --release -p kv --example apply_speed [-- ENTRIES [KEYS]]
//! ```

use std::time::Instant;

use bytes::Bytes;
use kv::{Command, KvStateMachine, PutRequest};
use raft::LogIndex;

fn main() {
    let mut args = std::env::args().skip(1);
    let entries: u64 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("ENTRIES"));
    let keys: u64 = args.next().map_or(100_000, |a| a.parse().expect("KEYS"));
    let value = vec![b'v'; 100];
    for (sessions, unobserved) in [(false, false), (false, true), (true, false), (true, true)] {
        let log: Vec<Bytes> = (0..entries)
            .map(|n| {
                let put = PutRequest::new(format!("key-{:08}", n % keys), value.clone());
                if sessions {
                    Command::with_session(put, 1 + n % 64, 1 + n / 64).encode()
                } else {
                    Command::new(put).encode()
                }
            })
            .collect();
        let mut runs = Vec::new();
        for _ in 0..3 {
            let mut sm = KvStateMachine::default();
            let start = Instant::now();
            let mut reply_bytes = 0usize;
            for (i, data) in log.iter().enumerate() {
                let index = LogIndex(i as u64 + 1);
                if unobserved {
                    sm.apply_bytes_unobserved(index, data);
                    reply_bytes += 1;
                } else {
                    reply_bytes += sm.apply_bytes(index, data).len();
                }
            }
            let took = start.elapsed().as_secs_f64();
            assert_eq!(sm.store().len() as u64, keys.min(entries));
            assert!(reply_bytes > 0);
            runs.push(took);
        }
        let best = runs.iter().copied().fold(f64::MAX, f64::min);
        println!(
            "{entries} puts over {keys} keys, sessions {sessions}, unobserved {unobserved}: first run {:.3} s, best of 3 \
             {best:.3} s ({:.2} µs/entry)",
            runs[0],
            best * 1e6 / entries as f64
        );
    }
}
