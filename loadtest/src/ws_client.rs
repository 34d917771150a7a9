//! One Pusher WebSocket subscriber: TCP connect (bound source address), handshake, subscribe, receive loop.

use crate::accounting::SeqTracker;
use crate::cli::Endpoint;
use crate::payload;
use crate::source_addr::source_for;
use crate::stats::LiveStats;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// Everything a subscriber needs to know, shared by all connections.
pub struct ClientCtx {
    /// Connection i opens to `endpoints[i % len]`; never empty.
    pub endpoints: Vec<Endpoint>,
    pub conns_per_source: usize,
    pub channel_prefix: String,
    pub event_name: String,
    pub connect_timeout: Duration,
    pub stats: Arc<LiveStats>,
}

impl ClientCtx {
    pub fn channel_name(&self, ch: usize) -> String {
        format!("{}{ch}", self.channel_prefix)
    }

    /// The server connection `index` opens to (round robin over the endpoints).
    pub fn endpoint(&self, index: usize) -> &Endpoint {
        &self.endpoints[index % self.endpoints.len()]
    }

    /// The endpoints' URLs, for reports.
    pub fn describe(&self) -> String {
        let urls: Vec<&str> = self.endpoints.iter().map(|e| e.url.as_str()).collect();
        urls.join(" ")
    }
}

/// Why a connection could not be set up.
#[derive(Debug)]
pub enum ConnectError {
    /// EMFILE/ENFILE: the open-file limit was reached.
    FdLimit,
    Timeout,
    Other(String),
}

fn classify(e: std::io::Error, what: &str) -> ConnectError {
    match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => ConnectError::FdLimit,
        Some(libc::EADDRNOTAVAIL) => ConnectError::Other(format!(
            "{what}: {e} (source ports exhausted? try a lower --conns-per-source)"
        )),
        _ => ConnectError::Other(format!("{what}: {e}")),
    }
}

/// A Pusher frame as received; `data` is left raw (a JSON string for events, sometimes an object).
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

const PONG: &str = r#"{"event":"pusher:pong","data":{}}"#;

/// `connect_and_subscribe` bounded by the context's connect timeout, counted in the live
/// `attempting` gauge while it runs: how every scenario opens a subscriber.
pub async fn timed_connect(
    ctx: &ClientCtx,
    index: usize,
    channel: &str,
) -> Result<Ws, ConnectError> {
    ctx.stats.attempting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let result =
        tokio::time::timeout(ctx.connect_timeout, connect_and_subscribe(ctx, index, channel))
            .await
            .unwrap_or(Err(ConnectError::Timeout));
    ctx.stats.attempting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    result
}

/// Open TCP (from the source address for `index`), do the WebSocket handshake, wait for
/// `pusher:connection_established`, subscribe to `channel` and wait for the subscription ack.
/// The caller bounds the whole thing with a timeout.
pub async fn connect_and_subscribe(
    ctx: &ClientCtx,
    index: usize,
    channel: &str,
) -> Result<Ws, ConnectError> {
    let mut ws = open_ws(ctx, index).await?;
    wait_for(&mut ws, "pusher:connection_established", None).await?;
    let sub = serde_json::json!({"event": "pusher:subscribe", "data": {"channel": channel}});
    ws.send(Message::text(sub.to_string()))
        .await
        .map_err(|e| ConnectError::Other(format!("send subscribe: {e}")))?;
    wait_for(&mut ws, "pusher_internal:subscription_succeeded", Some(channel)).await?;
    Ok(ws)
}

/// Open TCP (from the source address for `index`) and do the WebSocket handshake to the
/// endpoint for `index`.
pub async fn open_ws(ctx: &ClientCtx, index: usize) -> Result<Ws, ConnectError> {
    let Endpoint { addr, url } = ctx.endpoint(index);
    let sock = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
        .map_err(|e| classify(e, "socket"))?;
    if let Some(src) = source_for(addr, index, ctx.conns_per_source) {
        crate::source_addr::bind_address_no_port(&sock);
        sock.bind(src).map_err(|e| classify(e, &format!("bind {src}")))?;
    }
    let stream = sock.connect(*addr).await.map_err(|e| classify(e, "connect"))?;
    let _ = stream.set_nodelay(true);
    let cfg = WebSocketConfig::default().read_buffer_size(4096);
    let (ws, _resp) = tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(cfg))
        .await
        .map_err(|e| ConnectError::Other(format!("websocket handshake: {e}")))?;
    Ok(ws)
}

/// Read frames until `event` (on `channel`, if given) arrives; answers pings, fails on `pusher:error`.
async fn wait_for(ws: &mut Ws, event: &str, channel: Option<&str>) -> Result<(), ConnectError> {
    loop {
        let msg = match ws.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(ConnectError::Other(format!("waiting for {event}: {e}"))),
            None => return Err(ConnectError::Other(format!("closed while waiting for {event}"))),
        };
        let Message::Text(text) = msg else { continue };
        let Ok(m) = serde_json::from_str::<Incoming>(text.as_str()) else {
            continue;
        };
        if m.event == event && (channel.is_none() || m.channel.as_deref() == channel) {
            return Ok(());
        }
        match m.event.as_ref() {
            "pusher:error" | "pusher:subscription_error" => {
                return Err(ConnectError::Other(format!("server said: {}", text.as_str())))
            }
            "pusher:ping" => {
                let _ = ws.send(Message::text(PONG)).await;
            }
            _ => {}
        }
    }
}

/// What a subscriber saw by the time it stopped.
pub struct ConnResult {
    pub channel: usize,
    pub tracker: SeqTracker,
    pub dropped: bool,
}

/// Receive until `stop` turns true (or the lifetime ends). With `track`, benchmark events are
/// checked against the channel's sequence and their latency recorded.
pub async fn run_subscriber(
    mut ws: Ws,
    ctx: Arc<ClientCtx>,
    index: usize,
    channel: usize,
    mut stop: watch::Receiver<bool>,
    lifetime: Option<Instant>,
    track: bool,
) -> ConnResult {
    let mut tracker = SeqTracker::default();
    let channel_name = ctx.channel_name(channel);
    let stats = &ctx.stats;
    let mut dropped = false;
    let until = async {
        match lifetime {
            Some(t) => tokio::time::sleep_until(t.into()).await,
            None => std::future::pending().await,
        }
    };
    // One long-lived stop future per connection (re-creating `changed()` per message costs a
    // waiter registration each time); it also resolves if the sender is gone.
    let stopped = stop.wait_for(|s| *s);
    tokio::pin!(until, stopped);
    loop {
        let msg = tokio::select! {
            biased;
            _ = &mut stopped => break,
            _ = &mut until => break,
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
        let Ok(m) = serde_json::from_str::<Incoming>(text.as_str()) else {
            continue;
        };
        if m.event == ctx.event_name {
            if !track || m.channel.as_deref() != Some(channel_name.as_str()) {
                continue;
            }
            let Some(raw) = m.data else { continue };
            let data: Cow<str> = match serde_json::from_str::<&str>(raw.get()) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => match serde_json::from_str::<String>(raw.get()) {
                    Ok(s) => Cow::Owned(s),
                    Err(_) => continue,
                },
            };
            let Some((seq, ts)) = payload::decode(&data) else {
                continue;
            };
            let lat_us = payload::now_ns().saturating_sub(ts) / 1_000;
            stats.delivered.fetch_add(1, Relaxed);
            if tracker.record(seq) {
                stats.delivered_unique.fetch_add(1, Relaxed);
            }
            stats.record_latency(index, lat_us);
        } else if m.event == "pusher:ping" && ws.send(Message::text(PONG)).await.is_err() {
            dropped = true;
            break;
        }
    }
    if dropped {
        if track {
            stats.dropped.fetch_add(1, Relaxed);
        }
    } else {
        let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
    }
    stats.open.fetch_sub(1, Relaxed);
    ConnResult { channel, tracker, dropped }
}
