//! Gateway helpers for the end-to-end tests: a WebSocket client speaking the gateway's frames,
//! the publish API, and a mock upstream in both transports (the original's length-prefixed TCP
//! JSON, and HTTP) that answers as the original's `mock_ms1975` does: `msgId` echoed, `topics`
//! = the request's topics with `frontend-topic` mapped to `backend-topic` plus `sig-test`,
//! `header.wanted_code` as the answer's code. Header `wanted` asks for bad answers: `no_topics`,
//! `empty_topics`, `not_json`, `huge`, `hang`, `slow`, `status_503`.

use super::{agent, Server};
use serde_json::{json, Value};
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};
use tungstenite::{stream::MaybeTlsStream, Message, WebSocket};

pub const PUBLISH_KEY: &str = "gateway-key";
pub const REGISTER: &str = "/60101/ormp/session/channelRegister";
pub const SUB_ADD: &str = "/60150/ormp/subscribe/accountSubscribe";
pub const SUB_PUT: &str = "/60150/ormp/subscribe/syncSubscribe";
pub const SUB_DELETE: &str = "/60150/ormp/subscribe/cancelSubscribe";
pub const DISCONNECT: &str = "/60101/ormp/session/channelDisconnect";
pub const PROXY: &str = "/proxy/query";

/// The six routes of the seed on `scheme` to `port`, their uris under `prefix`; `extra` is TOML
/// added to each upstream table (e.g. a timeout).
pub fn routes(prefix: &str, scheme: &str, port: u16, extra: &str) -> String {
    let mut text = String::new();
    for (uri, action) in [
        (REGISTER, "register"),
        (SUB_ADD, "sub_add"),
        (SUB_PUT, "sub_put"),
        (SUB_DELETE, "sub_delete"),
        (DISCONNECT, "disconnect"),
        (PROXY, "proxy"),
    ] {
        text += &format!(
            "[[gateway.routes]]\nuri = \"{prefix}{uri}\"\naction = \"{action}\"\n\
             [gateway.routes.upstream]\nscheme = \"{scheme}\"\n\
             nodes = [{{ host = \"127.0.0.1\", port = {port}, weight = 1 }}]\n{extra}\n\n"
        );
    }
    text
}

/// A server with the seed's routes to `mock` (TCP ones as is, HTTP ones under `/h`), shards.
pub fn start(tcp: &Mock, http: &Mock, top: &str, shards: usize) -> Server {
    let config = format!(
        "{top}\n{}{}",
        routes("", "tcp", tcp.port, ""),
        routes("/h", "http", http.port, "")
    );
    Server::start(&config, shards)
}

/// A WebSocket client on the gateway's path.
pub struct GwClient {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl GwClient {
    pub fn connect(server: &Server) -> GwClient {
        GwClient::connect_path(server, "/msg-pub").expect("gateway client connects")
    }

    pub fn connect_path(server: &Server, path: &str) -> Result<GwClient, String> {
        let stream = TcpStream::connect(("127.0.0.1", server.port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        let (ws, _) = tungstenite::client::client(server.url(path), MaybeTlsStream::Plain(stream))
            .map_err(|e| e.to_string())?;
        Ok(GwClient { ws, next_id: 0 })
    }

    pub fn send(&mut self, value: &Value) {
        self.ws.send(Message::text(value.to_string())).expect("send");
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// Sends `{uri, header: {msgId, ts, ..extra}, body}` and returns the msgId used.
    pub fn send_request(&mut self, uri: &str, body: Value, extra: Value) -> String {
        self.next_id += 1;
        let msg_id = format!("m{}", self.next_id);
        let mut header = json!({"ts": 132132132, "msgId": msg_id, "Content-Type": "json"});
        if let (Some(h), Value::Object(extra)) = (header.as_object_mut(), extra) {
            h.extend(extra);
        }
        self.send(&json!({"uri": uri, "header": header, "body": body}));
        msg_id
    }

    /// A request and its answer (the next message, which must echo the msgId).
    pub fn request(&mut self, uri: &str, body: Value) -> Value {
        self.request_with(uri, body, json!({}))
    }

    pub fn request_with(&mut self, uri: &str, body: Value, extra: Value) -> Value {
        let msg_id = self.send_request(uri, body, extra);
        let answer = self.recv();
        assert_eq!(answer["body"]["msgId"], msg_id, "answer out of turn: {answer}");
        answer
    }

    /// Registers through `uri`; returns the sid.
    pub fn register(&mut self, uri: &str) -> String {
        let answer = self.request(uri, json!({}));
        assert_eq!(answer["status"], 200, "{answer}");
        answer["body"]["resultData"]["sid"].as_str().expect("sid").to_string()
    }

    /// Subscribes to `topics` through `uri` (sub_add); asserts 200.
    pub fn sub_add(&mut self, uri: &str, topics: &[&str]) {
        let answer = self.request(uri, json!({ "topics": topics }));
        assert_eq!(answer["status"], 200, "{answer}");
    }

    /// The next JSON text or binary message. Panics on timeout or close.
    pub fn recv(&mut self) -> Value {
        loop {
            match self.ws.read().expect("read message") {
                Message::Text(text) => return serde_json::from_str(&text).expect("json"),
                Message::Binary(bytes) => return serde_json::from_slice(&bytes).expect("json"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// The next message, which must be a push: (topic, resultData).
    pub fn push(&mut self) -> (String, String) {
        let v = self.recv();
        assert_eq!(v["status"], 200, "not a push: {v}");
        let topic = v["body"]["topic"].as_str().unwrap_or_else(|| panic!("not a push: {v}"));
        (topic.to_string(), v["body"]["resultData"].as_str().unwrap_or_default().to_string())
    }

    /// The next raw message.
    pub fn recv_message(&mut self) -> Message {
        self.ws.read().expect("read message")
    }

    /// The close frame the server sends next (code, reason), skipping other messages.
    pub fn close_frame(&mut self) -> Option<(u16, String)> {
        loop {
            match self.ws.read() {
                Ok(Message::Close(Some(frame))) => {
                    return Some((frame.code.into(), frame.reason.to_string()));
                }
                Ok(Message::Close(None)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// The shard this connection is on: the sid's middle part.
    pub fn shard_of(sid: &str) -> usize {
        let mut parts = sid.rsplitn(3, '_');
        parts.next();
        parts.next().and_then(|s| s.parse().ok()).expect("shard in sid")
    }
}

/// A publisher on one keep-alive connection (so its publishes reach the server in order).
pub struct Publisher {
    agent: ureq::Agent,
    url: String,
}

impl Publisher {
    pub fn publish(&self, topic: &str, msg_id: &str, body: &str) {
        let body = json!({"topic": topic, "msgId": msg_id, "body": body}).to_string();
        let reply = self
            .agent
            .post(&self.url)
            .header("Authorization", &format!("Bearer {PUBLISH_KEY}"))
            .send(body)
            .expect("publish");
        assert_eq!(reply.status().as_u16(), 200);
    }
}

impl Server {
    pub fn gw_publisher(&self) -> Publisher {
        Publisher { agent: agent(), url: format!("http://127.0.0.1:{}/gateway/publish", self.port) }
    }

    /// `POST /gateway/publish` with the default key; returns (status, body).
    pub fn gw_publish(&self, topic: &str, msg_id: &str, body: &str) -> (u16, Value) {
        self.gw_publish_as(
            Some(PUBLISH_KEY),
            &json!({"topic": topic, "msgId": msg_id, "body": body}),
        )
    }

    pub fn gw_publish_as(&self, key: Option<&str>, body: &Value) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}/gateway/publish", self.port);
        let mut request = agent().post(&url).header("Content-Type", "application/json");
        if let Some(key) = key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut reply = request.send(body.to_string()).expect("http request");
        let status = reply.status().as_u16();
        let text = reply.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `GET /list/topics`.
    pub fn list_topics(&self) -> Vec<String> {
        let (status, text) = self.get("/list/topics");
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).expect("json");
        v["topics"]
            .as_array()
            .expect("topics")
            .iter()
            .map(|t| t.as_str().expect("name").into())
            .collect()
    }

    /// A line of `/metrics` starting with `prefix` (its value).
    pub fn metric_line(&self, prefix: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics");
        text.lines().find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
    }
}

/// The transport a mock speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Http,
}

/// A mock upstream: records every request as `{uri, header, body}`.
pub struct Mock {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Value>>>,
    /// TCP: every request frame had the `0xB7 0x00` magic and a matching LE length.
    pub framing_ok: Arc<Mutex<bool>>,
}

impl Mock {
    pub fn start(transport: Transport) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let framing_ok = Arc::new(Mutex::new(true));
        let (s, f) = (seen.clone(), framing_ok.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, f) = (s.clone(), f.clone());
                thread::spawn(move || match transport {
                    Transport::Tcp => serve_tcp(stream, &s, &f),
                    Transport::Http => serve_http(stream, &s),
                });
            }
        });
        Mock { port, seen, framing_ok }
    }

    pub fn tcp() -> Mock {
        Mock::start(Transport::Tcp)
    }

    pub fn http() -> Mock {
        Mock::start(Transport::Http)
    }

    pub fn requests(&self) -> Vec<Value> {
        self.seen.lock().expect("lock").clone()
    }

    /// The requests seen for `uri`.
    pub fn requests_to(&self, uri: &str) -> Vec<Value> {
        self.requests().into_iter().filter(|r| r["uri"] == uri).collect()
    }
}

/// What the mock answers: `None` for nothing at all (a hang or a dropped connection).
struct Reply {
    status: u16,
    body: Value,
    topics: Option<String>,
    raw: Option<Vec<u8>>,
}

fn mock_answer(request: &Value) -> Option<Reply> {
    let header = &request["header"];
    let wanted = header["wanted"].as_str().unwrap_or_default();
    if wanted == "hang" {
        thread::sleep(Duration::from_secs(30));
        return None;
    }
    if wanted == "slow" {
        thread::sleep(Duration::from_millis(200));
    }
    let topics = request["body"]["topics"].as_array().map(|items| {
        let mut names: Vec<String> = items
            .iter()
            .map(|t| t.as_str().unwrap_or_default().replace("frontend-topic", "backend-topic"))
            .collect();
        if items.iter().any(|t| t == "frontend-topic") {
            names.push("sig-test".into());
        }
        names.join(",")
    });
    let mut body = json!({"code": "0", "message": "upstream success", "msgId": header["msgId"], "resultData": "null"});
    if let Some(code) = header["wanted_code"].as_str() {
        body["code"] = json!(code);
        body["message"] = json!(format!("wanted code: {code}"));
    }
    let raw = match wanted {
        "not_json" => Some(b"<html>not json</html>".to_vec()),
        "huge" => Some(
            format!("{{\"body\":{{\"code\":\"0\",\"x\":\"{}\"}}}}", "x".repeat(2 << 20))
                .into_bytes(),
        ),
        _ => None,
    };
    let topics = match wanted {
        "no_topics" => None,
        "empty_topics" => Some(String::new()),
        _ => topics,
    };
    let status = if wanted == "status_503" { 503 } else { 200 };
    Some(Reply { status, body, topics, raw })
}

fn serve_tcp(mut stream: TcpStream, seen: &Mutex<Vec<Value>>, framing_ok: &Mutex<bool>) {
    loop {
        let mut head = [0u8; 6];
        if stream.read_exact(&mut head).is_err() {
            return;
        }
        let len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
        let mut payload = vec![0u8; len];
        if stream.read_exact(&mut payload).is_err() {
            return;
        }
        let Ok(request) = serde_json::from_slice::<Value>(&payload) else {
            *framing_ok.lock().expect("lock") = false;
            return;
        };
        if head[..2] != [0xB7, 0x00] {
            *framing_ok.lock().expect("lock") = false;
        }
        seen.lock().expect("lock").push(request.clone());
        if request["header"]["wanted_code"] == "-1" {
            // The original mock's "invalid response": nothing, then the connection drops.
            return;
        }
        let Some(reply) = mock_answer(&request) else { return };
        let payload = reply.raw.unwrap_or_else(|| {
            let mut frame = json!({"status": reply.status, "body": reply.body});
            if let Some(topics) = reply.topics {
                frame["header"] = json!({ "topics": topics });
            }
            frame.to_string().into_bytes()
        });
        let mut out = vec![0xB7, 0x00];
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

fn serve_http(stream: TcpStream, seen: &Mutex<Vec<Value>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let uri = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut header = serde_json::Map::new();
        let mut length = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
                if name == "content-length" {
                    length = value.parse().unwrap_or(0);
                }
                header.insert(name, Value::String(value));
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        // HTTP lowercases names: give the mock its camel-case keys back.
        if let Some(id) = header.get("msgid").cloned() {
            header.insert("msgId".into(), id);
        }
        let request = json!({"uri": uri, "header": header, "body": body});
        seen.lock().expect("lock").push(request.clone());
        if request["header"]["wanted_code"] == "-1" {
            return;
        }
        let Some(reply) = mock_answer(&request) else { return };
        let payload = reply.raw.unwrap_or_else(|| reply.body.to_string().into_bytes());
        let topics = reply.topics.map(|t| format!("topics: {t}\r\n")).unwrap_or_default();
        let head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{topics}\r\n",
            reply.status,
            payload.len()
        );
        if stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&payload)).is_err() {
            return;
        }
    }
}
