//! Publishing benchmark events over the signed REST API: a rate scheduler and keep-alive HTTP/1 workers.

use crate::payload;
use crate::sign::{signed_events_uri, Credentials};
use crate::stats::{self, LiveStats};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};

/// What to publish and where.
pub struct PublishCfg {
    pub target: SocketAddr,
    pub creds: Credentials,
    pub event_name: String,
    pub channel_prefix: String,
    pub payload_bytes: usize,
    pub timeout: Duration,
    pub stats: Arc<LiveStats>,
}

/// One event to publish: channel index and that channel's sequence number.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub channel: usize,
    pub seq: u64,
}

#[derive(Serialize)]
struct EventBody<'a> {
    name: &'a str,
    channels: [&'a str; 1],
    data: &'a str,
}

/// What one or all publishing workers did.
#[derive(Debug, Default)]
pub struct PubResult {
    pub ok: Vec<Job>,
    pub http_status: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub reconnects: u64,
    pub latency: Option<hdrhistogram::Histogram<u64>>,
}

impl PubResult {
    pub fn merge(&mut self, o: PubResult) {
        self.ok.extend(o.ok);
        for (k, v) in o.http_status {
            *self.http_status.entry(k).or_default() += v;
        }
        self.transport_errors += o.transport_errors;
        self.reconnects += o.reconnects;
        match (&mut self.latency, o.latency) {
            (Some(a), Some(b)) => {
                let _ = a.add(&b);
            }
            (a @ None, b) => *a = b,
            _ => {}
        }
    }
}

pub type Sender = SendRequest<Full<Bytes>>;

/// A keep-alive HTTP/1.1 connection to the server.
pub async fn http_connect(target: SocketAddr) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(target).await?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Publish jobs from the shared queue until it closes. `sender` is a connection opened in advance.
pub async fn worker(
    cfg: Arc<PublishCfg>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    mut sender: Option<Sender>,
) -> PubResult {
    let mut res = PubResult { latency: Some(stats::new_histogram()), ..Default::default() };
    let host = cfg.target.to_string();
    loop {
        let job = { queue.lock().await.recv().await };
        let Some(job) = job else { break };
        let ready = match sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !ready {
            res.reconnects += 1;
            sender = match tokio::time::timeout(cfg.timeout, http_connect(cfg.target)).await {
                Ok(Ok(s)) => Some(s),
                Ok(Err(e)) => {
                    cfg.stats.note_error(format!("publisher connect: {e}"));
                    None
                }
                Err(_) => None,
            };
        }
        let Some(s) = sender.as_mut() else {
            res.transport_errors += 1;
            cfg.stats.http_errors.fetch_add(1, Relaxed);
            continue;
        };
        let t0 = Instant::now();
        match publish_one(&cfg, s, &host, job).await {
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

async fn publish_one(
    cfg: &PublishCfg,
    s: &mut Sender,
    host: &str,
    job: Job,
) -> anyhow::Result<u16> {
    let channel = format!("{}{}", cfg.channel_prefix, job.channel);
    let data = payload::encode(job.seq, payload::now_ns(), cfg.payload_bytes);
    let body = serde_json::to_vec(&EventBody {
        name: &cfg.event_name,
        channels: [&channel],
        data: &data,
    })?;
    let ts = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let uri = signed_events_uri(&cfg.creds, &body, ts);
    let req = Request::post(uri)
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
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

/// Channel picker: round-robin or uniformly random, with a sequence counter per channel.
pub struct Schedule {
    next_seq: Vec<u64>,
    rr: usize,
    random: bool,
}

impl Schedule {
    pub fn new(channels: usize, random: bool) -> Self {
        Schedule { next_seq: vec![0; channels.max(1)], rr: 0, random }
    }

    pub fn next_job(&mut self) -> Job {
        let n = self.next_seq.len();
        let channel = if self.random {
            fastrand::usize(..n)
        } else {
            let c = self.rr % n;
            self.rr = self.rr.wrapping_add(1);
            c
        };
        let seq = self.next_seq[channel];
        self.next_seq[channel] += 1;
        Job { channel, seq }
    }
}

/// Feed `rate` jobs/s into `tx` for `duration`, then close it. Returns how many were queued.
pub async fn run_schedule(
    mut sched: Schedule,
    rate: f64,
    duration: Duration,
    tx: mpsc::Sender<Job>,
) -> u64 {
    let start = tokio::time::Instant::now();
    let end = start + duration;
    let rate = rate.max(1e-6);
    let mut sent = 0u64;
    loop {
        let now = tokio::time::Instant::now();
        if now >= end {
            break;
        }
        let due = (now.duration_since(start).as_secs_f64() * rate) as u64 + 1;
        // When the publishers fall behind, catch up only until the window closes.
        while sent < due && tokio::time::Instant::now() < end {
            if tx.send(sched.next_job()).await.is_err() {
                return sent;
            }
            sent += 1;
        }
        let next = start + Duration::from_secs_f64(sent as f64 / rate);
        tokio::time::sleep_until(next.min(end)).await;
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_sequences_per_channel() {
        let mut s = Schedule::new(3, false);
        let jobs: Vec<(usize, u64)> =
            (0..7).map(|_| s.next_job()).map(|j| (j.channel, j.seq)).collect();
        assert_eq!(jobs, vec![(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (0, 2)]);
    }

    #[test]
    fn random_sequences_stay_dense_per_channel() {
        let mut s = Schedule::new(4, true);
        let mut seen = vec![Vec::new(); 4];
        for _ in 0..100 {
            let j = s.next_job();
            seen[j.channel].push(j.seq);
        }
        for v in seen {
            assert!(v.iter().enumerate().all(|(i, &q)| i as u64 == q));
        }
    }

    #[test]
    fn body_is_valid_pusher_json() {
        let body = serde_json::to_string(&EventBody {
            name: "bench",
            channels: ["bench-0"],
            data: "1 2 xx",
        });
        assert_eq!(
            body.ok().as_deref(),
            Some(r#"{"name":"bench","channels":["bench-0"],"data":"1 2 xx"}"#)
        );
    }
}
