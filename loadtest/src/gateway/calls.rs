//! `gateway-calls`: upstream round trips per second through the hook shard. N gateway
//! connections each send a request to a proxy route (`--uri`, pointing at this tool's mock
//! upstream over TCP JSON or HTTP), wait for its answer and send the next, for T seconds. The
//! gateway answers a connection's requests one at a time, so N is the number of calls in flight.

use super::{client, mock, GatewayOpts};
use crate::cli::Common;
use crate::report::ClientReport;
use crate::scenarios::{client_report, make_ctx, params, server_sample};
use crate::stats::{LiveStats, Percentiles};
use crate::ws_client::{open_ws, ClientCtx};
use clap::Args;
use serde::Serialize;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args, Serialize)]
pub struct CallsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub gateway: GatewayOpts,
    /// The proxy route to call (`/bench/tcp` or `/bench/http` in loadtest/gateway.toml).
    #[arg(long, default_value = "/bench/tcp")]
    pub uri: String,
    /// Connections calling at once, one request in flight each.
    #[arg(short = 'n', long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub connections: u64,
    /// Measured window (s).
    #[arg(short = 't', long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration_secs: u64,
    /// Size of each request's body padding (bytes).
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct CallsReport {
    pub scenario: &'static str,
    pub target: String,
    pub params: serde_json::Value,
    pub connected: u64,
    pub calls: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub window_secs: f64,
    pub calls_per_sec: f64,
    /// Request to answer, as the client saw it, microseconds.
    pub latency_us: Percentiles,
    /// Server CPU (all its threads, the hook shard included) over the window.
    pub server_cpu_us: Option<u64>,
    pub server_cpu_us_per_call: Option<f64>,
    pub client: ClientReport,
}

pub async fn run(args: &CallsArgs, nofile: u64) -> anyhow::Result<CallsReport> {
    let common = &args.common;
    mock::start(args.gateway.mock_upstream).await?;
    let stats = Arc::new(LiveStats::new(common.workers as usize * 8));
    let pusher = make_ctx(common, "", stats.clone())?;
    let ctx = Arc::new(ClientCtx {
        endpoints: common.endpoints(&args.gateway.path)?,
        conns_per_source: pusher.conns_per_source,
        channel_prefix: String::new(),
        event_name: String::new(),
        connect_timeout: pusher.connect_timeout,
        stats: stats.clone(),
    });
    let mut sockets = Vec::new();
    for i in 0..args.connections as usize {
        match tokio::time::timeout(ctx.connect_timeout, open_ws(&ctx, i)).await {
            Ok(Ok(ws)) => sockets.push(ws),
            _ => stats.note_error(format!("connection {i} could not open")),
        }
    }
    let (calls, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let pad = "x".repeat(args.payload_bytes);
    let window = Duration::from_secs(args.duration_secs);
    let s0 = server_sample(common);
    let t0 = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            let (uri, pad, stats) = (args.uri.clone(), pad.clone(), stats.clone());
            let (calls, errors) = (calls.clone(), errors.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while t0.elapsed() < window {
                    n += 1;
                    let sent = Instant::now();
                    let body = serde_json::json!({ "pad": pad });
                    match client::request(&mut ws, &uri, &format!("{i}-{n}"), body).await {
                        Ok(()) => {
                            calls.fetch_add(1, Relaxed);
                            stats.record_latency(i, sent.elapsed().as_micros() as u64);
                        }
                        Err(e) => {
                            errors.fetch_add(1, Relaxed);
                            stats.note_error(e);
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    let connected = tasks.len() as u64;
    for task in tasks {
        let _ = task.await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let s1 = server_sample(common);
    let server_cpu_us = s0.zip(s1).map(|(a, b)| b.cpu_us.saturating_sub(a.cpu_us));
    let calls = calls.load(Relaxed);
    Ok(CallsReport {
        scenario: "gateway-calls",
        target: ctx.describe(),
        params: params(args),
        connected,
        calls,
        errors: errors.load(Relaxed),
        first_error: stats.first_error.lock().ok().and_then(|e| e.clone()),
        window_secs: secs,
        calls_per_sec: calls as f64 / secs.max(1e-9),
        latency_us: Percentiles::of(&stats.latency_total()),
        server_cpu_us,
        server_cpu_us_per_call: server_cpu_us
            .filter(|_| calls > 0)
            .map(|c| c as f64 / calls as f64),
        client: client_report(common, nofile),
    })
}

impl CallsReport {
    /// The summary on stderr (stdout without `--json -`), the JSON to `json` if given.
    pub fn emit(&self, json: Option<&str>) -> anyhow::Result<()> {
        let summary = format!(
            "== pushgate-load gateway-calls against {} ==\n{} connections, {} calls in {:.2}s = {:.0} calls/s, {} errors\n\
             latency us: p50={} p99={} max={}\nserver CPU: {} us = {} us/call\n",
            self.target,
            self.connected,
            self.calls,
            self.window_secs,
            self.calls_per_sec,
            self.errors,
            self.latency_us.p50,
            self.latency_us.p99,
            self.latency_us.max,
            self.server_cpu_us.map_or("-".into(), |c| c.to_string()),
            self.server_cpu_us_per_call.map_or("-".into(), |c| format!("{c:.1}")),
        );
        let text = serde_json::to_string_pretty(self)?;
        match json {
            Some("-") => {
                eprint!("{summary}");
                println!("{text}");
            }
            Some(path) => {
                print!("{summary}");
                std::fs::File::create(path)?.write_all(text.as_bytes())?;
            }
            None => print!("{summary}"),
        }
        Ok(())
    }
}
