//! Group commit: a dedicated thread that turns many sync requests into one `fdatasync`.
//!
//! The store's owner writes records (a cheap `write` into the page cache) and asks for a sync
//! with a ticket; the thread takes every request queued while its previous `fdatasync` ran
//! and covers them all with one more, then reports the highest ticket it made durable. The
//! owner's event loop never waits on the disk.
//!
//! Owns: the sync thread, the durable-ticket watermark and the sticky failure flag, and
//! [`Worker`], the queue-fed thread the store's background threads (this one, the clean-up)
//! are built on. Must never: report a ticket durable before the `fdatasync` covering it
//! returned, retry a failed sync (after a failed `fdatasync` the page cache may have dropped
//! the data: the store is poisoned and the node must restart from what is on disk), or touch
//! the store's state.

use crate::fs::FsFile;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A position in the write stream: every write handed to the file up to this ticket.
pub type SyncTicket = u64;

/// What the sync thread reports: every ticket ≤ `ticket` is durable, or syncing failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncDone {
    pub ticket: SyncTicket,
    /// `Err(message)` when `fdatasync` failed: the store is poisoned.
    pub result: Result<(), String>,
}

/// Called on the sync thread after each `fdatasync`; must be quick (e.g. send on a channel).
pub type SyncListener = Box<dyn Fn(SyncDone) + Send + 'static>;

struct Request<F> {
    ticket: SyncTicket,
    file: Arc<F>,
}

/// Shared between the store and its sync thread.
#[derive(Debug, Default)]
pub(crate) struct SyncShared {
    pub(crate) durable: AtomicU64,
    pub(crate) failed: AtomicBool,
}

/// A thread of the store that takes messages of type `T` in order until the store drops it;
/// dropping it waits for the thread to finish what was queued, so nothing it does outlives
/// the store (a store opened on the directory later never races it).
pub(crate) struct Worker<T> {
    tx: Option<mpsc::Sender<T>>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Worker<T> {
    /// Spawn the thread `name` running `body` over the queue.
    pub(crate) fn spawn(
        name: &str,
        body: impl FnOnce(mpsc::Receiver<T>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<T>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(rx))?;
        Ok(Worker {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queue `msg`; handed back if the thread is gone.
    pub(crate) fn send(&self, msg: T) -> Result<(), T> {
        match &self.tx {
            Some(tx) => tx.send(msg).map_err(|e| e.0),
            None => Err(msg),
        }
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The sync thread.
pub(crate) struct Syncer<F: FsFile>(Worker<Request<F>>);

impl<F: FsFile> Syncer<F> {
    pub(crate) fn spawn(shared: Arc<SyncShared>, listener: SyncListener) -> std::io::Result<Self> {
        Worker::spawn("raftkv-wal-sync", move |rx| run(rx, shared, listener)).map(Syncer)
    }

    /// Queue a sync of `file` covering `ticket`.
    pub(crate) fn request(&self, ticket: SyncTicket, file: Arc<F>) -> bool {
        self.0.send(Request { ticket, file }).is_ok()
    }
}

fn run<F: FsFile>(rx: mpsc::Receiver<Request<F>>, shared: Arc<SyncShared>, listener: SyncListener) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let ticket = batch.iter().map(|r| r.ticket).max().expect("non-empty");
        let mut files: Vec<&Arc<F>> = Vec::new();
        for r in &batch {
            if !files.iter().any(|f| Arc::ptr_eq(f, &r.file)) {
                files.push(&r.file);
            }
        }
        let result = if shared.failed.load(Ordering::Acquire) {
            Err("an earlier sync failed; the store must be reopened".to_string())
        } else {
            files
                .iter()
                .try_for_each(|f| f.sync_data())
                .map_err(|e| e.to_string())
        };
        match &result {
            Ok(()) => {
                shared.durable.fetch_max(ticket, Ordering::AcqRel);
            }
            Err(_) => shared.failed.store(true, Ordering::Release),
        }
        listener(SyncDone { ticket, result });
    }
}
