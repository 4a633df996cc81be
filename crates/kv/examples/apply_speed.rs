//! How fast the state machine applies a log at startup: 1M put commands (100-byte values over
//! 100,000 keys, as `target/release/restart` writes them), without and with sessions, applied
//! through [`KvStateMachine::apply_bytes`] the way a restarted member replays its WAL; then
//! the same without sessions on a machine with a watch hub (no watchers), whose windows of
//! recent events differ — what recording the events of every write costs.
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
    let cases = [
        (false, false, None),
        (false, true, None),
        (true, false, None),
        (true, true, None),
        (false, false, Some(0)),
        (false, false, Some(1_000)),
        (false, false, Some(kv::WATCH_HISTORY_DEFAULT)),
        (false, true, Some(kv::WATCH_HISTORY_DEFAULT)),
    ];
    for (sessions, unobserved, window) in cases {
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
            let hub = window.map(|w| sm.watch_hub(w));
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
            if let (Some(hub), Some(w)) = (&hub, window) {
                assert!(hub.revision() > 1 && hub.window_from() + w as i64 > hub.revision());
            }
            runs.push(took);
        }
        let best = runs.iter().copied().fold(f64::MAX, f64::min);
        println!(
            "{entries} puts over {keys} keys, sessions {sessions}, unobserved {unobserved}, \
             watch window {window:?}: first run {:.3} s, best of 3 {best:.3} s ({:.2} µs/entry)",
            runs[0],
            best * 1e6 / entries as f64
        );
    }
}
