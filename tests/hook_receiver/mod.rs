//! A recording HTTP receiver for hook tests: a thread on 127.0.0.1 port 0 that parses each
//! request with httparse, records it, and answers with the next scripted status (once the
//! script runs out: what its check says, or 200). Every wait is bounded.

#![allow(dead_code)]

use std::{
    collections::VecDeque,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Decides the status of a request the script does not.
type Check = Arc<dyn Fn(&Received) -> u16 + Send + Sync>;

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    script: VecDeque<u16>,
    check: Option<Check>,
}

/// The receiver; the thread lives as long as the test process.
#[derive(Clone)]
pub struct Receiver {
    pub port: u16,
    shared: Arc<(Mutex<Shared>, Condvar)>,
}

impl Receiver {
    /// Starts on a free port.
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        Receiver::on(listener)
    }

    /// Starts on a free port, answering unscripted requests with `check`'s status.
    pub fn checking(check: impl Fn(&Received) -> u16 + Send + Sync + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        Receiver::checking_on(listener, check)
    }

    /// Starts on a listener bound already (e.g. to a port chosen earlier).
    pub fn on(listener: TcpListener) -> Receiver {
        Receiver::serve(listener, None)
    }

    /// [`Receiver::checking`] on a listener bound already.
    pub fn checking_on(
        listener: TcpListener,
        check: impl Fn(&Received) -> u16 + Send + Sync + 'static,
    ) -> Receiver {
        Receiver::serve(listener, Some(Arc::new(check)))
    }

    fn serve(listener: TcpListener, check: Option<Check>) -> Receiver {
        let port = listener.local_addr().expect("addr").port();
        let shared = Shared { check, ..Shared::default() };
        let receiver = Receiver { port, shared: Arc::new((Mutex::new(shared), Condvar::new())) };
        let shared = receiver.shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The next requests get these statuses, in order.
    pub fn script(&self, statuses: &[u16]) {
        let (lock, _) = &*self.shared;
        lock.lock().expect("lock").script.extend(statuses.iter().copied());
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.0.lock().expect("lock").received.clone()
    }

    /// Waits (at most `timeout`) until `done` holds for what was received; returns it.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let (lock, ready) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut shared = lock.lock().expect("lock");
        while !done(&shared.received) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            shared = ready.wait_timeout(shared, left).expect("wait").0;
        }
        shared.received.clone()
    }

    /// Pusher webhook events received with a 2xx answer, flattened in arrival order.
    pub fn pusher_events(&self, path: &str) -> Vec<serde_json::Value> {
        accepted_events(&self.received(), path)
    }
}

/// Pusher webhook events in requests to `path` that were answered 2xx.
pub fn accepted_events(received: &[Received], path: &str) -> Vec<serde_json::Value> {
    received
        .iter()
        .filter(|r| r.path == path && r.status < 300)
        .flat_map(|r| r.json()["events"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn serve(mut stream: TcpStream, shared: &(Mutex<Shared>, Condvar)) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    loop {
        let Some((request, used)) = read_request(&mut stream, &mut buf) else { return };
        buf.drain(..used);
        let status = {
            let (lock, ready) = shared;
            let mut shared = lock.lock().expect("lock");
            let checked = shared.check.as_ref().map(|check| check(&request));
            let status = shared.script.pop_front().or(checked).unwrap_or(200);
            shared.received.push(Received { status, ..request });
            ready.notify_all();
            status
        };
        let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(Received, usize)> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = req.parse(buf) {
            let headers: Vec<(String, String)> = req
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                .collect();
            let length: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= head + length {
                let path = req.path.unwrap_or("/").to_string();
                let body = buf[head..head + length].to_vec();
                return Some((Received { path, headers, body, status: 0 }, head + length));
            }
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
