//! Group commit as the server drives it: N appender threads, each with one append in flight,
//! send requests to ONE owner thread that holds the [`DiskStore`]. The owner drains every
//! queued request, appends them with one `append` call, asks for a sync (`start_sync`, which
//! returns a ticket at once) and keeps accepting and writing appends while the sync thread's
//! `fdatasync` runs; when the sync listener reports a ticket durable, the owner answers the
//! appenders that ticket covers.
//!
//! Owns: the appender and owner loops and their counters. Must never: answer an appender
//! before the ticket covering its entry is reported durable.

use super::{bench_identity, Latencies, Throughput};
use bytes::Bytes;
use raft::{Entry, EntryKind, LogIndex, Term};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use storage::{DiskOptions, DiskStore, LogStore, StdFs, SyncDone, SyncTicket};

/// What the owner thread wakes up for.
enum Event {
    /// Appender `from` wants `data` appended and made durable.
    Append { from: usize, data: Bytes },
    /// The sync thread finished an `fdatasync`.
    Durable(SyncDone),
    /// Appender `from` stopped.
    Quit,
}

/// What the owner counted.
#[derive(Debug, Default)]
struct OwnerStats {
    appends: u64,
    syncs: u64,
}

/// Run the group-commit case: `appenders` threads for `run_for`, entries of `entry_bytes`,
/// in a fresh store under `dir` (removed afterwards).
pub fn run(dir: &Path, appenders: usize, entry_bytes: usize, run_for: Duration) -> Throughput {
    assert!(appenders > 0, "at least one appender");
    let store_dir = dir.join(format!("group-commit-{appenders}"));
    let _ = std::fs::remove_dir_all(&store_dir);
    let mut store = DiskStore::open(StdFs, &store_dir, bench_identity(), DiskOptions::default())
        .unwrap_or_else(|e| panic!("opening {}: {e}", store_dir.display()));
    let (tx, rx) = mpsc::channel::<Event>();
    let listener_tx = tx.clone();
    store
        .enable_group_commit(Box::new(move |done| {
            let _ = listener_tx.send(Event::Durable(done));
        }))
        .expect("starting the sync thread");

    let stop = Arc::new(AtomicBool::new(false));
    let start_line = Arc::new(Barrier::new(appenders + 1));
    let payload = Bytes::from(vec![0xA5u8; entry_bytes]);
    let mut reply_txs = Vec::with_capacity(appenders);
    let mut threads = Vec::with_capacity(appenders);
    for from in 0..appenders {
        let (reply_tx, reply_rx) = mpsc::channel::<()>();
        reply_txs.push(reply_tx);
        let (tx, stop, start_line, data) = (
            tx.clone(),
            stop.clone(),
            start_line.clone(),
            payload.clone(),
        );
        threads.push(std::thread::spawn(move || {
            start_line.wait();
            appender(from, &tx, &reply_rx, &stop, data)
        }));
    }
    drop(tx);
    let owner = std::thread::spawn(move || owner(store, &rx, &reply_txs));

    start_line.wait();
    let started = Instant::now();
    std::thread::sleep(run_for);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Latencies::default();
    for t in threads {
        latencies.merge(t.join().expect("appender thread"));
    }
    let elapsed = started.elapsed();
    let stats = owner.join().expect("owner thread");
    let _ = std::fs::remove_dir_all(&store_dir);
    assert_eq!(
        stats.appends,
        latencies.count() as u64,
        "every append answered once"
    );
    Throughput {
        name: "group commit",
        appenders,
        entry_bytes,
        appends: stats.appends,
        syncs: stats.syncs,
        elapsed,
        latencies,
    }
}

/// One appender: one append in flight at a time, until `stop`.
fn appender(
    from: usize,
    tx: &Sender<Event>,
    replies: &Receiver<()>,
    stop: &AtomicBool,
    data: Bytes,
) -> Latencies {
    let mut latencies = Latencies::default();
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        tx.send(Event::Append {
            from,
            data: data.clone(),
        })
        .expect("owner alive");
        replies.recv().expect("owner answers every append");
        latencies.record(sent.elapsed());
    }
    let _ = tx.send(Event::Quit);
    latencies
}

/// The owner loop: batch, append, start a sync, answer what became durable; until every
/// appender quit and every append was answered.
fn owner(mut store: DiskStore<StdFs>, rx: &Receiver<Event>, replies: &[Sender<()>]) -> OwnerStats {
    let mut stats = OwnerStats::default();
    let mut next = LogIndex(1);
    let mut batch: Vec<Entry> = Vec::new();
    let mut waiting: Vec<usize> = Vec::new();
    // Appenders to answer once a ticket is durable, oldest first.
    let mut pending: VecDeque<(SyncTicket, Vec<usize>)> = VecDeque::new();
    let mut quit = 0;
    let mut durable: SyncTicket = 0;
    while quit < replies.len() || !pending.is_empty() {
        let first = rx.recv().expect("the sync listener keeps the channel open");
        for ev in std::iter::once(first).chain(rx.try_iter()) {
            match ev {
                Event::Append { from, data } => {
                    batch.push(Entry {
                        term: Term(1),
                        index: next,
                        kind: EntryKind::Normal,
                        data,
                    });
                    next = next.next();
                    waiting.push(from);
                }
                Event::Durable(done) => {
                    if let Err(e) = done.result {
                        panic!("fdatasync failed: {e}");
                    }
                    stats.syncs += 1;
                    durable = durable.max(done.ticket);
                }
                Event::Quit => quit += 1,
            }
        }
        if !batch.is_empty() {
            store.append(&batch).expect("append");
            batch.clear();
            let ticket = store.start_sync().expect("start_sync");
            pending.push_back((ticket, std::mem::take(&mut waiting)));
        }
        // A segment roll syncs on this thread; its ticket shows only in the watermark.
        durable = durable.max(store.durable_ticket());
        while pending.front().is_some_and(|(t, _)| *t <= durable) {
            let (_, who) = pending.pop_front().expect("non-empty");
            stats.appends += who.len() as u64;
            for from in who {
                let _ = replies[from].send(());
            }
        }
    }
    stats
}
