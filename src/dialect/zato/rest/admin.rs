//! The admin API (Zato's web-admin pages as REST), Basic Auth with `[zato] admin_username` and
//! `admin_password` (refused while the password is empty). Topics are addressed by `name`,
//! subscriptions and their queues by `sub_key`, in the query string:
//!
//! | route | does |
//! |---|---|
//! | `GET /zato/pubsub/admin/topics` | every topic, its settings and depth |
//! | `POST /zato/pubsub/admin/topics` | create a topic (a `[[zato.topics]]` entry as JSON) |
//! | `PATCH`, `DELETE /zato/pubsub/admin/topics?name=` | change or delete a topic |
//! | `DELETE /zato/pubsub/admin/topics/messages?name=` | clear what waits for a first subscriber |
//! | `GET /zato/pubsub/admin/subscriptions[?topic=][?sub_key=]` | subscriptions and their options |
//! | `POST /zato/pubsub/admin/subscriptions` | `{"topic_name", "endpoint", options...}`; notify by default |
//! | `PATCH`, `DELETE /zato/pubsub/admin/subscriptions?sub_key=` | change options, delete |
//! | `GET /zato/pubsub/admin/queue?sub_key=[&has_gd=][&query=][&page=][&page_size=]` | browse |
//! | `DELETE /zato/pubsub/admin/queue?sub_key=` | clear a queue |
//! | `GET`, `PATCH`, `DELETE /zato/pubsub/admin/message?sub_key=&msg_id=` | one message |

use super::{Call, Outcome};
use crate::{
    config::zato::TopicConfig,
    crypto,
    dialect::zato::{
        access,
        error::ZatoError,
        fields,
        messages::{AdminOp, Browse, Question, SubscribeReq, Target},
        sub::SubOptions,
        wsx::answered,
        Zato,
    },
    engine::shard::Shard,
};
use hyper::Method;
use serde_json::Value;
use std::rc::Rc;

/// Most messages one browse page shows.
const MAX_PAGE: usize = 1000;

fn check_admin(zato: &Zato, call: &Call) -> Result<(), ZatoError> {
    let zc = zato.zc();
    let given = call.authorization.as_deref().and_then(access::basic_credentials);
    let allowed = !zc.admin_password.is_empty()
        && given.is_some_and(|(user, password)| {
            crypto::same(&user, &zc.admin_username) & crypto::same(&password, &zc.admin_password)
        });
    if allowed {
        Ok(())
    } else {
        Err(ZatoError::forbidden())
    }
}

fn required(call: &Call, name: &str) -> Result<String, ZatoError> {
    call.param(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ZatoError::bad_request(format!("Missing query parameter {name}")))
}

/// Serves `/zato/pubsub/admin/{rest}`.
pub async fn call(zato: &Rc<Zato>, shard: &Rc<Shard>, call: Call, rest: &str) -> Outcome {
    check_admin(zato, &call)?;
    let method = call.method.clone();
    match (method, rest) {
        (Method::GET, "topics") => list_topics(zato, shard, call.param("name")).await,
        (Method::POST, "topics") => create_topic(zato, shard, &call).await,
        (Method::PATCH, "topics") => {
            let name = required(&call, "name")?;
            let changes = Value::Object(fields::object(&call.body)?);
            on_home(zato, shard, &name.clone(), AdminOp::UpdateTopic { name, changes }).await
        }
        (Method::DELETE, "topics") => {
            let name = required(&call, "name")?;
            on_home(zato, shard, &name.clone(), AdminOp::DeleteTopic { name }).await
        }
        (Method::DELETE, "topics/messages") => {
            let name = required(&call, "name")?;
            on_home(zato, shard, &name.clone(), AdminOp::ClearTopic { name }).await
        }
        (Method::GET, "subscriptions") => match call.param("sub_key") {
            Some(sub_key) => on_holder(zato, shard, AdminOp::GetSub { sub_key }).await,
            None => list_subs(zato, shard, call.param("topic")).await,
        },
        (Method::POST, "subscriptions") => create_sub(zato, shard, &call).await,
        (Method::PATCH, "subscriptions") => {
            let sub_key = required(&call, "sub_key")?;
            let changes = Value::Object(fields::object(&call.body)?);
            on_holder(zato, shard, AdminOp::UpdateSub { sub_key, changes }).await
        }
        (Method::DELETE, "subscriptions") => {
            let sub_key = required(&call, "sub_key")?;
            on_holder(zato, shard, AdminOp::DeleteSub { sub_key }).await
        }
        (Method::GET, "queue") => on_holder(zato, shard, AdminOp::Browse(browse(&call)?)).await,
        (Method::DELETE, "queue") => {
            let sub_key = required(&call, "sub_key")?;
            on_holder(zato, shard, AdminOp::ClearQueue { sub_key }).await
        }
        (Method::GET, "message") => {
            let (sub_key, msg_id) = (required(&call, "sub_key")?, required(&call, "msg_id")?);
            on_holder(zato, shard, AdminOp::GetMsg { sub_key, msg_id }).await
        }
        (Method::PATCH, "message") => {
            let (sub_key, msg_id) = (required(&call, "sub_key")?, required(&call, "msg_id")?);
            let changes = Value::Object(fields::object(&call.body)?);
            on_holder(zato, shard, AdminOp::UpdateMsg { sub_key, msg_id, changes }).await
        }
        (Method::DELETE, "message") => {
            let (sub_key, msg_id) = (required(&call, "sub_key")?, required(&call, "msg_id")?);
            on_holder(zato, shard, AdminOp::DeleteMsg { sub_key, msg_id }).await
        }
        _ => Err(ZatoError::not_found(format!("Not found: /zato/pubsub/admin/{rest}"))),
    }
}

fn browse(call: &Call) -> Result<Browse, ZatoError> {
    let number = |name: &str, default: usize| -> Result<usize, ZatoError> {
        match call.param(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| ZatoError::bad_request(format!("Invalid {name}"))),
        }
    };
    let has_gd = match call.param("has_gd").as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(ZatoError::bad_request("Invalid has_gd: true or false")),
    };
    Ok(Browse {
        sub_key: required(call, "sub_key")?,
        has_gd,
        query: call.param("query").filter(|q| !q.is_empty()),
        page: number("page", 1)?.max(1),
        page_size: number("page_size", 50)?.clamp(1, MAX_PAGE),
    })
}

/// Runs an operation on a topic's home.
async fn on_home(zato: &Rc<Zato>, shard: &Rc<Shard>, topic: &str, op: AdminOp) -> Outcome {
    let answer = zato.ask(shard, zato.home(shard, topic), Question::Admin(op)).await;
    Ok((200, answered(answer)?))
}

/// Runs an operation on the shard holding a subscription.
async fn on_holder(zato: &Rc<Zato>, shard: &Rc<Shard>, op: AdminOp) -> Outcome {
    let sub_key = match &op {
        AdminOp::GetSub { sub_key }
        | AdminOp::UpdateSub { sub_key, .. }
        | AdminOp::DeleteSub { sub_key }
        | AdminOp::ClearQueue { sub_key }
        | AdminOp::GetMsg { sub_key, .. }
        | AdminOp::UpdateMsg { sub_key, .. }
        | AdminOp::DeleteMsg { sub_key, .. } => sub_key.clone(),
        AdminOp::Browse(browse) => browse.sub_key.clone(),
        _ => String::new(),
    };
    match zato.ask_holder(shard, Question::Admin(op)).await {
        Some(answer) => Ok((200, answer?)),
        None => Err(ZatoError::not_found(format!("No such subscription `{sub_key}`"))),
    }
}

/// Every shard's topics (or the one named), sorted by name.
async fn list_topics(zato: &Rc<Zato>, shard: &Rc<Shard>, name: Option<String>) -> Outcome {
    let answers = zato.ask_all(shard, Question::Admin(AdminOp::ListTopics)).await;
    let mut topics: Vec<Value> = answers
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .filter(|t| name.as_deref().is_none_or(|n| t["name"] == n))
        .collect();
    topics.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    if name.is_some() {
        return topics.pop().map(|t| (200, t)).ok_or_else(|| {
            ZatoError::not_found(format!("No such topic `{}`", name.unwrap_or_default()))
        });
    }
    Ok((200, Value::Array(topics)))
}

async fn create_topic(zato: &Rc<Zato>, shard: &Rc<Shard>, call: &Call) -> Outcome {
    let config: TopicConfig = serde_json::from_slice(&call.body)
        .map_err(|e| ZatoError::bad_request(format!("Invalid topic: {e}")))?;
    config.check("topic").map_err(|e| ZatoError::bad_request(e.to_string()))?;
    let name = config.name.clone();
    let (_, topic) = on_home(zato, shard, &name, AdminOp::CreateTopic(config)).await?;
    Ok((201, topic))
}

async fn list_subs(zato: &Rc<Zato>, shard: &Rc<Shard>, topic: Option<String>) -> Outcome {
    let answers = zato.ask_all(shard, Question::Admin(AdminOp::ListSubs { topic })).await;
    let subs: Vec<Value> = answers
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .collect();
    Ok((200, Value::Array(subs)))
}

/// A subscription made by the admin for a REST endpoint: notify by default (Zato's), to the
/// body's `notify_url` or the endpoint's.
async fn create_sub(zato: &Rc<Zato>, shard: &Rc<Shard>, call: &Call) -> Outcome {
    let body = fields::object(&call.body)?;
    let topic = fields::text(&body, "topic_name")?
        .ok_or_else(|| ZatoError::bad_request("Missing topic_name"))?;
    let name = fields::text(&body, "endpoint")?
        .ok_or_else(|| ZatoError::bad_request("Missing endpoint"))?;
    let index = zato
        .endpoints
        .by_name(&name)
        .ok_or_else(|| ZatoError::bad_request(format!("No such endpoint `{name}`")))?;
    let notify_url = zato.endpoints.get(index).and_then(|e| e.notify_url.clone());
    let options = fields::options(&SubOptions { notify_url, ..SubOptions::default() }, &body)?;
    if options.delivery_method == crate::dialect::zato::sub::DeliveryMethod::WebSocket {
        return Err(ZatoError::bad_request("web-socket subscriptions are made over WSX"));
    }
    let request =
        SubscribeReq { topic: topic.clone(), endpoint: name, target: Target::Rest, options };
    let home = zato.home(shard, &topic);
    Ok((201, answered(zato.ask(shard, home, Question::Subscribe(request)).await)?))
}
