//! The `sink` subcommand: a minimal HTTP/1.1 receiver for webhook / event-hook benchmarks.
//!
//! Answers every request `200 OK` with an empty body on keep-alive connections, reading bodies by
//! Content-Length without parsing them, and counts requests and body bytes. It stops after
//! `--duration-secs`, or `--idle-exit-secs` after the last request once at least one came, then
//! prints the counts (and writes them as JSON with `--json`).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct SinkArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18080")]
    pub listen: String,
    /// Hard bound on the run (s).
    #[arg(long, default_value_t = 120)]
    pub duration_secs: u64,
    /// Stop this long after the last request, once at least one request came (s; 0: never).
    #[arg(long, default_value_t = 5)]
    pub idle_exit_secs: u64,
    /// Write the counts as one JSON object to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct SinkReport {
    pub scenario: &'static str,
    pub listen: String,
    pub connections: u64,
    pub requests: u64,
    pub body_bytes: u64,
    pub bad_requests: u64,
    pub secs: f64,
}

#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    requests: AtomicU64,
    body_bytes: AtomicU64,
    bad: AtomicU64,
    /// Milliseconds since start of the last request.
    last_ms: AtomicU64,
}

/// Position of the end of the header block (`\r\n\r\n`), if complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Content-Length of a request head (0 if absent); `None` if unparsable or chunked.
fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    let mut len = 0;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("content-length") {
            len = value.trim().parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
    }
    Some(len)
}

async fn serve(mut s: TcpStream, counts: Arc<Counts>, start: Instant) {
    let _ = s.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Read until a full head is buffered.
        let end = loop {
            if let Some(e) = head_end(&buf) {
                break e;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.len() > 64 * 1024 {
                counts.bad.fetch_add(1, Relaxed);
                return;
            }
        };
        let Some(len) = content_length(&buf[..end]) else {
            counts.bad.fetch_add(1, Relaxed);
            let _ = s.write_all(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
            return;
        };
        // Skip the body.
        let mut need = (end + len).saturating_sub(buf.len());
        buf.drain(..(end + len).min(buf.len()));
        while need > 0 {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) if n <= need => need -= n,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[need..n]);
                    need = 0;
                }
            }
        }
        counts.requests.fetch_add(1, Relaxed);
        counts.body_bytes.fetch_add(len as u64, Relaxed);
        counts.last_ms.store(start.elapsed().as_millis() as u64, Relaxed);
        if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await.is_err() {
            return;
        }
    }
}

pub async fn run(args: &SinkArgs) -> anyhow::Result<SinkReport> {
    let listener = TcpListener::bind(&args.listen).await?;
    eprintln!("pushgate-load sink listening on {}", listener.local_addr()?);
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.duration_secs);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            a = listener.accept() => {
                if let Ok((s, _)) = a {
                    counts.connections.fetch_add(1, Relaxed);
                    tokio::spawn(serve(s, counts.clone(), start));
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                let idle = (start.elapsed().as_millis() as u64).saturating_sub(counts.last_ms.load(Relaxed));
                let seen = counts.requests.load(Relaxed) > 0;
                if now >= deadline || (args.idle_exit_secs > 0 && seen && idle >= args.idle_exit_secs * 1000) {
                    break;
                }
            }
        }
    }
    Ok(SinkReport {
        scenario: "sink",
        listen: args.listen.clone(),
        connections: counts.connections.load(Relaxed),
        requests: counts.requests.load(Relaxed),
        body_bytes: counts.body_bytes.load(Relaxed),
        bad_requests: counts.bad.load(Relaxed),
        secs: start.elapsed().as_secs_f64(),
    })
}

impl SinkReport {
    pub fn emit(&self, json: Option<&str>) -> anyhow::Result<()> {
        let line = format!(
            "== pushgate-load sink on {}: {} requests, {} body bytes, {} connections, {} bad, {:.1}s ==",
            self.listen, self.requests, self.body_bytes, self.connections, self.bad_requests, self.secs
        );
        crate::output::emit(self, json, |w| writeln!(w, "{line}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads() {
        let h = b"POST /x HTTP/1.1\r\nHost: a\r\ncontent-length: 12\r\n\r\nbody";
        let end = head_end(h);
        assert_eq!(end, Some(h.len() - 4));
        assert_eq!(content_length(&h[..h.len() - 4]), Some(12));
        assert_eq!(content_length(b"GET / HTTP/1.1\r\n\r\n"), Some(0));
        assert_eq!(content_length(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), None);
    }
}
