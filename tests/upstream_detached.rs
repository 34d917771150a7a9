//! `Shard::call_detached`: an upstream call made on no connection's behalf keeps its answer
//! when the connection that caused it closes meanwhile, where `Shard::call` answers `Gone`.
//! A small dialect at `/calls` starts both calls for each text message and records their
//! outcomes; the client hangs up before the slow upstream answers.

use pushgate::{
    config::Config,
    edge::router::{PathMatch, Router},
    engine::{
        bus::Envelope,
        conn::{queue::Frame, Close, ConnKey},
        seam::{Admission, Dialect, Gone, LocalFuture, Policy},
        shard::Shard,
    },
    hook::call::{HttpRequest, Request},
    mount::{Mounting, ShardMounts},
    runtime,
    ws::{frame::Message, handshake::Upgrade},
};
use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    rc::Rc,
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

type Outcomes = Arc<Mutex<Vec<String>>>;

struct Both {
    upstream: String,
    outcomes: Outcomes,
}

fn slow_request(base: &str) -> Request {
    Request::Http(HttpRequest {
        base: base.to_string(),
        method: http::Method::GET,
        path_and_query: "/slow".into(),
        headers: Vec::new(),
        body: bytes::Bytes::new(),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        max_response_bytes: 1024,
    })
}

impl Dialect for Both {
    fn name(&self) -> &'static str {
        "both"
    }

    fn admit<'a>(
        &'a self,
        _: &'a Rc<Shard>,
        _: &'a Upgrade,
        _: Option<SocketAddr>,
    ) -> LocalFuture<'a, Admission> {
        Box::pin(std::future::ready(Admission::Accept { ns: 0, headers: Vec::new() }))
    }

    fn open(&self, _: &Rc<Shard>, _: ConnKey, _: &Upgrade, _: Option<SocketAddr>) {}

    fn on_message(
        &self,
        shard: &Rc<Shard>,
        key: ConnKey,
        message: Message<'_>,
    ) -> Result<(), Close> {
        let Message::Text(_) = message else { return Ok(()) };
        for detached in [true, false] {
            let (shard, outcomes) = (shard.clone(), self.outcomes.clone());
            let request = slow_request(&self.upstream);
            glommio::spawn_local(async move {
                let answer = if detached {
                    shard.call_detached(request).await
                } else {
                    shard.call(key, request).await
                };
                let outcome = match answer {
                    Ok(response) => format!(
                        "{} {}",
                        if detached { "detached" } else { "attached" },
                        response.status
                    ),
                    Err(e) => format!("{} {e:?}", if detached { "detached" } else { "attached" }),
                };
                outcomes.lock().expect("lock").push(outcome);
            })
            .detach();
        }
        Ok(())
    }

    fn on_close(&self, _: &Rc<Shard>, _: ConnKey, _: &Gone) {}

    fn policy(&self) -> Policy {
        let close = Close::fixed(1001, "bye");
        Policy {
            idle_secs: 0,
            pong_secs: 30,
            ping: Frame::new(Vec::new()),
            timeout: close.clone(),
            over_capacity: close.clone(),
            shutdown: close,
            deadlines: false,
        }
    }

    fn on_notice(&self, _: &Rc<Shard>, _: Envelope) {}

    fn answer(&self, _: &Rc<Shard>, question: Envelope) -> LocalFuture<'static, Envelope> {
        Box::pin(std::future::ready(question))
    }

    fn client_id(&self, _: &Shard, key: ConnKey) -> String {
        format!("{key:?}")
    }
}

struct Mounts {
    upstream: String,
    outcomes: Outcomes,
}

impl Mounting for Mounts {
    fn for_shard(&self, config: &Arc<Config>) -> ShardMounts {
        let dialect = Both { upstream: self.upstream.clone(), outcomes: self.outcomes.clone() };
        let mut router = Router::new(config);
        router.mount_ws(PathMatch::Exact("/calls".into()), 0);
        ShardMounts { dialects: vec![Rc::new(dialect)], ns_tags: vec![0], router }
    }

    fn uses_calls(&self) -> bool {
        true
    }
}

/// An upstream that answers every request 200 after 500 ms.
fn slow_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut stream = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        thread::sleep(Duration::from_millis(500));
                        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                        if stream.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_detached_call_keeps_its_answer_when_the_connection_that_asked_closes() {
    let outcomes = Outcomes::default();
    let config = Config {
        host: "127.0.0.1".into(),
        port: 0,
        shards: 1,
        io_memory: 128 * 1024,
        ..Config::default()
    };
    let mounts = Arc::new(Mounts { upstream: slow_upstream(), outcomes: outcomes.clone() });
    let running = runtime::start_with(config, mounts).expect("starts");
    let url = format!("ws://{}/calls", running.addr);
    let stream = TcpStream::connect(running.addr).expect("connect");
    let plain = tungstenite::stream::MaybeTlsStream::Plain(stream);
    let (mut ws, _) = tungstenite::client::client(url, plain).expect("upgrade");
    ws.send(tungstenite::Message::text("go")).expect("send");
    ws.flush().expect("flush");
    thread::sleep(Duration::from_millis(100));
    drop(ws);
    let deadline = Instant::now() + Duration::from_secs(20);
    while outcomes.lock().expect("lock").len() < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let mut seen = outcomes.lock().expect("lock").clone();
    seen.sort();
    assert_eq!(seen, ["attached Gone", "detached 200"]);
    running.request_shutdown();
}
