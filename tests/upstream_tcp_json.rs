//! The TCP JSON upstream client against a mock upstream in a thread on 127.0.0.1 port 0, which
//! speaks the same frames (decoded and encoded with the crate's codec): replies, keep-alive
//! reuse, a stale pooled connection, closes, timeouts, empty and malformed replies, dead nodes.

use glommio::{LocalExecutorBuilder, Placement};
use pushgate::upstream::tcp_json::{Codec, TcpJsonClient, TcpJsonConfig, TcpJsonError};
use serde_json::{json, Value};
use std::{
    future::Future,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

/// The mock upstream: answers by the request's `uri`, counts the connections it accepted.
#[derive(Clone)]
struct Mock {
    addr: String,
    connections: Arc<AtomicUsize>,
}

impl Mock {
    fn start() -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock");
        let addr = listener.local_addr().expect("addr").to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let closed_once = Arc::new(AtomicBool::new(false));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                let closed_once = closed_once.clone();
                std::thread::spawn(move || serve(stream, &closed_once));
            }
        });
        Mock { addr, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// One connection: read a frame, act on its `uri`, until the peer closes or `uri` says so.
fn serve(mut stream: TcpStream, closed_once: &AtomicBool) {
    let codec = Codec::new(1 << 20);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let (payload, used) = match codec.decode(&buf) {
            Ok(Some((payload, used))) => (payload.to_vec(), used),
            Ok(None) => match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    continue;
                }
            },
            Err(e) => panic!("mock got a bad frame: {e}"),
        };
        buf.drain(..used);
        let request: Value = serde_json::from_slice(&payload).expect("request JSON");
        let uri = request["uri"].as_str().unwrap_or_default();
        let reply = json!({
            "status": 200,
            "body": {"code": "0", "msgId": request["header"]["msgId"], "resultData": request["body"]},
            "header": {"topics": "a,b"},
        });
        let answer = codec.encode(reply.to_string().as_bytes()).expect("encode");
        let answer = match uri {
            "/close" => return,
            "/close-once" if !closed_once.swap(true, Ordering::SeqCst) => return,
            "/slow" => {
                std::thread::sleep(Duration::from_millis(1500));
                answer
            }
            "/empty" => codec.encode(b"").expect("encode"),
            "/bad" => b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
            _ => answer,
        };
        if stream.write_all(&answer).is_err() {
            return;
        }
        if uri == "/answer-then-close" {
            return;
        }
    }
}

fn request(uri: &str, msg_id: &str) -> Vec<u8> {
    json!({"uri": uri, "header": {"msgId": msg_id, "sid": "s1"}, "body": {"topics": ["t"]}})
        .to_string()
        .into_bytes()
}

fn fast() -> TcpJsonConfig {
    TcpJsonConfig {
        connect_timeout: Duration::from_secs(2),
        send_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(300),
        ..TcpJsonConfig::default()
    }
}

fn run<Fut: Future<Output = ()> + 'static>(test: impl FnOnce() -> Fut) {
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(512 * 1024)
        .make()
        .expect("glommio executor");
    executor.run(test());
}

/// A port with nothing listening on it.
fn dead_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    addr
}

#[test]
fn upstream_tcp_json_replies_and_keeps_the_connection() {
    let mock = Mock::start();
    let nodes = [mock.addr.clone()];
    run(|| async move {
        let client = TcpJsonClient::new(&nodes, fast()).expect("client");
        for i in 0..3 {
            let reply = client.call(&request("/register", &format!("m{i}"))).await.expect("call");
            let reply: Value = serde_json::from_slice(&reply).expect("reply JSON");
            assert_eq!(reply["body"]["msgId"], format!("m{i}"));
            assert_eq!(reply["body"]["resultData"]["topics"][0], "t");
            assert_eq!(reply["header"]["topics"], "a,b");
        }
        assert_eq!(client.idle_count(), 1);
    });
    assert_eq!(mock.connections(), 1, "three calls on one keep-alive connection");
}

#[test]
fn upstream_tcp_json_resends_once_when_a_pooled_connection_was_closed() {
    let mock = Mock::start();
    let nodes = [mock.addr.clone()];
    run(|| async move {
        let client = TcpJsonClient::new(&nodes, fast()).expect("client");
        // The mock answers, then closes: the pooled connection is stale for the next call.
        client.call(&request("/answer-then-close", "a")).await.expect("first");
        assert_eq!(client.idle_count(), 1);
        let reply = client.call(&request("/register", "b")).await.expect("resent");
        assert!(String::from_utf8_lossy(&reply).contains("\"msgId\":\"b\""));
        // A connection closed before the reply, once: the resend on a new one answers.
        client.call(&request("/close-once", "c")).await.expect("resent after a close");
    });
    assert_eq!(mock.connections(), 3);
}

#[test]
fn upstream_tcp_json_second_request_failed_is_5023() {
    let mock = Mock::start();
    let nodes = [mock.addr.clone()];
    run(|| async move {
        let client = TcpJsonClient::new(&nodes, fast()).expect("client");
        let err = client.call(&request("/close", "x")).await.expect_err("closed twice");
        assert!(matches!(err, TcpJsonError::SecondRequest(_)), "{err}");
        assert_eq!((err.code(), err.status()), (5023, 502));
    });
    assert_eq!(mock.connections(), 2, "sent twice, on two connections");
}

#[test]
fn upstream_tcp_json_timeout_then_failed_retry_is_5022() {
    let mock = Mock::start();
    let nodes = [mock.addr.clone()];
    run(|| async move {
        let client = TcpJsonClient::new(&nodes, fast()).expect("client");
        let err = client.call(&request("/slow", "x")).await.expect_err("times out twice");
        assert!(matches!(err, TcpJsonError::RetryAfterTimeout(_)), "{err}");
        assert_eq!(err.code(), 5022);
        assert_eq!(client.idle_count(), 0, "a timed-out connection is never pooled");
    });
}

#[test]
fn upstream_tcp_json_empty_and_malformed_replies_are_5024() {
    let mock = Mock::start();
    let nodes = [mock.addr.clone()];
    run(|| async move {
        let client = TcpJsonClient::new(&nodes, fast()).expect("client");
        let err = client.call(&request("/empty", "x")).await.expect_err("empty");
        assert!(matches!(err, TcpJsonError::Empty), "{err}");
        let err = client.call(&request("/bad", "x")).await.expect_err("bad magic");
        assert!(matches!(err, TcpJsonError::Protocol(_)), "{err}");
        assert_eq!(err.code(), 5024);
        client.call(&request("/register", "y")).await.expect("the upstream still serves");
    });
}

#[test]
fn upstream_tcp_json_connect_failure_is_5021_and_moves_to_the_next_node() {
    let mock = Mock::start();
    let dead = dead_addr();
    let only_dead = [dead.clone()];
    let dead_then_live = [dead, mock.addr.clone()];
    run(|| async move {
        let client = TcpJsonClient::new(&only_dead, fast()).expect("client");
        let err = client.call(&request("/register", "x")).await.expect_err("refused");
        assert!(matches!(err, TcpJsonError::Connect(_)), "{err}");
        assert_eq!((err.code(), err.status()), (5021, 502));

        let client = TcpJsonClient::new(&dead_then_live, fast()).expect("client");
        client.call(&request("/register", "y")).await.expect("the live node answers");
    });
}

#[test]
fn upstream_tcp_json_refuses_an_over_long_request() {
    let nodes = [dead_addr()];
    run(|| async move {
        let config = TcpJsonConfig { max_frame: 16, ..fast() };
        let client = TcpJsonClient::new(&nodes, config).expect("client");
        let err = client.call(&request("/register", "x")).await.expect_err("too long");
        assert!(matches!(err, TcpJsonError::Encode(_)), "{err}");
        assert_eq!((err.code(), err.status()), (5001, 500));
    });
}
