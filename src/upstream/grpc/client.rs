//! A unary gRPC client over cleartext HTTP/2 (h2c, prior knowledge) for one backend: hyper's
//! HTTP/2 client connection on a glommio socket, its tasks on the calling executor.
//!
//! One connection carries every call at once (HTTP/2 streams; the server's
//! `max_concurrent_streams` queues the excess); it is opened on the first call and again
//! after it dies. A call has one deadline for everything, also sent as `grpc-timeout`, and the
//! reply body is read only up to `max_reply`.

use bytes::Bytes;
use glommio::{net::TcpStream, sync::Semaphore};
use http_body_util::Full;
use hyper::{
    body::Incoming,
    client::conn::http2::{self, SendRequest},
    header::{HeaderValue, CONTENT_TYPE, TE},
};
use std::{cell::RefCell, io, rc::Rc, time::Duration};

use super::wire::{self, Code, MessageError};
use crate::upstream::rt::{collect, resolve, with_timeout, CollectError, Io, LocalExec};

/// Timeouts and limits for one backend.
#[derive(Clone, Debug)]
pub struct GrpcConfig {
    /// Default 5 s. Shorter notices a dead backend sooner; too short fails on slow networks.
    pub connect_timeout: Duration,
    /// Default 10 s: a whole call, connecting included; also sent to the server as
    /// `grpc-timeout` so it can give up too.
    pub request_timeout: Duration,
    /// Default 4 MiB (gRPC's own default receive limit): the largest request or reply message.
    pub max_message: usize,
}

impl Default for GrpcConfig {
    fn default() -> GrpcConfig {
        GrpcConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_message: 4 * 1024 * 1024,
        }
    }
}

/// A backend address the client cannot use.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("invalid URL: {0}")]
    Invalid(#[from] http::uri::InvalidUri),
    #[error("URL scheme must be http (h2c)")]
    Scheme,
    #[error("URL has no host")]
    NoHost,
}

/// A finished call: the status the server gave, and the reply message (empty unless OK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcReply {
    /// `grpc-status`, from the trailers (or the headers, for a trailers-only reply).
    pub status: Code,
    /// `grpc-message`, percent-decoded; empty when absent.
    pub message: String,
    /// The reply message, without its 5-byte prefix.
    pub body: Bytes,
}

/// Why a call got no gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("resolve {0}: {1}")]
    Resolve(String, io::Error),
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("call timed out")]
    Timeout,
    /// The connection or the stream failed under the call (reset, closed, refused stream).
    #[error("transport: {0}")]
    Transport(hyper::Error),
    #[error("request: {0}")]
    Request(#[from] http::Error),
    #[error("message: {0}")]
    Message(#[from] MessageError),
    /// An HTTP answer that is not gRPC: a status other than 200, or another content type.
    #[error("not a gRPC reply: HTTP {status}, content-type {content_type:?}")]
    NotGrpc { status: u16, content_type: Option<String> },
    #[error("reply has no grpc-status")]
    MissingStatus,
    #[error("reply body larger than {limit} bytes")]
    ReplyTooLarge { limit: usize },
}

impl GrpcError {
    /// True when the backend was not reached or the connection failed: the call may not have
    /// run, and another backend (or a later retry) may serve it.
    pub fn is_socket(&self) -> bool {
        matches!(
            self,
            GrpcError::Resolve(..)
                | GrpcError::Connect(_)
                | GrpcError::ConnectTimeout
                | GrpcError::Timeout
                | GrpcError::Transport(_)
        )
    }
}

/// Where calls go: parsed once from the URL.
struct Target {
    host: String,
    port: u16,
    /// `http://host:port`, the prefix of every request URI (`:scheme` and `:authority`).
    base: String,
}

/// A client bound to one backend. Cheap to clone; clones share the connection.
/// Single-threaded: use it on the executor that made it.
#[derive(Clone)]
pub struct GrpcClient {
    target: Rc<Target>,
    config: Rc<GrpcConfig>,
    conn: Rc<RefCell<Option<SendRequest<Full<Bytes>>>>>,
    /// Held while connecting, so calls that find no connection open one, not one each.
    connecting: Rc<Semaphore>,
}

impl GrpcClient {
    /// Parses `url` (`http://host:port`); connects lazily, on the first call.
    pub fn new(url: &str, config: GrpcConfig) -> Result<GrpcClient, SetupError> {
        let uri: http::Uri = url.parse()?;
        if uri.scheme_str() != Some("http") {
            return Err(SetupError::Scheme);
        }
        let host = uri.host().ok_or(SetupError::NoHost)?.trim_matches(['[', ']']).to_string();
        let port = uri.port_u16().unwrap_or(80);
        let authority = uri.authority().map_or_else(|| host.clone(), |a| a.as_str().to_string());
        let target = Target { host, port, base: format!("http://{authority}") };
        Ok(GrpcClient {
            target: Rc::new(target),
            config: Rc::new(config),
            conn: Rc::new(RefCell::new(None)),
            connecting: Rc::new(Semaphore::new(1)),
        })
    }

    /// True while a live connection is held.
    pub fn is_connected(&self) -> bool {
        self.conn.borrow().as_ref().is_some_and(|c| !c.is_closed())
    }

    /// Calls the unary method at `path` (`/package.Service/Method`) with the encoded request
    /// `message` and `metadata` (ASCII values; `-bin` keys take base64, as gRPC says).
    pub async fn call(
        &self,
        path: &str,
        message: &[u8],
        metadata: &[(String, String)],
    ) -> Result<GrpcReply, GrpcError> {
        let body = wire::encode(message, self.config.max_message)?;
        let mut request = http::Request::post(format!("{}{path}", self.target.base))
            .header(CONTENT_TYPE, wire::CONTENT_TYPE)
            .header(TE, "trailers")
            .header("grpc-timeout", wire::format_timeout(self.config.request_timeout));
        for (name, value) in metadata {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request.body(Full::new(body))?;
        let call = async {
            let response = self.send(request).await?;
            read_reply(response, self.config.max_message).await
        };
        with_timeout(self.config.request_timeout, call).await.unwrap_or(Err(GrpcError::Timeout))
    }

    /// Sends on the held connection; on one that turned out closed, once more on a new one.
    async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, GrpcError> {
        let mut sender = self.sender().await?;
        match sender.try_send_request(request).await {
            Ok(response) => Ok(response),
            Err(mut e) => match e.take_message() {
                Some(unsent) => {
                    self.drop_closed();
                    let mut sender = self.sender().await?;
                    sender.send_request(unsent).await.map_err(GrpcError::Transport)
                }
                None => {
                    self.drop_closed();
                    Err(GrpcError::Transport(e.into_error()))
                }
            },
        }
    }

    /// The live connection, or a new one.
    async fn sender(&self) -> Result<SendRequest<Full<Bytes>>, GrpcError> {
        self.drop_closed();
        if let Some(sender) = self.conn.borrow().clone() {
            return Ok(sender);
        }
        // Never closed, so `acquire_permit` only waits for another caller's connect.
        let _permit = self.connecting.acquire_permit(1).await;
        if let Some(sender) = self.conn.borrow().clone() {
            return Ok(sender);
        }
        let sender = self.connect().await?;
        *self.conn.borrow_mut() = Some(sender.clone());
        Ok(sender)
    }

    fn drop_closed(&self) {
        let mut conn = self.conn.borrow_mut();
        if conn.as_ref().is_some_and(SendRequest::is_closed) {
            *conn = None;
        }
    }

    /// Opens the socket, runs the HTTP/2 handshake and spawns the connection's driver, which
    /// ends when the connection fails or the last sender is dropped.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, GrpcError> {
        let target = &self.target;
        let addr = resolve(&target.host, target.port)
            .map_err(|e| GrpcError::Resolve(target.host.clone(), e))?;
        let stream =
            TcpStream::connect_timeout(addr, self.config.connect_timeout).await.map_err(|e| {
                match io::Error::from(e) {
                    e if e.kind() == io::ErrorKind::TimedOut => GrpcError::ConnectTimeout,
                    e => GrpcError::Connect(e),
                }
            })?;
        // A failure to disable Nagle costs latency, not correctness.
        let _ = stream.set_nodelay(true);
        let handshake = http2::Builder::new(LocalExec).handshake(Io::new(stream));
        let (sender, connection) = with_timeout(self.config.connect_timeout, handshake)
            .await
            .ok_or(GrpcError::ConnectTimeout)?
            .map_err(GrpcError::Transport)?;
        glommio::spawn_local(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
            }
        })
        .detach();
        Ok(sender)
    }
}

/// Reads a reply: status from the headers of a trailers-only reply, else the body (up to one
/// message of `max_message`) and the status from its trailers.
async fn read_reply(
    response: http::Response<Incoming>,
    max_message: usize,
) -> Result<GrpcReply, GrpcError> {
    let (parts, body) = response.into_parts();
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if parts.status != http::StatusCode::OK || !content_type.is_some_and(is_grpc_content_type) {
        let content_type = content_type.map(str::to_string);
        return Err(GrpcError::NotGrpc { status: parts.status.as_u16(), content_type });
    }
    if let Some(reply) = status_from(&parts.headers, Bytes::new()) {
        return Ok(reply);
    }
    let limit = max_message + wire::PREFIX_LEN;
    let (body, trailers) = collect(body, limit).await.map_err(|e| match e {
        CollectError::TooLarge(_) => GrpcError::ReplyTooLarge { limit: max_message },
        CollectError::Body(e) => GrpcError::Transport(e),
    })?;
    let trailers = trailers.ok_or(GrpcError::MissingStatus)?;
    let message = if body.is_empty() {
        Bytes::new()
    } else {
        body.slice_ref(wire::decode_unary(&body, max_message)?)
    };
    status_from(&trailers, message).ok_or(GrpcError::MissingStatus)
}

/// The reply that `grpc-status` (and `grpc-message`) in `headers` make, if there is a status.
fn status_from(headers: &http::HeaderMap, body: Bytes) -> Option<GrpcReply> {
    let status = Code::parse(headers.get("grpc-status")?.as_bytes())?;
    let message = headers.get("grpc-message").map(HeaderValue::as_bytes).map(wire::decode_message);
    Some(GrpcReply { status, message: message.unwrap_or_default(), body })
}

/// `application/grpc`, alone or with a `+codec` or parameters; not `application/grpc-web`.
pub fn is_grpc_content_type(value: &str) -> bool {
    value
        .strip_prefix(wire::CONTENT_TYPE)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('+') || rest.starts_with(';'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_content_types() {
        for yes in ["application/grpc", "application/grpc+proto", "application/grpc; x=1"] {
            assert!(is_grpc_content_type(yes), "{yes}");
        }
        for no in ["application/grpc-web", "application/json", "application/grp"] {
            assert!(!is_grpc_content_type(no), "{no}");
        }
    }

    #[test]
    fn status_comes_with_its_message() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_from(&headers, Bytes::new()), None);
        headers.insert("grpc-status", HeaderValue::from_static("5"));
        headers.insert("grpc-message", HeaderValue::from_static("no%20such%20topic"));
        let reply = status_from(&headers, Bytes::new()).expect("status");
        assert_eq!((reply.status, reply.message.as_str()), (Code::NOT_FOUND, "no such topic"));
    }

    #[test]
    fn urls_must_be_plain_http() {
        assert!(matches!(
            GrpcClient::new("https://b:1", GrpcConfig::default()),
            Err(SetupError::Scheme)
        ));
        let client = GrpcClient::new("http://[::1]:50051", GrpcConfig::default()).expect("v6");
        assert_eq!((client.target.host.as_str(), client.target.port), ("::1", 50051));
        assert_eq!(client.target.base, "http://[::1]:50051");
    }
}
