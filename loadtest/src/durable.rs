//! The `durable` subcommand: acknowledged durable publishing with 10 consumers, pushgate's
//! Zato GD topics against NATS JetStream file storage, measured the same way.
//!
//! pushgate: the tool makes `--consumers` notify subscriptions (endpoints `s0`, `s1`, ... of
//! the server's config) to an HTTP receiver of its own, then `--publishers` connections POST GD
//! messages to `--topic`, each waiting for its `{"msg_id"}` (given only after the fsync).
//! JetStream: a file-storage stream with `--consumers` durable pull consumers that ack each
//! message; publishers wait for each PubAck. Each message's data starts with the time it was
//! sent (microseconds), so the consumer side measures publish-to-delivery latency. A run
//! publishes for `--duration-secs` (as fast as acks come, or at `--rate` messages/s in all),
//! then waits for the consumers to drain.

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct DurableArgs {
    /// `pushgate` or `jetstream`.
    #[arg(long)]
    pub target: String,
    /// pushgate's address (host:port).
    #[arg(long, default_value = "127.0.0.1:6001")]
    pub pushgate: String,
    /// NATS address (host:port).
    #[arg(long, default_value = "127.0.0.1:4222")]
    pub nats: String,
    #[arg(long, default_value = "/bench")]
    pub topic: String,
    /// pushgate publisher credentials and admin password.
    #[arg(long, default_value = "pub:pub-pass")]
    pub publisher: String,
    #[arg(long, default_value = "admin:bench")]
    pub admin: String,
    /// Consumers (pushgate: notify subscriptions of endpoints s0..; JetStream: pull consumers).
    #[arg(long, default_value_t = 10)]
    pub consumers: usize,
    /// Concurrent publishers, each waiting for its acknowledgement.
    #[arg(long, default_value_t = 64)]
    pub publishers: usize,
    /// Bytes per message.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Messages per second over all publishers; 0: as fast as acknowledgements come.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Where the pushgate notify receiver listens.
    #[arg(long, default_value = "127.0.0.1:18090")]
    pub listen: String,
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Write the report as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DurableReport {
    pub scenario: &'static str,
    pub target: String,
    pub publishers: usize,
    pub consumers: usize,
    pub size: usize,
    pub rate: u64,
    pub secs: f64,
    /// Publications acknowledged, and per second.
    pub acked: u64,
    pub acked_per_sec: f64,
    pub publish_errors: u64,
    /// Deliveries counted by consumers (acked x consumers when all arrived).
    pub delivered: u64,
    pub latency_us_p50: u64,
    pub latency_us_p99: u64,
    pub latency_us_p999: u64,
    pub latency_us_max: u64,
}

struct Shared {
    acked: AtomicU64,
    errors: AtomicU64,
    delivered: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    stop: AtomicBool,
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// A message of `size` bytes starting with the time it is sent.
fn payload(size: usize) -> String {
    let mut data = format!("{:020}", now_us());
    data.extend(std::iter::repeat_n('x', size.saturating_sub(20)));
    data
}

/// Records one delivery whose data starts with its send time.
fn received(shared: &Shared, data: &[u8]) {
    let sent = std::str::from_utf8(data.get(..20).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    if let Some(sent) = sent {
        let mut latency = shared.latency.lock().unwrap_or_else(|e| e.into_inner());
        let _ = latency.record(now_us().saturating_sub(sent).max(1));
    }
    shared.delivered.fetch_add(1, Relaxed);
}

pub fn main(args: &DurableArgs) -> std::process::ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build();
    let result = rt
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(args)))
        .and_then(|report| emit(&report, args.json.as_deref()));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pushgate-load durable: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: &DurableArgs) -> anyhow::Result<DurableReport> {
    let shared = Arc::new(Shared {
        acked: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        latency: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
        stop: AtomicBool::new(false),
    });
    let publish: Arc<dyn Fn() -> Publisher + Send + Sync> = match args.target.as_str() {
        "pushgate" => pushgate_setup(args, &shared).await?,
        "jetstream" => jetstream_setup(args, &shared).await?,
        other => anyhow::bail!("--target must be pushgate or jetstream, not {other}"),
    };
    let start = Instant::now();
    let per_publisher =
        (args.rate > 0).then(|| Duration::from_secs_f64(args.publishers as f64 / args.rate as f64));
    let tasks: Vec<_> = (0..args.publishers)
        .map(|_| {
            let (shared, publisher, size) = (shared.clone(), publish(), args.size);
            tokio::spawn(async move { publish_loop(publisher, &shared, size, per_publisher).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(args.duration_secs)).await;
    shared.stop.store(true, Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let acked = shared.acked.load(Relaxed);
    let wanted = acked * args.consumers as u64;
    let drain = Instant::now();
    while shared.delivered.load(Relaxed) < wanted && drain.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let latency = shared.latency.lock().unwrap_or_else(|e| e.into_inner());
    Ok(DurableReport {
        scenario: "durable",
        target: args.target.clone(),
        publishers: args.publishers,
        consumers: args.consumers,
        size: args.size,
        rate: args.rate,
        secs,
        acked,
        acked_per_sec: acked as f64 / secs,
        publish_errors: shared.errors.load(Relaxed),
        delivered: shared.delivered.load(Relaxed),
        latency_us_p50: latency.value_at_quantile(0.5),
        latency_us_p99: latency.value_at_quantile(0.99),
        latency_us_p999: latency.value_at_quantile(0.999),
        latency_us_max: latency.max(),
    })
}

/// One publisher's way to send a message and wait for its acknowledgement.
enum Publisher {
    Http { addr: String, auth: String, path: String, conn: Option<TcpStream> },
    Nats(async_nats::jetstream::Context),
}

async fn publish_loop(
    mut publisher: Publisher,
    shared: &Shared,
    size: usize,
    every: Option<Duration>,
) {
    let mut next = Instant::now();
    while !shared.stop.load(Relaxed) {
        if let Some(every) = every {
            next += every;
            tokio::time::sleep_until(next.into()).await;
        }
        let ok = match &mut publisher {
            Publisher::Http { addr, auth, path, conn } => {
                let body = serde_json::json!({ "data": payload(size) }).to_string();
                http_publish(addr, auth, path, conn, &body).await
            }
            Publisher::Nats(js) => match js.publish("bench", payload(size).into()).await {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            },
        };
        let counter = if ok { &shared.acked } else { &shared.errors };
        counter.fetch_add(1, Relaxed);
    }
}

/// POSTs one publication on a keep-alive connection; true on a 200 with a msg_id.
async fn http_publish(
    addr: &str,
    auth: &str,
    path: &str,
    conn: &mut Option<TcpStream>,
    body: &str,
) -> bool {
    if conn.is_none() {
        *conn = TcpStream::connect(addr).await.ok();
    }
    let Some(stream) = conn.as_mut() else { return false };
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = async {
        stream.write_all(request.as_bytes()).await.ok()?;
        read_response(stream).await
    };
    match answer.await {
        Some((status, body)) => status == 200 && body.windows(6).any(|w| w == b"msg_id"),
        None => {
            *conn = None;
            false
        }
    }
}

/// Reads one HTTP/1.1 message (request or response) with a Content-Length body: (first line's
/// second word as a number, body).
async fn read_response(stream: &mut TcpStream) -> Option<(u16, Vec<u8>)> {
    let (head, mut body, length) = read_head(stream).await?;
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Some((status, body))
}

/// The head (as text), the body bytes read with it, and the Content-Length.
async fn read_head(stream: &mut TcpStream) -> Option<(String, Vec<u8>, usize)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            return Some((head, buf[end + 4..].to_vec(), length));
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn basic(credentials: &str) -> String {
    use base64_lite::encode;
    format!("Basic {}", encode(credentials.as_bytes()))
}

/// Starts the notify receiver, makes the subscriptions; returns how to make a publisher.
async fn pushgate_setup(
    args: &DurableArgs,
    shared: &Arc<Shared>,
) -> anyhow::Result<Arc<dyn Fn() -> Publisher + Send + Sync>> {
    let listener = TcpListener::bind(&args.listen).await?;
    let receiver = shared.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let shared = receiver.clone();
            tokio::spawn(async move { notify_receiver(stream, &shared).await });
        }
    });
    let admin = basic(&args.admin);
    for i in 0..args.consumers {
        let body = serde_json::json!({
            "topic_name": args.topic, "endpoint": format!("s{i}"),
            "notify_url": format!("http://{}/s{i}", args.listen), "delivery_batch_size": 500,
        })
        .to_string();
        let mut conn = None;
        let path = "/zato/pubsub/admin/subscriptions";
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {admin}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let stream = conn.insert(TcpStream::connect(&args.pushgate).await?);
        stream.write_all(request.as_bytes()).await?;
        let (status, answer) =
            read_response(stream).await.ok_or_else(|| anyhow::anyhow!("no answer"))?;
        anyhow::ensure!(
            status == 201,
            "subscription s{i}: {status} {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let (addr, auth) = (args.pushgate.clone(), basic(&args.publisher));
    let path = format!("/zato/pubsub/topic/{}", args.topic);
    Ok(Arc::new(move || Publisher::Http {
        addr: addr.clone(),
        auth: auth.clone(),
        path: path.clone(),
        conn: None,
    }))
}

/// Answers every notify delivery 200 and records each message in it.
async fn notify_receiver(mut stream: TcpStream, shared: &Shared) {
    while let Some((_, body)) = read_response(&mut stream).await {
        if let Ok(serde_json::Value::Array(list)) = serde_json::from_slice(&body) {
            for message in list {
                received(shared, message["data"].as_str().unwrap_or_default().as_bytes());
            }
        }
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        if stream.write_all(ok).await.is_err() {
            return;
        }
    }
}

/// Makes the stream and its pull consumers (each acking what it gets).
async fn jetstream_setup(
    args: &DurableArgs,
    shared: &Arc<Shared>,
) -> anyhow::Result<Arc<dyn Fn() -> Publisher + Send + Sync>> {
    use async_nats::jetstream::{self, consumer, stream};
    let client = async_nats::connect(&args.nats).await?;
    let js = jetstream::new(client);
    let _ = js.delete_stream("BENCH").await;
    let config = stream::Config {
        name: "BENCH".into(),
        subjects: vec!["bench".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    };
    let stream = js.create_stream(config).await?;
    for i in 0..args.consumers {
        let config = consumer::pull::Config {
            durable_name: Some(format!("c{i}")),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: 100_000,
            ..Default::default()
        };
        let consumer = stream.create_consumer(config).await?;
        let mut messages = consumer.messages().await?;
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = messages.next().await {
                received(&shared, &message.payload);
                let _ = message.ack().await;
            }
        });
    }
    Ok(Arc::new(move || Publisher::Nats(js.clone())))
}

fn emit(report: &DurableReport, json: Option<&str>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    match json {
        Some("-") => println!("{text}"),
        Some(path) => std::fs::write(path, &text)?,
        None => {}
    }
    eprintln!(
        "{}: {:.0} acked/s ({} acked, {} errors) over {:.1} s; {} delivered; latency p50 {} us p99 {} us max {} us",
        report.target,
        report.acked_per_sec,
        report.acked,
        report.publish_errors,
        report.secs,
        report.delivered,
        report.latency_us_p50,
        report.latency_us_p99,
        report.latency_us_max
    );
    Ok(())
}

/// Standard base64, for one Basic Auth header (no dependency for it).
mod base64_lite {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(input: &[u8]) -> String {
        let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
        for chunk in input.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[cfg(test)]
    #[test]
    fn encodes_like_rfc4648() {
        assert_eq!(encode(b"pub:pub-pass"), "cHViOnB1Yi1wYXNz");
        assert_eq!(encode(b"a"), "YQ==");
        assert_eq!(encode(b"ab"), "YWI=");
    }
}
