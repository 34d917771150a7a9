//! The REST vocabulary shared by the edge's HTTP server and the dialects that mount routes on
//! it: the reply type, JSON and text answers, errors as `{"error": ..., "code": ...}`, and the
//! [`Routes`] trait a dialect implements to serve paths of its own.

use crate::{
    engine::{seam::LocalFuture, shard::Shard},
    upstream::grpc::server::{H2Reply, H2Request},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, header, Request, Response, StatusCode};
use std::rc::Rc;

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

/// Reads a request body of at most `limit` bytes (413 past it).
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Body larger than {limit} bytes"),
        )),
        Err(e) => Err(ApiError::bad_request(format!("Cannot read body: {e}"))),
    }
}

/// An error the REST API answers with, carrying its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn reply(&self) -> Reply {
        let body = serde_json::json!({ "error": self.message, "code": self.status.as_u16() });
        json(self.status, body.to_string())
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
