//! The IM dialect's HTTP routes on the client port: the push API for backends (JSON, POST,
//! `Authorization: Bearer <[im] api_key>`) under `/im/`, and xxim's CORS answers on the
//! WebSocket path (`OPTIONS` answered with no body; a plain `GET` gets 426). The same
//! operations over gRPC are in `grpc`.
//!
//! - `POST /im/sendMsg` `{userIds, platforms, devices, event, data, onlyFailed}` ->
//!   `{successConnParams, failedConnParams}` (`{successCount, failedConnParams}` with
//!   `onlyFailed`)
//! - `POST /im/kickUserConn` `{userIds, platforms, devices}` -> `{kicked}`
//! - `POST /im/getUserConn` `{userIds, platforms, devices}` -> `{connParams}`
//! - `POST /im/sendNoticeData` `{noticeData, userId | isBroadcast}` -> `{}`
//! - `POST /im/convMembers` `{convId, add, remove}` -> `{}`
//!
//! In cluster mode an answer some node missed carries `X-Pushgate-Partial: true`.

pub mod grpc;
pub mod json;

use super::{admit::CORS, messages::Format, notice, pb::ConnParam, push, Im};
use crate::{
    engine::shard::Shard,
    rest::{self, read_body, ApiError, Reply},
};
use http::{header, Method, StatusCode};
use hyper::{body::Incoming, Request};
use json::{FilterJson, KickJson, MembersJson, SendMsgJson, SendNoticeJson};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::{cell::Cell, rc::Rc};

/// Largest API request body.
const MAX_BODY: usize = 1024 * 1024;

/// Whether these routes serve `path`.
pub fn serves(im: &Im, path: &str) -> bool {
    path.starts_with("/im/") || path == im.im().path || (im.root && path == "/")
}

/// Serves one request.
pub async fn call(im: &Rc<Im>, shard: &Rc<Shard>, request: Request<Incoming>) -> Reply {
    let path = request.uri().path().to_string();
    if !path.starts_with("/im/") {
        return cors(request.method());
    }
    if !authorized(im, request.headers()) {
        return ApiError::new(StatusCode::UNAUTHORIZED, "Bearer token ([im] api_key) needed")
            .reply();
    }
    if request.method() != Method::POST {
        return ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "POST only").reply();
    }
    let body = match read_body(shard, request.into_body(), MAX_BODY).await {
        Ok(body) => body,
        Err(e) => return e.reply(),
    };
    let partial = Cell::new(false);
    match serve(im, shard, &path, &body, &partial).await {
        Ok(answer) => {
            let mut reply = rest::json(StatusCode::OK, answer);
            if partial.get() {
                let partial = header::HeaderValue::from_static("true");
                reply.headers_mut().insert("x-pushgate-partial", partial);
            }
            reply
        }
        Err(e) => e.reply(),
    }
}

/// The answer's body; `partial` is set when, in cluster mode, some node did not answer.
async fn serve(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    path: &str,
    body: &[u8],
    partial: &Cell<bool>,
) -> Result<Vec<u8>, ApiError> {
    let done = || json!({}).to_string().into_bytes();
    match path {
        "/im/sendMsg" => {
            let mut req: SendMsgJson = parse(body)?;
            let event = json::push_event(req.event.as_ref()).map_err(ApiError::bad_request)?;
            let data = json::base64(&req.data, "data").map_err(ApiError::bad_request)?;
            let format = if req.only_failed { Format::Count } else { Format::Json };
            let listed = push::send_msg(im, shard, req.filter(), event, data.into(), format).await;
            partial.set(listed.partial);
            let failed = failed(&listed);
            if req.only_failed {
                let mut out = format!("{{\"successCount\":{},", listed.count).into_bytes();
                out.extend_from_slice(&answer(&[("failedConnParams", &failed)])[1..]);
                return Ok(out);
            }
            Ok(answer(&[("successConnParams", &listed.list), ("failedConnParams", &failed)]))
        }
        "/im/kickUserConn" => {
            let req: KickJson = parse(body)?;
            let filter = req.get_user_conn_req.unwrap_or(req.filter).into();
            let kicked = push::kick(im, shard, filter).await;
            partial.set(kicked.partial);
            Ok(json!({"kicked": kicked.count}).to_string().into_bytes())
        }
        "/im/getUserConn" => {
            let req: FilterJson = parse(body)?;
            let listed = push::get_user_conn(im, shard, req.into(), Format::Json).await;
            partial.set(listed.partial);
            Ok(answer(&[("connParams", &listed.list)]))
        }
        "/im/sendNoticeData" => {
            let req: SendNoticeJson = parse(body)?;
            let user = target(req.user_id, req.is_broadcast).map_err(ApiError::bad_request)?;
            let notice = req.notice_data.into_pb().map_err(ApiError::bad_request)?;
            notice::add::send(im, shard, notice, user).await.map_err(ApiError::bad_request)?;
            Ok(done())
        }
        "/im/convMembers" => {
            let req: MembersJson = parse(body)?;
            notice::add::set_members(im, shard, &req.conv_id, &req.add, &req.remove)
                .await
                .map_err(ApiError::bad_request)?;
            Ok(done())
        }
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, format!("Not found: {path}"))),
    }
}

/// `{"name":[items],...}` from lists already written as comma-separated JSON objects.
fn answer(lists: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"{".to_vec();
    for (i, (name, items)) in lists.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"{name}\":[").as_bytes());
        out.extend_from_slice(items);
        out.push(b']');
    }
    out.push(b'}');
    out
}

/// The failed users as `ConnParam` JSON objects (only `userId` set).
fn failed(listed: &push::Listed) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, user_id) in listed.missing.iter().enumerate() {
        let param = ConnParam { user_id: user_id.clone(), ..ConnParam::default() };
        push::list(Format::Json, &param, i, &mut out);
    }
    out
}

/// A notice's recipient: one user, or (None) the conversation's members.
pub fn target(user: Option<String>, broadcast: Option<bool>) -> Result<Option<String>, String> {
    match (user.filter(|u| !u.is_empty()), broadcast.unwrap_or(false)) {
        (Some(user), false) => Ok(Some(user)),
        (None, true) => Ok(None),
        _ => Err("give exactly one of userId and isBroadcast: true".into()),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Invalid JSON: {e}")))
}

/// The API key, from `Authorization: Bearer <key>` or `X-Api-Key`.
pub fn authorized(im: &Im, headers: &http::HeaderMap) -> bool {
    let key = &im.im().api_key;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    !key.is_empty() && given.is_some_and(|g| crate::crypto::same(g, key))
}

/// xxim's CORS middleware on the WebSocket path: OPTIONS ends there; anything else that is
/// not an upgrade is told to upgrade.
fn cors(method: &Method) -> Reply {
    let mut reply = match *method {
        Method::OPTIONS => rest::text(StatusCode::OK, ""),
        _ => rest::text(StatusCode::UPGRADE_REQUIRED, "WebSocket upgrade expected"),
    };
    for (name, value) in CORS {
        if let (Ok(name), Ok(value)) =
            (header::HeaderName::try_from(name), header::HeaderValue::try_from(value))
        {
            reply.headers_mut().insert(name, value);
        }
    }
    reply
}
