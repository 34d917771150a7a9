//! Zato's pub/sub REST API for endpoints: publish, get messages, subscribe, unsubscribe. The
//! caller's endpoint comes from its Basic Auth credentials; its `pub=`/`sub=` patterns decide
//! what it may do; the rest happens on the topic's home shard.

use super::{Call, Outcome};
use crate::{
    dialect::zato::{
        cluster::{self, NodeAsk},
        error::ZatoError,
        fields,
        messages::{Question, SubscribeReq, Target},
        sub::{DeliveryMethod, SubOptions},
        wsx::{answered, permitted},
        Zato,
    },
    engine::shard::Shard,
};
use serde_json::{Map, Value};
use std::rc::Rc;

/// The caller's endpoint (index and name), from its credentials.
fn endpoint(zato: &Zato, call: &Call) -> Result<(usize, String), ZatoError> {
    let index =
        zato.endpoints.basic(call.authorization.as_deref()).ok_or_else(ZatoError::forbidden)?;
    let name =
        zato.endpoints.get(index).map(|e| e.name.clone()).ok_or_else(ZatoError::forbidden)?;
    Ok((index, name))
}

/// The sub_key of the query string, or of the body.
fn sub_key(call: &Call, body: &Map<String, Value>) -> Result<Option<String>, ZatoError> {
    match call.param("sub_key").filter(|k| !k.is_empty()) {
        Some(key) => Ok(Some(key)),
        None => fields::text(body, "sub_key"),
    }
}

/// `POST /zato/pubsub/topic/{topic}`: get-messages when a sub_key is given, else publish.
pub async fn publish_or_fetch(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    call: &Call,
    topic: &str,
) -> Outcome {
    let (index, name) = endpoint(zato, call)?;
    let body = fields::object(&call.body)?;
    if let Some(key) = sub_key(call, &body)? {
        return fetch_with(zato, shard, topic, key, name).await;
    }
    let pattern = permitted(zato, index, topic, true)?;
    let content_type =
        call.content_type.as_deref().map(|c| c.split(';').next().unwrap_or(c).trim());
    let publication = fields::publication(&body, topic, &name, &pattern, content_type)?;
    let home = zato.home(shard, topic);
    let msg_id = answered(zato.ask(shard, home, Question::Publish(publication)).await)?;
    Ok((200, serde_json::json!({ "msg_id": msg_id })))
}

/// `PATCH /zato/pubsub/topic/{topic}?sub_key=`: get-messages.
pub async fn fetch(zato: &Rc<Zato>, shard: &Rc<Shard>, call: &Call, topic: &str) -> Outcome {
    let (_, name) = endpoint(zato, call)?;
    let body = fields::object(&call.body)?;
    let key = sub_key(call, &body)?.ok_or_else(ZatoError::forbidden)?;
    fetch_with(zato, shard, topic, key, name).await
}

async fn fetch_with(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    topic: &str,
    sub_key: String,
    endpoint: String,
) -> Outcome {
    let ask = NodeAsk::Fetch {
        topic: topic.to_string(),
        sub_key: sub_key.clone(),
        endpoint: endpoint.clone(),
    };
    let question = Question::Fetch { topic: topic.to_string(), sub_key, endpoint };
    let messages = answered(zato.ask(shard, zato.home(shard, topic), question).await);
    Ok((200, or_elsewhere(zato, shard, messages, ask).await?))
}

/// A sub_key this node does not hold (403) may be another node's: it answers instead.
async fn or_elsewhere(
    zato: &Zato,
    shard: &Shard,
    here: Result<Value, ZatoError>,
    ask: NodeAsk,
) -> Result<Value, ZatoError> {
    match here {
        Err(e) if e.status == 403 && shard.cluster.is_some() => {
            cluster::elsewhere(zato, shard, &ask).await.ok_or(e)
        }
        other => other,
    }
}

/// `POST /zato/pubsub/subscribe/topic/{topic}`. Zato's REST subscriptions are pull ones; a
/// body may ask for `"delivery_method": "notify"` (delivered to the endpoint's `notify_url`)
/// and set the other options of a subscription.
pub async fn subscribe(zato: &Rc<Zato>, shard: &Rc<Shard>, call: &Call, topic: &str) -> Outcome {
    let (index, name) = endpoint(zato, call)?;
    permitted(zato, index, topic, false)?;
    let body = fields::object(&call.body)?;
    if body.contains_key("notify_url") {
        return Err(ZatoError::bad_request("notify_url is set by the admin API only"));
    }
    let notify_url = zato.endpoints.get(index).and_then(|e| e.notify_url.clone());
    let base =
        SubOptions { delivery_method: DeliveryMethod::Pull, notify_url, ..SubOptions::default() };
    let options = fields::options(&base, &body)?;
    if options.delivery_method == DeliveryMethod::WebSocket {
        return Err(ZatoError::bad_request("web-socket subscriptions are made over WSX"));
    }
    let request =
        SubscribeReq { topic: topic.to_string(), endpoint: name, target: Target::Rest, options };
    let home = zato.home(shard, topic);
    Ok((200, answered(zato.ask(shard, home, Question::Subscribe(request)).await)?))
}

/// `DELETE /zato/pubsub/subscribe/topic/{topic}?sub_key=`.
pub async fn unsubscribe(zato: &Rc<Zato>, shard: &Rc<Shard>, call: &Call, topic: &str) -> Outcome {
    let (index, name) = endpoint(zato, call)?;
    permitted(zato, index, topic, false)?;
    let body = fields::object(&call.body)?;
    let key = sub_key(call, &body)?.ok_or_else(ZatoError::forbidden)?;
    let ask = NodeAsk::Unsubscribe {
        topic: topic.to_string(),
        sub_key: key.clone(),
        endpoint: name.clone(),
    };
    let question =
        Question::Unsubscribe { topic: topic.to_string(), sub_key: key, endpoint: Some(name) };
    let here = answered(zato.ask(shard, zato.home(shard, topic), question).await);
    or_elsewhere(zato, shard, here, ask).await?;
    Ok((200, serde_json::json!({})))
}
