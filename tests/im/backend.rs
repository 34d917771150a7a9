//! Mock IM backends for the tests: a unary gRPC server over h2c (pushgate's own `serve_h2c` on
//! a glommio thread) and a plain HTTP/1.1 server (a std thread per connection). Each records
//! the calls it gets and answers each path as told: `CommonResp{code}` with the request echoed
//! as field 2, a hang, an error status, bytes that are not protobuf, or failures first.

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::{net::TcpListener, LocalExecutorBuilder, Placement};
use prost::Message;
use pushgate::{
    dialect::im::pb::{CommonOnlyResp, CommonResp},
    upstream::grpc::{is_h2_preface, serve_h2c, Code, GrpcResponse, H2Reply, H2Request, H2cConfig},
};
use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Write},
    rc::Rc,
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

/// How a path is answered.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// `CommonResp{code}` as field 1, the request's bytes as field 2.
    Answer(i32),
    /// Never answers.
    Hang,
    /// A gRPC status (or an HTTP status for the HTTP mock).
    Status(u32),
    /// Bytes that are not a protobuf message.
    Garbage,
    /// Waits this many ms, then answers code 0.
    Slow(u64),
    /// Answers UNAVAILABLE (HTTP 503) this many times, then code 0.
    FailFirst(usize),
    /// Answers exactly these bytes.
    Raw(Vec<u8>),
}

/// One call a mock got.
#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub body: Vec<u8>,
}

/// A running mock; its thread lives as long as the test process.
#[derive(Clone)]
pub struct Mock {
    pub port: u16,
    calls: Arc<Mutex<Vec<Call>>>,
    behaviors: Arc<Mutex<HashMap<String, Behavior>>>,
}

impl Mock {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers `path` as told (default: `Answer(0)`).
    pub fn set(&self, path: &str, behavior: Behavior) {
        self.behaviors.lock().expect("lock").insert(path.into(), behavior);
    }

    pub fn calls(&self, path: &str) -> Vec<Call> {
        self.calls.lock().expect("lock").iter().filter(|c| c.path == path).cloned().collect()
    }

    /// Waits (at most 20 s) until `path` got `n` calls; returns them.
    pub fn wait_calls(&self, path: &str, n: usize) -> Vec<Call> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let calls = self.calls(path);
            if calls.len() >= n || Instant::now() > deadline {
                assert!(calls.len() >= n, "{path}: {} calls, expected {n}", calls.len());
                return calls;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What to do with a call to `path`: record it, then the answer (None: hang).
    fn decide(&self, path: &str, body: &[u8]) -> Option<Result<Vec<u8>, u32>> {
        self.calls.lock().expect("lock").push(Call { path: path.into(), body: body.to_vec() });
        let mut behaviors = self.behaviors.lock().expect("lock");
        let behavior = behaviors.get(path).cloned().unwrap_or(Behavior::Answer(0));
        match behavior {
            Behavior::Answer(code) => Some(Ok(answer(code, body))),
            Behavior::Hang => None,
            Behavior::Status(status) => Some(Err(status)),
            Behavior::Garbage => Some(Ok(vec![0x0a, 0x7f, 0x01])),
            Behavior::Raw(bytes) => Some(Ok(bytes)),
            Behavior::Slow(_) => Some(Ok(answer(0, body))),
            Behavior::FailFirst(0) => Some(Ok(answer(0, body))),
            Behavior::FailFirst(n) => {
                behaviors.insert(path.into(), Behavior::FailFirst(n - 1));
                Some(Err(14))
            }
        }
    }

    fn delay(&self, path: &str) -> Option<Duration> {
        match self.behaviors.lock().expect("lock").get(path) {
            Some(Behavior::Slow(ms)) => Some(Duration::from_millis(*ms)),
            _ => None,
        }
    }

    fn new(port: u16, calls: Arc<Mutex<Vec<Call>>>) -> Mock {
        Mock { port, calls, behaviors: Arc::default() }
    }

    /// A gRPC (h2c) mock.
    pub fn grpc() -> Mock {
        let (port_tx, port_rx) = mpsc::channel();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let behaviors: Arc<Mutex<HashMap<String, Behavior>>> = Arc::default();
        let mock = Mock { port: 0, calls: calls.clone(), behaviors: behaviors.clone() };
        let inner = mock.clone();
        std::thread::spawn(move || {
            let executor = LocalExecutorBuilder::new(Placement::Unbound)
                .io_memory(512 * 1024)
                .make()
                .expect("executor");
            executor.run(async move {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
                port_tx.send(listener.local_addr().expect("addr").port()).expect("port");
                let config = Rc::new(H2cConfig::default());
                while let Ok(mut stream) = listener.accept().await {
                    let (mock, config) = (inner.clone(), config.clone());
                    glommio::spawn_local(async move {
                        let mut buf = vec![0u8; 64];
                        let mut filled = 0;
                        while is_h2_preface(&buf[..filled]) != Some(true) {
                            match stream.read(&mut buf[filled..]).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => filled += n,
                            }
                            if is_h2_preface(&buf[..filled]) == Some(false) {
                                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                                return;
                            }
                        }
                        buf.truncate(filled);
                        let handler = move |request: H2Request| grpc_answer(mock.clone(), request);
                        let _ = serve_h2c(stream, buf, config, handler).await;
                    })
                    .detach();
                }
            });
        });
        let port = port_rx.recv_timeout(Duration::from_secs(10)).expect("mock port");
        Mock { port, calls, behaviors }
    }

    /// A plain HTTP/1.1 mock (keep-alive, `Content-Length` bodies).
    pub fn http() -> Mock {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mock = Mock::new(port, Arc::default());
        let inner = mock.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mock = inner.clone();
                std::thread::spawn(move || serve_http(mock, stream));
            }
        });
        mock
    }
}

async fn grpc_answer(mock: Mock, request: H2Request) -> H2Reply {
    if let Some(wait) = mock.delay(&request.path) {
        glommio::timer::sleep(wait).await;
    }
    match mock.decide(&request.path, &request.body) {
        Some(Ok(body)) => H2Reply::Grpc(GrpcResponse::ok(Bytes::from(body))),
        Some(Err(status)) => H2Reply::Grpc(GrpcResponse::error(Code(status), "mock failure")),
        None => {
            glommio::timer::sleep(Duration::from_secs(3600)).await;
            H2Reply::Grpc(GrpcResponse::error(Code::INTERNAL, "hung"))
        }
    }
}

fn serve_http(mock: Mock, stream: std::net::TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Some(wait) = mock.delay(&path) {
            std::thread::sleep(wait);
        }
        let (status, reply) = match mock.decide(&path, &body) {
            Some(Ok(reply)) => (200, reply),
            Some(Err(14)) => (503, Vec::new()),
            Some(Err(status)) => (status, Vec::new()),
            None => {
                std::thread::sleep(Duration::from_secs(3600));
                return;
            }
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        if out.write_all(head.as_bytes()).and_then(|_| out.write_all(&reply)).is_err() {
            return;
        }
    }
}

/// `CommonResp{code}` as field 1 and `request` as field 2.
pub fn answer(code: i32, request: &[u8]) -> Vec<u8> {
    let mut out =
        CommonOnlyResp { common_resp: Some(CommonResp { code, ..CommonResp::default() }) }
            .encode_to_vec();
    prost::encoding::bytes::encode(2, &request.to_vec(), &mut out);
    out
}

/// The request a backend got, from the data of a response built by [`answer`].
pub fn echoed(data: &[u8]) -> Vec<u8> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Echo {
        #[prost(bytes = "vec", tag = "2")]
        request: Vec<u8>,
    }
    Echo::decode(data).expect("echo").request
}
