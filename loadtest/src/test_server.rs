//! Test-only in-process Pusher server (WebSocket subscribe + signed REST publish) for end-to-end tests.

use crate::sign;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;

type Subs = Arc<Mutex<HashMap<String, Vec<(u64, mpsc::UnboundedSender<String>)>>>>;

/// Counters the tests can check.
#[derive(Default)]
pub struct ServerStats {
    pub bad_signatures: AtomicU64,
    pub publishes: AtomicU64,
}

/// Start the server on an ephemeral loopback port.
pub async fn start(secret: &'static str) -> (SocketAddr, Arc<ServerStats>) {
    let l = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let subs: Subs = Default::default();
    let stats = Arc::new(ServerStats::default());
    let st = stats.clone();
    tokio::spawn(async move {
        let next = Arc::new(AtomicU64::new(1));
        while let Ok((s, _)) = l.accept().await {
            let (subs, st, next) = (subs.clone(), st.clone(), next.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |r| {
                    handle(r, subs.clone(), st.clone(), next.clone(), secret)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (addr, stats)
}

async fn handle(
    req: Request<Incoming>,
    subs: Subs,
    st: Arc<ServerStats>,
    next: Arc<AtomicU64>,
    secret: &'static str,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let reply = |code: u16, body: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or_default();
        r
    };
    if req.uri().path().starts_with("/app/") {
        let accept = req
            .headers()
            .get("sec-websocket-key")
            .map(|k| derive_accept_key(k.as_bytes()))
            .unwrap_or_default();
        let id = next.fetch_add(1, Relaxed);
        tokio::spawn(serve_ws(req, subs, id));
        let mut r = reply(101, "");
        for (k, v) in [("upgrade", "websocket"), ("connection", "Upgrade")] {
            r.headers_mut().insert(k, hyper::header::HeaderValue::from_static(v));
        }
        if let Ok(v) = accept.parse() {
            r.headers_mut().insert("sec-websocket-accept", v);
        }
        return Ok(r);
    }
    // REST publish: check the signature the way a server does.
    let query = req.uri().query().unwrap_or("").to_string();
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await?.to_bytes();
    let params: Vec<(&str, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    let get = |k: &str| params.iter().find(|p| p.0 == k).map(|p| p.1.clone());
    let expect = sign::hmac_hex(secret, &sign::string_to_sign("POST", &path, &params));
    if get("auth_signature") != Some(expect) || get("body_md5") != Some(sign::body_md5(&body)) {
        st.bad_signatures.fetch_add(1, Relaxed);
        return Ok(reply(401, "{\"error\":\"bad signature\"}"));
    }
    st.publishes.fetch_add(1, Relaxed);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let list = subs.lock().map(|s| s.clone()).unwrap_or_default();
    for ch in v["channels"].as_array().cloned().unwrap_or_default() {
        let ch = ch.as_str().unwrap_or("");
        let msg = serde_json::json!({"event": v["name"], "channel": ch, "data": v["data"]});
        for (_, tx) in list.get(ch).into_iter().flatten() {
            let _ = tx.send(msg.to_string());
        }
    }
    Ok(reply(200, "{}"))
}

async fn serve_ws(req: Request<Incoming>, subs: Subs, id: u64) {
    let Ok(up) = hyper::upgrade::on(req).await else {
        return;
    };
    let mut ws =
        tokio_tungstenite::WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, None)
            .await;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let data = format!("{{\"socket_id\":\"{id}.1\",\"activity_timeout\":120}}");
    let est = serde_json::json!({"event": "pusher:connection_established", "data": data});
    if ws.send(Message::text(est.to_string())).await.is_err() {
        return;
    }
    // Ping once so the client's pong path runs.
    let _ = ws.send(Message::text(r#"{"event":"pusher:ping","data":{}}"#)).await;
    let mut mine = Vec::new();
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => if ws.send(Message::text(m)).await.is_err() { break },
                None => break,
            },
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                    if v["event"] == "pusher:subscribe" {
                        let ch = v["data"]["channel"].as_str().unwrap_or("").to_string();
                        if let Ok(mut s) = subs.lock() {
                            s.entry(ch.clone()).or_default().push((id, tx.clone()));
                        }
                        mine.push(ch.clone());
                        let ack = serde_json::json!({
                            "event": "pusher_internal:subscription_succeeded", "channel": ch, "data": "{}"
                        });
                        if ws.send(Message::text(ack.to_string())).await.is_err() { break }
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
    if let Ok(mut s) = subs.lock() {
        for ch in mine {
            if let Some(v) = s.get_mut(&ch) {
                v.retain(|(i, _)| *i != id);
            }
        }
    }
}
