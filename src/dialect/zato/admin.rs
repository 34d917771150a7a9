//! Admin operations on the shard that holds their topic or subscription: topics made, changed
//! and deleted at run time, subscriptions listed and changed, and queue browsing (GD and
//! in-RAM messages, paginated, searched in their first 64 bytes, without consuming them), with
//! one message shown, updated in place (data, priority, expiration) or deleted. Operations on a
//! sub_key are asked of every shard; those that do not hold it answer `None`.

use super::{
    access, deliver,
    error::ZatoError,
    fields,
    home::{self, commit},
    ids, layout,
    message::Msg,
    messages::{AdminOp, Answer, Browse},
    sub::{DeliveryMethod, Entry, SubState},
    topic::TopicState,
    Zato,
};
use crate::{
    config::zato::TopicConfig,
    engine::shard::Shard,
    store::{Batch, KeyRange},
};
use serde_json::{json, Map, Value};
use std::rc::Rc;

/// Applies an admin operation here.
pub async fn apply(zato: &Rc<Zato>, shard: &Rc<Shard>, op: AdminOp) -> Answer {
    zato.wait_loaded().await;
    match op {
        AdminOp::ListTopics => Some(Ok(Value::Array(list_topics(zato)))),
        AdminOp::CreateTopic(config) => Some(create_topic(zato, config).await),
        AdminOp::UpdateTopic { name, changes } => Some(update_topic(zato, &name, &changes).await),
        AdminOp::DeleteTopic { name } => Some(delete_topic(zato, shard, &name).await),
        AdminOp::ClearTopic { name } => Some(clear_topic(zato, &name).await),
        AdminOp::ListSubs { topic } => Some(Ok(list_subs(zato, topic.as_deref()))),
        AdminOp::GetSub { sub_key } => Some(Ok(describe_sub(zato, held(zato, &sub_key)?.as_ref()))),
        AdminOp::UpdateSub { sub_key, changes } => {
            Some(update_sub(zato, shard, &held(zato, &sub_key)?, &changes).await)
        }
        AdminOp::DeleteSub { sub_key } => {
            Some(home::remove(zato, shard, &held(zato, &sub_key)?).await.map(|()| json!({})))
        }
        AdminOp::Browse(browse) => {
            Some(Ok(browse_queue(held(zato, &browse.sub_key)?.as_ref(), &browse)))
        }
        AdminOp::GetMsg { sub_key, msg_id } => {
            let sub = held(zato, &sub_key)?;
            Some(entry(&sub, &msg_id).map(|e| detail(zato, &sub, &e)))
        }
        AdminOp::UpdateMsg { sub_key, msg_id, changes } => {
            Some(update_msg(zato, &held(zato, &sub_key)?, &msg_id, &changes).await)
        }
        AdminOp::DeleteMsg { sub_key, msg_id } => {
            Some(delete_msgs(zato, &held(zato, &sub_key)?, Some(&msg_id)).await)
        }
        AdminOp::ClearQueue { sub_key } => {
            Some(delete_msgs(zato, &held(zato, &sub_key)?, None).await)
        }
    }
}

/// The subscription if this shard holds it.
fn held(zato: &Zato, sub_key: &str) -> Option<Rc<SubState>> {
    zato.subs.borrow().get(sub_key).filter(|s| !s.deleted.get()).cloned()
}

fn describe_topic(topic: &TopicState) -> Value {
    let mut value = serde_json::to_value(&topic.config).unwrap_or_default();
    let (gd, non_gd) = topic.depth();
    value["depth_gd"] = json!(gd);
    value["depth_non_gd"] = json!(non_gd);
    value["subscriptions"] = json!(topic.subs.len());
    value["backlog"] = json!(topic.backlog.len());
    value["from_config"] = json!(!topic.runtime);
    value
}

fn list_topics(zato: &Zato) -> Vec<Value> {
    zato.topics.borrow().values().map(describe_topic).collect()
}

async fn create_topic(zato: &Zato, config: TopicConfig) -> Result<Value, ZatoError> {
    if zato.topics.borrow().contains_key(&config.name) {
        return Err(ZatoError::bad_request(format!("Topic `{}` already exists", config.name)));
    }
    if zato.store.is_none() {
        return Err(ZatoError::unavailable("Topics cannot be made without the durable store"));
    }
    let mut batch = Batch::new();
    let stored = serde_json::to_vec(&config).unwrap_or_default();
    batch.put(layout::TOPICS, layout::topic(&config.name), stored);
    commit(zato, batch).await.map_err(|e| ZatoError::store("Topic creation", &e))?;
    let mut topics = zato.topics.borrow_mut();
    let topic = topics.entry(config.name.clone()).or_insert_with(|| TopicState::new(config, true));
    Ok(describe_topic(topic))
}

/// Changes a topic's settings (not its name). A topic of the config keeps the change until
/// the next start, when the config is read again.
async fn update_topic(zato: &Zato, name: &str, changes: &Value) -> Result<Value, ZatoError> {
    let (config, runtime) = {
        let topics = zato.topics.borrow();
        let topic = topics.get(name).ok_or_else(|| ZatoError::no_such_topic(name))?;
        (topic.config.clone(), topic.runtime)
    };
    let mut merged = serde_json::to_value(&config).unwrap_or_default();
    for (key, value) in changes.as_object().into_iter().flatten() {
        if key != "name" {
            merged[key] = value.clone();
        }
    }
    let updated: TopicConfig = serde_json::from_value(merged)
        .map_err(|e| ZatoError::bad_request(format!("Invalid topic: {e}")))?;
    updated.check("topic").map_err(|e| ZatoError::bad_request(e.to_string()))?;
    if runtime {
        let mut batch = Batch::new();
        batch.put(
            layout::TOPICS,
            layout::topic(name),
            serde_json::to_vec(&updated).unwrap_or_default(),
        );
        commit(zato, batch).await.map_err(|e| ZatoError::store("Topic update", &e))?;
    }
    let mut topics = zato.topics.borrow_mut();
    let topic = topics.get_mut(name).ok_or_else(|| ZatoError::no_such_topic(name))?;
    topic.config = updated;
    Ok(describe_topic(topic))
}

/// Deletes a topic made at run time, with its subscriptions and messages.
async fn delete_topic(zato: &Rc<Zato>, shard: &Rc<Shard>, name: &str) -> Result<Value, ZatoError> {
    let subs: Vec<Rc<SubState>> = {
        let topics = zato.topics.borrow();
        let topic = topics.get(name).ok_or_else(|| ZatoError::no_such_topic(name))?;
        if !topic.runtime {
            let details = format!("Topic `{name}` is defined in the config; remove it there");
            return Err(ZatoError::bad_request(details));
        }
        let subs = zato.subs.borrow();
        topic.subs.iter().filter_map(|k| subs.get(k).cloned()).collect()
    };
    for sub in &subs {
        home::remove(zato, shard, sub).await?;
    }
    let mut batch = Batch::new();
    let prefix = KeyRange::prefix(layout::topic_prefix(name));
    batch.delete(layout::TOPICS, layout::topic(name));
    batch.delete_range(layout::SUBS, prefix.clone());
    batch.delete_range(layout::MSGS, prefix.clone());
    batch.delete_range(layout::BACKLOG, prefix);
    commit(zato, batch).await.map_err(|e| ZatoError::store("Topic deletion", &e))?;
    zato.topics.borrow_mut().remove(name);
    Ok(json!({}))
}

/// Drops what waits in a topic for its first subscriber.
async fn clear_topic(zato: &Rc<Zato>, name: &str) -> Result<Value, ZatoError> {
    let taken: Vec<Rc<Msg>> = {
        let mut topics = zato.topics.borrow_mut();
        let topic = topics.get_mut(name).ok_or_else(|| ZatoError::no_such_topic(name))?;
        std::mem::take(&mut topic.backlog).into_values().collect()
    };
    let mut batch = Batch::new();
    batch.delete_range(layout::BACKLOG, KeyRange::prefix(layout::topic_prefix(name)));
    commit(zato, batch).await.map_err(|e| ZatoError::store("Clearing the topic", &e))?;
    deliver::released(zato, name, taken.iter());
    Ok(json!({ "deleted": taken.len() }))
}

fn list_subs(zato: &Zato, topic: Option<&str>) -> Value {
    let subs = zato.subs.borrow();
    let list = subs
        .values()
        .filter(|s| !s.deleted.get())
        .filter(|s| topic.is_none_or(|t| s.record.borrow().topic == t))
        .map(|s| describe_sub(zato, s))
        .collect();
    Value::Array(list)
}

/// A subscription with its options, depth and connection.
fn describe_sub(zato: &Zato, sub: &SubState) -> Value {
    let record = sub.record.borrow();
    let queue = sub.queue.borrow();
    let gd = queue.values().filter(|e| e.msg.has_gd).count();
    let mut value = serde_json::to_value(&record.options).unwrap_or_default();
    value["sub_key"] = json!(record.sub_key);
    value["topic_name"] = json!(record.topic);
    value["endpoint"] = json!(record.endpoint);
    value["endpoint_type"] = json!(record.kind);
    value["ext_client_id"] = json!(record.ext_client_id);
    value["creation_time_iso"] = json!(ids::iso(record.created));
    value["has_gd"] = json!(record.options.has_gd);
    value["current_depth_gd"] = json!(gd);
    value["current_depth_non_gd"] = json!(queue.len() - gd);
    value["is_connected"] = json!(sub.wsx.get().is_some());
    value["delivered"] = json!(sub.delivered.get());
    value["last_delivery_error"] = json!(*sub.failure.borrow());
    value["sub_pattern_matched"] = json!(sub_pattern(zato, &record.endpoint, &record.topic));
    value
}

fn sub_pattern(zato: &Zato, endpoint: &str, topic: &str) -> Option<String> {
    let endpoint = zato.endpoints.get(zato.endpoints.by_name(endpoint)?)?;
    access::matched(&endpoint.sub_patterns, topic).map(str::to_string)
}

async fn update_sub(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    sub: &Rc<SubState>,
    changes: &Value,
) -> Result<Value, ZatoError> {
    let changes: Map<String, Value> = changes.as_object().cloned().unwrap_or_default();
    let current = sub.options();
    let mut options = fields::options(&current, &changes)?;
    let was_wsx = current.delivery_method == DeliveryMethod::WebSocket;
    if was_wsx != (options.delivery_method == DeliveryMethod::WebSocket) {
        return Err(ZatoError::bad_request("delivery_method web-socket cannot be changed"));
    }
    if was_wsx {
        options.notify_url = None;
    }
    let mut record = sub.record.borrow().clone();
    record.options = options;
    let mut batch = Batch::new();
    let stored = serde_json::to_vec(&record).unwrap_or_default();
    batch.put(layout::SUBS, layout::sub(&record.topic, &record.sub_key), stored);
    commit(zato, batch).await.map_err(|e| ZatoError::store("Subscription update", &e))?;
    *sub.record.borrow_mut() = record;
    sub.signal.raise();
    deliver::start(zato, shard, sub);
    home::spawn_backlog_takeover(zato, shard, &sub.record.borrow().topic.clone());
    Ok(describe_sub(zato, sub))
}

/// One page of the queue, oldest first in delivery order.
fn browse_queue(sub: &SubState, browse: &Browse) -> Value {
    let queue = sub.queue.borrow();
    let sub_key = sub.sub_key();
    let matching: Vec<&Entry> = queue
        .values()
        .filter(|e| browse.has_gd.is_none_or(|gd| e.msg.has_gd == gd))
        .filter(|e| browse.query.as_deref().is_none_or(|q| e.msg.prefix_short().contains(q)))
        .collect();
    let total = matching.len();
    let skip = (browse.page - 1).saturating_mul(browse.page_size);
    let messages: Vec<Value> = matching
        .into_iter()
        .skip(skip)
        .take(browse.page_size)
        .map(|e| summary(&sub_key, e))
        .collect();
    let pages = total.div_ceil(browse.page_size);
    json!({
        "sub_key": sub_key,
        "total": total,
        "page": browse.page,
        "page_size": browse.page_size,
        "num_pages": pages,
        "has_next_page": browse.page < pages,
        "messages": messages,
    })
}

/// A message in a browse list: its metadata and the first 64 bytes of its data.
fn summary(sub_key: &str, entry: &Entry) -> Value {
    let msg = &entry.msg;
    let mut value = msg.external(sub_key, entry.delivery_count);
    if let Some(map) = value.as_object_mut() {
        map.remove("data");
        map.insert("data_prefix_short".into(), json!(msg.prefix_short()));
    }
    value
}

fn entry(sub: &SubState, msg_id: &str) -> Result<Entry, ZatoError> {
    let queue = sub.queue.borrow();
    queue
        .values()
        .find(|e| e.msg.msg_id == msg_id)
        .cloned()
        .ok_or_else(|| ZatoError::not_found(format!("No such message `{msg_id}`")))
}

/// The whole message: data and metadata, with the patterns that put it in this queue.
fn detail(zato: &Zato, sub: &SubState, entry: &Entry) -> Value {
    let record = sub.record.borrow();
    let msg = &entry.msg;
    let mut value = msg.external(&record.sub_key, entry.delivery_count);
    value["expiration_time_iso"] = json!(ids::iso(msg.expiration_time()));
    value["ext_pub_time_iso"] = json!(msg.ext_pub_time.map(ids::iso));
    value["published_by"] = json!(msg.published_by);
    value["pub_pattern_matched"] = json!(msg.pub_pattern);
    value["sub_pattern_matched"] = json!(sub_pattern(zato, &record.endpoint, &record.topic));
    value["endpoint"] = json!(record.endpoint);
    value["data_prefix_short"] = json!(msg.prefix_short());
    value
}

/// Updates a message's data, priority or expiration in place, in every queue that holds it.
async fn update_msg(
    zato: &Rc<Zato>,
    sub: &Rc<SubState>,
    msg_id: &str,
    changes: &Value,
) -> Result<Value, ZatoError> {
    let old = entry(sub, msg_id)?.msg;
    let changes = changes.as_object().cloned().unwrap_or_default();
    let mut msg = (*old).clone();
    msg.external_tail = Default::default();
    if changes.contains_key("data") {
        let publication = fields::publication(&changes, &msg.topic, "", "", None)?;
        msg.data = publication.data;
        msg.data_json = publication.data_json;
    }
    if changes.contains_key("priority") {
        let mut probe = changes.clone();
        probe.insert("data".into(), json!("x"));
        msg.priority = fields::publication(&probe, &msg.topic, "", "", None)?.priority;
    }
    if let Some(e) = fields::integer(&changes, "expiration")? {
        if e < 0 {
            return Err(ZatoError::bad_request(format!("Expiration `{e}` must not be negative")));
        }
        msg.expiration = e as u64;
    }
    if msg.has_gd {
        let mut batch = Batch::new();
        batch.put(layout::MSGS, layout::msg(&msg.topic, msg.uid), msg.to_stored());
        commit(zato, batch).await.map_err(|e| ZatoError::store("Message update", &e))?;
    }
    let msg = Rc::new(msg);
    replace_everywhere(zato, &old, &msg);
    let updated = entry(sub, msg_id)?;
    Ok(detail(zato, sub, &updated))
}

/// Puts `new` in place of `old` in every queue and backlog of its topic (its order may move).
fn replace_everywhere(zato: &Zato, old: &Rc<Msg>, new: &Rc<Msg>) {
    let sub_keys: Vec<String> = match zato.topics.borrow_mut().get_mut(&old.topic) {
        Some(topic) => {
            if topic.backlog.remove(&old.order()).is_some() {
                topic.backlog.insert(new.order(), new.clone());
            }
            topic.subs.clone()
        }
        None => return,
    };
    let subs = zato.subs.borrow();
    for sub in sub_keys.iter().filter_map(|k| subs.get(k)) {
        if let Some(mut entry) = sub.remove_uid(old.order(), old.uid) {
            entry.msg = new.clone();
            sub.queue.borrow_mut().insert(new.order(), entry);
            sub.signal.raise();
        }
    }
}

/// Deletes one message (or, with None, every message) from one subscription's queue.
async fn delete_msgs(
    zato: &Rc<Zato>,
    sub: &Rc<SubState>,
    msg_id: Option<&str>,
) -> Result<Value, ZatoError> {
    let (sub_key, topic) = {
        let record = sub.record.borrow();
        (record.sub_key.clone(), record.topic.clone())
    };
    let taken: Vec<Entry> = match msg_id {
        Some(id) => {
            let found = entry(sub, id)?;
            sub.remove_uid(found.msg.order(), found.msg.uid).into_iter().collect()
        }
        None => std::mem::take(&mut *sub.queue.borrow_mut()).into_values().collect(),
    };
    let mut batch = Batch::new();
    match msg_id {
        Some(_) => {
            for e in taken.iter().filter(|e| e.msg.has_gd) {
                batch.delete(layout::QUEUE, layout::queued(&sub_key, e.msg.uid));
            }
        }
        None => {
            batch.delete_range(layout::QUEUE, KeyRange::prefix(layout::queue_prefix(&sub_key)));
        }
    }
    if let Err(e) = commit(zato, batch).await {
        let mut queue = sub.queue.borrow_mut();
        for entry in taken {
            queue.insert(entry.msg.order(), entry);
        }
        return Err(ZatoError::store("Deletion", &e));
    }
    deliver::released(zato, &topic, taken.iter().map(|e| &e.msg));
    Ok(json!({ "deleted": taken.len() }))
}
