//! What a topic's home shard does: publish (recipients fixed at that moment, GD messages
//! committed before the answer), subscribe (the first subscriber takes over the topic's
//! backlog), fetch for pull subscribers, unsubscribe, and the WSX connection of a subscription
//! coming and going. The store is written first and memory changed after its commit, so what a
//! caller is told is what a restart finds; no borrow is held across an await.

use super::{
    cluster, deliver,
    error::ZatoError,
    ids, layout,
    message::Msg,
    messages::{Answer, PublishReq, SubscribeReq, Target},
    sub::{DeliveryMethod, Entry, SubKind, SubRecord, SubState},
    Zato,
};
use crate::{
    config::zato::OnNoSubs,
    engine::{addr::ConnAddr, shard::Shard},
    store::{Batch, KeyRange},
};
use serde_json::{json, Value};
use std::rc::Rc;

/// Publishes on the topic's home; answers `{"msg_id"}`'s value (null when dropped here). In
/// cluster mode the publication then goes to the other nodes following the topic, even when
/// this node dropped it (they may have subscribers).
pub async fn publish(zato: &Rc<Zato>, shard: &Rc<Shard>, mut request: PublishReq) -> Answer {
    zato.wait_loaded().await;
    let now = ids::now_micros();
    let Some(link) = &shard.cluster else {
        let result = publish_here(zato, shard, request, now, false).await;
        return Some(result.map(|id| id.map_or(Value::Null, Value::String)));
    };
    if link.refuses_publishes() {
        return Some(Err(ZatoError::unavailable("Publication rejected - cluster link down")));
    }
    request.msg_id.get_or_insert_with(ids::msg_id);
    let forwarded = request.clone();
    let result = publish_here(zato, shard, request, now, false).await;
    if result.is_ok() {
        cluster::forward(zato, shard, forwarded, now);
    }
    Some(result.map(|id| id.map_or(Value::Null, Value::String)))
}

/// Places another node's publication in this node's subscriptions of its topic (none: it is
/// dropped, never kept in a backlog here).
pub async fn publish_from_node(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    request: PublishReq,
    pub_time: u64,
) -> Result<(), ZatoError> {
    zato.wait_loaded().await;
    publish_here(zato, shard, request, pub_time, true).await.map(|_| ())
}

/// Where a new message goes: queues or the backlog here, or only other nodes' queues.
enum Placement {
    Here(Placed),
    Elsewhere(String),
}

/// A message placed on this node.
struct Placed {
    msg: Rc<Msg>,
    recipients: Vec<Rc<SubState>>,
    /// The topic has no subscription: the message waits for the first one.
    backlog: bool,
    /// It goes to the store (GD, and someone or the backlog holds it).
    stored: bool,
}

/// Places and (GD) commits a publication received at `now`; `from_node`: sent by another node.
async fn publish_here(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    request: PublishReq,
    now: u64,
    from_node: bool,
) -> Result<Option<String>, ZatoError> {
    let placement = match place(zato, request, now, from_node)? {
        None => return Ok(None),
        Some(Placement::Elsewhere(msg_id)) => return Ok(Some(msg_id)),
        Some(Placement::Here(placed)) => placed,
    };
    let msg_id = placement.msg.msg_id.clone();
    if placement.stored {
        let mut batch = Batch::new();
        let (topic, uid) = (&placement.msg.topic, placement.msg.uid);
        batch.put(layout::MSGS, layout::msg(topic, uid), placement.msg.to_stored());
        if placement.backlog {
            batch.put(layout::BACKLOG, layout::msg(topic, uid), "");
        }
        for sub in &placement.recipients {
            batch.put(layout::QUEUE, layout::queued(&sub.sub_key(), uid), "");
        }
        let committed = commit(zato, batch).await;
        if let Some(topic) = zato.topics.borrow_mut().get_mut(&placement.msg.topic) {
            topic.pending_gd = topic.pending_gd.saturating_sub(1);
        }
        committed.map_err(|e| ZatoError::store("Publication", &e))?;
    }
    enqueue(zato, shard, placement);
    Ok(Some(msg_id))
}

/// Checks the publication against its topic and builds the message and its recipients.
fn place(
    zato: &Zato,
    request: PublishReq,
    now: u64,
    from_node: bool,
) -> Result<Option<Placement>, ZatoError> {
    let mut topics = zato.topics.borrow_mut();
    let topic =
        topics.get_mut(&request.topic).ok_or_else(|| ZatoError::no_such_topic(&request.topic))?;
    if !topic.config.active {
        return Err(ZatoError::unavailable(format!("Topic is inactive `{}`", request.topic)));
    }
    let subs = zato.subs.borrow();
    let all: Vec<&Rc<SubState>> = topic.subs.iter().filter_map(|k| subs.get(k)).collect();
    if all.is_empty() && (from_node || topic.config.on_no_subs_pub == OnNoSubs::Drop) {
        return Ok(None);
    }
    if all.is_empty() && zato.followers.borrow().any(&request.topic) {
        // Other nodes have its subscriptions: nothing is kept here.
        return Ok(Some(Placement::Elsewhere(request.msg_id.unwrap_or_else(ids::msg_id))));
    }
    let recipients: Vec<Rc<SubState>> = all
        .iter()
        .filter(|s| !s.deleted.get() && s.record.borrow().options.active_status.enqueues())
        .map(|s| Rc::clone(s))
        .collect();
    // Zato turns a message into a GD one when nobody could take it from memory: a topic with
    // no subscription, or a WSX subscriber not connected now; a subscription may ask for GD.
    let forced = all.is_empty() || recipients.iter().any(|s| wants_gd(s));
    let has_gd = forced || request.has_gd.unwrap_or(topic.config.has_gd);
    if has_gd && zato.store.is_none() {
        return Err(ZatoError::unavailable("Publication rejected - no durable store"));
    }
    topic.admit(has_gd)?;
    let limit = topic.config.limit_message_expiry;
    // The storage id is the publication number: increasing, so a commit's new messages and
    // queue entries land at the right end of their B-tree ranges (a few pages rewritten per
    // commit) and deliveries delete from the left end, where random ids touched a page each.
    let seq = zato.next_seq(now);
    let msg = Rc::new(Msg {
        uid: seq,
        msg_id: request.msg_id.unwrap_or_else(ids::msg_id),
        topic: request.topic,
        data: request.data,
        data_json: request.data_json,
        priority: request.priority,
        expiration: request.expiration.unwrap_or(limit).min(limit),
        pub_time: now,
        ext_pub_time: request.ext_pub_time,
        seq,
        correl_id: request.correl_id,
        in_reply_to: request.in_reply_to,
        ext_client_id: request.ext_client_id,
        group_id: request.group_id,
        position_in_group: request.position_in_group,
        mime_type: request.mime_type,
        has_gd,
        published_by: request.endpoint,
        pub_pattern: request.pattern,
        external_tail: Default::default(),
    });
    let backlog = all.is_empty();
    let stored = has_gd && (backlog || !recipients.is_empty());
    if stored {
        topic.pending_gd += 1;
    }
    Ok(Some(Placement::Here(Placed { msg, recipients, backlog, stored })))
}

/// A subscription whose messages must be stored whatever the publisher asked.
fn wants_gd(sub: &SubState) -> bool {
    let record = sub.record.borrow();
    record.options.has_gd == Some(true)
        || (record.kind == SubKind::Websockets && sub.wsx.get().is_none())
}

/// Puts a message (committed if GD) in its recipients' queues or the topic's backlog. What
/// changed meanwhile (a recipient or the topic deleted) is taken out of the store again.
fn enqueue(zato: &Rc<Zato>, shard: &Rc<Shard>, placement: Placed) {
    let Placed { msg, recipients, backlog, .. } = placement;
    let mut cleanup = Batch::new();
    {
        let mut topics = zato.topics.borrow_mut();
        let Some(topic) = topics.get_mut(&msg.topic) else {
            if msg.has_gd {
                forget_message(&mut cleanup, &msg, &recipients, backlog);
                spawn_commit(zato, cleanup);
            }
            return;
        };
        if backlog {
            topic.hold(&msg, 1);
            topic.backlog.insert(msg.order(), msg.clone());
        } else {
            let (live, gone): (Vec<_>, Vec<_>) =
                recipients.into_iter().partition(|s| !s.deleted.get());
            topic.hold(&msg, live.len() as u32);
            for sub in &live {
                sub.push(msg.clone());
            }
            if msg.has_gd {
                for sub in &gone {
                    cleanup.delete(layout::QUEUE, layout::queued(&sub.sub_key(), msg.uid));
                }
                if live.is_empty() && !gone.is_empty() {
                    cleanup.delete(layout::MSGS, layout::msg(&msg.topic, msg.uid));
                }
            }
        }
    }
    spawn_commit(zato, cleanup);
    if backlog {
        spawn_backlog_takeover(zato, shard, &msg.topic);
    }
}

/// The store entries of a message that has nowhere to go.
fn forget_message(batch: &mut Batch, msg: &Msg, recipients: &[Rc<SubState>], backlog: bool) {
    batch.delete(layout::MSGS, layout::msg(&msg.topic, msg.uid));
    if backlog {
        batch.delete(layout::BACKLOG, layout::msg(&msg.topic, msg.uid));
    }
    for sub in recipients {
        batch.delete(layout::QUEUE, layout::queued(&sub.sub_key(), msg.uid));
    }
}

/// Operations per batch when a change of many messages is split (each message's operations in
/// one batch, so a crash between batches leaves every message whole).
fn chunk_ops(zato: &Zato) -> usize {
    (zato.config.store.max_batch_ops / 2).clamp(2, 1000)
}

/// A change too large for one batch, cut between messages.
pub struct Chunks {
    limit: usize,
    done: Vec<Batch>,
    current: Batch,
}

impl Chunks {
    pub fn new(zato: &Zato) -> Chunks {
        Chunks { limit: chunk_ops(zato), done: Vec::new(), current: Batch::new() }
    }

    /// The batch to add one message's operations to.
    pub fn batch(&mut self) -> &mut Batch {
        if self.current.len() >= self.limit {
            self.done.push(std::mem::take(&mut self.current));
        }
        &mut self.current
    }

    /// Commits the batches in order; stops at the first failure.
    pub async fn commit(mut self, zato: &Zato) -> Result<(), crate::store::StoreError> {
        self.done.push(self.current);
        for batch in self.done {
            commit(zato, batch).await?;
        }
        Ok(())
    }
}

/// Commits `batch` (nothing without a store).
pub async fn commit(zato: &Zato, batch: Batch) -> Result<(), crate::store::StoreError> {
    match &zato.store {
        Some(store) if !batch.is_empty() => store.commit(batch).await,
        _ => Ok(()),
    }
}

/// Commits `batch` in the background: removals whose loss a restart repairs (the load drops
/// entries nothing refers to and messages nothing holds).
pub fn spawn_commit(zato: &Rc<Zato>, batch: Batch) {
    if batch.is_empty() || zato.store.is_none() {
        return;
    }
    let zato = zato.clone();
    glommio::spawn_local(async move {
        if let Err(e) = commit(&zato, batch).await {
            tracing::warn!("zato: a cleanup commit failed (a restart repairs it): {e}");
        }
    })
    .detach();
}

/// Subscribes on the topic's home; answers `{"sub_key", "queue_depth"}`.
pub async fn subscribe(zato: &Rc<Zato>, shard: &Rc<Shard>, request: SubscribeReq) -> Answer {
    zato.wait_loaded().await;
    Some(subscribe_here(zato, shard, request).await)
}

async fn subscribe_here(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    request: SubscribeReq,
) -> Result<Value, ZatoError> {
    if let Some(existing) = existing_subscription(zato, &request)? {
        return Ok(existing);
    }
    let (kind, addr, ext_client_id) = match &request.target {
        Target::Rest => (SubKind::Rest, None, None),
        Target::Wsx { addr, ext_client_id } => {
            (SubKind::Websockets, Some(*addr), ext_client_id.clone())
        }
    };
    let mut options = request.options;
    if kind == SubKind::Websockets {
        options.delivery_method = DeliveryMethod::WebSocket;
    }
    let kind_name = if kind == SubKind::Rest { "rest" } else { "websockets" };
    let record = SubRecord {
        sub_key: ids::sub_key(kind_name, ext_client_id.as_deref()),
        topic: request.topic.clone(),
        endpoint: request.endpoint,
        kind,
        options,
        created: ids::now_micros(),
        ext_client_id,
    };
    // The first subscription takes the backlog: out of memory now, so no one else takes it.
    let taken: Vec<Rc<Msg>> = {
        let mut topics = zato.topics.borrow_mut();
        let topic = topics.get_mut(&request.topic).ok_or_else(ZatoError::forbidden)?;
        let live = topic.subs.iter().any(|k| zato.subs.borrow().contains_key(k));
        if live {
            Vec::new()
        } else {
            std::mem::take(&mut topic.backlog).into_values().collect()
        }
    };
    let mut chunks = Chunks::new(zato);
    let value = serde_json::to_vec(&record).unwrap_or_default();
    chunks.batch().put(layout::SUBS, layout::sub(&record.topic, &record.sub_key), value);
    for msg in &taken {
        let batch = chunks.batch();
        batch.delete(layout::BACKLOG, layout::msg(&msg.topic, msg.uid));
        batch.put(layout::QUEUE, layout::queued(&record.sub_key, msg.uid), "");
    }
    if let Err(e) = chunks.commit(zato).await {
        restore_backlog(zato, &request.topic, taken);
        return Err(ZatoError::store("Subscription", &e));
    }
    let sub = SubState::new(record);
    sub.wsx.set(addr);
    let answer = {
        let mut topics = zato.topics.borrow_mut();
        let Some(topic) = topics.get_mut(&request.topic) else {
            return Err(ZatoError::forbidden());
        };
        for msg in taken {
            sub.push(msg);
        }
        let key = sub.sub_key();
        topic.subs.push(key.clone());
        zato.subs.borrow_mut().insert(key.clone(), sub.clone());
        json!({"sub_key": key, "queue_depth": sub.depth()})
    };
    deliver::start(zato, shard, &sub);
    spawn_backlog_takeover(zato, shard, &request.topic);
    if let Some(ready) = cluster::sync(zato, shard, &request.topic) {
        let _ = ready.recv_async().await;
    }
    Ok(answer)
}

/// A REST endpoint subscribed already is refused; a WSX connection subscribed already gets its
/// subscription again.
fn existing_subscription(zato: &Zato, request: &SubscribeReq) -> Result<Option<Value>, ZatoError> {
    let topics = zato.topics.borrow();
    let topic = topics.get(&request.topic).ok_or_else(ZatoError::forbidden)?;
    let subs = zato.subs.borrow();
    for sub in topic.subs.iter().filter_map(|k| subs.get(k)) {
        let record = sub.record.borrow();
        if record.endpoint != request.endpoint || sub.deleted.get() {
            continue;
        }
        match &request.target {
            Target::Rest if record.kind == SubKind::Rest => {
                return Err(ZatoError::bad_request(format!(
                    "Subscription to topic `{}` already exists",
                    request.topic
                )));
            }
            Target::Wsx { addr, .. } if sub.wsx.get() == Some(*addr) => {
                return Ok(Some(json!({"sub_key": record.sub_key, "queue_depth": sub.depth()})));
            }
            _ => {}
        }
    }
    Ok(None)
}

fn restore_backlog(zato: &Zato, topic: &str, msgs: Vec<Rc<Msg>>) {
    if let Some(topic) = zato.topics.borrow_mut().get_mut(topic) {
        for msg in msgs {
            topic.backlog.insert(msg.order(), msg);
        }
    }
}

/// Hands the topic's backlog to its first subscription, if it has one now (messages that
/// reached the backlog while a first subscription was being made).
pub fn spawn_backlog_takeover(zato: &Rc<Zato>, shard: &Rc<Shard>, topic: &str) {
    let first = {
        let topics = zato.topics.borrow();
        let Some(state) = topics.get(topic) else { return };
        if state.backlog.is_empty() {
            return;
        }
        let subs = zato.subs.borrow();
        let first = state.subs.iter().filter_map(|k| subs.get(k)).find(|s| !s.deleted.get());
        match first {
            Some(sub) => sub.clone(),
            None => return,
        }
    };
    let (zato, _shard, topic) = (zato.clone(), shard.clone(), topic.to_string());
    glommio::spawn_local(async move {
        let taken: Vec<Rc<Msg>> = match zato.topics.borrow_mut().get_mut(&topic) {
            Some(state) => std::mem::take(&mut state.backlog).into_values().collect(),
            None => return,
        };
        let sub_key = first.sub_key();
        let mut chunks = Chunks::new(&zato);
        for msg in &taken {
            let batch = chunks.batch();
            batch.delete(layout::BACKLOG, layout::msg(&topic, msg.uid));
            batch.put(layout::QUEUE, layout::queued(&sub_key, msg.uid), "");
        }
        match chunks.commit(&zato).await {
            Ok(()) if !first.deleted.get() => taken.into_iter().for_each(|m| first.push(m)),
            Ok(()) => {
                // Deleted meanwhile: its queue entries go with it at the next start.
                let mut topics = zato.topics.borrow_mut();
                if let Some(state) = topics.get_mut(&topic) {
                    let mut cleanup = Batch::new();
                    for msg in &taken {
                        if state.release(msg) && msg.has_gd {
                            cleanup.delete(layout::MSGS, layout::msg(&topic, msg.uid));
                        }
                        cleanup.delete(layout::QUEUE, layout::queued(&sub_key, msg.uid));
                    }
                    drop(topics);
                    spawn_commit(&zato, cleanup);
                }
            }
            Err(e) => {
                tracing::warn!("zato: moving the backlog of {topic} failed: {e}");
                restore_backlog(&zato, &topic, taken);
            }
        }
    })
    .detach();
}

/// Checks that `sub_key` is a subscription to `topic` of `endpoint` (any endpoint when None).
fn owned(
    zato: &Zato,
    topic: &str,
    sub_key: &str,
    endpoint: Option<&str>,
) -> Result<Rc<SubState>, ZatoError> {
    let sub = zato.subs.borrow().get(sub_key).cloned().ok_or_else(ZatoError::forbidden)?;
    let record = sub.record.borrow();
    let mine = record.topic == topic && endpoint.is_none_or(|e| record.endpoint == e);
    if !mine || sub.deleted.get() {
        return Err(ZatoError::forbidden());
    }
    drop(record);
    Ok(sub)
}

/// Unsubscribes on the topic's home; answers `{}`.
pub async fn unsubscribe(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    topic: &str,
    sub_key: &str,
    endpoint: Option<&str>,
) -> Answer {
    zato.wait_loaded().await;
    let sub = match owned(zato, topic, sub_key, endpoint) {
        Ok(sub) => sub,
        Err(e) => return Some(Err(e)),
    };
    Some(remove(zato, shard, &sub).await.map(|()| json!({})))
}

/// Deletes a subscription: its record and queue leave the store, then memory; its delivery
/// task stops. Its messages are dropped (F002-11).
pub async fn remove(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    sub: &Rc<SubState>,
) -> Result<(), ZatoError> {
    sub.deleted.set(true);
    sub.signal.raise();
    let (topic, sub_key) = {
        let record = sub.record.borrow();
        (record.topic.clone(), record.sub_key.clone())
    };
    let mut batch = Batch::new();
    batch.delete(layout::SUBS, layout::sub(&topic, &sub_key));
    batch.delete_range(layout::QUEUE, KeyRange::prefix(layout::queue_prefix(&sub_key)));
    if let Err(e) = commit(zato, batch).await {
        sub.deleted.set(false);
        return Err(ZatoError::store("Unsubscribe", &e));
    }
    zato.subs.borrow_mut().remove(&sub_key);
    let entries: Vec<Entry> = std::mem::take(&mut *sub.queue.borrow_mut()).into_values().collect();
    let mut cleanup = Batch::new();
    if let Some(state) = zato.topics.borrow_mut().get_mut(&topic) {
        state.subs.retain(|k| *k != sub_key);
        for entry in entries {
            if state.release(&entry.msg) && entry.msg.has_gd {
                cleanup.delete(layout::MSGS, layout::msg(&topic, entry.msg.uid));
            }
        }
    }
    spawn_commit(zato, cleanup);
    cluster::sync(zato, shard, &topic);
    Ok(())
}

/// Pull: takes up to `delivery_batch_size` messages waiting for `sub_key` (expired ones and
/// those past `delivery_max_retry` are dropped). They leave the store before the answer.
pub async fn fetch(zato: &Rc<Zato>, topic: &str, sub_key: &str, endpoint: &str) -> Answer {
    zato.wait_loaded().await;
    let sub = match owned(zato, topic, sub_key, Some(endpoint)) {
        Ok(sub) => sub,
        Err(e) => return Some(Err(e)),
    };
    let options = sub.options();
    if !options.active_status.consumes() {
        return Some(Err(ZatoError::forbidden()));
    }
    let now = ids::now_micros();
    let pick = deliver::pick(zato, &sub, &options, now, true);
    let taken: Vec<Entry> = {
        let mut queue = sub.queue.borrow_mut();
        pick.keys.iter().filter_map(|key| queue.remove(key)).collect()
    };
    let list: Vec<Value> =
        taken.iter().map(|e| e.msg.external(sub_key, e.delivery_count + 1)).collect();
    let mut batch = Batch::new();
    for entry in taken.iter().filter(|e| e.msg.has_gd) {
        batch.delete(layout::QUEUE, layout::queued(sub_key, entry.msg.uid));
    }
    if let Err(e) = commit(zato, batch).await {
        let mut queue = sub.queue.borrow_mut();
        for entry in taken {
            queue.insert(entry.msg.order(), entry);
        }
        return Some(Err(ZatoError::store("Get messages", &e)));
    }
    deliver::released(zato, topic, taken.iter().map(|e| &e.msg));
    sub.delivered.set(sub.delivered.get() + list.len() as u64);
    Some(Ok(Value::Array(list)))
}

/// A WSX connection takes over its endpoint's subscription `sub_key` (on the holder only).
pub async fn resume(
    zato: &Rc<Zato>,
    shard: &Rc<Shard>,
    sub_key: &str,
    endpoint: &str,
    addr: ConnAddr,
) -> Answer {
    zato.wait_loaded().await;
    let sub = zato.subs.borrow().get(sub_key).cloned()?;
    let (topic, allowed) = {
        let record = sub.record.borrow();
        let allowed = record.endpoint == endpoint && record.kind == SubKind::Websockets;
        (record.topic.clone(), allowed && !sub.deleted.get())
    };
    if !allowed {
        return Some(Err(ZatoError::forbidden()));
    }
    sub.wsx.set(Some(addr));
    sub.signal.raise();
    deliver::start(zato, shard, &sub);
    Some(Ok(json!({"sub_key": sub_key, "topic_name": topic, "queue_depth": sub.depth()})))
}

/// A WSX connection closed: its subscription is deleted (`unsub_on_wsx_close`) or waits,
/// storing what comes, for a connection to resume it.
pub async fn wsx_gone(zato: &Rc<Zato>, shard: &Rc<Shard>, sub_key: &str, addr: ConnAddr) {
    let Some(sub) = zato.subs.borrow().get(sub_key).cloned() else { return };
    if sub.wsx.get() != Some(addr) {
        return;
    }
    sub.wsx.set(None);
    if sub.options().unsub_on_wsx_close {
        if let Err(e) = remove(zato, shard, &sub).await {
            tracing::warn!("zato: removing {sub_key} after its connection closed: {e}");
        }
    }
}
