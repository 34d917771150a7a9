//! One gateway subscriber: TCP + WebSocket handshake (shared with the Pusher client), a
//! `register` and a `sub_add` of its topic through the server's routes (answered by the mock
//! upstream), then pushes `{"status":200,"body":{"topic","resultData",...}}` checked and timed
//! like Pusher events; and the population of them a run opens.

use crate::accounting::SeqTracker;
use crate::payload;
use crate::scenarios::population::{note_failure, Population};
use crate::ws_client::{open_ws, ClientCtx, ConnResult, ConnectError, Ws};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// The routes a subscriber goes through.
#[derive(Debug, Clone)]
pub struct Routes {
    pub register: String,
    pub sub_add: String,
}

/// A push as received (parsed without copying the strings).
#[derive(Deserialize)]
struct Push<'a> {
    #[serde(borrow, default)]
    body: Option<PushBody<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushBody<'a> {
    #[serde(borrow, default)]
    topic: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    result_data: Option<Cow<'a, str>>,
}

/// Sends one request frame and waits for the answer with its msgId; fails unless it is 200.
pub async fn request(
    ws: &mut Ws,
    uri: &str,
    msg_id: &str,
    body: serde_json::Value,
) -> Result<(), String> {
    let frame = serde_json::json!({"uri": uri, "header": {"msgId": msg_id}, "body": body});
    ws.send(Message::text(frame.to_string())).await.map_err(|e| format!("send {uri}: {e}"))?;
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("waiting for {uri}: {e}")),
            None => return Err(format!("closed while waiting for {uri}")),
        };
        let Ok(answer) = serde_json::from_str::<serde_json::Value>(text.as_str()) else { continue };
        if answer["body"]["msgId"] != msg_id {
            continue;
        }
        return if answer["status"] == 200 { Ok(()) } else { Err(format!("{uri}: {answer}")) };
    }
}

/// Connects, registers and subscribes to `topic`.
async fn connect(
    ctx: &ClientCtx,
    routes: &Routes,
    index: usize,
    topic: &str,
) -> Result<Ws, ConnectError> {
    let mut ws = open_ws(ctx, index).await?;
    request(&mut ws, &routes.register, "r", serde_json::json!({}))
        .await
        .map_err(ConnectError::Other)?;
    request(&mut ws, &routes.sub_add, "s", serde_json::json!({ "topics": [topic] }))
        .await
        .map_err(ConnectError::Other)?;
    Ok(ws)
}

/// Opens `n` subscribers, subscriber i on topic i % `channels`, `concurrency` at a time.
pub async fn open(
    ctx: &Arc<ClientCtx>,
    routes: &Routes,
    conns: &crate::cli::ConnArgs,
    common: &crate::cli::Common,
    stop: &watch::Receiver<bool>,
) -> Population {
    let (n, channels) = (conns.connections, conns.channels);
    let concurrency = common.connect_concurrency;
    let sem = Arc::new(Semaphore::new(concurrency as usize));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(common.connect_phase_secs);
    let subs: Arc<Vec<AtomicU64>> =
        Arc::new((0..channels.min(n)).map(|_| AtomicU64::new(0)).collect());
    let mut handles = Vec::with_capacity(n as usize);
    let mut attempted = 0;
    for i in 0..n {
        if ctx.stats.fd_limit_hit.load(Relaxed) || Instant::now() >= deadline {
            break;
        }
        let Ok(Ok(permit)) =
            tokio::time::timeout_at(deadline.into(), sem.clone().acquire_owned()).await
        else {
            break;
        };
        attempted += 1;
        let (ctx, routes, stop, subs) = (ctx.clone(), routes.clone(), stop.clone(), subs.clone());
        let ch = (i % channels) as usize;
        handles.push(tokio::spawn(async move {
            let t0 = Instant::now();
            ctx.stats.attempting.fetch_add(1, Relaxed);
            let topic = ctx.channel_name(ch);
            let result = tokio::time::timeout(
                ctx.connect_timeout,
                connect(&ctx, &routes, i as usize, &topic),
            )
            .await
            .unwrap_or(Err(ConnectError::Timeout));
            ctx.stats.attempting.fetch_sub(1, Relaxed);
            drop(permit);
            let ws = match result {
                Ok(ws) => ws,
                Err(e) => {
                    note_failure(&ctx.stats, e);
                    return None;
                }
            };
            ctx.stats.record_connect(t0.elapsed().as_micros() as u64);
            ctx.stats.open.fetch_add(1, Relaxed);
            ctx.stats.connected.fetch_add(1, Relaxed);
            subs[ch].fetch_add(1, Relaxed);
            Some(receive(ws, ctx, i as usize, ch, stop).await)
        }));
    }
    let _ = tokio::time::timeout_at(deadline.into(), sem.acquire_many(concurrency)).await;
    let connect_secs = start.elapsed().as_secs_f64();
    let subs_per_channel = subs.iter().map(|c| c.load(Relaxed)).collect();
    Population { handles, requested: n, attempted, connect_secs, subs_per_channel }
}

/// Receives pushes until `stop`, checking each against its topic's sequence and timing it.
async fn receive(
    mut ws: Ws,
    ctx: Arc<ClientCtx>,
    index: usize,
    channel: usize,
    mut stop: watch::Receiver<bool>,
) -> ConnResult {
    let mut tracker = SeqTracker::default();
    let topic = ctx.channel_name(channel);
    let stats = &ctx.stats;
    let mut dropped = false;
    let stopped = stop.wait_for(|s| *s);
    tokio::pin!(stopped);
    loop {
        let msg = tokio::select! {
            biased;
            _ = &mut stopped => break,
            m = ws.next() => m,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                dropped = true;
                break;
            }
            Some(Ok(_)) => continue,
        };
        let Ok(Push { body: Some(body) }) = serde_json::from_str::<Push>(text.as_str()) else {
            continue;
        };
        if body.topic.as_deref() != Some(topic.as_str()) {
            continue;
        }
        let Some((seq, ts)) = body.result_data.as_deref().and_then(payload::decode) else {
            continue;
        };
        stats.delivered.fetch_add(1, Relaxed);
        if tracker.record(seq) {
            stats.delivered_unique.fetch_add(1, Relaxed);
        }
        stats.record_latency(index, payload::now_ns().saturating_sub(ts) / 1_000);
    }
    if dropped {
        stats.dropped.fetch_add(1, Relaxed);
    } else {
        let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
    }
    stats.open.fetch_sub(1, Relaxed);
    ConnResult { channel, tracker, dropped }
}
