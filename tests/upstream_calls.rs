//! Upstream calls through the hook shard, end to end in one process: a small test dialect
//! mounted at `/calls` turns each text message into an HTTP call to a mock upstream and sends
//! back what came of it. No production dialect is needed, and the test shows a dialect
//! plugging into the engine from outside the crate.

#[path = "support/call_dialect.rs"]
mod call_dialect;

use call_dialect::Mounts;
use pushgate::{config::Config, runtime};
use serde_json::{json, Value};
use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

/// A mock upstream: `/ok` answers 200 with a `topics` header, `/fail` 500, `/big` a body over
/// the cap, `/hang` nothing for 3 s, `/slow` 200 after 500 ms. Counts requests.
fn upstream() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = counter.clone();
            thread::spawn(move || serve(stream, &counter));
        }
    });
    (format!("http://{addr}"), seen)
}

fn serve(stream: TcpStream, seen: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut from_pushgate = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            from_pushgate |= header.to_ascii_lowercase().starts_with("x-from: pushgate");
            if header == "\r\n" {
                break;
            }
        }
        seen.fetch_add(1, Ordering::SeqCst);
        let (status, body) = match path.as_str() {
            "/ok" if from_pushgate => ("200 OK", "fine".to_string()),
            "/ok" => ("400 Bad Request", "no x-from header".to_string()),
            "/fail" => ("500 Internal Server Error", "broken".to_string()),
            "/big" => ("200 OK", "x".repeat(4096)),
            "/hang" => {
                thread::sleep(Duration::from_secs(3));
                return;
            }
            "/slow" => {
                thread::sleep(Duration::from_millis(500));
                ("200 OK", "late".to_string())
            }
            _ => ("404 Not Found", String::new()),
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\ntopics: a,b\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn start(max_calls: usize) -> (runtime::Running, String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (upstream, seen) = upstream();
    let gone = Arc::new(AtomicUsize::new(0));
    let config = Config {
        host: "127.0.0.1".into(),
        port: 0,
        shards: 1,
        io_memory: 128 * 1024,
        max_calls_in_flight: max_calls,
        ..Config::default()
    };
    let mounts = Arc::new(Mounts { upstream, gone: gone.clone() });
    let running = runtime::start_with(config, mounts).expect("starts");
    let url = format!("ws://{}/calls", running.addr);
    (running, url, seen, gone)
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn connect(url: &str) -> Ws {
    let addr = url.trim_start_matches("ws://").split('/').next().expect("host");
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let plain = tungstenite::stream::MaybeTlsStream::Plain(stream);
    tungstenite::client::client(url, plain).expect("upgrade").0
}

fn ask(ws: &mut Ws, path: &str) -> Value {
    ws.send(tungstenite::Message::text(path)).expect("send");
    match ws.read().expect("answer") {
        tungstenite::Message::Text(text) => serde_json::from_str(&text).expect("json"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_call_is_answered_with_status_headers_and_body() {
    let (running, url, _, _) = start(16);
    let mut ws = connect(&url);
    assert_eq!(ask(&mut ws, "/ok"), json!({"status": 200, "body": "fine", "topics": "a,b"}));
    assert_eq!(ask(&mut ws, "/fail"), json!({"status": 500, "body": "broken", "topics": "a,b"}));
    running.request_shutdown();
}

#[test]
fn failures_hangs_and_oversized_answers_are_errors_not_stalls() {
    let (running, url, _, _) = start(16);
    let mut ws = connect(&url);
    assert_eq!(ask(&mut ws, "/big"), json!({"error": "TooLarge(1024)"}));
    assert_eq!(ask(&mut ws, "/hang"), json!({"error": "Timeout"}));
    // The shard kept serving while the call hung: the next call is answered.
    assert_eq!(ask(&mut ws, "/ok")["status"], 200);
    running.request_shutdown();
}

#[test]
fn an_unreachable_upstream_is_a_connect_error() {
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = dead.local_addr().expect("addr");
    drop(dead);
    let gone = Arc::new(AtomicUsize::new(0));
    let config = Config {
        host: "127.0.0.1".into(),
        port: 0,
        shards: 1,
        io_memory: 128 * 1024,
        ..Config::default()
    };
    let mounts = Arc::new(Mounts { upstream: format!("http://{addr}"), gone });
    let running = runtime::start_with(config, mounts).expect("starts");
    let mut ws = connect(&format!("ws://{}/calls", running.addr));
    let answer = ask(&mut ws, "/ok");
    assert!(answer["error"].as_str().is_some_and(|e| e.starts_with("Connect(")), "{answer}");
    running.request_shutdown();
}

#[test]
fn calls_past_the_bound_are_refused_at_once() {
    let (running, url, _, _) = start(2);
    let mut ws = connect(&url);
    for _ in 0..3 {
        ws.send(tungstenite::Message::text("/slow")).expect("send");
    }
    let mut answers = Vec::new();
    for _ in 0..3 {
        match ws.read().expect("answer") {
            tungstenite::Message::Text(text) => {
                answers.push(serde_json::from_str::<Value>(&text).expect("json"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(answers[0], json!({"error": "Busy(2)"}), "the third call is refused first");
    assert_eq!(answers[1]["body"], "late");
    assert_eq!(answers[2]["body"], "late");
    running.request_shutdown();
}

#[test]
fn an_answer_for_a_connection_that_closed_is_dropped() {
    let (running, url, seen, gone) = start(16);
    let mut ws = connect(&url);
    ws.send(tungstenite::Message::text("/slow")).expect("send");
    // Wait until the upstream has the request, then hang up before it answers.
    for _ in 0..100 {
        if seen.load(Ordering::SeqCst) > 0 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    drop(ws);
    for _ in 0..100 {
        if gone.load(Ordering::SeqCst) > 0 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(gone.load(Ordering::SeqCst), 1, "the late answer was seen as for a gone connection");
    // The shard is fine: a new connection's call is answered.
    let mut ws = connect(&url);
    assert_eq!(ask(&mut ws, "/ok")["status"], 200);
    running.request_shutdown();
}
