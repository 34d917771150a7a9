//! Upstream round trips through the hook shard: a WebSocket client asks a test dialect (the
//! one in tests/support) for upstream calls, the shard hands each to the hook shard, which
//! makes an HTTP/1.1 request to a local mock upstream (keep-alive, answers at once) and
//! answers on the shard's reply ring. Elements/s is round trips per second end to end, with 1
//! call in flight (the latency path) and with 16 (the throughput of the one hook shard that
//! serializes every upstream call, the design card's choice).

#[path = "../tests/support/call_dialect.rs"]
#[allow(dead_code)]
mod call_dialect;

use call_dialect::Mounts;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pushgate::{config::Config, runtime};
use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    sync::{atomic::AtomicUsize, Arc},
    thread,
    time::{Duration, Instant},
};
use tungstenite::{stream::MaybeTlsStream, Message, WebSocket};

/// A keep-alive HTTP/1.1 upstream answering every request with `200 ok` at once.
fn upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut stream = stream;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if stream.write_all(answer).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn client(addr: std::net::SocketAddr) -> WebSocket<MaybeTlsStream<TcpStream>> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let url = format!("ws://{addr}/calls");
    tungstenite::client::client(url, MaybeTlsStream::Plain(stream)).expect("upgrade").0
}

fn round_trips(c: &mut Criterion) {
    let config = Config {
        host: "127.0.0.1".into(),
        port: 0,
        shards: 1,
        io_memory: 256 * 1024,
        ..Config::default()
    };
    let mounts = Arc::new(Mounts { upstream: upstream(), gone: Arc::new(AtomicUsize::new(0)) });
    let running = runtime::start_with(config, mounts).expect("server starts");
    let mut ws = client(running.addr);
    let mut group = c.benchmark_group("upstream_calls");
    group.throughput(Throughput::Elements(1));
    for window in [1usize, 16] {
        group.bench_with_input(BenchmarkId::new("in_flight", window), &window, |b, &window| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let mut sent = 0u64;
                let mut answered = 0u64;
                while answered < iters {
                    while sent < iters && sent - answered < window as u64 {
                        ws.send(Message::text("/ok")).expect("send");
                        sent += 1;
                    }
                    match ws.read().expect("answer") {
                        Message::Text(text) => {
                            assert!(text.contains("\"status\":200"), "{text}");
                            answered += 1;
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
                start.elapsed()
            })
        });
    }
    group.finish();
    running.request_shutdown();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = round_trips
}
criterion_main!(benches);
