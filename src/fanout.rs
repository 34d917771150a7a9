//! Encode once, enqueue to many. A publication arrives with each channel's frame already
//! encoded; this shard wraps those bytes in one `Frame` per channel and queues that same
//! reference on every local subscriber, then hands the publication by reference to every
//! other shard.

use crate::{
    bus::{PubItem, Publication, ShardMsg},
    conn::{queue::Frame, SocketId},
    hook::event::{EmqxEvent, EmqxKind, HookMsg},
    shard::{enqueue, Shard, ShardState},
};
use std::{rc::Rc, sync::Arc};

/// Publishes on every shard: here first, then through the rings (waiting while one is full).
pub async fn publish(shard: &Rc<Shard>, publication: Publication) -> usize {
    let publication = Arc::new(publication);
    let delivered = deliver_local(shard, &publication);
    for peer in shard.bus.peers() {
        shard.bus.send_to(peer, ShardMsg::Publish(publication.clone())).await;
    }
    delivered
}

/// Queues each item's frame on this shard's subscribers; returns the number of deliveries.
pub fn deliver_local(shard: &Shard, publication: &Publication) -> usize {
    let limit = shard.config.outbound_queue_bytes;
    let mut state = shard.state.borrow_mut();
    let ShardState { conns, topics, stats, .. } = &mut *state;
    let mut delivered = 0;
    for item in &publication.items {
        let Some(topic) = topics.get(publication.app, &item.channel) else { continue };
        let frame = Frame::new(item.frame.clone());
        // Receivers are listed only when a message.delivered rule wants this topic: one hook
        // message per publication and shard, never one per subscriber.
        let wanted = shard.hooks.wants_emqx(EmqxKind::MessageDelivered, Some(&item.channel));
        let mut receivers = Vec::new();
        for &key in &topic.subscribers {
            let Some(conn) = conns.get_mut(key.index()) else { continue };
            if item.exclude == Some(conn.socket_id) {
                continue;
            }
            enqueue(conn, frame.clone(), limit, stats);
            delivered += 1;
            if wanted {
                receivers.push(conn.socket_id);
            }
        }
        if !receivers.is_empty() {
            delivered_hook(shard, item, &receivers);
        }
    }
    delivered
}

/// One message.delivered hook message for the receivers of an item on this shard; the hook
/// shard turns it into batched request bodies.
fn delivered_hook(shard: &Shard, item: &PubItem, receivers: &[SocketId]) {
    let event = EmqxEvent {
        topic: Some(item.channel.to_string()),
        payload: event_data(&item.frame),
        from_client_id: Some(
            item.exclude.map_or_else(|| "http_api".to_string(), |s| s.to_string()),
        ),
        delivered_to: receivers.iter().map(|s| (s.to_string(), None)).collect(),
        ..EmqxEvent::new(EmqxKind::MessageDelivered, String::new())
    };
    shard.hooks.send(HookMsg::Emqx(event));
}

/// The `data` of an encoded channel-event frame, read back for a hook's payload (only when a
/// message.delivered rule asks for it).
fn event_data(frame: &[u8]) -> Option<String> {
    let start = frame.iter().position(|&b| b == b'{')?;
    let value: serde_json::Value = serde_json::from_slice(&frame[start..]).ok()?;
    match value.get("data")? {
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}
