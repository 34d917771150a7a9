//! One delivery target: a bounded queue of items, a worker task that batches them into HTTP
//! POSTs in order and retries a failed batch per [`RetryPolicy`], and the endpoint's counters.
//!
//! It knows nothing of what the items mean: the caller supplies the body builder (encoding,
//! signature headers), called once per batch, or a request builder called for every attempt
//! (for formats whose request changes on a retry: a fresh id and signature, retry counts in
//! the body). Callers never wait on it: `push` only enqueues or drops, so a slow or
//! dead endpoint costs at most `queue_max` items of memory and never stalls a shard.
//! Order is strict: a failing batch blocks the ones behind it until it is delivered or given up.

use bytes::Bytes;
use glommio::{task::JoinHandle, timer::Timer, Task};
use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    future::poll_fn,
    iter::Sum,
    ops::AddAssign,
    rc::Rc,
    task::{Poll, Waker},
    time::{Duration, Instant},
};

use super::retry::{FailureKind, RetryPolicy};
use crate::upstream::http::{with_timeout, HttpClient};

/// Builds one request from a batch: the body and extra headers (content type, signature, ...).
pub type BodyBuilder<T> = Box<dyn Fn(&[T]) -> (Bytes, Vec<(String, String)>)>;

/// Builds each attempt's request from a batch and the failures so far.
pub type RequestBuilder<T> = Box<dyn Fn(&[T], Tries) -> Request>;

/// One request to the endpoint.
pub struct Request {
    /// Path and query to POST to; `None`: the endpoint URL's own.
    pub target: Option<String>,
    pub body: Bytes,
    pub headers: Vec<(String, String)>,
}

/// Failed attempts of the batch being delivered, by kind: answered with a non-2xx status, or
/// failed before an answer (webman-push-server's `failed_count` and `error_count`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tries {
    pub failed: u32,
    pub errors: u32,
}

/// How an endpoint makes its requests.
enum Build<T> {
    /// One body per batch, sent again as is on a retry.
    Once(BodyBuilder<T>),
    /// A request per attempt.
    PerAttempt(RequestBuilder<T>),
}

/// Queueing and batching for one endpoint.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// Default 10_000: items waiting (the batch in flight not included). Beyond it `push` drops.
    pub queue_max: usize,
    /// Default 1 (no batching): items per request.
    pub batch_max: usize,
    /// Default 50 ms: with `batch_max > 1`, how long a batch waits to fill after its first item.
    /// Longer makes fewer, larger requests at the cost of that much added latency.
    pub batch_window: Duration,
    pub retry: RetryPolicy,
}

impl Default for EndpointConfig {
    fn default() -> EndpointConfig {
        EndpointConfig {
            queue_max: 10_000,
            batch_max: 1,
            batch_window: Duration::from_millis(50),
            retry: RetryPolicy::default(),
        }
    }
}

/// Counters of one endpoint (or, summed, of many). Items unless named otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Items delivered with a 2xx answer.
    pub sent: u64,
    /// HTTP requests attempted, retries included.
    pub requests: u64,
    /// Retries scheduled (requests after a failed one for the same batch).
    pub retried: u64,
    /// Items given up after the retry policy ran out.
    pub failed: u64,
    /// Items dropped by `push` because the queue was full.
    pub dropped: u64,
    /// Attempts that ended at the socket level (refused, reset, timeout, TLS).
    pub socket_errors: u64,
    /// Attempts answered with a non-2xx status.
    pub status_errors: u64,
    /// Items waiting when the stats were taken (a gauge; summing gives the total).
    pub queued: u64,
    /// Time of the successful requests.
    pub latency: Latency,
}

/// Buckets in [`Latency`]: bucket `i` counts latencies in `[2^i, 2^(i+1))` µs, the last one
/// everything from 2^23 µs (8.4 s) up.
pub const LATENCY_BUCKETS: usize = 24;

/// A log2 histogram of request latency in microseconds, with count, sum and max.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    pub count: u64,
    pub sum_us: u64,
    pub max_us: u64,
    pub buckets: [u64; LATENCY_BUCKETS],
}

impl Latency {
    pub fn record(&mut self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.max_us = self.max_us.max(us);
        let bucket = (u64::BITS - us.leading_zeros()).saturating_sub(1) as usize;
        self.buckets[bucket.min(LATENCY_BUCKETS - 1)] += 1;
    }

    pub fn mean_us(&self) -> u64 {
        self.sum_us.checked_div(self.count).unwrap_or(0)
    }

    /// An upper bound (the top of its bucket, at most `max_us`) of the `q` quantile, 0 <= q <= 1.
    pub fn quantile_us(&self, q: f64) -> u64 {
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank && i < LATENCY_BUCKETS - 1 {
                return ((1u64 << (i + 1)) - 1).min(self.max_us);
            }
        }
        self.max_us
    }
}

impl AddAssign<&Latency> for Latency {
    fn add_assign(&mut self, other: &Latency) {
        self.count += other.count;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.max_us = self.max_us.max(other.max_us);
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
    }
}

impl AddAssign<&EndpointStats> for EndpointStats {
    fn add_assign(&mut self, other: &EndpointStats) {
        self.sent += other.sent;
        self.requests += other.requests;
        self.retried += other.retried;
        self.failed += other.failed;
        self.dropped += other.dropped;
        self.socket_errors += other.socket_errors;
        self.status_errors += other.status_errors;
        self.queued += other.queued;
        self.latency += &other.latency;
    }
}

impl AddAssign for EndpointStats {
    fn add_assign(&mut self, other: EndpointStats) {
        *self += &other;
    }
}

impl Sum for EndpointStats {
    fn sum<I: Iterator<Item = EndpointStats>>(iter: I) -> EndpointStats {
        iter.fold(EndpointStats::default(), |mut total, s| {
            total += &s;
            total
        })
    }
}

impl<'a> Sum<&'a EndpointStats> for EndpointStats {
    fn sum<I: Iterator<Item = &'a EndpointStats>>(iter: I) -> EndpointStats {
        iter.fold(EndpointStats::default(), |mut total, s| {
            total += s;
            total
        })
    }
}

/// A delivery target with its queue and worker. Dropping it cancels the worker (a request in
/// flight is abandoned, queued items are lost); [`Endpoint::close`] delivers them first.
pub struct Endpoint<T> {
    shared: Rc<Shared<T>>,
    worker: Task<()>,
}

/// What `push` and the worker share. Single-threaded: no borrow is held across an await.
struct Shared<T> {
    client: HttpClient,
    config: EndpointConfig,
    build: Build<T>,
    queue: RefCell<VecDeque<T>>,
    /// The worker, when it waits for items.
    waker: Cell<Option<Waker>>,
    closing: Cell<bool>,
    stats: RefCell<EndpointStats>,
    /// Drop logging, at most once per second: when it last logged, drops since then.
    last_drop_log: Cell<Option<Instant>>,
    unlogged_drops: Cell<u64>,
}

/// At most one "queue full" log line per endpoint per this interval.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(1);

impl<T: 'static> Endpoint<T> {
    /// Starts the worker on the current glommio executor (panics outside one).
    pub fn new(client: HttpClient, config: EndpointConfig, build: BodyBuilder<T>) -> Endpoint<T> {
        Endpoint::start(client, config, Build::Once(build))
    }

    /// Like [`Endpoint::new`], with a request built for every attempt.
    pub fn per_attempt(
        client: HttpClient,
        config: EndpointConfig,
        build: RequestBuilder<T>,
    ) -> Endpoint<T> {
        Endpoint::start(client, config, Build::PerAttempt(build))
    }

    fn start(client: HttpClient, config: EndpointConfig, build: Build<T>) -> Endpoint<T> {
        let shared = Rc::new(Shared {
            client,
            config,
            build,
            queue: RefCell::new(VecDeque::new()),
            waker: Cell::new(None),
            closing: Cell::new(false),
            stats: RefCell::new(EndpointStats::default()),
            last_drop_log: Cell::new(None),
            unlogged_drops: Cell::new(0),
        });
        let worker = glommio::spawn_local(run(shared.clone()));
        Endpoint { shared, worker }
    }

    /// Queues `item`; false if the queue was full and the item was dropped (counted, logged).
    pub fn push(&self, item: T) -> bool {
        let shared = &self.shared;
        if shared.closing.get() || shared.queue.borrow().len() >= shared.config.queue_max {
            shared.note_drop();
            return false;
        }
        shared.queue.borrow_mut().push_back(item);
        shared.wake();
        true
    }

    pub fn stats(&self) -> EndpointStats {
        let mut stats = self.shared.stats.borrow().clone();
        stats.queued = self.queued() as u64;
        stats
    }

    /// Items waiting (the batch in flight not included).
    pub fn queued(&self) -> usize {
        self.shared.queue.borrow().len()
    }

    pub fn client(&self) -> &HttpClient {
        &self.shared.client
    }

    /// Stops accepting items and returns the worker's handle: it ends once everything queued
    /// has been delivered or given up (retries included, so up to `max_elapsed` per batch;
    /// without a time limit, not while the endpoint stays down).
    pub fn close(self) -> JoinHandle<()> {
        self.shared.closing.set(true);
        self.shared.wake();
        self.worker.detach()
    }
}

impl<T> Shared<T> {
    fn wake(&self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn count(&self, f: impl FnOnce(&mut EndpointStats)) {
        f(&mut self.stats.borrow_mut());
    }

    fn note_drop(&self) {
        self.count(|s| s.dropped += 1);
        let drops = self.unlogged_drops.get() + 1;
        let due = self.last_drop_log.get().is_none_or(|t| t.elapsed() >= DROP_LOG_INTERVAL);
        if !due {
            self.unlogged_drops.set(drops);
            return;
        }
        tracing::warn!(
            endpoint = self.client.shown(),
            dropped = drops,
            queue_max = self.config.queue_max,
            "hook endpoint queue full; items dropped"
        );
        self.last_drop_log.set(Some(Instant::now()));
        self.unlogged_drops.set(0);
    }

    /// Waits until at least `n` items are queued (true), or the endpoint is closing: then true
    /// if any item is left, false when there is nothing more to do.
    async fn wait_for(&self, n: usize) -> bool {
        poll_fn(|cx| {
            let len = self.queue.borrow().len();
            if len >= n {
                Poll::Ready(true)
            } else if self.closing.get() {
                Poll::Ready(len > 0)
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }

    /// The next batch: waits for a first item, then up to `batch_window` for the batch to fill.
    async fn next_batch(&self) -> Option<Vec<T>> {
        if !self.wait_for(1).await {
            return None;
        }
        let max = self.config.batch_max.max(1);
        if max > 1 {
            with_timeout(self.config.batch_window, self.wait_for(max)).await;
        }
        let mut queue = self.queue.borrow_mut();
        let n = queue.len().min(max);
        Some(queue.drain(..n).collect())
    }
}

/// The worker: batches in queue order, each delivered or given up before the next.
async fn run<T>(shared: Rc<Shared<T>>) {
    while let Some(batch) = shared.next_batch().await {
        deliver(&shared, &batch).await;
    }
}

/// Sends one batch until a 2xx answer or the retry policy gives up.
async fn deliver<T>(shared: &Shared<T>, batch: &[T]) {
    let items = batch.len() as u64;
    let first = Instant::now();
    let mut tries = Tries::default();
    let mut request = None;
    loop {
        let request = match &shared.build {
            Build::Once(build) => request.get_or_insert_with(|| {
                let (body, headers) = build(batch);
                Request { target: None, body, headers }
            }),
            Build::PerAttempt(build) => request.insert(build(batch, tries)),
        };
        let kind = match attempt(shared, request, items).await {
            Outcome::Delivered => return,
            Outcome::Status => {
                tries.failed += 1;
                FailureKind::Other
            }
            Outcome::Error(kind) => {
                tries.errors += 1;
                kind
            }
        };
        let attempts = tries.failed + tries.errors;
        let Some(wait) = shared.config.retry.next_wait(attempts, first.elapsed(), kind) else {
            shared.count(|s| s.failed += items);
            tracing::warn!(
                endpoint = shared.client.shown(),
                items,
                attempts,
                "hook delivery given up"
            );
            return;
        };
        shared.count(|s| s.retried += 1);
        Timer::new(wait).await;
    }
}

/// How one request ended.
enum Outcome {
    Delivered,
    /// Answered with a non-2xx status.
    Status,
    /// Failed before an answer.
    Error(FailureKind),
}

/// One request.
async fn attempt<T>(shared: &Shared<T>, request: &Request, items: u64) -> Outcome {
    let started = Instant::now();
    let (body, headers) = (request.body.clone(), &request.headers[..]);
    let result = match &request.target {
        Some(target) => shared.client.post_to(target, body, headers).await,
        None => shared.client.post(body, headers).await,
    };
    let endpoint = shared.client.shown();
    let mut stats = shared.stats.borrow_mut();
    stats.requests += 1;
    match result {
        Ok(status) if (200..300).contains(&status) => {
            stats.sent += items;
            stats.latency.record(started.elapsed());
            Outcome::Delivered
        }
        Ok(status) => {
            stats.status_errors += 1;
            tracing::warn!(%endpoint, status, "hook delivery answered with an error status");
            Outcome::Status
        }
        Err(error) => {
            if error.is_socket() {
                stats.socket_errors += 1;
            }
            tracing::warn!(%endpoint, %error, "hook delivery failed");
            Outcome::Error(error.kind())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_by_power_of_two() {
        let mut l = Latency::default();
        for us in [0, 1, 2, 3, 4, 1000, 1023, 1024] {
            l.record(Duration::from_micros(us));
        }
        l.record(Duration::from_secs(100));
        assert_eq!(l.count, 9);
        assert_eq!(&l.buckets[..3], &[2, 2, 1]);
        assert_eq!(l.buckets[9], 2);
        assert_eq!(l.buckets[10], 1);
        assert_eq!(l.buckets[LATENCY_BUCKETS - 1], 1);
        assert_eq!(l.max_us, 100_000_000);
        assert_eq!(l.quantile_us(0.5), 7);
        assert_eq!(l.quantile_us(1.0), 100_000_000);
    }

    #[test]
    fn latency_quantile_never_exceeds_max() {
        let mut l = Latency::default();
        l.record(Duration::from_micros(1000));
        assert_eq!(l.quantile_us(0.99), 1000);
        assert_eq!(l.mean_us(), 1000);
        assert_eq!(Latency::default().quantile_us(0.5), 0);
        assert_eq!(Latency::default().mean_us(), 0);
    }

    #[test]
    fn stats_merge_by_sum() {
        let mut a = EndpointStats { sent: 3, requests: 4, queued: 1, ..EndpointStats::default() };
        a.latency.record(Duration::from_micros(10));
        let mut b = EndpointStats { sent: 5, failed: 2, dropped: 7, ..EndpointStats::default() };
        b.latency.record(Duration::from_micros(300));
        let total: EndpointStats = [a.clone(), b.clone()].into_iter().sum();
        assert_eq!((total.sent, total.requests, total.failed, total.dropped), (8, 4, 2, 7));
        assert_eq!((total.queued, total.latency.count, total.latency.max_us), (1, 2, 300));
        assert_eq!(total, [a, b].iter().sum());
    }
}
