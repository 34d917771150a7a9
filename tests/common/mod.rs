//! Shared end-to-end harness: starts the real `pushgate` binary on 127.0.0.1 port 0 with a
//! config file, and talks to it with a real WebSocket client (tungstenite) and a real HTTP
//! client (ureq) that signs requests the way the Pusher SDKs do.

#![allow(dead_code)]

pub mod raw;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use sha2::Sha256;
use std::{
    io::{BufRead, BufReader},
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tungstenite::{protocol::frame::coding::CloseCode, stream::MaybeTlsStream, Message, WebSocket};

pub const KEY: &str = "app-key";
pub const SECRET: &str = "app-secret";
pub const APP_ID: &str = "app-id";

/// A running server process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub shards: usize,
    _config: tempfile_path::TempPath,
}

mod tempfile_path {
    /// A file removed on drop.
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl Server {
    /// Starts the server with extra TOML config and `shards` shards, on a free port.
    pub fn start(extra_toml: &str, shards: usize) -> Server {
        Server::start_on(extra_toml, shards, 0)
    }

    /// Starts the server on `port` (0: a free one).
    pub fn start_on(extra_toml: &str, shards: usize, port: u16) -> Server {
        let path = std::env::temp_dir().join(format!(
            "pushgate-test-{}-{}.toml",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::write(&path, extra_toml).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_pushgate"))
            .args(["--config", path.to_str().expect("utf8 path")])
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--shards",
                &shards.to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn pushgate");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read ready line");
        assert!(line.contains("listening on"), "unexpected first line: {line:?}");
        let port = line
            .split_whitespace()
            .find_map(|w| w.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
            .expect("port in ready line");
        Server { child, port, shards, _config: tempfile_path::TempPath(path) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path)
    }

    /// A connected, handshaken Pusher client on `/app/app-key?protocol=7`.
    pub fn client(&self) -> Client {
        Client::connect(self, &format!("/app/{KEY}?protocol=7&client=test&version=1"))
            .expect("pusher client connects")
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Signed POST of `body` to `/apps/app-id/{action}`; returns (status, JSON body).
    pub fn post(&self, action: &str, body: &Value) -> (u16, Value) {
        let body = body.to_string();
        let path = format!("/apps/{APP_ID}/{action}");
        let query = sign("POST", &path, &body, KEY, SECRET, now());
        self.post_raw(&format!("{path}?{query}"), &body)
    }

    /// POST with a ready-made path and query.
    pub fn post_raw(&self, path_and_query: &str, body: &str) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}{}", self.port, path_and_query);
        let agent = agent();
        let mut reply = agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body)
            .expect("http request");
        let status = reply.status().as_u16();
        let text = reply.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// GET; returns (status, body text).
    pub fn get(&self, path: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}{}", self.port, path);
        let mut reply = agent().get(&url).call().expect("http request");
        (reply.status().as_u16(), reply.body_mut().read_to_string().unwrap_or_default())
    }

    /// A metric's value from `/metrics`.
    pub fn metric(&self, name: &str) -> u64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("pushgate_{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing in {text}"))
    }

    /// Triggers one event; asserts 200.
    pub fn trigger(&self, channel: &str, event: &str, data: &str) {
        let (status, body) =
            self.post("events", &json!({"name": event, "channel": channel, "data": data}));
        assert_eq!(status, 200, "trigger failed: {body}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn rand_suffix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64)
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The signed query string for a request, as the Pusher SDKs build it.
pub fn sign(
    method: &str,
    path: &str,
    body: &str,
    key: &str,
    secret: &str,
    timestamp: i64,
) -> String {
    let mut params = vec![
        ("auth_key".to_string(), key.to_string()),
        ("auth_timestamp".to_string(), timestamp.to_string()),
        ("auth_version".to_string(), "1.0".to_string()),
    ];
    if !body.is_empty() {
        params.push(("body_md5".to_string(), hex::encode(Md5::digest(body.as_bytes()))));
    }
    params.sort();
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let query = query.join("&");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(format!("{method}\n{path}\n{query}").as_bytes());
    format!("{query}&auth_signature={}", hex::encode(mac.finalize().into_bytes()))
}

/// A WebSocket client speaking Pusher.
pub struct Client {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
    pub socket_id: String,
}

impl Client {
    /// Connects and reads `pusher:connection_established`.
    pub fn connect(server: &Server, path: &str) -> Result<Client, String> {
        let stream = TcpStream::connect(("127.0.0.1", server.port)).map_err(|e| e.to_string())?;
        Client::over(server, path, stream)
    }

    /// Connects over a prepared socket (e.g. with a small receive buffer).
    pub fn over(server: &Server, path: &str, stream: TcpStream) -> Result<Client, String> {
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        let (ws, _) = tungstenite::client::client(server.url(path), MaybeTlsStream::Plain(stream))
            .map_err(|e| e.to_string())?;
        let mut client = Client { ws, socket_id: String::new() };
        let hello = client.recv();
        if hello["event"] != "pusher:connection_established" {
            return Err(format!("expected connection_established, got {hello}"));
        }
        let data: Value = serde_json::from_str(hello["data"].as_str().ok_or("data not a string")?)
            .map_err(|e| e.to_string())?;
        client.socket_id = data["socket_id"].as_str().ok_or("no socket_id")?.to_string();
        Ok(client)
    }

    /// The shard this connection landed on, from its socket id.
    pub fn shard(&self, shards: usize) -> usize {
        let low: u64 = self.socket_id.split('.').nth(1).and_then(|l| l.parse().ok()).expect("id");
        (low % shards as u64) as usize
    }

    pub fn send(&mut self, value: Value) {
        self.ws.send(Message::text(value.to_string())).expect("send");
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// The next JSON text message (answers nothing itself). Panics on timeout or close.
    pub fn recv(&mut self) -> Value {
        loop {
            match self.ws.read().expect("read message") {
                Message::Text(text) => return serde_json::from_str(&text).expect("json"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// The next message within `timeout`, or None if nothing came.
    pub fn try_recv(&mut self, timeout: Duration) -> Option<Value> {
        self.set_timeout(timeout);
        let got = match self.ws.read() {
            Ok(Message::Text(text)) => serde_json::from_str(&text).ok(),
            _ => None,
        };
        self.set_timeout(Duration::from_secs(10));
        got
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        if let MaybeTlsStream::Plain(s) = self.ws.get_mut() {
            let _ = s.set_read_timeout(Some(timeout));
        }
    }

    /// Subscribes and waits for `subscription_succeeded`.
    pub fn subscribe(&mut self, channel: &str) {
        self.send(json!({"event": "pusher:subscribe", "data": {"channel": channel}}));
        let reply = self.recv();
        assert_eq!(reply["event"], "pusher_internal:subscription_succeeded", "{reply}");
        assert_eq!(reply["channel"], channel);
    }

    /// Reads until the server closes; returns the close code.
    pub fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.ws.read() {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Round trip through the server, so everything queued before it has arrived.
    pub fn sync(&mut self) {
        self.send(json!({"event": "pusher:ping", "data": {}}));
        loop {
            let v = self.recv();
            if v["event"] == "pusher:pong" {
                return;
            }
        }
    }
}

/// Expected close code, for readable assertions.
pub fn code(c: CloseCode) -> u16 {
    u16::from(c)
}

// ---- Helpers for private, presence, sign-in, REST queries and app policy tests. ----

/// hex(HMAC-SHA256(secret, message)).
pub fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The `auth` value of a private (`channel_data` None) or presence channel subscription.
pub fn channel_auth(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    let signed = match channel_data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    };
    format!("{KEY}:{}", hmac_hex(SECRET, &signed))
}

/// The `auth` value of a `pusher:signin` with `user_data`.
pub fn signin_auth(socket_id: &str, user_data: &str) -> String {
    format!("{KEY}:{}", hmac_hex(SECRET, &format!("{socket_id}::user::{user_data}")))
}

/// Like `sign`, with extra query parameters (signed too). Values must be URL-safe as given.
pub fn sign_with(
    method: &str,
    path: &str,
    body: &str,
    extra: &[(&str, &str)],
    timestamp: i64,
) -> String {
    let mut params = vec![
        ("auth_key".to_string(), KEY.to_string()),
        ("auth_timestamp".to_string(), timestamp.to_string()),
        ("auth_version".to_string(), "1.0".to_string()),
    ];
    if !body.is_empty() {
        params.push(("body_md5".to_string(), hex::encode(Md5::digest(body.as_bytes()))));
    }
    params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    params.sort();
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let query = query.join("&");
    let signature = hmac_hex(SECRET, &format!("{method}\n{path}\n{query}"));
    format!("{query}&auth_signature={signature}")
}

/// What a connection attempt came to.
pub enum Opened {
    Connected(Box<Client>),
    /// The server sent this first message (a `pusher:error`), then closed with this code.
    Refused(Value, Option<u16>),
}

impl Server {
    /// Signed GET of `/apps/app-id/{action}` with query `params`; returns (status, JSON body,
    /// or the text as a JSON string when it is not JSON).
    pub fn get_signed(&self, action: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let path = format!("/apps/{APP_ID}/{action}");
        let query = sign_with("GET", &path, "", params, now());
        let (status, text) = self.get(&format!("{path}?{query}"));
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Connects a Pusher client with an optional `Origin` header, without assuming success.
    pub fn open(&self, origin: Option<&str>) -> Opened {
        use tungstenite::client::IntoClientRequest;
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("tcp connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut request =
            self.url(&format!("/app/{KEY}?protocol=7")).into_client_request().expect("request");
        if let Some(origin) = origin {
            request.headers_mut().insert("Origin", origin.parse().expect("header value"));
        }
        let (ws, _) = tungstenite::client::client(request, MaybeTlsStream::Plain(stream))
            .expect("upgrade is accepted (a refusal comes as a close frame)");
        let mut client = Client { ws, socket_id: String::new() };
        let first = client.recv();
        if first["event"] == "pusher:connection_established" {
            let data: Value =
                serde_json::from_str(first["data"].as_str().expect("data string")).expect("json");
            client.socket_id = data["socket_id"].as_str().expect("socket_id").to_string();
            return Opened::Connected(Box::new(client));
        }
        let code = client.close_code();
        Opened::Refused(first, code)
    }
}

impl Client {
    /// Sends `pusher:subscribe` with optional `auth` and `channel_data`; reads nothing.
    pub fn send_subscribe(
        &mut self,
        channel: &str,
        auth: Option<&str>,
        channel_data: Option<&str>,
    ) {
        let mut data = json!({"channel": channel});
        if let Some(auth) = auth {
            data["auth"] = json!(auth);
        }
        if let Some(channel_data) = channel_data {
            data["channel_data"] = json!(channel_data);
        }
        self.send(json!({"event": "pusher:subscribe", "data": data}));
    }

    /// Subscribes to a private channel with a valid auth and waits for success.
    pub fn subscribe_private(&mut self, channel: &str) {
        let auth = channel_auth(&self.socket_id, channel, None);
        self.send_subscribe(channel, Some(&auth), None);
        let reply = self.recv();
        assert_eq!(reply["event"], "pusher_internal:subscription_succeeded", "{reply}");
        assert_eq!(reply["channel"], channel);
    }

    /// Joins a presence channel with a valid auth; returns the decoded `presence` object
    /// (`ids`, `hash`, `count`) of `subscription_succeeded`.
    pub fn join_presence(&mut self, channel: &str, channel_data: &str) -> Value {
        let auth = channel_auth(&self.socket_id, channel, Some(channel_data));
        self.send_subscribe(channel, Some(&auth), Some(channel_data));
        let reply = self.recv();
        assert_eq!(reply["event"], "pusher_internal:subscription_succeeded", "{reply}");
        assert_eq!(reply["channel"], channel);
        let data: Value =
            serde_json::from_str(reply["data"].as_str().expect("data is a JSON string"))
                .expect("data is JSON");
        data["presence"].clone()
    }

    /// Signs in with `user_data` and a valid auth; waits for `pusher:signin_success`.
    pub fn sign_in(&mut self, user_data: &str) {
        let auth = signin_auth(&self.socket_id, user_data);
        self.send(
            json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}),
        );
        let reply = self.recv();
        assert_eq!(reply["event"], "pusher:signin_success", "{reply}");
        assert_eq!(reply["data"]["user_data"], user_data);
    }

    /// Reads the next message and asserts it is a `pusher:error`; returns its `data`.
    pub fn expect_error(&mut self) -> Value {
        let reply = self.recv();
        assert_eq!(reply["event"], "pusher:error", "expected pusher:error, got {reply}");
        reply["data"].clone()
    }

    /// The next message's `data` decoded from its JSON string (member and count events).
    pub fn recv_data(&mut self, event: &str, channel: &str) -> Value {
        let got = self.recv();
        assert_eq!(
            (got["event"].as_str(), got["channel"].as_str()),
            (Some(event), Some(channel)),
            "{got}"
        );
        serde_json::from_str(got["data"].as_str().expect("data is a JSON string")).expect("json")
    }
}

/// Connects clients until both of two shards have at least `per_shard` of them; returns them
/// grouped as (shard 0, shard 1).
pub fn clients_on_both_shards(server: &Server, per_shard: usize) -> (Vec<Client>, Vec<Client>) {
    let (mut zero, mut one) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        if zero.len() >= per_shard && one.len() >= per_shard {
            break;
        }
        let client = server.client();
        match client.shard(2) {
            0 if zero.len() < per_shard => zero.push(client),
            1 if one.len() < per_shard => one.push(client),
            _ => {}
        }
    }
    assert!(zero.len() >= per_shard && one.len() >= per_shard, "the kernel used one shard only");
    (zero, one)
}

/// Nothing reaches `client` within 300 ms, then a REST publish on `channel` is the next message
/// (so the quiet was real, not a dead connection).
pub fn assert_quiet(server: &Server, client: &mut Client, channel: &str) {
    let got = client.try_recv(Duration::from_millis(300));
    assert!(got.is_none(), "unexpected {got:?}");
    server.trigger(channel, "control", "ok");
    let got = client.recv();
    assert_eq!((got["event"].as_str(), got["channel"].as_str()), (Some("control"), Some(channel)));
}
