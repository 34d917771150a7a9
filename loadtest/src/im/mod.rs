//! IM (xxim) scenarios against pushgate's IM dialect (`[im.auth] mode = "none"` on the server):
//!
//! - `im-push`: N connections, one user each; `POST /im/sendMsg` naming all N users, R times a
//!   second for T seconds; every connection gets one binary `PushBody` per push. Figures:
//!   deliveries, missing, publish-to-receive latency, server CPU per delivered push.
//! - `im-rtt`: C connections each keeping K requests (event 1) in flight for T seconds, routed by
//!   the server to the mock gRPC backend this tool runs (`--backend-port`). Figures: round trips
//!   per second, latency, server CPU per round trip.

mod backend;
mod client;
mod pb;

use crate::cli::Common;
use crate::procstat::{self, ProcSample};
use crate::stats::{new_histogram, Percentiles};
use base64::Engine as _;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, Clone, Args, Serialize)]
pub struct ImPushArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections, one user each (`bench-u{i}`).
    #[arg(short = 'n', long, default_value_t = 10_000)]
    pub connections: usize,
    /// Pushes per second (each to every user).
    #[arg(short = 'r', long, default_value_t = 10.0)]
    pub rate: f64,
    /// Publish window (s).
    #[arg(short = 't', long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Bytes of `PushBody.data` (at least 8: the send time).
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
    /// The server's `[im] api_key`.
    #[arg(long, default_value = "im-api-key")]
    pub api_key: String,
    /// Longest wait for outstanding pushes after publishing ends (s).
    #[arg(long, default_value_t = 3)]
    pub drain_secs: u64,
    /// Keep-alive HTTP connections publishing in turn (push i goes on connection i % P).
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,
    /// Ask for `successCount` rather than the list of every connection reached.
    #[arg(long)]
    pub only_failed: bool,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct ImRttArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections.
    #[arg(short = 'n', long, default_value_t = 64)]
    pub connections: usize,
    /// Requests each connection keeps waiting.
    #[arg(short = 'k', long, default_value_t = 4)]
    pub in_flight: usize,
    /// Window (s).
    #[arg(short = 't', long, default_value_t = 10)]
    pub duration_secs: u64,
    /// The event sent (its route must point at the mock backend).
    #[arg(long, default_value_t = 1)]
    pub event: i32,
    /// Port of the mock gRPC backend this tool runs on 127.0.0.1.
    #[arg(long, default_value_t = 6700)]
    pub backend_port: u16,
}

/// One run's figures.
#[derive(Debug, Serialize)]
pub struct ImReport {
    pub scenario: &'static str,
    pub connections: usize,
    pub window_secs: f64,
    /// Pushes made (`im-push`) or requests answered with code 0 (`im-rtt`).
    pub operations: u64,
    pub operations_per_sec: f64,
    /// Pushes delivered to clients (`im-push`), or failed requests (`im-rtt`).
    pub delivered: u64,
    pub expected: u64,
    pub failed: u64,
    pub latency_us: Percentiles,
    /// Publish request round trip (`im-push`).
    pub request_us: Option<Percentiles>,
    pub server_cpu_us: Option<u64>,
    /// Server CPU per delivered push (`im-push`) or per round trip (`im-rtt`).
    pub server_cpu_us_per_op: Option<f64>,
    pub backend_calls: Option<u64>,
}

impl ImReport {
    fn emit(&self, json: Option<&str>) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        match json {
            Some("-") => println!("{text}"),
            Some(path) => std::fs::write(path, &text)?,
            None => {}
        }
        let l = &self.latency_us;
        eprintln!(
            "{}: {} conns, {:.0} ops/s, delivered {}/{} (failed {}), latency p50 {} us p99 {} us \
             p99.9 {} us max {} us, server CPU {:?} us/op",
            self.scenario,
            self.connections,
            self.operations_per_sec,
            self.delivered,
            self.expected,
            self.failed,
            l.p50,
            l.p99,
            l.p999,
            l.max,
            self.server_cpu_us_per_op.map(|c| (c * 100.0).round() / 100.0)
        );
        Ok(())
    }
}

fn sample(common: &Common) -> Option<ProcSample> {
    common.server_pid.and_then(|p| procstat::sample(&p.to_string()))
}

fn cpu(a: Option<ProcSample>, b: Option<ProcSample>) -> Option<u64> {
    Some(b?.cpu_us.saturating_sub(a?.cpu_us))
}

fn url(common: &Common, user: usize) -> String {
    format!(
        "ws://{}:{}/ws?userId=bench-u{user}&token=x&platform=bench&deviceId=d",
        common.host, common.port
    )
}

/// Opens `n` IM connections, `concurrency` at a time.
async fn open_all(common: &Common, n: usize) -> anyhow::Result<Vec<client::Ws>> {
    let target = common.target()?;
    let per_source =
        common.conns_per_source.unwrap_or_else(crate::source_addr::default_conns_per_source);
    let mut all = Vec::with_capacity(n);
    let batch = common.connect_concurrency as usize;
    for start in (0..n).step_by(batch) {
        let tasks: Vec<_> = (start..n.min(start + batch))
            .map(|i| {
                let url = url(common, i);
                tokio::spawn(async move { client::connect(target, &url, i, per_source).await })
            })
            .collect();
        for task in tasks {
            all.push(task.await??);
        }
    }
    Ok(all)
}

/// `im-push`.
pub async fn push(args: &ImPushArgs) -> anyhow::Result<()> {
    let common = &args.common;
    let target = common.target()?;
    let clients = open_all(common, args.connections).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|ws| tokio::spawn(client::receive_pushes(ws, stop_rx.clone())))
        .collect();
    let users: Vec<String> = (0..args.connections).map(|i| format!("bench-u{i}")).collect();
    let users: std::sync::Arc<str> = serde_json::to_string(&users)?.into();
    let s0 = sample(common);
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let until = started + Duration::from_secs(args.duration_secs);
    let publishers = args.publishers.max(1);
    let mut workers = Vec::new();
    for first in 0..publishers {
        let sender = crate::publisher::http_connect(target).await?;
        let (users, key, bytes) = (users.clone(), args.api_key.clone(), args.payload_bytes);
        let only_failed = args.only_failed;
        let plan = Plan { first, every: publishers, started, period, until, only_failed };
        workers.push(tokio::spawn(publish(sender, plan, users, key, bytes, target)));
    }
    let (mut pushes, mut request_us) = (0u64, new_histogram());
    for worker in workers {
        let (done, hist) = worker.await??;
        pushes += done;
        let _ = request_us.add(&hist);
    }
    let window = started.elapsed().as_secs_f64();
    let expected = pushes * args.connections as u64;
    let drain = Instant::now();
    let results = collect_after(tasks, stop_tx, Duration::from_secs(args.drain_secs), drain).await;
    let s1 = sample(common);
    let (mut delivered, mut latency) = (0, new_histogram());
    for r in results {
        delivered += r.received;
        let _ = latency.add(&r.latency_us);
    }
    let server_cpu_us = cpu(s0, s1);
    ImReport {
        scenario: "im-push",
        connections: args.connections,
        window_secs: window,
        operations: pushes,
        operations_per_sec: pushes as f64 / window,
        delivered,
        expected,
        failed: expected.saturating_sub(delivered),
        latency_us: Percentiles::of(&latency),
        request_us: Some(Percentiles::of(&request_us)),
        server_cpu_us,
        server_cpu_us_per_op: server_cpu_us
            .filter(|_| delivered > 0)
            .map(|c| c as f64 / delivered as f64),
        backend_calls: None,
    }
    .emit(common.json.as_deref())
}

/// Which pushes one publisher makes: `first`, `first + every`, ... until `until`.
struct Plan {
    first: usize,
    every: usize,
    started: Instant,
    period: Duration,
    until: Instant,
    only_failed: bool,
}

/// Makes one publisher's pushes in turn on its connection; returns how many and their latency.
async fn publish(
    mut sender: crate::publisher::Sender,
    plan: Plan,
    users: std::sync::Arc<str>,
    key: String,
    payload_bytes: usize,
    target: std::net::SocketAddr,
) -> anyhow::Result<(u64, hdrhistogram::Histogram<u64>)> {
    let (mut pushes, mut request_us) = (0u64, new_histogram());
    for i in (plan.first..).step_by(plan.every) {
        let due = plan.started + plan.period * i as u32;
        if due >= plan.until {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let mut data = client::now_ns().to_be_bytes().to_vec();
        data.resize(payload_bytes.max(8), b'x');
        let data = base64::engine::general_purpose::STANDARD.encode(&data);
        let only = plan.only_failed;
        let body =
            format!(r#"{{"userIds":{users},"event":0,"data":"{data}","onlyFailed":{only}}}"#);
        let request = hyper::Request::post("/im/sendMsg")
            .header("host", target.to_string())
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {key}"))
            .body(Full::new(Bytes::from(body)))?;
        let sent = Instant::now();
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let ok = response.status().is_success();
        let _ = response.into_body().collect().await?;
        crate::stats::record(&mut request_us, sent.elapsed().as_micros() as u64);
        anyhow::ensure!(ok, "sendMsg answered an error");
        pushes += 1;
    }
    Ok((pushes, request_us))
}

/// Waits up to `limit` (counted from `from`), then stops the clients and gathers what they saw.
async fn collect_after(
    tasks: Vec<tokio::task::JoinHandle<client::Pushes>>,
    stop: watch::Sender<bool>,
    limit: Duration,
    from: Instant,
) -> Vec<client::Pushes> {
    tokio::time::sleep_until((from + limit).into()).await;
    let _ = stop.send(true);
    let mut all = Vec::new();
    for task in tasks {
        if let Ok(r) = task.await {
            all.push(r);
        }
    }
    all
}

/// `im-rtt`.
pub async fn rtt(args: &ImRttArgs) -> anyhow::Result<()> {
    let common = &args.common;
    let calls = backend::start(([127, 0, 0, 1], args.backend_port).into()).await?;
    let clients = open_all(common, args.connections).await?;
    let s0 = sample(common);
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration_secs);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|ws| tokio::spawn(client::round_trips(ws, args.event, args.in_flight, until)))
        .collect();
    let (mut answered, mut failed, mut latency) = (0, 0, new_histogram());
    for task in tasks {
        if let Ok(t) = task.await {
            answered += t.answered;
            failed += t.failed;
            let _ = latency.add(&t.latency_us);
        }
    }
    let window = started.elapsed().as_secs_f64();
    let s1 = sample(common);
    let server_cpu_us = cpu(s0, s1);
    ImReport {
        scenario: "im-rtt",
        connections: args.connections,
        window_secs: window,
        operations: answered,
        operations_per_sec: answered as f64 / window,
        delivered: answered,
        expected: answered + failed,
        failed,
        latency_us: Percentiles::of(&latency),
        request_us: None,
        server_cpu_us,
        server_cpu_us_per_op: server_cpu_us
            .filter(|_| answered > 0)
            .map(|c| c as f64 / answered as f64),
        backend_calls: Some(calls.load(Relaxed)),
    }
    .emit(common.json.as_deref())
}
