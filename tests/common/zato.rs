//! Zato helpers for the end-to-end tests: a config with a data directory of its own per test
//! and two endpoints, the REST API with Basic Auth (`Api`), the admin API, a WSX client that
//! speaks Zato's protocol (`Wsx`), and notify endpoints that never answer (`Hang`).

use super::{agent, Server};
use base64::Engine;
use serde_json::{json, Value};
use std::{
    collections::VecDeque,
    io::Read,
    net::{TcpListener, TcpStream},
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tungstenite::{stream::MaybeTlsStream, Message, WebSocket};

/// The endpoint allowed everything.
pub const USER: (&str, &str) = ("client", "client-pass");
/// An endpoint allowed only `/allowed/*`.
pub const OTHER: (&str, &str) = ("other", "other-pass");
pub const ADMIN: (&str, &str) = ("admin", "admin-pass");

/// A data directory removed on drop.
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn new(name: &str) -> DataDir {
        let nanos = super::now() as u128 * 1_000_000_000
            + std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos() as u128);
        let path = std::env::temp_dir()
            .join(format!("pushgate-zato-{name}-{}-{nanos}", std::process::id()));
        DataDir(path)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Endpoints allowed everything, besides `client`, for more notify subscriptions to one topic
/// (an endpoint subscribes to a topic once).
pub const NOTIFIED: [&str; 3] = ["n1", "n2", "n3"];

/// A config: the store in `dir`, the admin password, `zato_keys` under `[zato]`, the
/// endpoints, then `tables` (`[[zato.topics]]` ...).
pub fn config(dir: &DataDir, zato_keys: &str, tables: &str) -> String {
    format!(
        "[store]\npath = {:?}\n\n[zato]\nadmin_password = \"{}\"\n{zato_keys}\n\n\
         [[zato.endpoints]]\nname = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\n\
         pub = [\"**\"]\nsub = [\"**\"]\n\n\
         [[zato.endpoints]]\nname = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\n\
         pub = [\"/allowed/*\"]\nsub = [\"/allowed/*\"]\n\n{}{tables}\n",
        dir.0.display().to_string(),
        ADMIN.1,
        USER.0,
        USER.0,
        USER.1,
        OTHER.0,
        OTHER.0,
        OTHER.1,
        NOTIFIED
            .iter()
            .map(|n| format!(
                "[[zato.endpoints]]\nname = \"{n}\"\nusername = \"{n}\"\npassword = \"{n}-pass\"\n\
                 pub = [\"**\"]\nsub = [\"**\"]\n\n"
            ))
            .collect::<String>(),
    )
}

/// `[[zato.topics]]` entries with default settings.
pub fn topics(names: &[&str]) -> String {
    names.iter().map(|n| format!("[[zato.topics]]\nname = \"{n}\"\n")).collect()
}

/// A caller of the REST API with some credentials.
pub struct Api {
    pub port: u16,
    auth: String,
}

pub fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// (status, JSON body, X-Zato-CID).
pub type Answer = (u16, Value, Option<String>);

impl Api {
    pub fn new(server: &Server, credentials: (&str, &str)) -> Api {
        Api::at(server.port, credentials)
    }

    /// For a server on `port`.
    pub fn at(port: u16, (user, password): (&str, &str)) -> Api {
        Api { port, auth: basic(user, password) }
    }

    /// Any request; a body is sent as JSON.
    pub fn request(&self, method: &str, path_and_query: &str, body: Option<&str>) -> Answer {
        let url = format!("http://127.0.0.1:{}{}", self.port, path_and_query);
        let request = http::Request::builder()
            .method(method)
            .uri(url)
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/json")
            .body(body.unwrap_or("").to_string())
            .expect("request");
        let mut reply = agent().run(request).expect("http request");
        let status = reply.status().as_u16();
        let cid = reply.headers().get("x-zato-cid").and_then(|v| v.to_str().ok()).map(Into::into);
        let text = reply.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), cid)
    }

    pub fn publish(&self, topic: &str, body: &Value) -> Answer {
        self.request("POST", &format!("/zato/pubsub/topic/{topic}"), Some(&body.to_string()))
    }

    /// Publishes `data` with `extra` fields; asserts success; returns the msg_id.
    pub fn publish_ok(&self, topic: &str, data: &str, extra: Value) -> String {
        let mut body = json!({ "data": data });
        if let (Some(map), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            map.extend(extra.clone());
        }
        let (status, answer, _) = self.publish(topic, &body);
        assert_eq!(status, 200, "publish to {topic}: {answer}");
        answer["msg_id"].as_str().expect("msg_id").to_string()
    }

    pub fn subscribe(&self, topic: &str, body: Option<&Value>) -> Answer {
        let body = body.map(Value::to_string);
        self.request("POST", &format!("/zato/pubsub/subscribe/topic/{topic}"), body.as_deref())
    }

    /// Subscribes (pull); asserts success; returns the sub_key.
    pub fn subscribe_ok(&self, topic: &str) -> String {
        let (status, answer, _) = self.subscribe(topic, None);
        assert_eq!(status, 200, "subscribe to {topic}: {answer}");
        answer["sub_key"].as_str().expect("sub_key").to_string()
    }

    pub fn get_messages(&self, topic: &str, sub_key: &str) -> Answer {
        let path = format!("/zato/pubsub/topic/{topic}?sub_key={sub_key}");
        self.request("POST", &path, None)
    }

    /// The messages waiting for `sub_key` (taking them).
    pub fn messages(&self, topic: &str, sub_key: &str) -> Vec<Value> {
        let (status, answer, _) = self.get_messages(topic, sub_key);
        assert_eq!(status, 200, "get-messages: {answer}");
        answer.as_array().cloned().expect("a list")
    }

    pub fn unsubscribe(&self, topic: &str, sub_key: &str) -> Answer {
        let path = format!("/zato/pubsub/subscribe/topic/{topic}?sub_key={sub_key}");
        self.request("DELETE", &path, None)
    }

    /// An admin call (this `Api` must carry the admin's credentials); asserts 2xx.
    pub fn admin(&self, method: &str, path_and_query: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let path = format!("/zato/pubsub/admin/{path_and_query}");
        let (status, answer, _) = self.request(method, &path, body.as_deref());
        assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
        answer
    }

    /// Creates a notify subscription through the admin API, of the `client` endpoint unless
    /// `options` name another `endpoint`.
    pub fn notify_sub(&self, topic: &str, url: &str, options: Value) -> String {
        let mut body = json!({"topic_name": topic, "endpoint": USER.0, "notify_url": url});
        if let (Some(map), Some(extra)) = (body.as_object_mut(), options.as_object()) {
            map.extend(extra.clone());
        }
        let answer = self.admin("POST", "subscriptions", Some(body));
        answer["sub_key"].as_str().expect("sub_key").to_string()
    }

    pub fn sub(&self, sub_key: &str) -> Value {
        self.admin("GET", &format!("subscriptions?sub_key={sub_key}"), None)
    }

    pub fn set_status(&self, sub_key: &str, status: &str) {
        let body = json!({ "active_status": status });
        self.admin("PATCH", &format!("subscriptions?sub_key={sub_key}"), Some(body));
    }
}

/// Waits (at most `limit`) until `done` is true; returns whether it became true.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    done()
}

/// A notify endpoint that accepts connections and never answers; counts them.
pub struct Hang {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
}

impl Hang {
    pub fn start() -> Hang {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || drain(stream));
            }
        });
        Hang { port, connections }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hang", self.port)
    }
}

fn drain(mut stream: TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

/// A WSX client.
pub struct Wsx {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
    pub token: Option<String>,
    next: u64,
    /// `zwsx.psrq` messages read while waiting for a response.
    deliveries: VecDeque<Value>,
}

impl Wsx {
    pub fn connect(server: &Server, path: &str) -> Wsx {
        let stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let (ws, _) = tungstenite::client::client(server.url(path), MaybeTlsStream::Plain(stream))
            .expect("upgrade");
        Wsx { ws, token: None, next: 0, deliveries: VecDeque::new() }
    }

    /// Connects to `/zato/wsx` and creates a session with `credentials`.
    pub fn session(server: &Server, credentials: (&str, &str)) -> Wsx {
        let mut wsx = Wsx::connect(server, "/zato/wsx");
        let answer = wsx.create_session(credentials);
        assert_eq!(answer["meta"]["msg_type"], "zwsx.rspa", "{answer}");
        wsx
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("zwsxc.{prefix}.{}", self.next)
    }

    pub fn send(&mut self, value: &Value) {
        self.ws.send(Message::text(value.to_string())).expect("send");
    }

    /// The next text message within `timeout` (None on timeout or close). Pings are answered
    /// (by tungstenite) meanwhile.
    pub fn recv(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            if let MaybeTlsStream::Plain(s) = self.ws.get_mut() {
                let _ = s.set_read_timeout(Some(left));
            }
            match self.ws.read() {
                Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                _ => return None,
            }
        }
    }

    pub fn create_session(&mut self, (user, password): (&str, &str)) -> Value {
        let id = self.id("auth");
        let meta = json!({"action": "create-session", "id": id, "timestamp": "2024-01-01T00:00:00",
                          "username": user, "secret": password, "client_id": "test-client",
                          "client_name": "tests"});
        self.send(&json!({ "meta": meta, "data": {} }));
        let answer = self.recv(Duration::from_secs(10)).expect("session answer");
        self.token = answer["data"]["token"].as_str().map(Into::into);
        answer
    }

    /// Calls a service and returns its response (deliveries meanwhile are kept).
    pub fn invoke(&mut self, service: &str, request: Value) -> Value {
        let id = self.id("inv");
        let meta = json!({"action": "invoke-service", "id": id, "timestamp": "2024-01-01T00:00:00",
                          "token": self.token});
        self.send(&json!({"meta": meta, "data": {"service": service, "request": request}}));
        loop {
            let message = self.recv(Duration::from_secs(10)).expect("service response");
            if message["meta"]["in_reply_to"] == json!(id) {
                return message;
            }
            self.deliveries.push_back(message);
        }
    }

    /// Subscribes this connection; returns the sub_key.
    pub fn subscribe(&mut self, topic: &str, options: Value) -> String {
        let mut request = json!({ "topic_name": topic });
        if let (Some(map), Some(extra)) = (request.as_object_mut(), options.as_object()) {
            map.extend(extra.clone());
        }
        let answer = self.invoke("zato.pubsub.pubapi.subscribe", request);
        assert_eq!(answer["meta"]["msg_type"], "zwsx.rspok", "{answer}");
        answer["data"]["sub_key"].as_str().expect("sub_key").to_string()
    }

    /// The next `zwsx.psrq` within `timeout`.
    pub fn delivery(&mut self, timeout: Duration) -> Option<Value> {
        if let Some(message) = self.deliveries.pop_front() {
            return Some(message);
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let left =
                deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            match self.recv(left) {
                Some(message) if message["meta"]["msg_type"] == "zwsx.psrq" => {
                    return Some(message)
                }
                Some(_) => continue,
                None => return None,
            }
        }
        None
    }

    /// Reads until the server closes; returns the close code and reason.
    pub fn close_frame(&mut self) -> Option<(u16, String)> {
        if let MaybeTlsStream::Plain(s) = self.ws.get_mut() {
            let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
        }
        loop {
            match self.ws.read() {
                Ok(Message::Close(frame)) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()))
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}
