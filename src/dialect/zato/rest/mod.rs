//! The REST API under `/zato/pubsub/`: Zato's pub/sub API for endpoints (`pubapi`) and the
//! admin API (`admin`). Every call is HTTP Basic Auth and JSON; every answer carries
//! `X-Zato-CID`, and errors are Zato's `zato_env` envelope with an HTTP status.
//!
//! | call | route |
//! |---|---|
//! | publish | `POST /zato/pubsub/topic/{topic}` `{"data", ...}` -> `{"msg_id"}` |
//! | get messages | `POST /zato/pubsub/topic/{topic}?sub_key=` (or `sub_key` in the body; `PATCH` too) -> `[...]` |
//! | subscribe | `POST /zato/pubsub/subscribe/topic/{topic}` -> `{"sub_key", "queue_depth"}` |
//! | unsubscribe | `DELETE /zato/pubsub/subscribe/topic/{topic}?sub_key=` -> `{}` |
//! | admin | `/zato/pubsub/admin/...`, see `admin` |

pub mod admin;
pub mod pubapi;

use super::{error::ZatoError, ids, Zato};
use crate::{
    engine::shard::Shard,
    rest::{read_body, Reply},
};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, header, Method, Request, Response, StatusCode};
use std::rc::Rc;

/// What a handler has from the request: method, decoded path segments after the prefix, the
/// query, the Authorization and Content-Type headers, and the body.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Call {
    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// Serves one request under `/zato/pubsub/`.
pub async fn call(zato: &Rc<Zato>, shard: &Rc<Shard>, request: Request<Incoming>) -> Reply {
    let cid = ids::cid();
    let outcome = match read(zato, shard, request).await {
        Ok(call) => route(zato, shard, call).await,
        Err(e) => Err(e),
    };
    let (status, body) = match outcome {
        Ok((status, value)) => (status, value.to_string()),
        Err(e) => (e.status, e.envelope(&cid)),
    };
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = reply.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    if let Ok(value) = header::HeaderValue::from_str(&cid) {
        headers.insert("x-zato-cid", value);
    }
    reply
}

async fn read(zato: &Zato, shard: &Shard, request: Request<Incoming>) -> Result<Call, ZatoError> {
    let (parts, body) = request.into_parts();
    let header = |name: header::HeaderName| {
        parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    };
    let authorization = header(header::AUTHORIZATION);
    let content_type = header(header::CONTENT_TYPE);
    let limit = zato.zc().max_publish_bytes;
    let body = read_body(shard, body, limit)
        .await
        .map_err(|e| ZatoError::new(e.status.as_u16(), e.message))?
        .into();
    let raw = parts.uri.path();
    let path = percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned();
    Ok(Call {
        method: parts.method,
        path,
        query: parts.uri.query().unwrap_or("").to_string(),
        authorization,
        content_type,
        body,
    })
}

type Outcome = Result<(u16, serde_json::Value), ZatoError>;

async fn route(zato: &Rc<Zato>, shard: &Rc<Shard>, call: Call) -> Outcome {
    let path = call.path.clone();
    if let Some(rest) = path.strip_prefix("/zato/pubsub/admin/") {
        return admin::call(zato, shard, call, rest).await;
    }
    if let Some(topic) = path.strip_prefix("/zato/pubsub/subscribe/topic/") {
        return match call.method {
            Method::POST => pubapi::subscribe(zato, shard, &call, topic).await,
            Method::DELETE => pubapi::unsubscribe(zato, shard, &call, topic).await,
            _ => Err(not_allowed()),
        };
    }
    if let Some(topic) = path.strip_prefix("/zato/pubsub/topic/") {
        return match call.method {
            Method::POST => pubapi::publish_or_fetch(zato, shard, &call, topic).await,
            Method::PATCH => pubapi::fetch(zato, shard, &call, topic).await,
            _ => Err(not_allowed()),
        };
    }
    Err(ZatoError::not_found(format!("Not found: {path}")))
}

fn not_allowed() -> ZatoError {
    ZatoError::new(405, "Method not allowed")
}
