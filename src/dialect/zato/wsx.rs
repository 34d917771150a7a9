//! The WSX client protocol on a connection's own shard. A client first sends
//! `{"meta": {"action": "create-session", "id", "username", "secret", "client_id"?}}` and gets
//! `zwsx.rspa` with a token; every later message carries `meta.token` and is an
//! `invoke-service` of `{"service": ..., "request": {...}}`, answered by `zwsx.rspok` or
//! `zwsx.rsperr` with `in_reply_to`. The services are Zato's pub/sub API:
//! `zato.pubsub.pubapi.publish-message`, `.subscribe` (also
//! `zato.pubsub.subscription.create-wsx-subscription`), `.get-messages`, `.unsubscribe`, and
//! `zato.pubsub.resume-wsx-subscription` to take over a kept subscription by its sub_key.
//! Unlike Zato's WSX services, every call is checked against the endpoint's `pub=`/`sub=`
//! patterns. Client replies to `zwsx.psrq` (`client-response`) are ignored: deliveries are
//! fire-and-forget. Bad credentials or a wrong token get `zwsx.merr` and a close.

use super::{
    close,
    error::ZatoError,
    fields,
    messages::{Question, SubscribeReq, Target},
    sub::SubOptions,
    wsx_out, Zato,
};
use crate::{
    engine::{addr::ConnAddr, conn::queue::Frame, conn::Close, conn::ConnKey, shard::Shard},
    ws::frame::{self, Message},
};
use serde_json::{json, Map, Value};
use std::rc::Rc;

/// Service calls one connection may have waiting at once; more are refused (429).
const MAX_PENDING: u16 = 16;

/// A WSX connection's session.
#[derive(Debug, Default)]
pub struct Session {
    /// The endpoint it logged in as (None: no session yet).
    pub endpoint: Option<usize>,
    pub token: Option<String>,
    /// The client's own id (`meta.client_id`), put in its sub_keys.
    pub client_id: Option<String>,
    /// Its subscriptions: (sub_key, topic), told when the connection closes.
    pub subs: Vec<(String, String)>,
    /// Service calls waiting for their answers.
    pub pending: u16,
}

/// One client message.
pub fn on_message(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    key: ConnKey,
    message: Message<'_>,
) -> Result<(), Close> {
    let text = match message {
        Message::Text(text) => text,
        Message::Binary(_) => return Err(close::UNSUPPORTED),
        Message::Ping(payload) => {
            shard.send(key, Frame::new(frame::pong(payload)));
            return Ok(());
        }
        Message::Pong => return Ok(()),
        Message::Close(_) => return Err(Close::NORMAL),
    };
    let authenticated = zato.sessions.borrow().get(&key).is_some_and(|s| s.endpoint.is_some());
    let Ok(text) = std::str::from_utf8(text) else {
        if !authenticated {
            return Err(close::INVALID_UTF8);
        }
        shard.send(key, Frame::new(wsx_out::error(None, 422, "Invalid UTF-8 bytes")));
        return Ok(());
    };
    let parsed: Option<Map<String, Value>> = match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    let Some(parsed) = parsed else {
        if !authenticated {
            return forbid(shard, key);
        }
        shard.send(key, Frame::new(wsx_out::error(None, 400, "Invalid JSON on input")));
        return Ok(());
    };
    let meta = parsed.get("meta").and_then(Value::as_object).cloned().unwrap_or_default();
    let id = meta.get("id").and_then(Value::as_str).map(str::to_string);
    let action = meta.get("action").and_then(Value::as_str).unwrap_or("client-response");
    if action == "create-session" {
        return create_session(zato, shard, key, &meta, id.as_deref());
    }
    let token = meta.get("token").and_then(Value::as_str);
    let valid = {
        let sessions = zato.sessions.borrow();
        let session = sessions.get(&key);
        session.is_some_and(|s| s.endpoint.is_some() && s.token.as_deref() == token)
    };
    if !valid {
        return forbid(shard, key);
    }
    match action {
        "invoke-service" => invoke(zato, shard, key, id, &parsed),
        _ => Ok(()),
    }
}

/// Sends `zwsx.merr` and closes.
fn forbid(shard: &Shard, key: ConnKey) -> Result<(), Close> {
    shard.send(key, Frame::new(wsx_out::forbidden()));
    Err(close::FORBIDDEN)
}

fn create_session(
    zato: &Zato,
    shard: &Shard,
    key: ConnKey,
    meta: &Map<String, Value>,
    id: Option<&str>,
) -> Result<(), Close> {
    let field = |name: &str| meta.get(name).and_then(Value::as_str).unwrap_or("");
    let Some(endpoint) = zato.endpoints.login(field("username"), field("secret")) else {
        return forbid(shard, key);
    };
    let token = super::ids::token();
    if let Some(session) = zato.sessions.borrow_mut().get_mut(&key) {
        session.endpoint = Some(endpoint);
        session.token = Some(token.clone());
        session.client_id = Some(field("client_id").to_string()).filter(|c| !c.is_empty());
    }
    shard.send(key, Frame::new(wsx_out::session(id, &token)));
    Ok(())
}

/// Runs a service call in a task of its own; its answer is queued when it comes.
fn invoke(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    key: ConnKey,
    id: Option<String>,
    parsed: &Map<String, Value>,
) -> Result<(), Close> {
    let data = parsed.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
    let service = data.get("service").and_then(Value::as_str).unwrap_or("").to_string();
    let request = data.get("request").and_then(Value::as_object).cloned().unwrap_or_default();
    let admitted = {
        let mut sessions = zato.sessions.borrow_mut();
        match sessions.get_mut(&key) {
            Some(session) if session.pending < MAX_PENDING => {
                session.pending += 1;
                true
            }
            _ => false,
        }
    };
    if !admitted {
        let refused = wsx_out::error(id.as_deref(), 429, "Too many requests in flight");
        shard.send(key, Frame::new(refused));
        return Ok(());
    }
    let (zato, shard) = (zato.clone(), shard.clone());
    glommio::spawn_local(async move {
        let answer = call(&zato, &shard, key, &service, &request).await;
        if let Some(session) = zato.sessions.borrow_mut().get_mut(&key) {
            session.pending = session.pending.saturating_sub(1);
        }
        let frame = match answer {
            Ok(data) => wsx_out::ok(id.as_deref(), data),
            Err(e) => wsx_out::error(id.as_deref(), e.status, &e.details),
        };
        shard.send(key, Frame::new(frame));
    })
    .detach();
    Ok(())
}

/// The endpoint of a connection with a session: (index, name, client id).
fn caller(zato: &Zato, key: ConnKey) -> Result<(usize, String, Option<String>), ZatoError> {
    let sessions = zato.sessions.borrow();
    let session = sessions.get(&key).ok_or_else(ZatoError::forbidden)?;
    let index = session.endpoint.ok_or_else(ZatoError::forbidden)?;
    let name =
        zato.endpoints.get(index).map(|e| e.name.clone()).ok_or_else(ZatoError::forbidden)?;
    Ok((index, name, session.client_id.clone()))
}

async fn call(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    key: ConnKey,
    service: &str,
    request: &Map<String, Value>,
) -> Result<Value, ZatoError> {
    let (index, endpoint, client_id) = caller(zato, key)?;
    let topic = fields::text(request, "topic_name")?;
    match service {
        "zato.pubsub.pubapi.publish-message" | "zato.pubsub.publish.publish" => {
            let topic = topic.ok_or_else(|| ZatoError::bad_request("Missing topic_name"))?;
            let pattern = permitted(zato, index, &topic, true)?;
            let publication = fields::publication(request, &topic, &endpoint, &pattern, None)?;
            let home = zato.home(shard, &topic);
            let answer = zato.ask(shard, home, Question::Publish(publication)).await;
            let msg_id = answered(answer)?;
            Ok(json!({ "msg_id": msg_id }))
        }
        "zato.pubsub.pubapi.subscribe"
        | "zato.pubsub.pubapi.subscribe-wsx"
        | "zato.pubsub.subscription.create-wsx-subscription" => {
            subscribe(zato, shard, key, (index, &endpoint, client_id), topic, request).await
        }
        "zato.pubsub.pubapi.get-messages" => {
            let topic = topic.ok_or_else(|| ZatoError::bad_request("Missing topic_name"))?;
            let sub_key = fields::text(request, "sub_key")?.ok_or_else(ZatoError::forbidden)?;
            let question = Question::Fetch { topic: topic.clone(), sub_key, endpoint };
            answered(zato.ask(shard, zato.home(shard, &topic), question).await)
        }
        "zato.pubsub.pubapi.unsubscribe" => {
            let topic = topic.ok_or_else(|| ZatoError::bad_request("Missing topic_name"))?;
            let sub_key = fields::text(request, "sub_key")?.ok_or_else(ZatoError::forbidden)?;
            let question = Question::Unsubscribe {
                topic: topic.clone(),
                sub_key: sub_key.clone(),
                endpoint: Some(endpoint),
            };
            answered(zato.ask(shard, zato.home(shard, &topic), question).await)?;
            if let Some(session) = zato.sessions.borrow_mut().get_mut(&key) {
                session.subs.retain(|(k, _)| *k != sub_key);
            }
            Ok(Value::Null)
        }
        "zato.pubsub.resume-wsx-subscription" | "zato.pubsub.pubapi.resume-wsx-subscription" => {
            let sub_key = fields::text(request, "sub_key")?.ok_or_else(ZatoError::forbidden)?;
            let addr = ConnAddr::new(shard.id(), key);
            let question = Question::Resume { sub_key: sub_key.clone(), endpoint, addr };
            let answer = answered(zato.ask_holder(shard, question).await)?;
            let topic = answer["topic_name"].as_str().unwrap_or_default().to_string();
            remember(zato, shard, key, &sub_key, &topic);
            Ok(answer)
        }
        _ => Err(ZatoError::not_found(format!("Service `{service}` not found"))),
    }
}

/// Subscribes this connection to one topic (`topic_name`) or several (`topic_name_list`).
async fn subscribe(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    key: ConnKey,
    (index, endpoint, client_id): (usize, &str, Option<String>),
    topic: Option<String>,
    request: &Map<String, Value>,
) -> Result<Value, ZatoError> {
    let list: Vec<String> = match request.get("topic_name_list") {
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).map(Into::into).collect()
        }
        _ => Vec::new(),
    };
    let topics = match (topic, list.is_empty()) {
        (Some(_), false) => {
            return Err(ZatoError::bad_request(
                "Cannot provide both topic_name and topic_name_list on input",
            ))
        }
        (Some(topic), true) => vec![topic],
        (None, false) => list.clone(),
        (None, true) => {
            return Err(ZatoError::bad_request(
                "Either or topic_name or topic_name_list is required",
            ))
        }
    };
    let base = SubOptions { notify_url: None, ..SubOptions::default() };
    let mut options = fields::options(&wsx_base(base), request)?;
    options.delivery_method = super::sub::DeliveryMethod::WebSocket;
    let addr = ConnAddr::new(shard.id(), key);
    let mut out = Vec::new();
    for topic in &topics {
        permitted(zato, index, topic, false)?;
        let question = Question::Subscribe(SubscribeReq {
            topic: topic.clone(),
            endpoint: endpoint.to_string(),
            target: Target::Wsx { addr, ext_client_id: client_id.clone() },
            options: options.clone(),
        });
        let answer = answered(zato.ask(shard, zato.home(shard, topic), question).await)?;
        let sub_key = answer["sub_key"].as_str().unwrap_or_default().to_string();
        remember(zato, shard, key, &sub_key, topic);
        out.push((topic.clone(), answer));
    }
    if list.is_empty() {
        return Ok(out.pop().map(|(_, a)| a).unwrap_or(Value::Null));
    }
    let sub_data: Vec<Value> = out
        .into_iter()
        .map(|(topic, a)| {
            json!({"topic_name": topic, "sub_key": a["sub_key"], "current_depth": a["queue_depth"]})
        })
        .collect();
    Ok(json!({ "sub_data": sub_data }))
}

/// WSX subscriptions deliver over the socket, so they need no URL.
fn wsx_base(base: SubOptions) -> SubOptions {
    SubOptions { delivery_method: super::sub::DeliveryMethod::WebSocket, ..base }
}

/// Records a subscription of this connection, to tell its home when the connection closes
/// (at once, if it closed while the subscription was being made).
fn remember(zato: &Zato, shard: &Rc<Shard>, key: ConnKey, sub_key: &str, topic: &str) {
    let mut sessions = zato.sessions.borrow_mut();
    match sessions.get_mut(&key) {
        Some(session) if shard.is_open(key) => {
            if !session.subs.iter().any(|(k, _)| k == sub_key) {
                session.subs.push((sub_key.to_string(), topic.to_string()));
            }
        }
        _ => {
            drop(sessions);
            let (sub_key, addr) = (sub_key.to_string(), ConnAddr::new(shard.id(), key));
            let home = zato.home(shard, topic);
            zato.tell(shard, home, super::messages::Tell::WsxGone { sub_key, addr });
        }
    }
}

/// The pattern letting endpoint `index` publish (`publish`) or subscribe to `topic`.
pub fn permitted(
    zato: &Zato,
    index: usize,
    topic: &str,
    publish: bool,
) -> Result<String, ZatoError> {
    let endpoint = zato.endpoints.get(index).ok_or_else(ZatoError::forbidden)?;
    let patterns = if publish { &endpoint.pub_patterns } else { &endpoint.sub_patterns };
    super::access::matched(patterns, topic).map(str::to_string).ok_or_else(ZatoError::forbidden)
}

/// The value of an answer; an unanswered question is a 503.
pub fn answered(answer: super::messages::Answer) -> Result<Value, ZatoError> {
    answer.unwrap_or_else(|| Err(ZatoError::unavailable("The topic's shard did not answer")))
}

/// The connection closed: its subscriptions' homes hear of it.
pub fn on_close(zato: &Zato, shard: &Rc<Shard>, key: ConnKey) {
    let Some(session) = zato.sessions.borrow_mut().remove(&key) else { return };
    let addr = ConnAddr::new(shard.id(), key);
    for (sub_key, topic) in session.subs {
        let home = zato.home(shard, &topic);
        zato.tell(shard, home, super::messages::Tell::WsxGone { sub_key, addr });
    }
}
