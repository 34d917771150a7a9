//! The idle scenario: hold N subscribed connections and measure the server's memory per connection.

use super::{
    client_report, conn_report, make_ctx, params, population, server_report, server_sample,
    COLLECT_LIMIT,
};
use crate::cli::IdleArgs;
use crate::report::Report;
use crate::stats::{spawn_progress, LiveStats};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(args: &IdleArgs, nofile: u64) -> anyhow::Result<Report> {
    let common = &args.common;
    let stats = Arc::new(LiveStats::new(common.workers as usize * 8));
    let ctx = make_ctx(common, "pushgate-load:none", stats.clone())?;
    let s_start = server_sample(common);
    let (stop_tx, stop_rx) = watch::channel(false);
    let progress = (!common.quiet).then(|| spawn_progress(stats.clone(), "idle"));
    let pop = population::open_for(&ctx, &args.conns, common, &stop_rx).await;
    let s_conn = server_sample(common);
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let s_end = server_sample(common);
    let mut connections = conn_report(&stats, &pop);
    if let Some(path) = &common.plot {
        let title = format!(
            "idle: {} conns; connect + subscribe time per connection",
            connections.connected
        );
        std::fs::write(path, crate::plot::render_svg(&stats.connect_histogram(), &title))?;
    }
    let _ = stop_tx.send(true);
    population::collect(pop, COLLECT_LIMIT).await;
    if let Some(p) = progress {
        p.abort();
    }
    connections.dropped = stats.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let mut notes = Vec::new();
    if common.server_pid.is_some() {
        notes.push(format!(
            "RSS per connection uses the sample taken after holding {}s",
            args.hold_secs
        ));
    }
    Ok(Report {
        scenario: "idle".into(),
        target: ctx.describe(),
        params: params(args),
        server: server_report(common, s_start, s_end, s_conn, s_end, connections.connected, None),
        connections,
        client: client_report(common, nofile),
        notes,
        ..Default::default()
    })
}
