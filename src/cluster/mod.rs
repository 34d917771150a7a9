//! Cluster mode: several nodes behave as one, linked through NATS. A node hears only the topics
//! it has subscribers for (one NATS subscription per topic with local subscribers on any
//! shard), so a publish to a topic nobody on a node follows costs that node nothing; dialects
//! replicate the state that must be exact cluster-wide (presence, counts, sessions) as small
//! broadcasts, and answer queries (REST subscriber counts, channel lists) by asking the other
//! nodes.
//!
//! The NATS client (async-nats) runs on a thread of its own with its own runtime (`node`). The
//! shards talk to it through bounded channels (flume: sent from any thread, awaited on a glommio
//! task), never waiting: a full channel drops the message and counts it.
//!
//! - `subject`: the subject of every kind of message, with topic names encoded as tokens.
//! - `link`: a shard's side (publish, interest, broadcast, query, reply) and what it receives.
//! - `node`: the thread: connection, subscriptions, heartbeats, queries.
//! - `interest`: which topics this node subscribes to, from its shards' reports.
//! - `board`: the cluster's counters for `/metrics`.
//!
//! `docs/design/why-nats-interest-and-replicated-presence.md` argues the choices.

pub mod board;
pub mod interest;
pub mod link;
pub mod node;
pub mod subject;

use bytes::Bytes;
use std::sync::Arc;

/// What a shard asks of the cluster thread.
#[derive(Debug)]
pub enum ToCluster {
    /// A topic's frame, published by a client or the REST API of this node; `exclude` is the
    /// client id of a publisher's connection on another node.
    Publish { ns: u16, topic: Box<str>, frame: Bytes, exclude: Option<Box<str>> },
    /// Shard `shard` has subscribers of the topic now (`on`) or no longer. `ready` is told
    /// once NATS has the node's subscription (or at once if the node already had it).
    Interest { shard: usize, ns: u16, topic: Box<str>, on: bool, ready: Option<flume::Sender<()>> },
    /// Shard `shard` has `count` topics whose sorted names hash to `hash` (drift check).
    Digest { shard: usize, count: u64, hash: u64 },
    /// Every topic of shard `shard` (the answer to `FromCluster::Resync`).
    Topics { shard: usize, topics: Vec<(u16, Box<str>)> },
    /// A dialect's message for every other node.
    Broadcast { tag: u8, body: Bytes },
    /// A dialect's question to every other node; the answers go to `shard` as `id`.
    Query { shard: usize, id: u64, tag: u8, body: Bytes },
    /// This node's answer to a question from another node.
    Reply { inbox: String, body: Bytes },
}

/// What the cluster thread tells a shard.
#[derive(Debug, Clone)]
pub enum FromCluster {
    /// A frame another node published on a topic this node follows; `exclude` is the client id
    /// of the publisher's connection, if it must not receive it.
    Publish { ns: u16, topic: Arc<str>, frame: Bytes, exclude: Option<Arc<str>> },
    /// A dialect's broadcast from node `node`.
    Broadcast { tag: u8, node: Arc<str>, body: Bytes },
    /// A dialect's question from node `node`, to be answered with `ToCluster::Reply`.
    Question { tag: u8, node: Arc<str>, inbox: String, body: Bytes },
    /// The answers to this shard's query `id` (`complete`: every live node answered).
    Answers { id: u64, answers: Vec<(Arc<str>, Bytes)>, complete: bool },
    /// Nodes came (`up`) or went (timed out): the live nodes are `live`.
    Nodes { up: Vec<Arc<str>>, gone: Vec<Arc<str>>, live: Vec<Arc<str>> },
    /// The link to NATS came up (`true`) or went down.
    Link { up: bool },
    /// Send your full topic list (`ToCluster::Topics`): the digest did not match.
    Resync,
}
