//! The storage thread: the only code that touches the store file. It sleeps on its queue; when
//! a request arrives it takes everything that is waiting (up to `max_batch_ops` operations of
//! writes), answers the reads from one read transaction, then applies all the writes in one
//! transaction with one fsync and answers each writer only after that commit is durable.
//!
//! Reads go first: they see every commit acknowledged before they were sent (the writes of this
//! group are not acknowledged yet), and they do not wait for an fsync they do not need.

use super::{
    batch::{Batch, KeyRange},
    disk::Disk,
    error::StoreError,
    queue::Queue,
    stats::Meter,
};
use bytes::Bytes;
use std::sync::Arc;

/// Where the storage thread sends one answer.
pub(crate) type Answer<T> = flume::Sender<Result<T, StoreError>>;

/// What shards ask the storage thread.
pub(crate) enum Request {
    Commit {
        batch: Batch,
        answer: Answer<()>,
    },
    Get {
        table: &'static str,
        key: Bytes,
        answer: Answer<Option<Bytes>>,
    },
    Scan {
        table: &'static str,
        range: KeyRange,
        limit: usize,
        reverse: bool,
        answer: Answer<Entries>,
    },
    /// Finish what came before, close the file, and stop.
    Stop {
        done: flume::Sender<()>,
    },
}

/// Entries of a scan, in the order asked.
pub type Entries = Vec<(Bytes, Bytes)>;

/// The storage thread's state.
pub(crate) struct Worker {
    pub(crate) disk: Disk,
    pub(crate) queue: Arc<Queue>,
    pub(crate) max_ops: usize,
    pub(crate) max_scan: usize,
    pub(crate) meter: Arc<Meter>,
}

/// Closes the queue when the thread ends, by `Stop` or by a panic, so no request waits on a
/// thread that is gone.
struct CloseOnExit(Arc<Queue>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Worker {
    /// Runs until a `Stop` arrives; the file is closed before `Stop` is answered.
    pub(crate) fn run(self) {
        let Worker { mut disk, queue, max_ops, max_scan, meter } = self;
        let _close = CloseOnExit(queue.clone());
        let mut carried = None;
        let mut group = Group::default();
        loop {
            let Some(first) = carried.take().or_else(|| queue.pop()) else { return };
            carried = group.take(first, &queue, max_ops);
            group.answer_reads(&mut disk, max_scan, &meter);
            group.commit(&mut disk, &meter);
            if let Some(done) = group.stop.take() {
                queue.close();
                drop(disk);
                let _ = done.send(());
                return;
            }
        }
    }
}

/// The requests taken from the queue in one turn.
#[derive(Default)]
struct Group {
    writes: Vec<(Batch, Answer<()>)>,
    ops: usize,
    reads: Vec<Request>,
    stop: Option<flume::Sender<()>>,
}

impl Group {
    /// Takes `first` and whatever waits behind it, until the queue is empty, a `Stop`, or a
    /// commit that would pass `max_ops` (returned, to open the next group).
    fn take(&mut self, first: Request, queue: &Queue, max_ops: usize) -> Option<Request> {
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Commit { batch, answer } => {
                    if self.ops > 0 && self.ops + batch.len() > max_ops {
                        return Some(Request::Commit { batch, answer });
                    }
                    self.ops += batch.len();
                    self.writes.push((batch, answer));
                }
                Request::Stop { done } => {
                    self.stop = Some(done);
                    return None;
                }
                read => self.reads.push(read),
            }
            next = queue.try_pop();
        }
        None
    }

    fn answer_reads(&mut self, disk: &mut Disk, max_scan: usize, meter: &Meter) {
        if self.reads.is_empty() {
            return;
        }
        meter.read(self.reads.len() as u64);
        let reader = disk.reader();
        for request in self.reads.drain(..) {
            match request {
                Request::Get { table, key, answer } => {
                    let got =
                        reader.as_ref().map_err(Clone::clone).and_then(|r| r.get(table, &key));
                    let _ = answer.send(got);
                }
                Request::Scan { table, range, limit, reverse, answer } => {
                    let limit = limit.min(max_scan);
                    let scanned = reader
                        .as_ref()
                        .map_err(Clone::clone)
                        .and_then(|r| r.scan(table, &range, limit, reverse));
                    let _ = answer.send(scanned);
                }
                Request::Commit { .. } | Request::Stop { .. } => {}
            }
        }
    }

    /// One transaction, one fsync, then every writer hears the outcome. A writer that stopped
    /// waiting is not told; its write stands.
    fn commit(&mut self, disk: &mut Disk, meter: &Meter) {
        if self.writes.is_empty() {
            return;
        }
        let batches: Vec<&Batch> = self.writes.iter().map(|(batch, _)| batch).collect();
        let outcome = disk.commit(&batches);
        let count = self.writes.len() as u64;
        match &outcome {
            Ok(()) => {
                let bytes = batches.iter().map(|b| b.payload_bytes() as u64).sum();
                meter.committed(count, self.ops as u64, bytes);
            }
            Err(e) => {
                tracing::warn!("store commit of {count} batches failed: {e}");
                meter.failed(count);
            }
        }
        for (_, answer) in self.writes.drain(..) {
            let _ = answer.send(outcome.clone());
        }
        self.ops = 0;
    }
}
