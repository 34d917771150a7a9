//! Encode once, enqueue to many. A publication arrives with each topic's frame already
//! encoded; this shard wraps those bytes in one `Frame` per topic and queues that same
//! reference on every local subscriber, then hands the publication by reference to every
//! other shard.

use super::{
    bus::{Publication, ShardMsg},
    conn::{queue::Frame, ConnKey},
    shard::{enqueue, Shard, ShardState},
};
use std::{rc::Rc, sync::Arc};

/// Publishes on every shard of this node and, in cluster mode, to the other nodes that follow
/// its topics. Returns the deliveries made on this shard.
pub async fn publish(shard: &Rc<Shard>, publication: Publication) -> usize {
    if let Some(link) = &shard.cluster {
        for item in &publication.items {
            let elsewhere = item.exclude_elsewhere.clone();
            link.publish(publication.ns, &item.topic, item.frame.clone(), elsewhere);
        }
    }
    publish_local(shard, publication).await
}

/// Publishes on every shard of this node only: here first, then through the rings (waiting
/// while one is full). For what other nodes already get on their own (a publication that came
/// from the cluster, or an event each node derives from replicated state).
pub async fn publish_local(shard: &Rc<Shard>, publication: Publication) -> usize {
    let publication = Arc::new(publication);
    let delivered = deliver_local(shard, &publication);
    for peer in shard.bus.peers() {
        shard.bus.send_to(peer, ShardMsg::Publish(publication.clone())).await;
    }
    delivered
}

/// Publishes on one shard only (a topic whose subscribers are known to live there).
pub async fn publish_on(shard: &Rc<Shard>, peer: usize, publication: Publication) {
    if peer == shard.id() {
        deliver_local(shard, &publication);
    } else {
        shard.bus.send_to(peer, ShardMsg::Publish(Arc::new(publication))).await;
    }
}

/// Queues each item's frame on this shard's subscribers; returns the number of deliveries.
pub fn deliver_local(shard: &Rc<Shard>, publication: &Publication) -> usize {
    let limit = shard.config.outbound_queue_bytes;
    let ns = publication.ns;
    let tag = shard.tag_of_ns(ns);
    let over = shard.over_capacity(tag.unwrap_or_default());
    let dialect = tag.and_then(|t| shard.dialect(t)).cloned();
    let me = shard.id() as u16;
    let mut delivered = 0;
    let mut reports: Vec<(usize, Vec<ConnKey>)> = Vec::new();
    {
        let mut state = shard.state.borrow_mut();
        let ShardState { conns, topics, stats, .. } = &mut *state;
        for (i, item) in publication.items.iter().enumerate() {
            let Some(topic) = topics.get(ns, &item.topic) else { continue };
            let frame = Frame::new(item.frame.clone());
            let skip = item.exclude.filter(|a| a.shard == me).map(|a| a.key);
            let mut receivers = Vec::new();
            for &key in &topic.subscribers {
                if skip == Some(key) {
                    continue;
                }
                let Some(conn) = conns.get_mut(key.index()) else { continue };
                enqueue(conn, frame.clone(), limit, stats, &over);
                delivered += 1;
                if item.report {
                    receivers.push(key);
                }
            }
            if !receivers.is_empty() {
                reports.push((i, receivers));
            }
        }
    }
    if let Some(dialect) = dialect {
        for (i, receivers) in reports {
            dialect.delivered(shard, ns, &publication.items[i], &receivers);
        }
    }
    delivered
}
