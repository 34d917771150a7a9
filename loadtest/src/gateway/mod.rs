//! Gateway modes, for pushgate's APISIX/API7-style push gateway dialect. The tool runs its own
//! mock upstream (`mock`: TCP JSON on `--mock-upstream`, HTTP on the next port); the server's
//! routes must point there (`loadtest/gateway.toml`).
//!
//! - `gateway`: the fanout scenario with gateway subscribers (`client`: register + sub_add
//!   through the routes, then pushes) and publishes through `POST /gateway/publish`
//!   (`publish`); the same accounting as `fanout` (deliveries, latency, server CPU per delivery).
//! - `gateway-calls` (`calls`): upstream round trips per second through the hook shard.

pub mod calls;
mod client;
mod mock;
mod publish;

use crate::accounting::{tally, BitSet};
use crate::cli::FanoutArgs;
use crate::publisher::{http_connect, run_schedule, PubResult, Schedule};
use crate::report::{DeliveryReport, PublishReport, Report};
use crate::scenarios::{
    client_report, conn_report, extra_report, extra_samples, params, population, server_report,
    server_sample, COLLECT_LIMIT,
};
use crate::stats::{spawn_progress, LiveStats, Percentiles};
use crate::ws_client::ClientCtx;
use clap::Args;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Mutex};

/// The register route of the seed.
pub const REGISTER: &str = "/60101/ormp/session/channelRegister";
/// The sub_add route of the seed.
pub const SUB_ADD: &str = "/60150/ormp/subscribe/accountSubscribe";

/// Where the gateway is and how to reach it.
#[derive(Debug, Clone, Args, Serialize)]
pub struct GatewayOpts {
    /// WebSocket path of the gateway dialect.
    #[arg(long, default_value = "/msg-pub")]
    pub path: String,
    /// The server's `[gateway] publish_key`.
    #[arg(long, default_value = "gateway-key")]
    #[serde(skip)]
    pub publish_key: String,
    /// Where this tool's mock upstream listens: TCP JSON here, HTTP on the next port.
    #[arg(long, default_value = "127.0.0.1:19750")]
    pub mock_upstream: SocketAddr,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub fanout: FanoutArgs,
    #[command(flatten)]
    pub gateway: GatewayOpts,
    /// Route of the register request.
    #[arg(long, default_value = REGISTER)]
    pub register_uri: String,
    /// Route of the sub_add request.
    #[arg(long, default_value = SUB_ADD)]
    pub sub_uri: String,
}

/// The client context for gateway connections (Pusher's, with the gateway's URL).
fn context(
    args: &FanoutArgs,
    opts: &GatewayOpts,
    stats: Arc<LiveStats>,
) -> anyhow::Result<Arc<ClientCtx>> {
    let common = &args.common;
    let pusher = crate::scenarios::make_ctx(common, &args.event_name, stats)?;
    Ok(Arc::new(ClientCtx {
        endpoints: common.endpoints(&opts.path)?,
        conns_per_source: pusher.conns_per_source,
        channel_prefix: pusher.channel_prefix.clone(),
        event_name: pusher.event_name.clone(),
        connect_timeout: pusher.connect_timeout,
        stats: pusher.stats.clone(),
    }))
}

pub async fn run(args: &GatewayArgs, nofile: u64) -> anyhow::Result<Report> {
    let fan = &args.fanout;
    let common = &fan.common;
    let target = common.target()?;
    mock::start(args.gateway.mock_upstream).await?;
    let stats = Arc::new(LiveStats::new(common.workers as usize * 8));
    let ctx = context(fan, &args.gateway, stats.clone())?;
    let mut notes = Vec::new();
    let s_start = server_sample(common);
    let timeout = Duration::from_millis(fan.http_timeout_ms);
    let mut senders = Vec::new();
    for _ in 0..fan.publishers {
        senders.push(
            tokio::time::timeout(ctx.connect_timeout, http_connect(target))
                .await
                .ok()
                .and_then(Result::ok),
        );
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let progress = (!common.quiet).then(|| spawn_progress(stats.clone(), "gateway"));
    let routes =
        client::Routes { register: args.register_uri.clone(), sub_add: args.sub_uri.clone() };
    let pop = client::open(&ctx, &routes, &fan.conns, common, &stop_rx).await;
    let s_conn = server_sample(common);
    let x_conn = extra_samples(common);
    let connected = stats.connected.load(Relaxed);
    if connected == 0 {
        notes.push("no connection could subscribe; nothing was published".into());
    }
    let cfg = Arc::new(publish::GatewayPublish {
        target,
        key: args.gateway.publish_key.clone(),
        topic_prefix: common.channel_prefix.clone(),
        payload_bytes: fan.payload_bytes as usize,
        timeout,
        stats: stats.clone(),
    });
    let (tx, rx) = mpsc::channel(fan.publishers as usize * 4);
    let queue = Arc::new(Mutex::new(rx));
    let workers: Vec<_> = senders
        .into_iter()
        .map(|s| tokio::spawn(publish::worker(cfg.clone(), queue.clone(), s)))
        .collect();
    let d0 = stats.delivered.load(Relaxed);
    let t0 = Instant::now();
    let duration = Duration::from_secs(fan.duration_secs);
    let queued = if connected > 0 {
        let sched = Schedule::new(fan.conns.channels as usize, fan.random_channel);
        run_schedule(sched, fan.rate, duration, tx).await
    } else {
        drop(tx);
        0
    };
    let mut pres = PubResult::default();
    for w in workers {
        if let Ok(r) = w.await {
            pres.merge(r);
        }
    }
    let pub_secs = t0.elapsed().as_secs_f64();
    let d1 = stats.delivered.load(Relaxed);
    let mut published = vec![BitSet::default(); fan.conns.channels as usize];
    for j in &pres.ok {
        published[j.channel].insert(j.seq);
    }
    let expected: u64 =
        pop.subs_per_channel.iter().enumerate().map(|(c, &subs)| subs * published[c].len()).sum();
    let drain_start = Instant::now();
    while stats.delivered_unique.load(Relaxed) < expected
        && drain_start.elapsed() < Duration::from_secs(fan.drain_secs)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();
    let s_end = server_sample(common);
    let x_end = extra_samples(common);
    let mut connections = conn_report(&stats, &pop);
    let _ = stop_tx.send(true);
    let results = population::collect(pop, COLLECT_LIMIT).await;
    if let Some(p) = progress {
        p.abort();
    }
    connections.dropped = stats.dropped.load(Relaxed);
    let t = tally(&published, results.iter().map(|r| (r.channel, &r.tracker)));
    let latency = stats.latency_total();
    if let Some(path) = &common.plot {
        let title = format!(
            "gateway: {} conns, {} topics, {}/s; end-to-end latency",
            connections.connected, fan.conns.channels, fan.rate
        );
        std::fs::write(path, crate::plot::render_svg(&latency, &title))?;
    }
    let achieved = pres.ok.len() as f64 / pub_secs.max(1e-9);
    if connected > 0 && achieved < fan.rate * 0.95 {
        notes.push(format!("publishing reached {achieved:.1}/s of the {}/s asked", fan.rate));
    }
    Ok(Report {
        scenario: "gateway".into(),
        target: ctx.describe(),
        params: params(args),
        server: server_report(common, s_start, s_conn, s_conn, s_end, connected, Some(t.delivered)),
        extra: extra_report(common, &x_conn, &x_end, t.delivered),
        connections,
        publish: Some(PublishReport {
            duration_secs: pub_secs,
            target_rate: fan.rate,
            queued,
            published: pres.ok.len() as u64,
            achieved_rate: achieved,
            http_errors: pres.http_status.values().sum::<u64>() + pres.transport_errors,
            http_status: pres.http_status.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            transport_errors: pres.transport_errors,
            reconnects: pres.reconnects,
            request_us: pres.latency.as_ref().map(Percentiles::of).unwrap_or_default(),
        }),
        delivery: Some(DeliveryReport {
            expected: t.expected,
            delivered: t.delivered,
            delivered_unique: t.delivered_unique,
            missing: t.missing,
            duplicated: t.duplicated,
            unexpected: t.unexpected,
            deliveries_per_sec: (d1 - d0) as f64 / pub_secs.max(1e-9),
            drain_secs,
        }),
        latency_us: Some(Percentiles::of(&latency)),
        churn: None,
        client: client_report(common, nofile),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Scenario};
    use clap::Parser;

    #[test]
    fn gateway_modes_parse_with_their_defaults() {
        let cli =
            Cli::try_parse_from(["pushgate-load", "gateway", "-n", "10", "--publish-key", "k"]);
        let Ok(Cli { scenario: Scenario::Gateway(a) }) = cli else {
            panic!("gateway did not parse");
        };
        assert_eq!(a.fanout.conns.connections, 10);
        assert_eq!((a.gateway.publish_key.as_str(), a.gateway.path.as_str()), ("k", "/msg-pub"));
        assert_eq!(a.gateway.mock_upstream.port(), 19750);
        assert_eq!(a.register_uri, super::REGISTER);
        let cli = Cli::try_parse_from([
            "pushgate-load",
            "gateway-calls",
            "--uri",
            "/bench/http",
            "-n",
            "8",
        ]);
        let Ok(Cli { scenario: Scenario::GatewayCalls(a) }) = cli else {
            panic!("gateway-calls did not parse");
        };
        assert_eq!((a.uri.as_str(), a.connections, a.duration_secs), ("/bench/http", 8, 10));
    }
}
