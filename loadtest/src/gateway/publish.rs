//! Publishing through `POST /gateway/publish` (`Authorization: Bearer <key>`, body
//! `{topic, msgId, body}`) on keep-alive connections: the gateway counterpart of the Pusher
//! publisher's worker, fed by the same rate schedule.

use crate::payload;
use crate::publisher::{http_connect, Job, PubResult};
use crate::stats::{self, LiveStats};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};

/// What to publish and where.
pub struct GatewayPublish {
    pub target: SocketAddr,
    pub key: String,
    pub topic_prefix: String,
    pub payload_bytes: usize,
    pub timeout: Duration,
    pub stats: Arc<LiveStats>,
}

type Sender = SendRequest<Full<Bytes>>;

/// Publishes jobs from the shared queue until it closes. `sender` is a connection opened in advance.
pub async fn worker(
    cfg: Arc<GatewayPublish>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    mut sender: Option<Sender>,
) -> PubResult {
    let mut res = PubResult { latency: Some(stats::new_histogram()), ..Default::default() };
    loop {
        let job = { queue.lock().await.recv().await };
        let Some(job) = job else { break };
        let ready = match sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !ready {
            res.reconnects += 1;
            sender = tokio::time::timeout(cfg.timeout, http_connect(cfg.target))
                .await
                .ok()
                .and_then(Result::ok);
        }
        let Some(s) = sender.as_mut() else {
            res.transport_errors += 1;
            cfg.stats.http_errors.fetch_add(1, Relaxed);
            continue;
        };
        let t0 = Instant::now();
        match publish_one(&cfg, s, job).await {
            Ok(200) => {
                res.ok.push(job);
                cfg.stats.published.fetch_add(1, Relaxed);
                if let Some(h) = res.latency.as_mut() {
                    stats::record(h, t0.elapsed().as_micros() as u64);
                }
            }
            Ok(code) => {
                *res.http_status.entry(code).or_default() += 1;
                cfg.stats.http_errors.fetch_add(1, Relaxed);
            }
            Err(e) => {
                res.transport_errors += 1;
                cfg.stats.http_errors.fetch_add(1, Relaxed);
                cfg.stats.note_error(format!("publish: {e}"));
                sender = None;
            }
        }
    }
    res
}

async fn publish_one(cfg: &GatewayPublish, s: &mut Sender, job: Job) -> anyhow::Result<u16> {
    let topic = format!("{}{}", cfg.topic_prefix, job.channel);
    let data = payload::encode(job.seq, payload::now_ns(), cfg.payload_bytes);
    let body = serde_json::json!({"topic": topic, "msgId": job.seq.to_string(), "body": data});
    let req = Request::post("/gateway/publish")
        .header(hyper::header::HOST, cfg.target.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::AUTHORIZATION, format!("Bearer {}", cfg.key))
        .body(Full::new(Bytes::from(body.to_string())))?;
    let fut = async {
        let resp = s.send_request(req).await?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await?;
        anyhow::Ok(status)
    };
    tokio::time::timeout(cfg.timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("HTTP request timed out"))?
}
