//! Delivery: one task per notify or WSX subscription, on its topic's home shard, so a queue
//! leaves in order. Each turn takes up to `delivery_batch_size` messages due now, counts an
//! attempt on each (a message at `delivery_max_retry` attempts is dropped instead), and sends
//! them: to the subscription's URL through the hook shard (a list, or the bare message when
//! the batch size is 1 and `wrap_one_msg_in_list` is off), or to its WSX connection's shard as
//! one `zwsx.psrq` message. Only once the endpoint took them (a 2xx answer, or the frame queued
//! on an open connection) do they leave the queue and the store. A failure pauses the task
//! `wait_sock_err` (socket-level: connect, timeout) or `wait_non_sock_err` (anything else);
//! with `delivery_err_should_block` off the failed messages wait out the pause while those
//! behind them go on. Expired messages are never delivered, and a sweep drops them.

use super::{
    home::{commit, spawn_commit},
    ids, layout,
    message::{Msg, OrderKey},
    messages::Question,
    sub::{DeliveryMethod, Entry, Failure as SubFailure, SubOptions, SubState},
    wsx_out, Zato,
};
use crate::{
    engine::shard::Shard,
    hook::call::{CallError, HttpRequest, Request},
    store::Batch,
};
use bytes::Bytes;
use serde_json::Value;
use std::{rc::Rc, time::Duration};

/// Starts the delivery task of a notify or WSX subscription, unless it runs already.
pub fn start(zato: &Rc<Zato>, shard: &Rc<Shard>, sub: &Rc<SubState>) {
    if sub.options().delivery_method == DeliveryMethod::Pull || sub.task.replace(true) {
        return;
    }
    let (zato, shard, sub) = (zato.clone(), shard.clone(), sub.clone());
    glommio::spawn_local(async move {
        run(&zato, &shard, &sub).await;
        sub.task.set(false);
    })
    .detach();
}

/// Why a delivery did not take.
enum Failure {
    /// Connect failure or timeout: pause `wait_sock_err`.
    Socket(String),
    /// Anything else: pause `wait_non_sock_err`.
    Other(String),
    /// The WSX connection is gone: wait for a new one.
    Gone,
}

async fn run(zato: &Rc<Zato>, shard: &Rc<Shard>, sub: &Rc<SubState>) {
    while !sub.deleted.get() && !shard.shutting_down.get() {
        let options = sub.options();
        let wsx = options.delivery_method == DeliveryMethod::WebSocket;
        if options.delivery_method == DeliveryMethod::Pull {
            return;
        }
        if !options.active_status.consumes() || (wsx && sub.wsx.get().is_none()) {
            sub.signal.wait().await;
            continue;
        }
        let now = ids::now_micros();
        let picked = pick(zato, sub, &options, now, false);
        if picked.keys.is_empty() {
            match picked.next_due {
                Some(at) => {
                    let wait = Duration::from_micros(at.saturating_sub(now));
                    futures_lite::future::or(sub.signal.wait(), glommio::timer::sleep(wait)).await;
                }
                None => sub.signal.wait().await,
            }
            continue;
        }
        let batch = attempt(sub, &picked.keys);
        let outcome = if wsx {
            send_wsx(zato, shard, sub, &batch).await
        } else {
            send_notify(zato, shard, sub, &options, &batch).await
        };
        match outcome {
            Ok(()) => {
                sub.failure.borrow_mut().take();
                delivered(zato, sub, &batch).await;
            }
            Err(Failure::Gone) => {
                // Its connection is closing: the notice of its close (or a resume) follows.
                let wait = glommio::timer::sleep(Duration::from_secs(1));
                futures_lite::future::or(sub.signal.wait(), wait).await;
            }
            Err(failure) => pause(sub, &options, &batch, failure).await,
        }
    }
}

/// What the next turn takes.
pub struct Pick {
    /// Entries to deliver now, in order.
    pub keys: Vec<OrderKey>,
    /// When the first entry held back by a pause becomes due.
    pub next_due: Option<u64>,
}

/// Takes the keys of up to `delivery_batch_size` entries due now, dropping (from the queue, and
/// the store in the background) expired entries and those tried `delivery_max_retry` times.
/// A pull takes what would be its last attempt too.
pub fn pick(zato: &Rc<Zato>, sub: &SubState, options: &SubOptions, now: u64, pull: bool) -> Pick {
    let size = options.delivery_batch_size.max(1) as usize;
    let mut keys = Vec::new();
    let mut dropped = Vec::new();
    let mut next_due: Option<u64> = None;
    {
        let queue = sub.queue.borrow();
        for (key, entry) in queue.iter() {
            let spent = entry.delivery_count >= options.delivery_max_retry && !pull;
            if entry.msg.expired(now) || spent {
                dropped.push(*key);
                continue;
            }
            if entry.not_before > now {
                next_due = Some(next_due.map_or(entry.not_before, |d| d.min(entry.not_before)));
                continue;
            }
            keys.push(*key);
            if keys.len() == size {
                break;
            }
        }
    }
    drop_entries(zato, sub, &dropped);
    Pick { keys, next_due }
}

/// Takes these entries out of the queue, and out of the store in the background.
fn drop_entries(zato: &Rc<Zato>, sub: &SubState, keys: &[OrderKey]) {
    if keys.is_empty() {
        return;
    }
    let sub_key = sub.sub_key();
    let removed: Vec<Entry> = {
        let mut queue = sub.queue.borrow_mut();
        keys.iter().filter_map(|k| queue.remove(k)).collect()
    };
    let mut batch = Batch::new();
    for entry in removed.iter().filter(|e| e.msg.has_gd) {
        batch.delete(layout::QUEUE, layout::queued(&sub_key, entry.msg.uid));
    }
    spawn_commit(zato, batch);
    let topic = sub.record.borrow().topic.clone();
    released(zato, &topic, removed.iter().map(|e| &e.msg));
}

/// Counts an attempt on each picked entry; returns them with their new counts.
fn attempt(sub: &SubState, keys: &[OrderKey]) -> Vec<(OrderKey, Rc<Msg>, u32)> {
    let mut queue = sub.queue.borrow_mut();
    keys.iter()
        .filter_map(|key| {
            let entry = queue.get_mut(key)?;
            entry.delivery_count += 1;
            Some((*key, entry.msg.clone(), entry.delivery_count))
        })
        .collect()
}

/// The externals of a batch: a list, or the bare message when it is alone and not wrapped.
fn payload(sub_key: &str, batch: &[(OrderKey, Rc<Msg>, u32)], wrap: bool) -> Value {
    let mut list: Vec<Value> =
        batch.iter().map(|(_, msg, count)| msg.external(sub_key, *count)).collect();
    if list.len() == 1 && !wrap {
        return list.pop().unwrap_or(Value::Null);
    }
    Value::Array(list)
}

/// The notify body: the same as `payload` gives, from each message's cached JSON.
fn notify_body(sub_key: &str, batch: &[(OrderKey, Rc<Msg>, u32)], wrap: bool) -> String {
    if let ([(_, msg, count)], false) = (batch, wrap) {
        return msg.external_json(sub_key, *count);
    }
    let mut body = String::from("[");
    for (i, (_, msg, count)) in batch.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&msg.external_json(sub_key, *count));
    }
    body.push(']');
    body
}

async fn send_notify(
    zato: &Zato,
    shard: &Rc<Shard>,
    sub: &SubState,
    options: &SubOptions,
    batch: &[(OrderKey, Rc<Msg>, u32)],
) -> Result<(), Failure> {
    let Some(url) = options.notify_url.as_deref() else {
        return Err(Failure::Other("no notify_url".into()));
    };
    let (base, path) = split_url(url);
    let body = notify_body(&sub.sub_key(), batch, options.wraps());
    let method =
        http::Method::from_bytes(options.out_http_method.as_bytes()).unwrap_or(http::Method::POST);
    let zc = zato.zc();
    let request = Request::Http(HttpRequest {
        base: base.to_string(),
        method,
        path_and_query: path.to_string(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-zato-cid".into(), ids::cid()),
        ],
        body: Bytes::from(body),
        connect_timeout: Duration::from_millis(zc.notify_connect_timeout_ms),
        timeout: Duration::from_millis(zc.notify_timeout_ms),
        max_response_bytes: zc.notify_max_response_bytes,
    });
    match shard.call_detached(request).await {
        Ok(answer) if (200..300).contains(&answer.status) => Ok(()),
        Ok(answer) => Err(Failure::Other(format!("{url} answered {}", answer.status))),
        Err(e @ (CallError::Connect(_) | CallError::Timeout)) => {
            Err(Failure::Socket(format!("{url}: {e}")))
        }
        Err(e) => Err(Failure::Other(format!("{url}: {e}"))),
    }
}

/// `http://host:port/path?q` as the client's base (`http://host:port`) and `/path?q`.
fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(at) => url.split_at(after_scheme + at),
        None => (url, "/"),
    }
}

async fn send_wsx(
    zato: &Zato,
    shard: &Rc<Shard>,
    sub: &SubState,
    batch: &[(OrderKey, Rc<Msg>, u32)],
) -> Result<(), Failure> {
    let Some(addr) = sub.wsx.get() else { return Err(Failure::Gone) };
    let sub_key = sub.sub_key();
    let frame = match batch {
        [(_, msg, count)] => wsx_out::psrq(&msg.msg_id, msg.external(&sub_key, *count)),
        _ => wsx_out::psrq(&ids::cid(), payload(&sub_key, batch, true)),
    };
    let question = Question::WsxDeliver { key: addr.key, frame: Bytes::from(frame) };
    match zato.ask(shard, usize::from(addr.shard), question).await {
        Some(Ok(Value::Bool(true))) => Ok(()),
        _ => {
            // The connection closed: only the subscription's connection of now is dropped.
            if sub.wsx.get() == Some(addr) {
                Err(Failure::Gone)
            } else {
                Err(Failure::Other("the connection changed".into()))
            }
        }
    }
}

/// The endpoint took the batch: out of the store, then out of the queue (so what the queue
/// shows has not been recorded as delivered yet).
async fn delivered(zato: &Rc<Zato>, sub: &SubState, batch: &[(OrderKey, Rc<Msg>, u32)]) {
    let (sub_key, topic) = {
        let record = sub.record.borrow();
        (record.sub_key.clone(), record.topic.clone())
    };
    let mut store = Batch::new();
    for (_, msg, _) in batch.iter().filter(|(_, m, _)| m.has_gd) {
        store.delete(layout::QUEUE, layout::queued(&sub_key, msg.uid));
    }
    // Awaited: the next delivery starts only once this one is durable, so a crash redelivers
    // at most the delivery in flight.
    if let Err(e) = commit(zato, store).await {
        tracing::warn!("zato: recording a delivery to {sub_key} failed (it will be retried): {e}");
        return;
    }
    let removed: Vec<Entry> =
        batch.iter().filter_map(|(key, msg, _)| sub.remove_uid(*key, msg.uid)).collect();
    sub.delivered.set(sub.delivered.get() + removed.len() as u64);
    released(zato, &topic, removed.iter().map(|e| &e.msg));
}

/// The delivery failed: wait out the pause (blocking the queue), or hold back only the failed
/// messages for it.
async fn pause(
    sub: &SubState,
    options: &SubOptions,
    batch: &[(OrderKey, Rc<Msg>, u32)],
    failure: Failure,
) {
    let (kind, secs, details) = match failure {
        Failure::Socket(details) => ("socket", options.wait_sock_err, details),
        Failure::Other(details) => ("other", options.wait_non_sock_err, details),
        Failure::Gone => ("other", options.wait_non_sock_err, "the connection closed".into()),
    };
    tracing::debug!("zato: delivery to {} failed ({details}); pausing {secs} s", sub.sub_key());
    let delivery_count = batch.first().map_or(0, |(_, _, count)| *count);
    let failure = SubFailure { kind, pause_secs: secs, details, delivery_count };
    *sub.failure.borrow_mut() = Some(failure);
    let pause = Duration::from_secs_f64(secs.max(0.0));
    if options.delivery_err_should_block {
        glommio::timer::sleep(pause).await;
        return;
    }
    let due = ids::now_micros() + pause.as_micros() as u64;
    let mut queue = sub.queue.borrow_mut();
    for (key, _, _) in batch {
        if let Some(entry) = queue.get_mut(key) {
            entry.not_before = due;
        }
    }
}

/// Queue or backlog entries of these messages are gone: a GD message whose last holder went
/// leaves the store.
pub fn released<'a>(zato: &Rc<Zato>, topic: &str, msgs: impl Iterator<Item = &'a Rc<Msg>>) {
    let mut batch = Batch::new();
    if let Some(state) = zato.topics.borrow_mut().get_mut(topic) {
        for msg in msgs {
            if state.release(msg) && msg.has_gd {
                batch.delete(layout::MSGS, layout::msg(topic, msg.uid));
            }
        }
    }
    spawn_commit(zato, batch);
}

/// Drops expired messages from every queue and backlog homed here, every
/// `cleanup_interval_secs`.
pub fn start_sweep(zato: &Rc<Zato>, shard: &Rc<Shard>) {
    let (zato, shard) = (zato.clone(), shard.clone());
    let every = Duration::from_secs(zato.zc().cleanup_interval_secs.max(1));
    glommio::spawn_local(async move {
        while !shard.shutting_down.get() {
            glommio::timer::sleep(every).await;
            sweep(&zato);
        }
    })
    .detach();
}

fn sweep(zato: &Rc<Zato>) {
    let now = ids::now_micros();
    let subs: Vec<Rc<SubState>> = zato.subs.borrow().values().cloned().collect();
    for sub in subs {
        let expired: Vec<OrderKey> = {
            let queue = sub.queue.borrow();
            queue.iter().filter(|(_, e)| e.msg.expired(now)).map(|(k, _)| *k).collect()
        };
        drop_entries(zato, &sub, &expired);
    }
    let mut batch = Batch::new();
    let mut released_msgs = Vec::new();
    for (name, topic) in zato.topics.borrow_mut().iter_mut() {
        let expired: Vec<OrderKey> =
            topic.backlog.iter().filter(|(_, m)| m.expired(now)).map(|(k, _)| *k).collect();
        for key in expired {
            if let Some(msg) = topic.backlog.remove(&key) {
                batch.delete(layout::BACKLOG, layout::msg(name, msg.uid));
                released_msgs.push(msg);
            }
        }
    }
    for msg in &released_msgs {
        released(zato, &msg.topic, std::iter::once(msg));
    }
    spawn_commit(zato, batch);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_base_and_path() {
        assert_eq!(split_url("http://h:1/a/b?x=1"), ("http://h:1", "/a/b?x=1"));
        assert_eq!(split_url("https://h"), ("https://h", "/"));
    }
}
