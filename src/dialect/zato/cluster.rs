//! Cluster mode for the Zato dialect: a publication reaches the subscriptions of its topic on
//! every node, each exactly once, since a subscription lives on one node only (the node where
//! it was made, or where its WSX connection is).
//!
//! - Interest: a topic's home shard follows the topic on the cluster while the topic has at
//!   least one subscription on this node ([`sync`]), so a node with no subscriber of a topic
//!   hears none of its publications. A new subscription is answered once NATS has the node's
//!   interest, so a publication made after that answer, on any node, reaches it.
//! - Publishing: the topic's home on the publishing node places the message as on one node,
//!   then sends it ([`NodePublish`], JSON) on the topic's subject; on each node that follows the
//!   topic, the home places it in its own subscriptions' queues with the same msg_id and
//!   pub_time (committed to that node's store first when GD). It never goes to a backlog
//!   there. The backlog (GD messages kept for a topic's first subscription) is for topics
//!   with no subscription on any node: each home tells the other nodes which topics it
//!   follows ([`Wire`]: changes, and its whole list when a node appears or the link comes
//!   back), so the publishing node keeps nothing for a topic another node follows. A
//!   publication racing a first subscription on another node may be kept in the publishing
//!   node's backlog as well as delivered there.
//! - A REST pull subscription lives on the node where it was made; `get-messages` and
//!   unsubscribe for a sub_key this node does not hold ask the other nodes ([`NodeAsk`]), and
//!   the one that holds it answers, so a load balancer may send them anywhere.
//! - Not guaranteed: the publisher's answer covers the publishing node's queues; NATS core
//!   keeps nothing for a node that is away, so a node down or unlinked during a publication
//!   misses it (counted in `pushgate_cluster_missed_while_down_total` on the sender).

use super::{
    home,
    messages::{PublishReq, Question},
    Zato,
};
use crate::engine::shard::Shard;
use ahash::{AHashMap, AHashSet};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::{rc::Rc, sync::Arc};

/// What Zato nodes broadcast to each other: which topics a home shard follows.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Wire {
    /// The sender's shard `shard` follows `topic` now (`on`) or no longer.
    Follow { shard: u16, topic: String, on: bool },
    /// Every topic the sender's shard `shard` follows (replaces what was known of it).
    Follows { shard: u16, topics: Vec<String> },
}

/// The topics homed on this shard that other nodes follow, by source (node, shard).
#[derive(Debug, Default)]
pub struct Followers {
    by_source: AHashMap<(Arc<str>, u16), AHashSet<String>>,
}

impl Followers {
    /// Whether some other node follows `topic`.
    pub fn any(&self, topic: &str) -> bool {
        self.by_source.values().any(|topics| topics.contains(topic))
    }

    fn apply(&mut self, node: &Arc<str>, wire: Wire, mine: impl Fn(&str) -> bool) {
        match wire {
            Wire::Follow { shard, topic, on } if mine(&topic) => {
                let topics = self.by_source.entry((node.clone(), shard)).or_default();
                match on {
                    true => topics.insert(topic),
                    false => topics.remove(&topic),
                };
            }
            Wire::Follow { .. } => {}
            Wire::Follows { shard, topics } => {
                let topics = topics.into_iter().filter(|t| mine(t)).collect();
                self.by_source.insert((node.clone(), shard), topics);
            }
        }
    }

    fn forget(&mut self, node: &Arc<str>) {
        self.by_source.retain(|(source, _), _| source != node);
    }
}

/// A publication sent to the other nodes that follow its topic.
#[derive(Debug, Serialize, Deserialize)]
pub struct NodePublish {
    pub request: PublishReq,
    /// When the publishing node received it, microseconds since the epoch.
    pub pub_time: u64,
}

/// A sub_key operation for the node that holds the subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum NodeAsk {
    Fetch { topic: String, sub_key: String, endpoint: String },
    Unsubscribe { topic: String, sub_key: String, endpoint: String },
}

impl NodeAsk {
    fn question(self) -> (String, Question) {
        match self {
            NodeAsk::Fetch { topic, sub_key, endpoint } => {
                (topic.clone(), Question::Fetch { topic, sub_key, endpoint })
            }
            NodeAsk::Unsubscribe { topic, sub_key, endpoint } => {
                (topic.clone(), Question::Unsubscribe { topic, sub_key, endpoint: Some(endpoint) })
            }
        }
    }
}

/// Asks the other nodes to do `ask` for a sub_key this node does not hold; the answer of the
/// node that holds it (`None`: no node answered with success).
pub async fn elsewhere(zato: &Zato, shard: &Shard, ask: &NodeAsk) -> Option<Value> {
    let link = shard.cluster.as_ref()?;
    let body = serde_json::to_vec(ask).ok()?;
    let (answers, _) = link.query(zato.tag, body.into()).await;
    answers.iter().find_map(|(_, body)| serde_json::from_slice::<Option<Value>>(body).ok()?)
}

/// Another node's [`NodeAsk`]: done on this node's home of the topic; the JSON answer when it
/// succeeded, `null` otherwise (this node does not hold the sub_key, or refuses).
pub async fn answer(zato: &Rc<Zato>, shard: &Rc<Shard>, body: &[u8]) -> Bytes {
    let Ok(ask) = serde_json::from_slice::<NodeAsk>(body) else {
        return Bytes::from_static(b"null");
    };
    let (topic, question) = ask.question();
    let home = zato.home(shard, &topic);
    let done = zato.ask(shard, home, question).await.and_then(Result::ok);
    serde_json::to_vec(&done).map(Bytes::from).unwrap_or_else(|_| Bytes::from_static(b"null"))
}

/// Follows or unfollows `topic` on the cluster after its subscriptions changed on this (its
/// home) shard; for a new follow, what tells when NATS has it.
pub fn sync(zato: &Zato, shard: &Shard, topic: &str) -> Option<flume::Receiver<()>> {
    let link = shard.cluster.as_ref()?;
    let has_subs = zato.topics.borrow().get(topic).is_some_and(|t| !t.subs.is_empty());
    let mut followed = zato.followed.borrow_mut();
    let on = match (has_subs, followed.contains(topic)) {
        (true, false) => followed.insert(topic.to_string()),
        (false, true) => !followed.remove(topic),
        _ => return None,
    };
    let wire = Wire::Follow { shard: shard.id() as u16, topic: topic.to_string(), on };
    broadcast(zato, shard, &wire);
    link.interest(zato.ns, topic, on)
}

/// Tells the other nodes every topic this shard follows: a node appeared, or the link is back.
pub fn tell_follows(zato: &Zato, shard: &Shard) {
    let topics = zato.followed.borrow().iter().cloned().collect();
    broadcast(zato, shard, &Wire::Follows { shard: shard.id() as u16, topics });
}

/// Another node's [`Wire`].
pub fn on_broadcast(zato: &Zato, shard: &Shard, node: &Arc<str>, body: &[u8]) {
    let Ok(wire) = serde_json::from_slice::<Wire>(body) else {
        tracing::warn!("zato: node {node} sent an undecodable broadcast");
        return;
    };
    let mine = |topic: &str| zato.home(shard, topic) == shard.id();
    zato.followers.borrow_mut().apply(node, wire, mine);
}

/// Nodes went: they follow nothing now.
pub fn on_gone(zato: &Zato, gone: &[Arc<str>]) {
    let mut followers = zato.followers.borrow_mut();
    gone.iter().for_each(|node| followers.forget(node));
}

fn broadcast(zato: &Zato, shard: &Shard, wire: &Wire) {
    let Some(link) = &shard.cluster else { return };
    match serde_json::to_vec(wire) {
        Ok(body) => link.broadcast(zato.tag, body.into()),
        Err(e) => tracing::warn!("zato: cannot encode a broadcast: {e}"),
    }
}

/// The topics this shard follows, for the cluster's drift check.
pub fn followed(zato: &Zato) -> Vec<(u16, Box<str>)> {
    zato.followed.borrow().iter().map(|t| (zato.ns, t.as_str().into())).collect()
}

/// Sends a publication placed on this node to the other nodes following its topic.
pub fn forward(zato: &Zato, shard: &Shard, request: PublishReq, pub_time: u64) {
    let Some(link) = &shard.cluster else { return };
    let topic = request.topic.clone();
    match serde_json::to_vec(&NodePublish { request, pub_time }) {
        Ok(body) => link.publish(zato.ns, &topic, body.into(), None),
        Err(e) => tracing::warn!("zato: cannot encode a publication for the cluster: {e}"),
    }
}

/// Another node's publication on a topic this node follows: placed by the topic's home here.
pub fn on_publish(zato: &Rc<Zato>, shard: &Rc<Shard>, topic: &str, body: &Bytes) {
    if zato.home(shard, topic) != shard.id() {
        return;
    }
    let Ok(NodePublish { request, pub_time }) = serde_json::from_slice(body) else {
        tracing::warn!("zato: an undecodable publication from another node on {topic}");
        return;
    };
    let (zato, shard) = (zato.clone(), shard.clone());
    glommio::spawn_local(async move {
        let topic = request.topic.clone();
        if let Err(e) = home::publish_from_node(&zato, &shard, request, pub_time).await {
            tracing::warn!("zato: a publication from another node on {topic} was refused: {e}");
        }
    })
    .detach();
}
