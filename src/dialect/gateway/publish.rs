//! The publish API: `POST /gateway/publish` `{topic, msgId, body}` and the original's gRPC
//! `pushserverpb.Push/Msg` (metadata `topic`, `msgid`; message field 1 `body`), both behind the
//! publish key. A push is encoded once, `resultData` being the body as a string, and goes to
//! every shard, except a push to `sig_<sid>`, which goes to that connection's shard only.

use super::{outbound, Gateway};
use crate::{
    crypto,
    engine::{
        bus::{PubItem, Publication},
        fanout,
        shard::Shard,
    },
    hook::event::now_ms,
    rest::{json, read_body, ApiError, Reply},
    upstream::grpc::{
        pushserverpb::Publish,
        server::{GrpcResponse, H2Reply, H2Request},
        wire::Code,
    },
    ws::frame,
};
use bytes::Bytes;
use hyper::{body::Incoming, header, Request, StatusCode};
use serde_json::Value;
use std::rc::Rc;

/// Whether an `Authorization` value (`Bearer <key>`) carries the publish key.
pub fn authorized(gw: &Gateway, value: Option<&str>) -> bool {
    let Some(value) = value else { return false };
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return false,
    };
    crypto::same(token, &gw.config.gateway.publish_key)
}

/// Pushes `data` to `topic`'s subscribers.
pub async fn publish(gw: &Gateway, shard: &Rc<Shard>, topic: &str, msg_id: &str, data: &str) {
    let ts = (!gw.config.gateway.apisix_ts_disabled).then(now_ms);
    let json = outbound::push(topic, msg_id, data, ts);
    let item = PubItem {
        topic: topic.into(),
        frame: Bytes::from(frame::text(&json)),
        exclude: None,
        exclude_elsewhere: None,
        report: false,
    };
    let publication = Publication { ns: gw.ns, items: vec![item] };
    gw.metrics.borrow_mut().published(topic);
    shard.state.borrow_mut().stats.events_published += 1;
    match gw.shared.sids.addr_of_topic(topic) {
        Some(addr) if usize::from(addr.shard) < shard.nr_shards() => {
            fanout::publish_on(shard, usize::from(addr.shard), publication).await;
        }
        _ => {
            fanout::publish(shard, publication).await;
        }
    }
}

/// A topic a publish may name.
fn check_topic(gw: &Gateway, topic: &str) -> Result<(), String> {
    let max = gw.config.gateway.max_topic_len;
    if topic.is_empty() {
        return Err("topic is required".into());
    }
    if topic.len() > max {
        return Err(format!("topic longer than {max} bytes"));
    }
    Ok(())
}

/// `POST /gateway/publish`.
pub async fn http(gw: &Gateway, shard: &Rc<Shard>, request: Request<Incoming>) -> Reply {
    match http_publish(gw, shard, request).await {
        Ok(reply) => reply,
        Err(e) => e.reply(),
    }
}

async fn http_publish(
    gw: &Gateway,
    shard: &Rc<Shard>,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let auth = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !authorized(gw, auth) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Authorization: Bearer <publish key> is required",
        ));
    }
    let body = read_body(shard, request.into_body(), gw.config.gateway.max_publish_bytes).await?;
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return Err(ApiError::bad_request("Body must be a JSON object {topic, msgId, body}"));
    };
    let topic = body.get("topic").and_then(Value::as_str).unwrap_or_default();
    check_topic(gw, topic).map_err(ApiError::bad_request)?;
    let msg_id = match body.get("msgId") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        None | Some(Value::Null) => String::new(),
        Some(_) => return Err(ApiError::bad_request("msgId must be a string")),
    };
    let data = match body.get("body") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    };
    publish(gw, shard, topic, &msg_id, &data).await;
    let answer = serde_json::json!({ "topic": topic, "msgId": msg_id });
    Ok(json(StatusCode::OK, answer.to_string()))
}

/// `pushserverpb.Push/Msg` over h2c.
pub async fn grpc(gw: &Gateway, shard: &Rc<Shard>, request: H2Request) -> H2Reply {
    if !authorized(gw, request.header("authorization")) {
        let why = "metadata \"authorization: Bearer <publish key>\" is required";
        return H2Reply::Grpc(GrpcResponse::error(Code::UNAUTHENTICATED, why));
    }
    let call = match Publish::from_request(&request) {
        Ok(call) => call,
        Err(refused) => return H2Reply::Grpc(refused),
    };
    if let Err(why) = check_topic(gw, &call.topic) {
        return H2Reply::Grpc(GrpcResponse::error(Code::INVALID_ARGUMENT, why));
    }
    let data = String::from_utf8_lossy(&call.body);
    publish(gw, shard, &call.topic, &call.msg_id, &data).await;
    H2Reply::Grpc(call.reply())
}
