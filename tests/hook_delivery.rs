//! The hook delivery machinery end to end over 127.0.0.1: `HttpClient` and `Endpoint` on a
//! glommio executor against a small scripted HTTP/1.1 receiver running on std threads (plain
//! or TLS), which answers each request with the next status of its script (then 200) and can
//! appear late on a port to produce refused connections first.

use bytes::Bytes;
use futures_rustls::rustls;
use glommio::{timer::Timer, LocalExecutorBuilder, Placement};
use pushgate::{
    hook::{
        endpoint::{BodyBuilder, Endpoint, EndpointConfig, EndpointStats},
        retry::RetryPolicy,
    },
    upstream::http::{tls_config, ClientConfig, HttpClient, SendError},
};
use std::{
    collections::VecDeque,
    future::Future,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

// ---------------------------------------------------------------- the receiver

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Seen {
    body: String,
    headers: Vec<(String, String)>,
    at: Instant,
    conn: usize,
}

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<u16>>,
    seen: Mutex<Vec<Seen>>,
    /// Close each connection after answering (without saying so in the response).
    close_after_answer: bool,
}

struct Receiver {
    port: u16,
    state: Arc<State>,
}

type Tls = Option<Arc<rustls::ServerConfig>>;

impl Receiver {
    fn start(script: &[u16]) -> Receiver {
        Receiver::serve(listen(0), new_state(script, false), None)
    }

    /// Binds `port` only after `delay`: connections before then are refused.
    fn start_late(port: u16, delay: Duration, script: &[u16]) -> Receiver {
        let state = new_state(script, false);
        let for_thread = state.clone();
        thread::spawn(move || {
            thread::sleep(delay);
            Receiver::serve(listen(port), for_thread, None);
        });
        Receiver { port, state }
    }

    fn serve(listener: TcpListener, state: Arc<State>, tls: Tls) -> Receiver {
        let port = listener.local_addr().expect("local addr").port();
        let for_thread = state.clone();
        thread::spawn(move || accept_loop(listener, for_thread, tls));
        Receiver { port, state }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook?x=1", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen").clone()
    }

    fn bodies(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.body).collect()
    }
}

fn new_state(script: &[u16], close_after_answer: bool) -> Arc<State> {
    let script = Mutex::new(script.iter().copied().collect());
    Arc::new(State { script, close_after_answer, ..State::default() })
}

fn listen(port: u16) -> TcpListener {
    TcpListener::bind(("127.0.0.1", port)).expect("bind receiver")
}

/// A port with nothing listening on it (bound once by us, then released).
fn free_port() -> u16 {
    listen(0).local_addr().expect("local addr").port()
}

fn accept_loop(listener: TcpListener, state: Arc<State>, tls: Tls) {
    for (conn, stream) in listener.incoming().enumerate() {
        let Ok(stream) = stream else { return };
        let state = state.clone();
        let tls = tls.clone();
        thread::spawn(move || match tls {
            None => answer_requests(stream, &state, conn),
            Some(config) => {
                let Ok(session) = rustls::ServerConnection::new(config) else { return };
                answer_requests(rustls::StreamOwned::new(session, stream), &state, conn);
            }
        });
    }
}

/// Reads requests (Content-Length bodies only) and answers each per the script.
fn answer_requests(mut stream: impl Read + Write, state: &State, conn: usize) {
    let mut buf = Vec::new();
    while let Some((headers, body)) = read_request(&mut stream, &mut buf) {
        let status = state.script.lock().expect("script").pop_front().unwrap_or(200);
        let seen = Seen { body, headers, at: Instant::now(), conn };
        state.seen.lock().expect("seen").push(seen);
        let reply = format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 2\r\n\r\nok");
        if stream.write_all(reply.as_bytes()).and_then(|()| stream.flush()).is_err() {
            return;
        }
        if state.close_after_answer {
            return;
        }
    }
}

type Request = (Vec<(String, String)>, String);

fn read_request(stream: &mut impl Read, buf: &mut Vec<u8>) -> Option<Request> {
    let (head_len, headers) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut slots);
        if let Ok(httparse::Status::Complete(n)) = request.parse(buf) {
            let headers = request.headers.iter().map(|h| {
                (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned())
            });
            break (n, headers.collect::<Vec<_>>());
        }
        fill(stream, buf)?;
    };
    let length = headers.iter().find(|(n, _)| n == "content-length");
    let length: usize = length.and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_len + length {
        fill(stream, buf)?;
    }
    let body = String::from_utf8_lossy(&buf[head_len..head_len + length]).into_owned();
    buf.drain(..head_len + length);
    Some((headers, body))
}

fn fill(stream: &mut impl Read, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

// ---------------------------------------------------------------- helpers

fn run<Fut: Future<Output = ()> + 'static>(test: impl FnOnce() -> Fut) {
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(256 * 1024)
        .make()
        .expect("glommio executor");
    executor.run(test());
}

/// Waits for `done`, failing the test after a generous 20 s (a hang, not a timing assertion).
async fn until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        Timer::new(Duration::from_millis(5)).await;
    }
}

/// Items are numbers; a batch's body is them joined by commas, with a count header.
fn comma_body() -> BodyBuilder<u32> {
    Box::new(|items: &[u32]| {
        let body: Vec<String> = items.iter().map(u32::to_string).collect();
        let headers = vec![("x-items".to_string(), items.len().to_string())];
        (Bytes::from(body.join(",")), headers)
    })
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_elapsed: Duration::from_secs(30),
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        socket_pause: Duration::from_millis(10),
        other_pause: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

fn endpoint(url: &str, config: EndpointConfig) -> Endpoint<u32> {
    let client = HttpClient::new(url, ClientConfig::default()).expect("client");
    Endpoint::new(client, config, comma_body())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------- client

#[test]
fn client_reuses_a_kept_alive_connection_and_reports_status() {
    let receiver = Receiver::start(&[404]);
    run(|| async move {
        let client = HttpClient::new(&receiver.url(), ClientConfig::default()).expect("client");
        let headers = vec![("x-sig".to_string(), "abc".to_string())];
        assert_eq!(client.post(Bytes::from("a"), &headers).await.expect("post"), 404);
        assert_eq!(client.post(Bytes::from("b"), &[]).await.expect("post"), 200);
        assert_eq!(client.post(Bytes::from("c"), &[]).await.expect("post"), 200);
        assert_eq!(client.idle_count(), 1);
        let seen = receiver.seen();
        assert_eq!(receiver.bodies(), strings(&["a", "b", "c"]));
        assert!(seen.iter().all(|s| s.conn == 0), "one connection for all: {seen:?}");
        let first = &seen[0].headers;
        assert!(first.contains(&("x-sig".into(), "abc".into())));
        assert!(first.contains(&("host".into(), format!("127.0.0.1:{}", receiver.port))));
    });
}

#[test]
fn client_reconnects_when_the_server_closed_the_idle_connection() {
    let receiver = Receiver::serve(listen(0), new_state(&[], true), None);
    run(|| async move {
        let client = HttpClient::new(&receiver.url(), ClientConfig::default()).expect("client");
        assert_eq!(client.post(Bytes::from("a"), &[]).await.expect("post"), 200);
        Timer::new(Duration::from_millis(50)).await;
        assert_eq!(client.post(Bytes::from("b"), &[]).await.expect("post"), 200);
        let conns: Vec<usize> = receiver.seen().iter().map(|s| s.conn).collect();
        assert_eq!(conns, [0, 1]);
    });
}

#[test]
fn client_refused_connection_is_a_socket_error() {
    let url = format!("http://127.0.0.1:{}/", free_port());
    run(|| async move {
        let client = HttpClient::new(&url, ClientConfig::default()).expect("client");
        let error = client.post(Bytes::from("a"), &[]).await.expect_err("nothing listens");
        assert!(matches!(error, SendError::Connect(_)), "{error:?}");
        assert!(error.is_socket());
    });
}

#[test]
fn client_times_out_a_request_that_gets_no_answer() {
    let listener = listen(0);
    let url = format!("http://127.0.0.1:{}/", listener.local_addr().expect("addr").port());
    // Accept and hold connections without ever answering.
    thread::spawn(move || {
        let held: Vec<TcpStream> = listener.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    run(|| async move {
        let config =
            ClientConfig { request_timeout: Duration::from_millis(200), ..ClientConfig::default() };
        let client = HttpClient::new(&url, config).expect("client");
        let error = client.post(Bytes::from("a"), &[]).await.expect_err("no answer");
        assert!(matches!(error, SendError::Timeout), "{error:?}");
        assert!(error.is_socket());
    });
}

#[test]
fn client_posts_over_https() {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .expect("self-signed certificate");
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())
        .expect("server TLS config");
    let receiver = Receiver::serve(listen(0), new_state(&[201], false), Some(Arc::new(server)));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("trust the test certificate");
    let tls = Some(tls_config(roots).expect("client TLS config"));
    let url = format!("https://127.0.0.1:{}/secure", receiver.port);
    run(|| async move {
        let client =
            HttpClient::new(&url, ClientConfig { tls, ..ClientConfig::default() }).expect("client");
        assert_eq!(client.post(Bytes::from("tls-1"), &[]).await.expect("post"), 201);
        assert_eq!(client.post(Bytes::from("tls-2"), &[]).await.expect("post"), 200);
        assert_eq!(client.idle_count(), 1);
        assert_eq!(receiver.bodies(), strings(&["tls-1", "tls-2"]));
    });
}

#[test]
fn client_rejects_an_untrusted_certificate_as_a_socket_error() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key.into())
        .expect("server TLS config");
    let receiver = Receiver::serve(listen(0), new_state(&[], false), Some(Arc::new(server)));
    let url = format!("https://127.0.0.1:{}/", receiver.port);
    run(|| async move {
        // Default roots: the system's, which do not include the test certificate.
        let client = HttpClient::new(&url, ClientConfig::default()).expect("client");
        let error = client.post(Bytes::from("a"), &[]).await.expect_err("untrusted");
        assert!(matches!(error, SendError::Tls(_)), "{error:?}");
        assert!(error.is_socket());
        assert!(receiver.bodies().is_empty());
    });
}

// ---------------------------------------------------------------- endpoint

#[test]
fn endpoint_delivers_in_order_on_one_connection() {
    let receiver = Receiver::start(&[]);
    run(|| async move {
        let endpoint = endpoint(&receiver.url(), EndpointConfig::default());
        for i in 0..20 {
            assert!(endpoint.push(i));
        }
        until("20 sent", || endpoint.stats().sent == 20).await;
        let expected: Vec<String> = (0..20).map(|i: u32| i.to_string()).collect();
        assert_eq!(receiver.bodies(), expected);
        assert!(receiver.seen().iter().all(|s| s.conn == 0));
        let stats = endpoint.stats();
        assert_eq!((stats.requests, stats.retried, stats.failed, stats.queued), (20, 0, 0, 0));
        assert_eq!(stats.latency.count, 20);
        assert!(stats.latency.max_us >= stats.latency.mean_us());
    });
}

#[test]
fn endpoint_batches_items_pushed_within_the_window() {
    let receiver = Receiver::start(&[]);
    run(|| async move {
        let config = EndpointConfig {
            batch_max: 10,
            batch_window: Duration::from_millis(200),
            ..EndpointConfig::default()
        };
        let endpoint = endpoint(&receiver.url(), config);
        for i in 0..10 {
            endpoint.push(i);
            // Let the worker run: its window starts with the first item.
            futures_lite::future::yield_now().await;
        }
        until("10 sent", || endpoint.stats().sent == 10).await;
        for i in 10..25 {
            endpoint.push(i);
        }
        until("25 sent", || endpoint.stats().sent == 25).await;
        let seen = receiver.seen();
        let sizes: Vec<&str> = seen
            .iter()
            .flat_map(|s| s.headers.iter().filter(|(n, _)| n == "x-items").map(|(_, v)| v.as_str()))
            .collect();
        assert_eq!(sizes, ["10", "10", "5"]);
        assert_eq!(seen[0].body, "0,1,2,3,4,5,6,7,8,9");
        assert_eq!(seen[2].body, "20,21,22,23,24");
        assert_eq!(endpoint.stats().requests, 3);
    });
}

#[test]
fn endpoint_retries_after_500s_keeping_order() {
    let receiver = Receiver::start(&[500, 500, 503]);
    run(|| async move {
        let config = EndpointConfig { retry: fast_retry(), ..EndpointConfig::default() };
        let endpoint = endpoint(&receiver.url(), config);
        for i in 0..4 {
            endpoint.push(i);
        }
        until("4 sent", || endpoint.stats().sent == 4).await;
        assert_eq!(receiver.bodies(), strings(&["0", "0", "0", "0", "1", "2", "3"]));
        let stats = endpoint.stats();
        assert_eq!((stats.requests, stats.retried, stats.status_errors), (7, 3, 3));
        assert_eq!((stats.failed, stats.socket_errors, stats.latency.count), (0, 0, 4));
    });
}

#[test]
fn endpoint_gives_up_after_max_attempts_and_moves_on() {
    let receiver = Receiver::start(&[500, 500, 500, 500, 500, 500]);
    run(|| async move {
        let retry = RetryPolicy { max_attempts: 3, ..fast_retry() };
        let endpoint = endpoint(&receiver.url(), EndpointConfig { retry, ..Default::default() });
        for i in 0..3 {
            endpoint.push(i);
        }
        until("1 sent", || endpoint.stats().sent == 1).await;
        assert_eq!(receiver.bodies(), strings(&["0", "0", "0", "1", "1", "1", "2"]));
        let stats = endpoint.stats();
        assert_eq!((stats.failed, stats.retried, stats.requests), (2, 4, 7));
    });
}

#[test]
fn endpoint_pauses_after_a_refused_connection() {
    let port = free_port();
    let socket_pause = Duration::from_millis(300);
    // The receiver appears before the pause ends: the first attempt is refused, the second
    // (no sooner than the pause) is delivered.
    let receiver = Receiver::start_late(port, Duration::from_millis(100), &[]);
    run(|| async move {
        let retry = RetryPolicy { socket_pause, ..fast_retry() };
        let endpoint = endpoint(&receiver.url(), EndpointConfig { retry, ..Default::default() });
        let pushed = Instant::now();
        endpoint.push(7);
        until("1 sent", || endpoint.stats().sent == 1).await;
        let stats = endpoint.stats();
        assert!(stats.socket_errors >= 1, "{stats:?}");
        assert_eq!(stats.retried, stats.socket_errors);
        assert_eq!(receiver.bodies(), strings(&["7"]));
        let delivered_after = receiver.seen()[0].at.duration_since(pushed);
        assert!(delivered_after >= socket_pause, "{delivered_after:?} < {socket_pause:?}");
    });
}

#[test]
fn endpoint_full_queue_drops_without_blocking_then_delivers_the_rest() {
    let receiver = Receiver::start(&[]);
    run(|| async move {
        let config = EndpointConfig { queue_max: 5, ..EndpointConfig::default() };
        let endpoint = endpoint(&receiver.url(), config);
        // No await between pushes: the worker cannot run, so the queue fills.
        let accepted: Vec<bool> = (0..8).map(|i| endpoint.push(i)).collect();
        assert_eq!(accepted, [true, true, true, true, true, false, false, false]);
        let stats = endpoint.stats();
        assert_eq!((stats.dropped, stats.queued), (3, 5));
        until("5 sent", || endpoint.stats().sent == 5).await;
        assert_eq!(receiver.bodies(), strings(&["0", "1", "2", "3", "4"]));
    });
}

#[test]
fn endpoint_close_delivers_what_is_queued() {
    let receiver = Receiver::start(&[500]);
    run(|| async move {
        let config = EndpointConfig { retry: fast_retry(), ..EndpointConfig::default() };
        let endpoint = endpoint(&receiver.url(), config);
        for i in 0..3 {
            endpoint.push(i);
        }
        endpoint.close().await;
        assert_eq!(receiver.bodies(), strings(&["0", "0", "1", "2"]));
    });
}

#[test]
fn stats_of_endpoints_sum() {
    let a = EndpointStats { sent: 1, dropped: 2, ..EndpointStats::default() };
    let b = EndpointStats { sent: 3, failed: 4, ..EndpointStats::default() };
    let total: EndpointStats = [a, b].iter().sum();
    assert_eq!((total.sent, total.dropped, total.failed), (4, 2, 4));
}
