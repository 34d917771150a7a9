//! Start: each shard takes the topics homed on it (the config's, then those made at run time
//! and kept in the store) and reads back, page by page, their subscriptions, GD messages,
//! backlogs and queues. Queues are rebuilt in delivery order from the messages themselves.
//! What nothing refers to any more is removed: queue entries of a deleted subscription or
//! message, messages no queue holds, expired messages, and WSX subscriptions deleted on close
//! (their connections are gone). Requests wait until this is done; delivery tasks start after.

use super::{
    cluster, deliver,
    home::{self, Chunks},
    layout,
    message::Msg,
    sub::{Entry, SubKind, SubRecord, SubState},
    topic::TopicState,
    Zato,
};
use crate::{
    config::zato::TopicConfig,
    engine::shard::Shard,
    store::{Entries, KeyRange, StoreError, StoreHandle},
};
use ahash::AHashMap;
use std::rc::Rc;

/// Entries read per scan.
const PAGE: usize = 1000;

/// Loads this shard's topics in a task of its own.
pub fn start(zato: &Rc<Zato>, shard: &Rc<Shard>) {
    let (zato, shard) = (zato.clone(), shard.clone());
    glommio::spawn_local(async move {
        if let Err(e) = load(&zato, &shard).await {
            tracing::error!("zato: loading topics from the store failed: {e}; they start empty");
        }
        zato.loaded.set(true);
        let subs: Vec<Rc<SubState>> = zato.subs.borrow().values().cloned().collect();
        for sub in subs {
            deliver::start(&zato, &shard, &sub);
        }
        let topics: Vec<String> = zato.topics.borrow().keys().cloned().collect();
        for topic in topics {
            home::spawn_backlog_takeover(&zato, &shard, &topic);
        }
    })
    .detach();
}

/// Every entry of `range` in `table`.
async fn scan_all(
    store: &StoreHandle,
    table: &'static str,
    range: KeyRange,
) -> Result<Entries, StoreError> {
    let mut all = Entries::new();
    let mut next = range.clone();
    loop {
        let page = store.scan(table, next.clone(), PAGE).await?;
        let done = page.len() < PAGE;
        if let Some((last, _)) = page.last() {
            next = range.after(last.clone());
        }
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

async fn load(zato: &Rc<Zato>, shard: &Rc<Shard>) -> Result<(), StoreError> {
    let mine = |name: &str| zato.home(shard, name) == shard.id();
    for config in zato.zc().topics.iter().filter(|t| mine(&t.name)) {
        let topic = TopicState::new(config.clone(), false);
        zato.topics.borrow_mut().insert(config.name.clone(), topic);
    }
    let Some(store) = zato.store.clone() else { return Ok(()) };
    for (key, value) in scan_all(&store, layout::TOPICS, KeyRange::all()).await? {
        let Ok(config) = serde_json::from_slice::<TopicConfig>(&value) else {
            tracing::warn!("zato: a stored topic ({key:?}) cannot be read; skipped");
            continue;
        };
        if mine(&config.name) && !zato.topics.borrow().contains_key(&config.name) {
            zato.topics.borrow_mut().insert(config.name.clone(), TopicState::new(config, true));
        }
    }
    let names: Vec<String> = zato.topics.borrow().keys().cloned().collect();
    let mut cleanup = Chunks::new(zato);
    for name in names {
        load_topic(zato, &store, &name, &mut cleanup).await?;
        cluster::sync(zato, shard, &name);
    }
    cleanup.commit(zato).await
}

async fn load_topic(
    zato: &Rc<Zato>,
    store: &StoreHandle,
    name: &str,
    cleanup: &mut Chunks,
) -> Result<(), StoreError> {
    let prefix = KeyRange::prefix(layout::topic_prefix(name));
    let now = super::ids::now_micros();
    let mut msgs: AHashMap<u64, Rc<Msg>> = AHashMap::new();
    for (key, value) in scan_all(store, layout::MSGS, prefix.clone()).await? {
        match Msg::from_stored(&value) {
            Some(msg) if !msg.expired(now) => {
                zato.note_seq(msg.seq);
                msgs.insert(msg.uid, Rc::new(msg));
            }
            _ => {
                cleanup.batch().delete(layout::MSGS, key);
            }
        }
    }
    let mut held: AHashMap<u64, u32> = AHashMap::new();
    let mut backlog = Vec::new();
    for (key, _) in scan_all(store, layout::BACKLOG, prefix.clone()).await? {
        match layout::uid_of(&key).and_then(|uid| msgs.get(&uid)) {
            Some(msg) => {
                *held.entry(msg.uid).or_default() += 1;
                backlog.push(msg.clone());
            }
            None => {
                cleanup.batch().delete(layout::BACKLOG, key);
            }
        }
    }
    let mut subs = Vec::new();
    for (key, value) in scan_all(store, layout::SUBS, prefix).await? {
        let Ok(record) = serde_json::from_slice::<SubRecord>(&value) else {
            tracing::warn!("zato: a stored subscription of {name} cannot be read; skipped");
            continue;
        };
        let queue_range = KeyRange::prefix(layout::queue_prefix(&record.sub_key));
        if record.kind == SubKind::Websockets && record.options.unsub_on_wsx_close {
            cleanup.batch().delete(layout::SUBS, key);
            cleanup.batch().delete_range(layout::QUEUE, queue_range);
            continue;
        }
        let sub = SubState::new(record);
        for (key, _) in scan_all(store, layout::QUEUE, queue_range).await? {
            match layout::uid_of(&key).and_then(|uid| msgs.get(&uid)) {
                Some(msg) => {
                    *held.entry(msg.uid).or_default() += 1;
                    let entry = Entry { msg: msg.clone(), delivery_count: 0, not_before: 0 };
                    sub.queue.borrow_mut().insert(msg.order(), entry);
                }
                None => {
                    cleanup.batch().delete(layout::QUEUE, key);
                }
            }
        }
        subs.push(sub);
    }
    for (uid, msg) in &msgs {
        if !held.contains_key(uid) {
            cleanup.batch().delete(layout::MSGS, layout::msg(name, msg.uid));
        }
    }
    let mut topics = zato.topics.borrow_mut();
    let Some(topic) = topics.get_mut(name) else { return Ok(()) };
    for (uid, count) in held {
        if let Some(msg) = msgs.get(&uid) {
            topic.hold(msg, count);
        }
    }
    for msg in backlog {
        topic.backlog.insert(msg.order(), msg);
    }
    subs.sort_by_key(|s| s.record.borrow().created);
    for sub in subs {
        let key = sub.sub_key();
        topic.subs.push(key.clone());
        zato.subs.borrow_mut().insert(key, sub);
    }
    Ok(())
}
