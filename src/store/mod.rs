//! Durable state (guaranteed-delivery queues, notices and their ack cursors, delayed requests):
//! byte keys and values in named tables of one redb file, owned by one storage thread. Writers
//! hand it [`Batch`]es; it applies every batch waiting at that moment in one transaction with
//! one fsync (group commit), and a writer's future resolves only after that fsync: an
//! acknowledged write is on disk. No connection shard ever touches the disk; shards hold a
//! [`StoreHandle`] and await answers without blocking their thread.
//!
//! Nothing is created until [`start`] is called, which only a configured durable feature does.
//! Why redb and a plain thread: docs/design/why-redb-for-durable-state.md.
//!
//! - [`config`]: `[store]` settings, each with its default and trade-off.
//! - [`batch`]: `Batch` and `Op` (put, delete, delete range), `KeyRange` (spans, prefixes, pages).
//! - [`handle`]: `StoreHandle`, the shards' async API; `Reply`, the future of one answer.
//! - `worker`: the storage thread's loop: take what waits, read, commit once, answer.
//! - `disk`: open the file with clear errors, write a group in one transaction, read.
//! - `metered`: redb's file backend with each fsync counted and timed.
//! - [`stats`]: the counters, read as a plain `StoreStats` for /metrics.
//! - [`error`]: `StoreError`, one variant per cause.

pub mod batch;
pub mod config;
mod disk;
pub mod error;
pub mod handle;
mod metered;
mod queue;
pub mod stats;
mod worker;

#[cfg(test)]
mod tests;

pub use batch::{Batch, KeyRange, Op};
pub use config::StoreConfig;
pub use disk::FILE_NAME;
pub use error::StoreError;
pub use handle::{Reply, StoreHandle};
pub use stats::StoreStats;
pub use worker::Entries;

use handle::Limits;
use stats::Meter;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    thread::JoinHandle,
};

/// A running store: the storage thread and the way to it. Dropping it stops the thread after
/// the requests already queued.
pub struct Store {
    handle: StoreHandle,
    file: PathBuf,
    thread: Option<JoinHandle<()>>,
}

/// Opens (or creates) the store under `config.path` and starts its storage thread. Fails with
/// an error naming the directory or the file when it cannot be written, is in use, or is not a
/// valid store. Blocks while the file is opened (and checked, with `verify_on_open`): call it
/// at start, not from a shard.
pub fn start(config: &StoreConfig) -> Result<Store, StoreError> {
    let meter = Arc::new(Meter::default());
    let disk = disk::Disk::open(config, meter.clone())?;
    let file = disk.file().to_path_buf();
    let queue = Arc::new(queue::Queue::new(config.queue_capacity));
    let worker = worker::Worker {
        disk,
        queue: queue.clone(),
        max_ops: config.max_batch_ops,
        max_scan: config.max_scan_items,
        meter: meter.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("store".into())
        .spawn(move || worker.run())
        .map_err(|e| StoreError::Thread(e.to_string()))?;
    let limits =
        Limits { max_batch_ops: config.max_batch_ops, max_entry_bytes: config.max_entry_bytes };
    let handle = StoreHandle::new(queue, limits, meter);
    Ok(Store { handle, file, thread: Some(thread) })
}

impl Store {
    /// A handle for one shard (or any thread).
    pub fn handle(&self) -> StoreHandle {
        self.handle.clone()
    }

    /// The store file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn stats(&self) -> StoreStats {
        self.handle.stats()
    }

    /// Answers what is queued, closes the file cleanly and stops the thread; requests made
    /// after this get `StoreError::Closed`. Blocks: call it from the thread that shuts down,
    /// not from a shard.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        let (done, stopped) = flume::bounded(1);
        if self.handle.queue().push_waiting(worker::Request::Stop { done }) {
            let _ = stopped.recv();
        }
        if thread.join().is_err() {
            tracing::error!("the storage thread panicked");
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop();
    }
}
