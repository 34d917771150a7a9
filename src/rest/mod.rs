//! The REST vocabulary shared by the edge's HTTP server and the dialects that mount routes on
//! it: the reply type, JSON and text answers, errors as `{"error": ..., "code": ...}`, and the
//! [`Routes`] trait a dialect implements to serve paths of its own.

use crate::engine::{seam::LocalFuture, shard::Shard};
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
