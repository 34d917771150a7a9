//! The HTTP/1.1 upstream client against a mock in a thread on 127.0.0.1 port 0 that answers by
//! path: a JSON echo with a `topics` header, a 500, a request that never gets an answer, and
//! bodies over the client's cap (announced by Content-Length, or chunked without one).

use bytes::Bytes;
use glommio::{LocalExecutorBuilder, Placement};
use http::Method;
use pushgate::upstream::http::{ClientConfig, HttpClient, SendError};
use serde_json::{json, Value};
use std::{
    future::Future,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

/// The mock upstream; counts the connections it accepted.
struct Mock {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Mock {
    fn start() -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || serve(stream));
            }
        });
        Mock { port, connections }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Reads one request (head, then a Content-Length body); `None` when the peer closed.
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(len)) = req.parse(buf) {
            let headers: Vec<(String, String)> = req
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into()))
                .collect();
            let body_len = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map_or(0, |(_, v)| v.parse::<usize>().expect("length"));
            if buf.len() >= len + body_len {
                let request = Request {
                    method: req.method.expect("method").to_string(),
                    path: req.path.expect("path").to_string(),
                    headers,
                    body: buf[len..len + body_len].to_vec(),
                };
                buf.drain(..len + body_len);
                return Some(request);
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn serve(mut stream: TcpStream) {
    let mut buf = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut buf) {
        let written = match request.path.as_str() {
            "/fail" => answer(&mut stream, "500 Internal Server Error", "", b"boom"),
            "/hang" => {
                std::thread::sleep(Duration::from_secs(3));
                return;
            }
            "/huge" => {
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 2097152\r\n\r\n";
                stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&[b'x'; 4096]))
            }
            "/huge-chunked" => chunked(&mut stream),
            _ => {
                let echo = json!({
                    "method": request.method,
                    "path": request.path,
                    "x-sid": request.headers.iter().find(|(k, _)| k == "x-sid").map(|(_, v)| v),
                    "body": String::from_utf8_lossy(&request.body),
                });
                answer(&mut stream, "200 OK", "topics: a,b\r\n", echo.to_string().as_bytes())
            }
        };
        if written.is_err() {
            return;
        }
    }
}

fn answer(stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!("HTTP/1.1 {status}\r\n{headers}content-length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)
}

/// 1 MiB in 16 KiB chunks, no Content-Length; stops when the client hangs up.
fn chunked(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")?;
    for _ in 0..64 {
        stream.write_all(b"4000\r\n")?;
        stream.write_all(&[b'y'; 0x4000])?;
        stream.write_all(b"\r\n")?;
    }
    stream.write_all(b"0\r\n\r\n")
}

fn config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(500),
        max_response_body: 64 * 1024,
        ..ClientConfig::default()
    }
}

fn run<Fut: Future<Output = ()> + 'static>(test: impl FnOnce() -> Fut) {
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(512 * 1024)
        .make()
        .expect("glommio executor");
    executor.run(test());
}

fn sid() -> Vec<(String, String)> {
    vec![("x-sid".to_string(), "s1".to_string())]
}

#[test]
fn upstream_http_request_returns_status_headers_and_body_on_one_connection() {
    let mock = Mock::start();
    let url = mock.url("/api/");
    run(|| async move {
        let client = HttpClient::new(&url, config()).expect("client");
        let body = Bytes::from_static(br#"{"topics":["t"]}"#);
        let reply = client.request(Method::POST, "/register?v=1", &sid(), body).await;
        let reply = reply.expect("request");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.headers.get("topics").and_then(|v| v.to_str().ok()), Some("a,b"));
        let echo: Value = serde_json::from_slice(&reply.body).expect("JSON");
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["path"], "/api/register?v=1");
        assert_eq!(echo["x-sid"], "s1");
        assert_eq!(echo["body"], r#"{"topics":["t"]}"#);

        let reply = client.request(Method::GET, "list", &[], Bytes::new()).await.expect("GET");
        let echo: Value = serde_json::from_slice(&reply.body).expect("JSON");
        assert_eq!((&echo["method"], &echo["path"]), (&json!("GET"), &json!("/api/list")));
        assert_eq!(client.post(Bytes::from_static(b"hook"), &[]).await.expect("post"), 200);
        assert_eq!(client.idle_count(), 1);
    });
    assert_eq!(mock.connections.load(Ordering::SeqCst), 1, "keep-alive reuse");
}

#[test]
fn upstream_http_an_error_status_is_an_answer() {
    let mock = Mock::start();
    let url = mock.url("/");
    run(|| async move {
        let client = HttpClient::new(&url, config()).expect("client");
        let reply = client.request(Method::POST, "/fail", &[], Bytes::new()).await;
        let reply = reply.expect("an answer");
        assert_eq!((reply.status, &reply.body[..]), (500, &b"boom"[..]));
    });
}

#[test]
fn upstream_http_a_hanging_upstream_times_out() {
    let mock = Mock::start();
    let url = mock.url("/");
    run(|| async move {
        let client = HttpClient::new(&url, config()).expect("client");
        let err = client.request(Method::GET, "/hang", &[], Bytes::new()).await;
        let err = err.expect_err("no answer");
        assert!(matches!(err, SendError::Timeout), "{err}");
        assert!(err.is_socket());
        assert_eq!(client.idle_count(), 0);
    });
}

#[test]
fn upstream_http_bodies_over_the_cap_are_refused() {
    let mock = Mock::start();
    let url = mock.url("/");
    run(|| async move {
        let client = HttpClient::new(&url, config()).expect("client");
        for path in ["/huge", "/huge-chunked"] {
            let err = client.request(Method::GET, path, &[], Bytes::new()).await;
            let err = err.expect_err("over the cap");
            assert!(matches!(err, SendError::BodyTooLarge { limit: 65536 }), "{path}: {err}");
            assert!(!err.is_socket());
            assert_eq!(client.idle_count(), 0, "{path}: a half-read connection is dropped");
        }
        let reply = client.request(Method::GET, "/small", &[], Bytes::new()).await;
        assert_eq!(reply.expect("a new connection serves").status, 200);
    });
}

#[test]
fn upstream_http_connect_refused_is_a_socket_error() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    drop(listener);
    run(|| async move {
        let client = HttpClient::new(&url, config()).expect("client");
        let err = client.request(Method::GET, "/", &[], Bytes::new()).await;
        let err = err.expect_err("refused");
        assert!(matches!(err, SendError::Connect(_)), "{err}");
        assert!(err.is_socket());
    });
}
