//! Live counters shared by all tasks, sharded latency histograms and the once-a-second progress line.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Highest latency tracked exactly (µs); larger values are clamped.
const MAX_US: u64 = 600_000_000;

/// A latency histogram in microseconds (1 µs .. 10 min, 3 significant figures).
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_US, 3) {
        Ok(h) => h,
        Err(_) => unreachable!("constant histogram bounds are valid"),
    }
}

pub fn record(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.clamp(1, MAX_US));
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct LatShard {
    total: Histogram<u64>,
    interval: Histogram<u64>,
}

/// Counters updated by connection, publisher and churn tasks.
pub struct LiveStats {
    pub open: AtomicU64,
    /// Connection attempts in progress (socket opened, not yet subscribed or failed).
    pub attempting: AtomicU64,
    pub connected: AtomicU64,
    pub connect_failed: AtomicU64,
    pub connect_timeouts: AtomicU64,
    pub dropped: AtomicU64,
    pub delivered: AtomicU64,
    pub delivered_unique: AtomicU64,
    pub published: AtomicU64,
    pub http_errors: AtomicU64,
    pub fd_limit_hit: AtomicBool,
    pub open_at_fd_limit: AtomicU64,
    pub first_error: Mutex<Option<String>>,
    pub connect_hist: Mutex<Histogram<u64>>,
    shards: Vec<Mutex<LatShard>>,
}

impl LiveStats {
    pub fn new(shards: usize) -> Self {
        LiveStats {
            open: AtomicU64::new(0),
            attempting: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            connect_failed: AtomicU64::new(0),
            connect_timeouts: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            delivered_unique: AtomicU64::new(0),
            published: AtomicU64::new(0),
            http_errors: AtomicU64::new(0),
            fd_limit_hit: AtomicBool::new(false),
            open_at_fd_limit: AtomicU64::new(0),
            first_error: Mutex::new(None),
            connect_hist: Mutex::new(new_histogram()),
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(LatShard { total: new_histogram(), interval: new_histogram() }))
                .collect(),
        }
    }

    /// Record one end-to-end delivery latency; `key` spreads writers over shards.
    pub fn record_latency(&self, key: usize, us: u64) {
        let mut s = lock(&self.shards[key % self.shards.len()]);
        record(&mut s.total, us);
        record(&mut s.interval, us);
    }

    pub fn record_connect(&self, us: u64) {
        record(&mut lock(&self.connect_hist), us);
    }

    pub fn note_error(&self, msg: String) {
        let mut e = lock(&self.first_error);
        if e.is_none() {
            *e = Some(msg);
        }
    }

    /// All delivery latencies so far.
    pub fn latency_total(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for s in &self.shards {
            let _ = h.add(&lock(s).total);
        }
        h
    }

    /// Latencies since the previous call, resetting the interval histograms.
    pub fn take_interval(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for s in &self.shards {
            let mut s = lock(s);
            let _ = h.add(&s.interval);
            s.interval.reset();
        }
        h
    }

    pub fn connect_histogram(&self) -> Histogram<u64> {
        lock(&self.connect_hist).clone()
    }
}

/// Percentile summary of a histogram, in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Percentiles {
            count: h.len(),
            min: h.min(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Print a progress line to stderr every second until the returned handle is aborted.
pub fn spawn_progress(stats: Arc<LiveStats>, label: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let (mut last_d, mut last_p) =
            (stats.delivered.load(Relaxed), stats.published.load(Relaxed));
        let mut last_t = Instant::now();
        loop {
            tick.tick().await;
            let now = Instant::now();
            let dt = now.duration_since(last_t).as_secs_f64().max(1e-3);
            let d = stats.delivered.load(Relaxed);
            let p = stats.published.load(Relaxed);
            let iv = stats.take_interval();
            let p99 = if iv.is_empty() {
                "-".to_string()
            } else {
                format!("{}us", iv.value_at_quantile(0.99))
            };
            eprintln!(
                "[{label} {:>4.0}s] conns={} published/s={:.0} deliveries/s={:.0} p99={} dropped={} http_err={}",
                start.elapsed().as_secs_f64(),
                stats.open.load(Relaxed),
                (p - last_p) as f64 / dt,
                (d - last_d) as f64 / dt,
                p99,
                stats.dropped.load(Relaxed),
                stats.http_errors.load(Relaxed),
            );
            (last_d, last_p, last_t) = (d, p, now);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_merge_and_interval_resets() {
        let s = LiveStats::new(3);
        for (k, us) in [(0, 100), (1, 200), (2, 300), (3, 400)] {
            s.record_latency(k, us);
        }
        assert_eq!(s.take_interval().len(), 4);
        assert_eq!(s.take_interval().len(), 0);
        let p = Percentiles::of(&s.latency_total());
        assert_eq!(p.count, 4);
        assert_eq!(p.max, 400);
        assert!(p.p50 >= 199 && p.p50 <= 201);
    }
}
