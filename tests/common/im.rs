//! IM (xxim) helpers for the end-to-end tests: tokens as the default config checks them, a
//! WebSocket client speaking binary protobuf (`RequestBody` out, `PushBody` in), the push API
//! with its key, and connecting from a local port whose shard is known.

use super::{Client, Server, KEY};
use jsonwebtoken::{encode, EncodingKey, Header};
use prost::Message as _;
use pushgate::dialect::im::pb::{
    CustomRequestBody, NoticeDataList, PushBody, RequestBody, ResponseBody,
};
use serde_json::{json, Value};
use socket2::{Domain, Socket, Type};
use std::{
    net::{SocketAddr, TcpStream},
    time::Duration,
};
use tungstenite::{stream::MaybeTlsStream, Message, WebSocket};

/// The embedded defaults' secret and API key.
pub const JWT_SECRET: &str = "im-jwt-secret";
pub const API_KEY: &str = "im-api-key";

/// An HS256 token for (user, platform, device), valid for `ttl` seconds (negative: expired).
pub fn token(user: &str, platform: &str, device: &str, ttl: i64) -> String {
    token_with(
        JWT_SECRET,
        json!({"userId": user, "platform": platform, "deviceId": device,
                                   "exp": super::now() + ttl}),
    )
}

/// A token with any claims and secret.
pub fn token_with(secret: &str, claims: Value) -> String {
    encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes())).expect("jwt")
}

/// The query of a connection of (user, platform, device) with a valid token.
pub fn query(user: &str, platform: &str, device: &str) -> String {
    let token = token(user, platform, device, 3600);
    format!(
        "userId={user}&token={token}&platform={platform}&deviceId={device}&deviceModel=m\
         &osVersion=1&appVersion=2&language=zh&networkUsed=wifi"
    )
}

/// What the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(String),
    Push { event: i32, data: Vec<u8> },
    Close(u16, String),
}

impl Frame {
    /// The `ResponseBody` of a response push.
    pub fn response(&self) -> ResponseBody {
        match self {
            Frame::Push { event: 2, data } => {
                ResponseBody::decode(&data[..]).expect("ResponseBody")
            }
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// The notices of a notice push.
    pub fn notices(&self) -> NoticeDataList {
        match self {
            Frame::Push { event: 1, data } => NoticeDataList::decode(&data[..]).expect("notices"),
            other => panic!("expected a notice push, got {other:?}"),
        }
    }
}

/// A WebSocket client speaking the IM dialect.
pub struct ImClient {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
}

impl ImClient {
    /// Connects to `path?query` and returns the client (the caller reads `connected`).
    pub fn open(server: &Server, path_and_query: &str) -> Result<ImClient, String> {
        let stream = TcpStream::connect(("127.0.0.1", server.port)).map_err(|e| e.to_string())?;
        ImClient::over(server, path_and_query, stream)
    }

    /// Connects over a prepared socket.
    pub fn over(
        server: &Server,
        path_and_query: &str,
        stream: TcpStream,
    ) -> Result<ImClient, String> {
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        let (ws, _) =
            tungstenite::client::client(server.url(path_and_query), MaybeTlsStream::Plain(stream))
                .map_err(|e| e.to_string())?;
        Ok(ImClient { ws })
    }

    /// Connects (user, platform, device) on `/ws` and reads `connected`.
    pub fn connect(server: &Server, user: &str, platform: &str, device: &str) -> ImClient {
        let mut client = ImClient::open(server, &format!("/ws?{}", query(user, platform, device)))
            .expect("connect");
        assert_eq!(client.recv(), Frame::Text("connected".into()));
        client
    }

    /// The next frame (pings are answered by tungstenite and skipped). Panics on timeout.
    pub fn recv(&mut self) -> Frame {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Frame::Text(t.to_string()),
                Ok(Message::Binary(b)) => {
                    let body = PushBody::decode(&b[..]).expect("PushBody");
                    return Frame::Push { event: body.event, data: body.data.to_vec() };
                }
                Ok(Message::Close(Some(c))) => {
                    return Frame::Close(c.code.into(), c.reason.to_string())
                }
                Ok(Message::Close(None)) => return Frame::Close(1005, String::new()),
                Ok(_) => continue,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// Waits up to `ms` for a frame; None if nothing came.
    pub fn try_recv(&mut self, ms: u64) -> Option<Frame> {
        self.set_timeout(ms);
        let frame = loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => break Some(Frame::Text(t.to_string())),
                Ok(Message::Binary(b)) => {
                    let body = PushBody::decode(&b[..]).expect("PushBody");
                    break Some(Frame::Push { event: body.event, data: body.data.to_vec() });
                }
                Ok(Message::Close(Some(c))) => {
                    break Some(Frame::Close(c.code.into(), c.reason.to_string()))
                }
                Ok(Message::Close(None)) => break Some(Frame::Close(1005, String::new())),
                Ok(_) => continue,
                Err(_) => break None,
            }
        };
        self.set_timeout(10_000);
        frame
    }

    fn set_timeout(&mut self, ms: u64) {
        if let MaybeTlsStream::Plain(s) = self.ws.get_mut() {
            let _ = s.set_read_timeout(Some(Duration::from_millis(ms)));
        }
    }

    /// Sends `RequestBody{event, reqId, data}`.
    pub fn request(&mut self, event: i32, req_id: &str, data: &[u8]) {
        let body = RequestBody { event, req_id: req_id.into(), data: data.to_vec().into() };
        self.send_binary(body.encode_to_vec());
    }

    /// Sends event 100 with `CustomRequestBody{method, data}`.
    pub fn custom(&mut self, method: &str, req_id: &str, data: &[u8]) {
        let custom = CustomRequestBody { method: method.into(), data: data.to_vec().into() };
        self.request(100, req_id, &custom.encode_to_vec());
    }

    pub fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).expect("send");
    }

    /// Reads frames until a response; returns it.
    pub fn response(&mut self) -> ResponseBody {
        loop {
            match self.recv() {
                f @ Frame::Push { event: 2, .. } => return f.response(),
                Frame::Push { .. } => continue,
                other => panic!("expected a response, got {other:?}"),
            }
        }
    }

    /// Reads frames until a close; returns its code and reason.
    pub fn closed(&mut self) -> (u16, String) {
        loop {
            if let Frame::Close(code, reason) = self.recv() {
                return (code, reason);
            }
        }
    }
}

impl Server {
    /// POST to the IM push API with the default key.
    pub fn im_post(&self, path: &str, body: &Value) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut reply = super::agent()
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Authorization", &format!("Bearer {API_KEY}"))
            .send(body.to_string())
            .expect("http request");
        let status = reply.status().as_u16();
        let text = reply.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

/// A local port from which a connection lands on `shard` (the kernel spreads SO_REUSEPORT
/// connections by a hash of the addresses): probed with Pusher connections, whose socket ids
/// name their shard. The server closes each probe first, so the port is free again at once.
pub fn port_on_shard(server: &Server, shard: usize) -> u16 {
    for _ in 0..200 {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        socket.set_reuse_address(true).expect("reuseaddr");
        socket.bind(&"127.0.0.1:0".parse::<SocketAddr>().expect("addr").into()).expect("bind");
        let port = socket.local_addr().expect("local").as_socket().expect("inet").port();
        let server_addr: SocketAddr = ([127, 0, 0, 1], server.port).into();
        socket.connect(&server_addr.into()).expect("connect");
        let path = format!("/app/{KEY}?protocol=7&client=probe&version=1");
        let mut probe = Client::over(server, &path, socket.into()).expect("probe");
        let landed = probe.shard(server.shards);
        // A frame the server must refuse: it closes first (sends its FIN first).
        let _ = probe
            .ws
            .get_mut()
            .get_mut_plain()
            .map(|s| std::io::Write::write_all(s, &[0x81, 0x01, b'x']));
        while probe.ws.read().is_ok() {}
        drop(probe);
        if landed == shard {
            return port;
        }
    }
    panic!("no local port lands on shard {shard}");
}

/// A socket bound to `port` and connected to the server.
pub fn stream_from(server: &Server, port: u16) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_reuse_address(true).expect("reuseaddr");
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into()).expect("bind the probed port");
    socket.connect(&SocketAddr::from(([127, 0, 0, 1], server.port)).into()).expect("connect");
    socket.into()
}

trait PlainStream {
    fn get_mut_plain(&mut self) -> Option<&mut TcpStream>;
}

impl PlainStream for MaybeTlsStream<TcpStream> {
    fn get_mut_plain(&mut self) -> Option<&mut TcpStream> {
        match self {
            MaybeTlsStream::Plain(s) => Some(s),
            _ => None,
        }
    }
}
