//! What Zato shards say to each other inside the engine's envelopes: requests for a topic's
//! home shard (publish, subscribe, fetch, unsubscribe, admin operations on a topic), requests
//! asked of every shard because only a sub_key is known (admin operations on a subscription,
//! resuming a WSX subscription), a delivery asked of a WSX connection's shard, and the notice
//! a closing WSX connection sends its subscriptions' homes.
//!
//! Every answer is `Option<Result<Value, ZatoError>>`: `None` from a shard that does not hold
//! what was asked for, the JSON answer or the error otherwise.

use super::{error::ZatoError, sub::SubOptions};
use crate::{
    config::zato::TopicConfig,
    engine::{addr::ConnAddr, conn::ConnKey},
};
use bytes::Bytes;
use serde_json::Value;

/// The answer to a [`Question`].
pub type Answer = Option<Result<Value, ZatoError>>;

/// A publication, checked at the edge (credentials, permission, field types and priority).
/// Serialized only between nodes of a cluster.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PublishReq {
    pub topic: String,
    /// The publishing endpoint's name and the `pub=` pattern that let it.
    pub endpoint: String,
    pub pattern: String,
    pub data: String,
    pub data_json: bool,
    pub msg_id: Option<String>,
    pub priority: u8,
    /// Seconds; None: the topic's `limit_message_expiry`.
    pub expiration: Option<u64>,
    pub correl_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub ext_client_id: Option<String>,
    pub has_gd: Option<bool>,
    pub mime_type: String,
    pub ext_pub_time: Option<u64>,
    pub group_id: Option<String>,
    pub position_in_group: u64,
}

/// Who a new subscription delivers to.
#[derive(Debug, Clone)]
pub enum Target {
    /// A REST endpoint (notify or pull).
    Rest,
    /// The WSX connection that asked.
    Wsx { addr: ConnAddr, ext_client_id: Option<String> },
}

/// A new subscription for `endpoint` (its name).
#[derive(Debug, Clone)]
pub struct SubscribeReq {
    pub topic: String,
    pub endpoint: String,
    pub target: Target,
    pub options: SubOptions,
}

/// Admin operations (`/zato/pubsub/admin/...`).
#[derive(Debug, Clone)]
pub enum AdminOp {
    /// Every shard: its topics.
    ListTopics,
    /// The topic's home.
    CreateTopic(TopicConfig),
    UpdateTopic {
        name: String,
        changes: Value,
    },
    DeleteTopic {
        name: String,
    },
    /// The topic's home: drop the messages waiting for a first subscriber.
    ClearTopic {
        name: String,
    },
    /// Every shard: subscriptions (of one topic, if named).
    ListSubs {
        topic: Option<String>,
    },
    /// Every shard, by sub_key (the holder answers).
    GetSub {
        sub_key: String,
    },
    UpdateSub {
        sub_key: String,
        changes: Value,
    },
    DeleteSub {
        sub_key: String,
    },
    Browse(Browse),
    GetMsg {
        sub_key: String,
        msg_id: String,
    },
    UpdateMsg {
        sub_key: String,
        msg_id: String,
        changes: Value,
    },
    DeleteMsg {
        sub_key: String,
        msg_id: String,
    },
    ClearQueue {
        sub_key: String,
    },
}

/// A page of a subscription's queue, without consuming it.
#[derive(Debug, Clone)]
pub struct Browse {
    pub sub_key: String,
    /// Only GD (true) or in-RAM (false) messages; None: both.
    pub has_gd: Option<bool>,
    /// A substring of the first 64 bytes of the data.
    pub query: Option<String>,
    /// Pages count from 1.
    pub page: usize,
    pub page_size: usize,
}

/// A question to one shard, or to all.
#[derive(Debug, Clone)]
pub enum Question {
    Publish(PublishReq),
    Subscribe(SubscribeReq),
    /// `endpoint` None: the admin, who may unsubscribe anyone.
    Unsubscribe {
        topic: String,
        sub_key: String,
        endpoint: Option<String>,
    },
    /// Pull: take the messages waiting for `sub_key`.
    Fetch {
        topic: String,
        sub_key: String,
        endpoint: String,
    },
    /// Every shard: attach the WSX connection `addr` of `endpoint` to its subscription.
    Resume {
        sub_key: String,
        endpoint: String,
        addr: ConnAddr,
    },
    Admin(AdminOp),
    /// To a WSX connection's shard: queue this frame if the connection is still open.
    WsxDeliver {
        key: ConnKey,
        frame: Bytes,
    },
}

/// A notice that needs no answer.
#[derive(Debug, Clone)]
pub enum Tell {
    /// To a subscription's home: its WSX connection `addr` closed.
    WsxGone { sub_key: String, addr: ConnAddr },
}
