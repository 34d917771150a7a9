//! The shard side of the store: a [`StoreHandle`] queues a request for the storage thread
//! without blocking (a full queue is an immediate `QueueFull` error, never a wait) and returns
//! a [`Reply`] future that resolves when the storage thread answers.
//!
//! The answer travels on a flume channel whose receiver is awaited by a glommio task and whose
//! sender runs on the storage thread: glommio 0.9 accepts wakes from a foreign thread (its task
//! waker sends itself to the owning executor's queue and writes its eventfd,
//! `sys::SleepNotifier::queue_waker`), so the shard sleeps in io_uring until the answer is there.

use super::{
    batch::{Batch, KeyRange},
    error::StoreError,
    queue::Queue,
    stats::{Meter, StoreStats},
    worker::{Entries, Request},
};
use bytes::Bytes;
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

/// A way to the storage thread. Cheap to clone, `Send`: give each shard its own.
#[derive(Clone)]
pub struct StoreHandle {
    queue: Arc<Queue>,
    limits: Arc<Limits>,
    meter: Arc<Meter>,
}

/// Limits checked on the shard before a request is queued.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) max_batch_ops: usize,
    pub(crate) max_entry_bytes: usize,
}

impl StoreHandle {
    pub(crate) fn new(queue: Arc<Queue>, limits: Limits, meter: Arc<Meter>) -> StoreHandle {
        StoreHandle { queue, limits: Arc::new(limits), meter }
    }

    /// Queues `batch` now (calls are applied in the order they are made) and resolves once it
    /// is committed and fsync'ed, together with every other batch waiting at the same time.
    /// Dropping the future does not withdraw the write.
    pub fn commit(&self, batch: Batch) -> Reply<()> {
        if let Err(reason) = batch.check(self.limits.max_batch_ops, self.limits.max_entry_bytes) {
            return Reply::failed(StoreError::Invalid(reason));
        }
        if batch.is_empty() {
            return Reply::ready(Ok(()));
        }
        self.ask(|answer| Request::Commit { batch, answer })
    }

    /// The value of `key` in `table`, as of every commit acknowledged before this call.
    pub fn get(&self, table: &'static str, key: impl Into<Bytes>) -> Reply<Option<Bytes>> {
        if table.is_empty() {
            return Reply::failed(no_table());
        }
        let key = key.into();
        self.ask(|answer| Request::Get { table, key, answer })
    }

    /// Up to `limit` entries of `range` in key order (never more than `max_scan_items`); page
    /// on with `range.after(last_key)`.
    pub fn scan(&self, table: &'static str, range: KeyRange, limit: usize) -> Reply<Entries> {
        if table.is_empty() {
            return Reply::failed(no_table());
        }
        self.ask(|answer| Request::Scan { table, range, limit, reverse: false, answer })
    }

    /// As [`StoreHandle::scan`], from the last key down; page on with `range.before(last_key)`.
    pub fn scan_rev(&self, table: &'static str, range: KeyRange, limit: usize) -> Reply<Entries> {
        if table.is_empty() {
            return Reply::failed(no_table());
        }
        self.ask(|answer| Request::Scan { table, range, limit, reverse: true, answer })
    }

    pub(crate) fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The store's counters now.
    pub fn stats(&self) -> StoreStats {
        self.meter.snapshot(self.queue.len())
    }

    fn ask<T: 'static>(
        &self,
        request: impl FnOnce(flume::Sender<Result<T, StoreError>>) -> Request,
    ) -> Reply<T> {
        let (answer, reply) = flume::bounded(1);
        match self.queue.push(request(answer)) {
            Ok(()) => Reply::waiting(reply),
            Err(error) => Reply::failed(error),
        }
    }
}

/// redb refuses (panics on) a table without a name.
fn no_table() -> StoreError {
    StoreError::Invalid("a read names no table".into())
}

/// The answer to one request, as a future. Resolves to `StoreError::Closed` if the storage
/// thread stops before answering.
#[must_use = "a Reply resolves when the store has answered; await it"]
pub struct Reply<T: 'static> {
    state: State<T>,
}

enum State<T: 'static> {
    Ready(Option<Result<T, StoreError>>),
    Waiting(flume::r#async::RecvFut<'static, Result<T, StoreError>>),
}

impl<T: 'static> Reply<T> {
    fn ready(result: Result<T, StoreError>) -> Reply<T> {
        Reply { state: State::Ready(Some(result)) }
    }

    fn failed(error: StoreError) -> Reply<T> {
        Reply::ready(Err(error))
    }

    fn waiting(receiver: flume::Receiver<Result<T, StoreError>>) -> Reply<T> {
        Reply { state: State::Waiting(receiver.into_recv_async()) }
    }
}

// Nothing in a Reply is ever pinned in place: the result is moved out whole, and flume's future
// is Unpin whatever it carries.
impl<T: 'static> Unpin for Reply<T> {}

impl<T: 'static> Future for Reply<T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            State::Ready(result) => Poll::Ready(result.take().unwrap_or(Err(StoreError::Closed))),
            State::Waiting(receiving) => match Pin::new(receiving).poll(cx) {
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                Poll::Ready(Err(_)) => Poll::Ready(Err(StoreError::Closed)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
