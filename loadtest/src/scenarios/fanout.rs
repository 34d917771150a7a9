//! The fanout scenario (and churn, which is fanout plus a churn driver): publish, deliver, account.

use super::churn::{self, ChurnPlan};
use super::{
    client_report, conn_report, extra_report, extra_samples, make_ctx, params, population,
    server_report, server_sample, COLLECT_LIMIT,
};
use crate::accounting::{tally, BitSet};
use crate::cli::{ChurnArgs, FanoutArgs};
use crate::publisher::{self, http_connect, PubResult, PublishCfg, Schedule};
use crate::report::{ChurnReport, DeliveryReport, PublishReport, Report};
use crate::sign::Credentials;
use crate::stats::{spawn_progress, LiveStats, Percentiles};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Mutex};

pub async fn run(
    args: &FanoutArgs,
    churn_args: Option<&ChurnArgs>,
    nofile: u64,
) -> anyhow::Result<Report> {
    let common = &args.common;
    let target = common.target()?;
    let stats = Arc::new(LiveStats::new(common.workers as usize * 8));
    let ctx = make_ctx(common, &args.event_name, stats.clone())?;
    let label = if churn_args.is_some() { "churn" } else { "fanout" };
    let mut notes = Vec::new();
    let s_start = server_sample(common);

    // Publisher connections first, so they hold their descriptors before the subscribers take the rest.
    let http_timeout = Duration::from_millis(args.http_timeout_ms);
    let mut senders = Vec::new();
    for _ in 0..args.publishers {
        senders.push(match tokio::time::timeout(ctx.connect_timeout, http_connect(target)).await {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                stats.note_error(format!("publisher connect: {e}"));
                None
            }
            Err(_) => None,
        });
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let progress = (!common.quiet).then(|| spawn_progress(stats.clone(), label));
    let pop = population::open_for(&ctx, &args.conns, common, &stop_rx).await;
    let s_conn = server_sample(common);
    let x_conn = extra_samples(common);
    let connected = stats.connected.load(Relaxed);
    if connected == 0 {
        notes.push("no connection could subscribe; nothing was published".into());
    }

    // Publish window.
    let cfg = Arc::new(PublishCfg {
        target,
        creds: Credentials {
            app_id: common.app_id.clone(),
            key: common.app_key.clone(),
            secret: common.app_secret.clone(),
        },
        event_name: args.event_name.clone(),
        channel_prefix: common.channel_prefix.clone(),
        payload_bytes: args.payload_bytes as usize,
        timeout: http_timeout,
        stats: stats.clone(),
    });
    let duration = Duration::from_secs(args.duration_secs);
    let churn_task = churn_args.filter(|_| connected > 0).map(|c| {
        tokio::spawn(churn::drive(
            ctx.clone(),
            ChurnPlan {
                rate: c.churn_rate,
                lifetime: Duration::from_millis(c.churn_lifetime_ms),
                max_open: c.churn_max_open,
                duration,
                channels: args.conns.channels,
                index_base: args.conns.connections,
            },
            stop_rx.clone(),
        ))
    });
    let (tx, rx) = mpsc::channel(args.publishers as usize * 4);
    let queue = Arc::new(Mutex::new(rx));
    let workers: Vec<_> = senders
        .into_iter()
        .map(|s| tokio::spawn(publisher::worker(cfg.clone(), queue.clone(), s)))
        .collect();
    let d0 = stats.delivered.load(Relaxed);
    let t0 = Instant::now();
    let queued = if connected > 0 {
        let sched = Schedule::new(args.conns.channels as usize, args.random_channel);
        publisher::run_schedule(sched, args.rate, duration, tx).await
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

    // What should arrive: every acknowledged event, once per subscriber of its channel.
    let mut published = vec![BitSet::default(); args.conns.channels as usize];
    for j in &pres.ok {
        published[j.channel].insert(j.seq);
    }
    let expected: u64 =
        pop.subs_per_channel.iter().enumerate().map(|(c, &subs)| subs * published[c].len()).sum();
    let drain_start = Instant::now();
    let drain_limit = Duration::from_secs(args.drain_secs);
    while stats.delivered_unique.load(Relaxed) < expected && drain_start.elapsed() < drain_limit {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();
    let s_end = server_sample(common);
    let x_end = extra_samples(common);

    let churn = match churn_task {
        Some(t) => t.await.ok(),
        None => None,
    };
    let mut connections = conn_report(&stats, &pop);
    let _ = stop_tx.send(true);
    let results = population::collect(pop, COLLECT_LIMIT).await;
    if let Some(p) = progress {
        p.abort();
    }
    connections.dropped = stats.dropped.load(Relaxed);
    let t = tally(&published, results.iter().map(|r| (r.channel, &r.tracker)));
    if (results.len() as u64) < connections.connected {
        notes.push(format!(
            "{} connection tasks did not finish in time; their deliveries are not in the tally",
            connections.connected - results.len() as u64
        ));
    }
    let latency = stats.latency_total();
    if let Some(path) = &common.plot {
        let title = format!(
            "{label}: {} conns, {} channels, {}/s, {} B payload; end-to-end latency",
            connections.connected, args.conns.channels, args.rate, args.payload_bytes
        );
        std::fs::write(path, crate::plot::render_svg(&latency, &title))?;
    }
    let http_errors = pres.http_status.values().sum::<u64>() + pres.transport_errors;
    let achieved = pres.ok.len() as f64 / pub_secs.max(1e-9);
    if connected > 0 && achieved < args.rate * 0.95 {
        notes.push(format!(
            "publishing reached {achieved:.1}/s of the {}/s asked: {} HTTP connections could not keep up \
             (raise --publishers) or the server's REST API is the limit",
            args.rate, args.publishers
        ));
    }
    Ok(Report {
        scenario: label.into(),
        target: ctx.describe(),
        params: match churn_args {
            Some(c) => params(c),
            None => params(args),
        },
        server: server_report(common, s_start, s_conn, s_conn, s_end, connected, Some(t.delivered)),
        extra: extra_report(common, &x_conn, &x_end, t.delivered),
        connections,
        publish: Some(PublishReport {
            duration_secs: pub_secs,
            target_rate: args.rate,
            queued,
            published: pres.ok.len() as u64,
            achieved_rate: achieved,
            http_errors,
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
        churn: churn.map(|c| ChurnReport {
            rate: churn_args.map(|a| a.churn_rate).unwrap_or(0.0),
            lifetime_ms: churn_args.map(|a| a.churn_lifetime_ms).unwrap_or(0),
            opened: c.opened,
            failed: c.failed,
            dropped: c.dropped,
            skipped: c.skipped,
            connect_us: c.connect_us,
        }),
        client: client_report(common, nofile),
        notes,
    })
}
