//! One IM (xxim) WebSocket client: connect `/ws` as a user (the server's `[im.auth] mode` must be
//! `none`: the bench measures pushes and requests, not token checks), read `connected`, then
//! either count pushes (`im-push`) or keep requests in flight (`im-rtt`).

use super::pb::{PushBody, RequestBody, ResponseBody};
use crate::source_addr::source_for;
use crate::stats::{new_histogram, record};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use prost::Message as _;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// Wall-clock nanoseconds (the publisher and the clients share the host's clock).
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Connects user `user` from the source address for `index`, and reads `connected`.
pub async fn connect(
    target: SocketAddr,
    url: &str,
    index: usize,
    per_source: usize,
) -> anyhow::Result<Ws> {
    let sock = TcpSocket::new_v4()?;
    if let Some(src) = source_for(&target, index, per_source) {
        crate::source_addr::bind_address_no_port(&sock);
        sock.bind(src)?;
    }
    let stream = sock.connect(target).await?;
    let _ = stream.set_nodelay(true);
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.as_str() == "connected" => Ok(ws),
        other => anyhow::bail!("expected `connected`, got {other:?}"),
    }
}

/// What one push client saw.
pub struct Pushes {
    pub received: u64,
    pub latency_us: Histogram<u64>,
}

/// Counts pushes until `stop`; each push's data starts with its send time (ns, big-endian).
pub async fn receive_pushes(mut ws: Ws, mut stop: watch::Receiver<bool>) -> Pushes {
    let mut seen = Pushes { received: 0, latency_us: new_histogram() };
    loop {
        let message = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => break,
        };
        match message {
            Some(Ok(Message::Binary(bytes))) => {
                let Ok(body) = PushBody::decode(&bytes[..]) else { continue };
                if let Some(sent) = body.data.get(..8).and_then(|b| b.try_into().ok()) {
                    let sent = u64::from_be_bytes(sent);
                    record(&mut seen.latency_us, now_ns().saturating_sub(sent) / 1000);
                }
                seen.received += 1;
            }
            Some(Ok(Message::Ping(p))) => {
                let _ = ws.send(Message::Pong(p)).await;
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    seen
}

/// What one request client saw.
pub struct Trips {
    pub answered: u64,
    pub failed: u64,
    pub latency_us: Histogram<u64>,
}

/// Keeps `in_flight` requests of `event` waiting until `until`, then collects what is left.
pub async fn round_trips(mut ws: Ws, event: i32, in_flight: usize, until: Instant) -> Trips {
    let mut trips = Trips { answered: 0, failed: 0, latency_us: new_histogram() };
    let mut waiting: HashMap<String, Instant> = HashMap::new();
    let mut next = 0u64;
    loop {
        while waiting.len() < in_flight && Instant::now() < until {
            let req_id = next.to_string();
            next += 1;
            let body =
                RequestBody { event, req_id: req_id.clone(), data: Vec::new() }.encode_to_vec();
            if ws.send(Message::binary(body)).await.is_err() {
                return trips;
            }
            waiting.insert(req_id, Instant::now());
        }
        if waiting.is_empty() {
            return trips;
        }
        let message = tokio::time::timeout(Duration::from_secs(15), ws.next()).await;
        let Ok(Some(Ok(Message::Binary(bytes)))) = message else {
            if let Ok(Some(Ok(_))) = message {
                continue;
            }
            trips.failed += waiting.len() as u64;
            return trips;
        };
        let Ok(push) = PushBody::decode(&bytes[..]) else { continue };
        let Ok(resp) = ResponseBody::decode(&push.data[..]) else { continue };
        if let Some(sent) = waiting.remove(&resp.req_id) {
            record(&mut trips.latency_us, sent.elapsed().as_micros() as u64);
            if resp.code == 0 {
                trips.answered += 1;
            } else {
                trips.failed += 1;
            }
        }
    }
}
