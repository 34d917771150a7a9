//! The churn driver: extra connections opening, subscribing and closing at a fixed rate during a fanout.

use super::population::report_fd_limit;
use crate::stats::{self, Percentiles};
use crate::ws_client::{run_subscriber, timed_connect, ClientCtx, ConnectError};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

pub struct ChurnPlan {
    pub rate: f64,
    pub lifetime: Duration,
    pub max_open: u32,
    pub duration: Duration,
    pub channels: u64,
    /// Connection index of the first churning connection (for source-address spreading).
    pub index_base: u64,
}

#[derive(Debug, Default)]
pub struct ChurnOutcome {
    pub opened: u64,
    pub failed: u64,
    pub dropped: u64,
    /// Skipped because `max_open` churning connections were already alive.
    pub skipped: u64,
    pub connect_us: Percentiles,
}

#[derive(Default)]
struct Counters {
    opened: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// Open `rate` connections/s for `duration`; each lives `lifetime` (or until `stop`).
pub async fn drive(
    ctx: Arc<ClientCtx>,
    plan: ChurnPlan,
    stop: watch::Receiver<bool>,
) -> ChurnOutcome {
    let sem = Arc::new(Semaphore::new(plan.max_open as usize));
    let counters = Arc::new(Counters::default());
    let hist = Arc::new(Mutex::new(stats::new_histogram()));
    let start = tokio::time::Instant::now();
    let end = start + plan.duration;
    let rate = plan.rate.max(1e-6);
    let mut k = 0u64;
    let mut skipped = 0;
    loop {
        let next = start + Duration::from_secs_f64(k as f64 / rate);
        if next >= end || *stop.borrow() {
            break;
        }
        tokio::time::sleep_until(next).await;
        let index = plan.index_base + k;
        let ch = (k % plan.channels.max(1)) as usize;
        k += 1;
        if ctx.stats.fd_limit_hit.load(Relaxed) {
            skipped += 1;
            continue;
        }
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let (ctx, counters, hist, stop) =
            (ctx.clone(), counters.clone(), hist.clone(), stop.clone());
        let lifetime = plan.lifetime;
        tokio::spawn(async move {
            let t0 = Instant::now();
            let name = ctx.channel_name(ch);
            let r = timed_connect(&ctx, index as usize, &name).await;
            match r {
                Ok(ws) => {
                    if let Ok(mut h) = hist.lock() {
                        stats::record(&mut h, t0.elapsed().as_micros() as u64);
                    }
                    counters.opened.fetch_add(1, Relaxed);
                    ctx.stats.open.fetch_add(1, Relaxed);
                    let until = Instant::now() + lifetime;
                    let res = run_subscriber(
                        ws,
                        ctx.clone(),
                        index as usize,
                        ch,
                        stop,
                        Some(until),
                        false,
                    )
                    .await;
                    if res.dropped {
                        counters.dropped.fetch_add(1, Relaxed);
                    }
                }
                Err(e) => {
                    counters.failed.fetch_add(1, Relaxed);
                    match e {
                        ConnectError::FdLimit => report_fd_limit(&ctx.stats),
                        ConnectError::Other(m) => ctx.stats.note_error(format!("churn: {m}")),
                        ConnectError::Timeout => {}
                    }
                }
            }
            drop(permit);
        });
    }
    // Wait (bounded) for the churning connections still alive to finish.
    let wait = plan.lifetime + ctx.connect_timeout + Duration::from_secs(1);
    let _ = tokio::time::timeout(wait, sem.acquire_many(plan.max_open)).await;
    let connect_us = hist.lock().map(|h| Percentiles::of(&h)).unwrap_or_default();
    ChurnOutcome {
        opened: counters.opened.load(Relaxed),
        failed: counters.failed.load(Relaxed),
        dropped: counters.dropped.load(Relaxed),
        skipped,
        connect_us,
    }
}
