//! Encode once, enqueue to many. A publication arrives with each channel's frame already
//! encoded; this shard wraps those bytes in one `Frame` per channel and queues that same
//! reference on every local subscriber, then hands the publication by reference to every
//! other shard.

use crate::{
    bus::{Publication, ShardMsg},
    conn::queue::Frame,
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
        let Some(topic) = topics.get(publication.app, &item.channel) else {
            continue;
        };
        let frame = Frame::new(item.frame.clone());
        for &key in &topic.subscribers {
            let Some(conn) = conns.get_mut(key.index()) else {
                continue;
            };
            if item.exclude == Some(conn.socket_id) {
                continue;
            }
            enqueue(conn, frame.clone(), limit, stats);
            delivered += 1;
        }
    }
    delivered
}
