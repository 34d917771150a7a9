//! Opening N subscribed connections (bounded concurrency, timeouts, EMFILE handling) before a scenario.

use crate::stats::LiveStats;
use crate::ws_client::{run_subscriber, timed_connect, ClientCtx, ConnResult, ConnectError};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

/// The subscribed connections of a run, each a task that ends when `stop` is set.
pub struct Population {
    pub handles: Vec<JoinHandle<Option<ConnResult>>>,
    pub requested: u64,
    pub attempted: u64,
    pub connect_secs: f64,
    /// Subscribers per channel index (connections that completed subscribe).
    pub subs_per_channel: Vec<u64>,
}

/// Note an EMFILE once, loudly, with the number of connections open at the time.
pub fn report_fd_limit(stats: &LiveStats) {
    if !stats.fd_limit_hit.swap(true, Relaxed) {
        let open = stats.open.load(Relaxed);
        let setting_up = stats.attempting.load(Relaxed).saturating_sub(1);
        stats.open_at_fd_limit.store(open + setting_up, Relaxed);
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `lim` is a valid, writable rlimit struct.
        let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            lim.rlim_cur.to_string()
        } else {
            "unknown".to_string()
        };
        eprintln!(
            "pushgate-load: open-file limit reached (EMFILE): this process may hold at most {soft} \
             open files (RLIMIT_NOFILE, see `ulimit -n`); opening another socket failed with {open} \
             connections subscribed and {setting_up} more being set up. No more connections will be \
             opened; the run continues with those that complete."
        );
    }
}

/// Opens the population a scenario's flags ask for (`-n`, `-c`, connect concurrency and phase).
pub async fn open_for(
    ctx: &Arc<ClientCtx>,
    conns: &crate::cli::ConnArgs,
    common: &crate::cli::Common,
    stop: &watch::Receiver<bool>,
) -> Population {
    let phase = Duration::from_secs(common.connect_phase_secs);
    open(ctx, conns.connections, conns.channels, common.connect_concurrency, phase, stop).await
}

/// Open `n` connections, connection i subscribing to channel i % `channels`, and wait until every
/// attempt has finished (or the connect phase limit passes).
async fn open(
    ctx: &Arc<ClientCtx>,
    n: u64,
    channels: u64,
    concurrency: u32,
    phase_limit: Duration,
    stop: &watch::Receiver<bool>,
) -> Population {
    let stats = ctx.stats.clone();
    let sem = Arc::new(Semaphore::new(concurrency as usize));
    let start = Instant::now();
    let deadline = start + phase_limit;
    let mut handles = Vec::with_capacity(n as usize);
    let mut attempted = 0;
    let subs: Arc<Vec<AtomicU64>> =
        Arc::new((0..channels.min(n)).map(|_| AtomicU64::new(0)).collect());
    for i in 0..n {
        if stats.fd_limit_hit.load(Relaxed) || Instant::now() >= deadline {
            break;
        }
        let permit =
            match tokio::time::timeout_at(deadline.into(), sem.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => break,
            };
        if stats.fd_limit_hit.load(Relaxed) {
            break;
        }
        attempted += 1;
        let ctx = ctx.clone();
        let stop = stop.clone();
        let ch = (i % channels) as usize;
        let subs = subs.clone();
        handles.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let name = ctx.channel_name(ch);
            let r = timed_connect(&ctx, i as usize, &name).await;
            let ws = match r {
                Ok(ws) => ws,
                Err(e) => {
                    drop(permit);
                    note_failure(&ctx.stats, e);
                    return None;
                }
            };
            ctx.stats.record_connect(t0.elapsed().as_micros() as u64);
            ctx.stats.open.fetch_add(1, Relaxed);
            ctx.stats.connected.fetch_add(1, Relaxed);
            subs[ch].fetch_add(1, Relaxed);
            drop(permit);
            Some(run_subscriber(ws, ctx, i as usize, ch, stop, None, true).await)
        }));
    }
    // Every attempt returns its permit when it finishes connecting (or fails).
    let _ = tokio::time::timeout_at(deadline.into(), sem.acquire_many(concurrency)).await;
    let connect_secs = start.elapsed().as_secs_f64();
    let subs_per_channel = subs.iter().map(|c| c.load(Relaxed)).collect();
    Population { handles, requested: n, attempted, connect_secs, subs_per_channel }
}

pub fn note_failure(stats: &LiveStats, e: ConnectError) {
    stats.connect_failed.fetch_add(1, Relaxed);
    match e {
        ConnectError::FdLimit => report_fd_limit(stats),
        ConnectError::Timeout => {
            stats.connect_timeouts.fetch_add(1, Relaxed);
        }
        ConnectError::Other(m) => stats.note_error(m),
    }
}

/// Stop every connection and collect what each saw.
pub async fn collect(pop: Population, limit: Duration) -> Vec<ConnResult> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::with_capacity(pop.handles.len());
    for h in pop.handles {
        let abort = h.abort_handle();
        match tokio::time::timeout_at(deadline.into(), h).await {
            Ok(Ok(Some(r))) => out.push(r),
            Ok(_) => {}
            Err(_) => abort.abort(),
        }
    }
    out
}
