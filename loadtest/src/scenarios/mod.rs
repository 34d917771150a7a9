//! Scenario drivers (fanout, idle, churn) and the setup and report pieces they share.

pub mod churn;
pub mod fanout;
pub mod idle;
pub mod population;
#[cfg(test)]
mod tests;

use crate::cli::Common;
use crate::procstat::{self, ProcSample};
use crate::report::{ClientReport, ConnReport, ProcCpu, ServerReport};
use crate::source_addr;
use crate::stats::{LiveStats, Percentiles};
use crate::ws_client::ClientCtx;
use population::Population;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// Bound on stopping and collecting all connection tasks at the end of a run.
pub const COLLECT_LIMIT: Duration = Duration::from_secs(30);

pub fn make_ctx(
    common: &Common,
    event_name: &str,
    stats: Arc<LiveStats>,
) -> anyhow::Result<Arc<ClientCtx>> {
    Ok(Arc::new(ClientCtx {
        endpoints: common.endpoints(&common.ws_path())?,
        conns_per_source: common
            .conns_per_source
            .unwrap_or_else(source_addr::default_conns_per_source),
        channel_prefix: common.channel_prefix.clone(),
        event_name: event_name.to_string(),
        connect_timeout: Duration::from_millis(common.connect_timeout_ms),
        stats,
    }))
}

pub fn server_sample(common: &Common) -> Option<ProcSample> {
    common.server_pid.and_then(|p| procstat::sample(&p.to_string()))
}

/// One sample of each `--extra-pid` process, in flag order.
pub fn extra_samples(common: &Common) -> Vec<Option<ProcSample>> {
    common.extra_pid.iter().map(|p| procstat::sample(&p.to_string())).collect()
}

/// CPU of each `--extra-pid` process between two `extra_samples`, and per delivery.
pub fn extra_report(
    common: &Common,
    from: &[Option<ProcSample>],
    end: &[Option<ProcSample>],
    deliveries: u64,
) -> Vec<ProcCpu> {
    let window = |a: &Option<ProcSample>, b: &Option<ProcSample>| match (a, b) {
        (Some(a), Some(b)) => Some(b.cpu_us.saturating_sub(a.cpu_us)),
        _ => None,
    };
    let per = |c: Option<u64>| c.filter(|_| deliveries > 0).map(|c| c as f64 / deliveries as f64);
    common
        .extra_pid
        .iter()
        .zip(from.iter().zip(end))
        .map(|(&pid, (a, b))| {
            let cpu = window(a, b);
            ProcCpu { pid, cpu_us_window: cpu, cpu_us_per_delivery: per(cpu) }
        })
        .collect()
}

pub fn conn_report(stats: &LiveStats, pop: &Population) -> ConnReport {
    let connected = stats.connected.load(Relaxed);
    let hit = stats.fd_limit_hit.load(Relaxed);
    ConnReport {
        requested: pop.requested,
        attempted: pop.attempted,
        connected,
        failed: stats.connect_failed.load(Relaxed),
        timeouts: stats.connect_timeouts.load(Relaxed),
        dropped: stats.dropped.load(Relaxed),
        fd_limit_hit: hit,
        open_at_fd_limit: hit.then(|| stats.open_at_fd_limit.load(Relaxed)),
        connect_secs: pop.connect_secs,
        connect_rate_per_s: connected as f64 / pop.connect_secs.max(1e-9),
        connect_us: Percentiles::of(&stats.connect_histogram()),
        first_error: stats.first_error.lock().ok().and_then(|e| e.clone()),
    }
}

/// Server figures: RSS per connection from `start`→`loaded`, CPU over `window_from`→`end`.
pub fn server_report(
    common: &Common,
    start: Option<ProcSample>,
    loaded: Option<ProcSample>,
    window_from: Option<ProcSample>,
    end: Option<ProcSample>,
    connections: u64,
    deliveries: Option<u64>,
) -> Option<ServerReport> {
    let pid = common.server_pid?;
    let rss_bytes_per_conn = match (start, loaded) {
        (Some(a), Some(b)) if connections > 0 => {
            Some((b.rss_kb as f64 - a.rss_kb as f64) * 1024.0 / connections as f64)
        }
        _ => None,
    };
    if rss_bytes_per_conn.is_some_and(|x| x < 0.0) {
        eprintln!(
            "pushgate-load: server RSS fell while connecting; RSS per connection is only meaningful \
             on a freshly started server"
        );
    }
    let cpu_us_window = match (window_from, end) {
        (Some(a), Some(b)) => Some(b.cpu_us.saturating_sub(a.cpu_us)),
        _ => None,
    };
    let cpu_us_per_delivery = match (cpu_us_window, deliveries) {
        (Some(c), Some(d)) if d > 0 => Some(c as f64 / d as f64),
        _ => None,
    };
    Some(ServerReport {
        pid,
        start,
        connected: loaded,
        end,
        rss_bytes_per_conn,
        cpu_us_window,
        cpu_us_per_delivery,
    })
}

pub fn client_report(common: &Common, nofile_limit: u64) -> ClientReport {
    ClientReport { workers: common.workers, nofile_limit, end: procstat::sample("self") }
}

pub fn params<T: serde::Serialize>(args: &T) -> serde_json::Value {
    serde_json::to_value(args).unwrap_or(serde_json::Value::Null)
}
