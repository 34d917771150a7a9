//! Cleartext HTTP/2 (h2c, prior knowledge) on the client port, for backends that publish over
//! unary gRPC (`pushserverpb.Push/Msg`) or call plain HTTP over HTTP/2: hyper's HTTP/2 server on
//! a glommio socket whose first bytes the accept loop already read.
//!
//! The accept loop tells HTTP/2 from HTTP/1.1 with [`is_h2_preface`] and hands the connection
//! to [`serve_h2c`] with those bytes. Each stream's body is read up to `max_message`; a gRPC
//! body's 5-byte framing is checked and removed here, so the handler sees one message and
//! answers with a status (never a panic or a hang: `grpc-timeout` bounds it).

use bytes::Bytes;
use futures_lite::future;
use glommio::net::TcpStream;
use http_body_util::{combinators::WithTrailers, BodyExt, Either, Full};
use hyper::{
    body::Incoming,
    header::{HeaderValue, CONTENT_TYPE},
    service::service_fn,
};
use std::{
    cell::Cell,
    convert::Infallible,
    future::{ready, Future, Ready},
    pin::pin,
    rc::Rc,
    time::{Duration, Instant},
};

use super::{
    client::is_grpc_content_type,
    wire::{self, Code},
};
use crate::upstream::rt::{collect, with_timeout, CollectError, Io, LocalExec};

/// What an HTTP/2 connection starts with (RFC 9113 section 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether a connection whose first bytes are `buf` speaks HTTP/2 with prior knowledge:
/// `None` while `buf` is a strict prefix of the preface (read more), else the answer.
pub fn is_h2_preface(buf: &[u8]) -> Option<bool> {
    let n = buf.len().min(PREFACE.len());
    if buf[..n] != PREFACE[..n] {
        Some(false)
    } else if n < PREFACE.len() {
        None
    } else {
        Some(true)
    }
}

/// Limits for h2c connections.
#[derive(Clone, Debug)]
pub struct H2cConfig {
    /// Default 1 MiB: the largest request message (or plain body). A gRPC request past it
    /// gets RESOURCE_EXHAUSTED, a plain one 413, before more is buffered. Below gRPC's 4 MiB:
    /// a publish is pushed to WebSocket clients, whose own message limits are far smaller.
    pub max_message: usize,
    /// Default 100: streams one connection may have open at once (HTTP/2 SETTINGS). Each holds
    /// at most one request body, so this times `max_message` bounds a connection's memory.
    pub max_concurrent_streams: u32,
    /// Default 300 s: a connection with no traffic and no stream open for this long is shut
    /// down gracefully. Publishers keep connections open; this only reaps abandoned ones.
    pub idle_timeout: Duration,
}

impl Default for H2cConfig {
    fn default() -> H2cConfig {
        H2cConfig {
            max_message: 1024 * 1024,
            max_concurrent_streams: 100,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// One request, body read whole.
#[derive(Debug)]
pub struct H2Request {
    pub method: http::Method,
    /// The path and query, e.g. `/pushserverpb.Push/Msg`.
    pub path: String,
    /// The request headers; for gRPC, its metadata (`topic`, `msgid`, ...).
    pub headers: http::HeaderMap,
    /// For gRPC, the one request message without its prefix; else the body.
    pub body: Bytes,
    /// True when the content type is `application/grpc[+...]`.
    pub grpc: bool,
}

impl H2Request {
    /// A header (metadata) value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A unary gRPC answer: on OK the reply message, else a trailers-only status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcResponse {
    pub status: Code,
    /// Sent as `grpc-message` when not empty.
    pub message: String,
    /// The reply message (encoded protobuf); sent only with OK.
    pub body: Bytes,
    /// Cluster mode: some node did not answer in time; the trailers say
    /// `x-pushgate-partial: true` (sent only with OK).
    pub partial: bool,
}

impl GrpcResponse {
    pub fn ok(body: Bytes) -> GrpcResponse {
        GrpcResponse { status: Code::OK, message: String::new(), body, partial: false }
    }

    pub fn error(status: Code, message: impl Into<String>) -> GrpcResponse {
        GrpcResponse { status, message: message.into(), body: Bytes::new(), partial: false }
    }
}

/// What a handler answers: gRPC, or a plain HTTP response.
#[derive(Debug)]
pub enum H2Reply {
    Grpc(GrpcResponse),
    Http(http::Response<Bytes>),
}

/// The body of every answer: plain bytes (for HTTP, and for a trailers-only gRPC answer, whose
/// HEADERS frame must end the stream), or the gRPC message followed by trailers.
pub type ReplyBody = Either<Full<Bytes>, WithTrailers<Full<Bytes>, Trailers>>;
type Trailers = Ready<Option<Result<http::HeaderMap, Infallible>>>;

/// Serves HTTP/2 on `stream`, whose first bytes (`already_read`, the preface and maybe more)
/// the accept loop took; each request goes to `handler`. Returns when the peer closes, on a
/// connection error, or after `idle_timeout` without traffic or open stream.
pub async fn serve_h2c<H, F>(
    stream: TcpStream,
    already_read: Vec<u8>,
    config: Rc<H2cConfig>,
    handler: H,
) -> Result<(), hyper::Error>
where
    H: Fn(H2Request) -> F + 'static,
    F: Future<Output = H2Reply> + 'static,
{
    let activity = Rc::new(Cell::new(Instant::now()));
    let open_streams = Rc::new(Cell::new(0usize));
    let io = Io::with_prefix(stream, already_read, activity.clone());
    let service = {
        let (config, handler, open) = (config.clone(), Rc::new(handler), open_streams.clone());
        service_fn(move |request| {
            let (config, handler, open) = (config.clone(), handler.clone(), open.clone());
            async move {
                let _open = OpenStream::count(open);
                Ok::<_, Infallible>(answer(request, &config, &*handler).await)
            }
        })
    };
    let mut builder = hyper::server::conn::http2::Builder::new(LocalExec);
    builder.max_concurrent_streams(config.max_concurrent_streams);
    let mut connection = pin!(builder.serve_connection(io, service));
    let idle = config.idle_timeout;
    loop {
        let tick = async {
            glommio::timer::sleep(idle.min(Duration::from_secs(5))).await;
            None
        };
        match future::or(async { Some(connection.as_mut().await) }, tick).await {
            Some(result) => return result,
            None if open_streams.get() == 0 && activity.get().elapsed() >= idle => break,
            None => {}
        }
    }
    // Idle: GOAWAY, then let the connection finish (it has no stream open).
    connection.as_mut().graceful_shutdown();
    with_timeout(Duration::from_secs(5), connection).await.unwrap_or(Ok(()))
}

/// One stream being answered, counted while it lives (also when the peer resets it and hyper
/// drops the answer half-way), so the idle watchdog never reaps a busy connection.
struct OpenStream(Rc<Cell<usize>>);

impl OpenStream {
    fn count(open: Rc<Cell<usize>>) -> OpenStream {
        open.set(open.get() + 1);
        OpenStream(open)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// Reads the request within the limits, calls the handler, and builds the answer.
async fn answer<H, F>(
    request: http::Request<Incoming>,
    config: &H2cConfig,
    handler: &H,
) -> http::Response<ReplyBody>
where
    H: Fn(H2Request) -> F,
    F: Future<Output = H2Reply>,
{
    let (parts, body) = request.into_parts();
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let grpc = content_type.is_some_and(is_grpc_content_type);
    let max = config.max_message;
    let limit = if grpc { max + wire::PREFIX_LEN } else { max };
    let body = match collect(body, limit).await {
        Ok((body, _)) => body,
        Err(CollectError::TooLarge(_)) if grpc => {
            let why = format!("request message larger than {max} bytes");
            return grpc_response(GrpcResponse::error(Code::RESOURCE_EXHAUSTED, why));
        }
        Err(CollectError::TooLarge(_)) => {
            return plain(http::StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
        }
        Err(CollectError::Body(e)) => {
            tracing::debug!(error = %e, "h2c request body failed");
            return plain(http::StatusCode::BAD_REQUEST, "request body failed");
        }
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    if !grpc {
        let request = H2Request { method: parts.method, path, headers: parts.headers, body, grpc };
        return reply(handler(request).await);
    }
    if parts.method != http::Method::POST {
        return plain(http::StatusCode::METHOD_NOT_ALLOWED, "gRPC requests are POSTs");
    }
    let body = match wire::decode_unary(&body, max) {
        Ok(message) => body.slice_ref(message),
        Err(e) => return grpc_response(GrpcResponse::error(e.code(), e.to_string())),
    };
    let deadline =
        parts.headers.get("grpc-timeout").and_then(|v| wire::parse_timeout(v.as_bytes()));
    let request = H2Request { method: parts.method, path, headers: parts.headers, body, grpc };
    let answered = match deadline {
        Some(deadline) => with_timeout(deadline, handler(request)).await,
        None => Some(handler(request).await),
    };
    reply(answered.unwrap_or_else(|| {
        H2Reply::Grpc(GrpcResponse::error(Code::DEADLINE_EXCEEDED, "deadline exceeded"))
    }))
}

fn reply(reply: H2Reply) -> http::Response<ReplyBody> {
    match reply {
        H2Reply::Grpc(grpc) => grpc_response(grpc),
        H2Reply::Http(response) => response.map(|body| Either::Left(Full::new(body))),
    }
}

/// OK: headers, the framed message, trailers with the status. Else: trailers-only (the status
/// in the one HEADERS frame that ends the stream).
fn grpc_response(reply: GrpcResponse) -> http::Response<ReplyBody> {
    let mut status = http::HeaderMap::new();
    status.insert("grpc-status", HeaderValue::from(reply.status.0));
    if reply.partial {
        status.insert("x-pushgate-partial", HeaderValue::from_static("true"));
    }
    if !reply.message.is_empty() {
        let message = wire::encode_message(&reply.message);
        if let Ok(value) = HeaderValue::try_from(message) {
            status.insert("grpc-message", value);
        }
    }
    // Only a reply message over 4 GiB cannot be framed: INTERNAL rather than a broken stream.
    let framed = match reply.status {
        Code::OK => wire::encode(&reply.body, u32::MAX as usize).ok(),
        _ => None,
    };
    let mut response = http::Response::new(Either::Left(Full::new(Bytes::new())));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(wire::CONTENT_TYPE));
    match framed {
        Some(framed) => {
            *response.body_mut() =
                Either::Right(Full::new(framed).with_trailers(ready(Some(Ok(status)))));
        }
        None if reply.status == Code::OK => {
            let why = HeaderValue::from_static("reply message too large");
            response.headers_mut().insert("grpc-status", HeaderValue::from(Code::INTERNAL.0));
            response.headers_mut().insert("grpc-message", why);
        }
        None => response.headers_mut().extend(status),
    }
    response
}

fn plain(status: http::StatusCode, text: &'static str) -> http::Response<ReplyBody> {
    let mut response =
        http::Response::new(Either::Left(Full::new(Bytes::from_static(text.as_bytes()))));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Body;

    #[test]
    fn the_preface_is_told_from_http1_as_soon_as_possible() {
        assert_eq!(is_h2_preface(b""), None);
        assert_eq!(is_h2_preface(b"PRI * HTTP/2"), None);
        assert_eq!(is_h2_preface(PREFACE), Some(true));
        let mut more = PREFACE.to_vec();
        more.extend_from_slice(&[0, 0, 18, 4, 0]);
        assert_eq!(is_h2_preface(&more), Some(true), "a SETTINGS frame read with it");
        assert_eq!(is_h2_preface(b"G"), Some(false));
        assert_eq!(is_h2_preface(b"POST / HTTP/1.1\r\n"), Some(false));
        assert_eq!(is_h2_preface(b"PRI * HTTP/1.1\r\n"), Some(false));
    }

    #[test]
    fn an_ok_reply_has_the_message_then_trailers() {
        let response = grpc_response(GrpcResponse::ok(Bytes::from_static(b"\x0a\x01x")));
        assert_eq!(response.headers()[CONTENT_TYPE], "application/grpc");
        assert!(response.headers().get("grpc-status").is_none(), "status goes in trailers");
        assert!(!response.body().is_end_stream());
    }

    #[test]
    fn a_partial_answer_says_so_in_its_trailers() {
        let reply =
            GrpcResponse { partial: true, ..GrpcResponse::ok(Bytes::from_static(b"\x0a\x00")) };
        let body = grpc_response(reply).into_body();
        let collected = futures_lite::future::block_on(http_body_util::BodyExt::collect(body));
        let collected = collected.expect("an infallible body");
        let trailers = collected.trailers().expect("trailers");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(trailers["x-pushgate-partial"], "true");
        let whole = GrpcResponse::ok(Bytes::from_static(b"\x0a\x00"));
        let body = grpc_response(whole).into_body();
        let collected = futures_lite::future::block_on(http_body_util::BodyExt::collect(body));
        let trailers = collected.expect("an infallible body").trailers().cloned();
        assert!(trailers.is_some_and(|t| t.get("x-pushgate-partial").is_none()));
    }

    #[test]
    fn an_error_reply_is_trailers_only() {
        let response = grpc_response(GrpcResponse::error(Code::NOT_FOUND, "no topic\n"));
        assert!(response.body().is_end_stream(), "one HEADERS frame ends the stream");
        let headers = response.headers();
        assert_eq!(headers["grpc-status"], "5");
        assert_eq!(headers["grpc-message"], "no topic%0A");
    }
}
