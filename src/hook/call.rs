//! Upstream calls: a connection shard asks the hook shard to make a request for one of its
//! connections and gets the answer back on a ring of its own. The hook shard keeps one pooled
//! client per upstream and runs each call as a task, so a slow upstream delays only its own
//! callers; the shard side (`engine::calls`) bounds the calls in flight and drops answers for
//! connections that have gone.

use crate::upstream::{
    grpc::{GrpcClient, GrpcConfig, GrpcError},
    http::{ClientConfig, HttpClient, SendError},
    tcp_json::{TcpJsonClient, TcpJsonConfig},
};
use ahash::AHashMap;
use bytes::Bytes;
use glommio::channels::channel_mesh::{MeshBuilder, Partial, Senders};
use std::{cell::RefCell, rc::Rc, time::Duration};

/// A call's number on its shard: pending-table slot and generation.
pub type CallId = u64;

/// The rings from the hook shard (the producer) back to each connection shard (consumers).
pub type ReplyMesh = MeshBuilder<CallReply, Partial>;

/// What to ask of an upstream.
#[derive(Debug)]
pub enum Request {
    Http(HttpRequest),
    TcpJson(TcpJsonRequest),
    Grpc(GrpcRequest),
}

impl Request {
    /// The longest the call may take at the hook shard.
    pub fn deadline(&self) -> Duration {
        match self {
            Request::Http(r) => r.timeout,
            Request::TcpJson(r) => {
                // Connect picks, then the exchange and one resend on a new connection.
                let picks = r.config.retries.unwrap_or(r.nodes.len()).max(1) as u32;
                let exchange = r.config.send_timeout + r.config.read_timeout;
                r.config.connect_timeout * (picks + 1) + exchange * 2
            }
            Request::Grpc(r) => r.config.connect_timeout + r.config.request_timeout,
        }
    }
}

/// One JSON frame to a length-prefixed TCP upstream (APISIX's `0xB7 0x00` + u32 LE framing).
/// The answer is the reply frame's JSON as the body (status 200).
#[derive(Debug, Clone)]
pub struct TcpJsonRequest {
    /// The pool's name: calls naming the same upstream share its connections.
    pub upstream: String,
    /// `host:port` of each node, picked round robin.
    pub nodes: Vec<String>,
    pub config: TcpJsonConfig,
    pub json: Bytes,
}

/// A unary gRPC call over h2c to `base` (`http://host:port`). The answer's status is the
/// gRPC status code, its `grpc-message` header the message, its body the reply message.
#[derive(Debug, Clone)]
pub struct GrpcRequest {
    pub base: String,
    pub config: GrpcConfig,
    /// `/package.Service/Method`.
    pub path: String,
    pub message: Bytes,
    pub metadata: Vec<(String, String)>,
}

/// An HTTP/1.1 request to `base` (`http://host:port[/path]`) + `path_and_query`.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub base: String,
    pub method: http::Method,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub connect_timeout: Duration,
    /// The whole exchange, connecting included.
    pub timeout: Duration,
    /// The largest answer body read; a larger one fails the call.
    pub max_response_bytes: usize,
}

/// An upstream's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why a call has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("too many upstream calls in flight on this shard (at most {0})")]
    Busy(usize),
    #[error("no upstream calls are possible: the hook shard is not running")]
    Unavailable,
    #[error("invalid upstream: {0}")]
    Setup(String),
    #[error("cannot connect to the upstream: {0}")]
    Connect(String),
    #[error("the upstream did not answer in time")]
    Timeout,
    #[error("the upstream's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the upstream call failed: {0}")]
    Failed(String),
    #[error("the connection closed before the answer came")]
    Gone,
    /// A length-prefixed TCP upstream failed, with APISIX's code (5001, 5021..5024) and the
    /// HTTP status it answers with.
    #[error("failed to connect/request upstream ({code})")]
    Upstream { code: u16, status: u16 },
}

/// A call on its way to the hook shard: the answer goes to consumer `reply_to` of the reply
/// mesh, tagged `id`.
#[derive(Debug)]
pub struct Call {
    pub reply_to: usize,
    pub id: CallId,
    pub request: Request,
}

/// A call's answer on its way back.
#[derive(Debug)]
pub struct CallReply {
    pub id: CallId,
    pub result: Result<Response, CallError>,
}

/// The hook shard's side: one client per upstream, and the rings back to the shards.
pub struct Caller {
    http: RefCell<AHashMap<String, HttpClient>>,
    tcp_json: RefCell<AHashMap<String, TcpJsonClient>>,
    grpc: RefCell<AHashMap<String, GrpcClient>>,
    replies: Senders<CallReply>,
}

impl Caller {
    pub fn new(replies: Senders<CallReply>) -> Rc<Caller> {
        Rc::new(Caller {
            http: RefCell::default(),
            tcp_json: RefCell::default(),
            grpc: RefCell::default(),
            replies,
        })
    }

    /// Makes the call in a task of its own and sends the answer back.
    pub fn start(self: &Rc<Self>, call: Call) {
        let caller = self.clone();
        glommio::spawn_local(async move {
            let result = match call.request {
                Request::Http(request) => caller.http(request).await,
                Request::TcpJson(request) => caller.tcp_json(request).await,
                Request::Grpc(request) => caller.grpc(request).await,
            };
            let reply = CallReply { id: call.id, result };
            if caller.replies.send_to(call.reply_to, reply).await.is_err() {
                tracing::debug!("a shard stopped before its upstream answer came");
            }
        })
        .detach();
    }

    async fn http(&self, request: HttpRequest) -> Result<Response, CallError> {
        let client = self.http_client(&request)?;
        let HttpRequest { method, path_and_query, headers, body, max_response_bytes, .. } = request;
        match client.request(method, &path_and_query, &headers, body).await {
            Ok(answer) => Ok(Response {
                status: answer.status,
                headers: answer
                    .headers
                    .iter()
                    .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_string())))
                    .collect(),
                body: answer.body,
            }),
            Err(SendError::Timeout) | Err(SendError::ConnectTimeout) => Err(CallError::Timeout),
            Err(SendError::BodyTooLarge { .. }) => Err(CallError::TooLarge(max_response_bytes)),
            Err(e @ (SendError::Connect(_) | SendError::Resolve(..) | SendError::Tls(_))) => {
                Err(CallError::Connect(e.to_string()))
            }
            Err(e) => Err(CallError::Failed(e.to_string())),
        }
    }

    /// The pooled client of an upstream, made on first use with the first call's limits.
    fn http_client(&self, request: &HttpRequest) -> Result<HttpClient, CallError> {
        if let Some(client) = self.http.borrow().get(&request.base) {
            return Ok(client.clone());
        }
        let config = ClientConfig {
            connect_timeout: request.connect_timeout,
            request_timeout: request.timeout,
            max_response_body: request.max_response_bytes,
            ..ClientConfig::default()
        };
        let client = HttpClient::new(&request.base, config)
            .map_err(|e| CallError::Setup(format!("{}: {e}", request.base)))?;
        self.http.borrow_mut().insert(request.base.clone(), client.clone());
        Ok(client)
    }

    async fn tcp_json(&self, request: TcpJsonRequest) -> Result<Response, CallError> {
        let client = match self.tcp_json.borrow().get(&request.upstream) {
            Some(client) => client.clone(),
            None => TcpJsonClient::new(&request.nodes, request.config.clone())
                .map_err(|e| CallError::Setup(format!("{}: {e}", request.upstream)))?,
        };
        self.tcp_json
            .borrow_mut()
            .entry(request.upstream.clone())
            .or_insert_with(|| client.clone());
        match client.call(&request.json).await {
            Ok(body) => Ok(Response { status: 200, headers: Vec::new(), body }),
            Err(e) => Err(CallError::Upstream { code: e.code(), status: e.status() }),
        }
    }

    async fn grpc(&self, request: GrpcRequest) -> Result<Response, CallError> {
        let client = match self.grpc.borrow().get(&request.base) {
            Some(client) => client.clone(),
            None => GrpcClient::new(&request.base, request.config.clone())
                .map_err(|e| CallError::Setup(format!("{}: {e}", request.base)))?,
        };
        self.grpc.borrow_mut().entry(request.base.clone()).or_insert_with(|| client.clone());
        match client.call(&request.path, &request.message, &request.metadata).await {
            Ok(reply) => Ok(Response {
                status: reply.status.0 as u16,
                headers: vec![("grpc-message".into(), reply.message)],
                body: reply.body,
            }),
            Err(GrpcError::Timeout | GrpcError::ConnectTimeout) => Err(CallError::Timeout),
            Err(e) if e.is_socket() => Err(CallError::Connect(e.to_string())),
            Err(e) => Err(CallError::Failed(e.to_string())),
        }
    }
}
