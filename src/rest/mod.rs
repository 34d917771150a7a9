//! The REST vocabulary shared by the edge's HTTP server and the dialects that mount routes on
//! it: the reply type, JSON and text answers, errors as `{"error": ..., "code": ...}`, reading
//! a request body within its limits, and the [`Routes`] trait a dialect implements to serve
//! paths of its own.

use crate::{
    engine::{seam::LocalFuture, shard::Shard},
    upstream::grpc::server::{H2Reply, H2Request},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    body::{Body, Incoming},
    header, Request, Response, StatusCode,
};
use std::{rc::Rc, time::Duration};

pub type Reply = Response<Full<Bytes>>;

/// A table of REST routes mounted on the client port (a dialect's API).
pub trait Routes {
    /// Whether this table serves `path` (tables are asked in mount order).
    fn serves(&self, path: &str) -> bool;

    /// Serves one request on the shard it landed on.
    fn call(&self, shard: Rc<Shard>, request: Request<Incoming>) -> LocalFuture<'static, Reply>;

    /// Whether this table serves HTTP/2 (h2c) requests to `path`: gRPC methods of backends
    /// that publish, or plain requests over HTTP/2.
    fn serves_h2(&self, _path: &str) -> bool {
        false
    }

    /// Serves one h2c request (asked only when `serves_h2` said yes).
    fn call_h2(&self, _shard: Rc<Shard>, request: H2Request) -> LocalFuture<'static, H2Reply> {
        Box::pin(std::future::ready(h2_not_found(&request)))
    }

    /// Prometheus text this table's dialect appends to `/metrics` (gathered when scraped).
    fn metrics(&self, _shard: Rc<Shard>) -> LocalFuture<'static, String> {
        Box::pin(std::future::ready(String::new()))
    }
}

/// The answer to an h2c request no route serves: UNIMPLEMENTED for gRPC, else 404.
pub fn h2_not_found(request: &H2Request) -> H2Reply {
    use crate::upstream::grpc::{server::GrpcResponse, wire::Code};
    if request.grpc {
        let message = format!("unknown method {}", request.path);
        return H2Reply::Grpc(GrpcResponse::error(Code::UNIMPLEMENTED, message));
    }
    let mut answer = http::Response::new(Bytes::from_static(b"{\"error\":\"Not found\"}"));
    *answer.status_mut() = StatusCode::NOT_FOUND;
    H2Reply::Http(answer)
}

/// Reads a request body of at most `limit` bytes within `rest_body_timeout_ms`.
///
/// A declared length over the limit is refused before the body is touched, so a client that
/// sent `Expect: 100-continue` gets the 413 rather than an invitation to send it. Each chunk is
/// copied out as it comes: a chunk holds on to hyper's read buffer, and a body dribbled a byte
/// per segment would otherwise hold a buffer per byte. The errors that leave part of the body
/// unread (413, 408, 400) end the connection and say so.
pub async fn read_body(shard: &Shard, body: Incoming, limit: usize) -> Result<Vec<u8>, ApiError> {
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large(limit));
    }
    let within = Duration::from_millis(shard.config.rest_body_timeout_ms);
    match glommio::timer::timeout(within, async { Ok(collect(body, limit).await) }).await {
        Ok(read) => read,
        Err(_) => Err(ApiError::closing(
            StatusCode::REQUEST_TIMEOUT,
            format!("Body not received within {} ms", within.as_millis()),
        )),
    }
}

async fn collect(mut body: Incoming, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::closing(StatusCode::BAD_REQUEST, format!("Cannot read body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(too_large(limit));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::closing(StatusCode::PAYLOAD_TOO_LARGE, format!("Body larger than {limit} bytes"))
}

/// An error the REST API answers with, carrying its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// The connection ends after this answer (part of the request was left unread), and the
    /// answer says so with `Connection: close`.
    pub close: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), close: false }
    }

    /// An error after which the connection ends.
    pub fn closing(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { close: true, ..ApiError::new(status, message) }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn reply(&self) -> Reply {
        let body = serde_json::json!({ "error": self.message, "code": self.status.as_u16() });
        let mut reply = json(self.status, body.to_string());
        if self.close {
            reply
                .headers_mut()
                .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        }
        reply
    }
}

pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    with_type(status, "application/json", body)
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    with_type(status, "text/plain; charset=utf-8", body)
}

fn with_type(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut reply = Response::new(Full::new(body.into()));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    reply
}
