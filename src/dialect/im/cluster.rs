//! Cluster mode for the IM dialect: what IM nodes say to each other, as protobuf (prost
//! derives, no protoc) inside the cluster's broadcasts and questions.
//!
//! - The push API (`SendMsg`, `KickUserConn`, `GetUserConn`) applies its filter on this node
//!   and asks every other node to apply it too ([`NodeMatch`]), then merges what they matched,
//!   as xxim's API pushes to every gateway pod and merges the answers. A user is reported
//!   failed only if no node that answered has a matching connection; an answer some node
//!   missed is partial (`X-Pushgate-Partial: true` over HTTP, the same trailing metadata over
//!   gRPC, counted in `/metrics`).
//! - The duplicate-device rule across nodes: the user's home shard broadcasts each new
//!   connection ([`NodeConnected`]); on every other node the user's home shard closes its own
//!   connections of that device that are older, by (connect time, node name), so of two
//!   connections of one device on two nodes exactly the newest stays, whichever message
//!   arrives first.

use super::{
    home::Registered,
    messages::{Action, Filter, Format},
    push::{self, Listed},
    Im,
};
use crate::engine::{bus::Notice, conn::Close, shard::Shard};
use bytes::Bytes;
use prost::Message;
use std::{rc::Rc, sync::Arc};

/// "Apply this filter to your connections": the push API's question to every other node.
#[derive(Clone, PartialEq, Message)]
pub struct NodeMatch {
    #[prost(string, repeated, tag = "1")]
    pub user_ids: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub platforms: Vec<String>,
    #[prost(string, repeated, tag = "3")]
    pub devices: Vec<String>,
    /// 0 list, 1 send `frame`, 2 kick.
    #[prost(int32, tag = "4")]
    pub action: i32,
    /// The encoded WebSocket frame to queue (send only): the same bytes on every node.
    #[prost(bytes = "bytes", tag = "5")]
    pub frame: Bytes,
    /// 0 count, 1 proto, 2 JSON.
    #[prost(int32, tag = "6")]
    pub format: i32,
}

/// A node's answer to [`NodeMatch`].
#[derive(Clone, PartialEq, Message)]
pub struct NodeMatched {
    #[prost(uint64, tag = "1")]
    pub count: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub list: Vec<u8>,
    /// The listed users with no matching connection on that node.
    #[prost(string, repeated, tag = "3")]
    pub missing: Vec<String>,
}

/// "A connection of this device opened at `connected_ms`": closes older ones elsewhere.
#[derive(Clone, PartialEq, Message)]
pub struct NodeConnected {
    #[prost(string, tag = "1")]
    pub user: String,
    #[prost(string, tag = "2")]
    pub platform: String,
    #[prost(string, tag = "3")]
    pub device: String,
    #[prost(uint64, tag = "4")]
    pub connected_ms: u64,
}

impl NodeMatch {
    pub fn new(filter: &Filter, action: &Action, format: Format) -> NodeMatch {
        let (action, frame) = match action {
            Action::List => (0, Bytes::new()),
            Action::Send(frame) => (1, frame.clone()),
            Action::Kick => (2, Bytes::new()),
        };
        let format = match format {
            Format::Count => 0,
            Format::Proto => 1,
            Format::Json => 2,
        };
        NodeMatch {
            user_ids: filter.user_ids.clone(),
            platforms: filter.platforms.clone(),
            devices: filter.devices.clone(),
            action,
            frame,
            format,
        }
    }

    /// The question in the dialect's own terms; `None` for an action or format not known.
    pub fn open(self) -> Option<(Filter, Action, Format)> {
        let action = match self.action {
            0 => Action::List,
            1 => Action::Send(self.frame),
            2 => Action::Kick,
            _ => return None,
        };
        let format = match self.format {
            0 => Format::Count,
            1 => Format::Proto,
            2 => Format::Json,
            _ => return None,
        };
        let filter =
            Filter { user_ids: self.user_ids, platforms: self.platforms, devices: self.devices };
        Some((filter, action, format))
    }
}

/// Asks the other nodes to apply `filter` and merges their matches into `listed` (this node's).
pub async fn merge_nodes(
    im: &Im,
    shard: &Rc<Shard>,
    filter: &Filter,
    action: &Action,
    format: Format,
    listed: &mut Listed,
) {
    let Some(link) = &shard.cluster else { return };
    if link.live_nodes().is_empty() && link.is_up() {
        return;
    }
    let body = NodeMatch::new(filter, action, format).encode_to_vec();
    let (answers, complete) = link.query(im.tag, body.into()).await;
    listed.partial = !complete;
    for (node, body) in answers {
        let Ok(matched) = NodeMatched::decode(body) else {
            tracing::warn!("im: node {node} answered a push with an undecodable body");
            listed.partial = true;
            continue;
        };
        push::append(listed, matched.count as usize, &matched.list, format);
        listed.missing.retain(|user| matched.missing.contains(user));
    }
}

/// Answers another node's [`NodeMatch`] from this node's connections only.
pub async fn answer(im: &Rc<Im>, shard: &Rc<Shard>, body: &[u8]) -> Bytes {
    let Some((filter, action, format)) = NodeMatch::decode(body).ok().and_then(NodeMatch::open)
    else {
        return Bytes::new();
    };
    let listed = push::matching_here(im, shard, &filter, action, format).await;
    let matched =
        NodeMatched { count: listed.count as u64, list: listed.list, missing: listed.missing };
    matched.encode_to_vec().into()
}

/// Home shard of `user`: tells the other nodes that `registered` opened.
pub fn connected(shard: &Shard, user: &str, registered: &Registered, im: &Im) {
    let Some(link) = &shard.cluster else { return };
    let told = NodeConnected {
        user: user.to_string(),
        platform: registered.param.platform.clone(),
        device: registered.param.device_id.clone(),
        connected_ms: registered.connected_ms,
    };
    link.broadcast(im.tag, told.encode_to_vec().into());
}

/// Another node's [`NodeConnected`]: the user's home shard here closes this node's older
/// connections of that device.
pub fn on_broadcast(im: &Im, shard: &Rc<Shard>, node: &Arc<str>, body: &[u8]) {
    let Some(link) = &shard.cluster else { return };
    let Ok(told) = NodeConnected::decode(body) else {
        tracing::warn!("im: node {node} sent an undecodable broadcast");
        return;
    };
    if im.home_of(shard, &told.user) != shard.id() {
        return;
    }
    let theirs = (told.connected_ms, &**node);
    let mut older = Vec::new();
    if let Some(conns) = im.home.borrow().users.get(&told.user) {
        let same_device =
            |r: &&Registered| r.param.platform == told.platform && r.param.device_id == told.device;
        for r in conns.iter().filter(same_device) {
            if (r.connected_ms, &**link.node()) < theirs {
                older.push(r.addr);
            }
        }
    }
    for addr in older {
        let close = Close::fixed(1000, "duplicate connection");
        shard.tell(usize::from(addr.shard), Notice::Close { keys: vec![addr.key], close });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_comes_back_as_it_was_asked() {
        let filter = Filter {
            user_ids: vec!["a".into()],
            platforms: vec!["ios".into()],
            devices: Vec::new(),
        };
        let frame = Bytes::from_static(b"\x82\x01x");
        let asked = NodeMatch::new(&filter, &Action::Send(frame.clone()), Format::Proto);
        let decoded = NodeMatch::decode(&asked.encode_to_vec()[..]).expect("decodes");
        let (f, action, format) = decoded.open().expect("known action");
        assert_eq!(f, filter);
        assert!(matches!(action, Action::Send(b) if b == frame));
        assert_eq!(format, Format::Proto);
        let unknown = NodeMatch { action: 9, ..NodeMatch::default() };
        assert!(unknown.open().is_none(), "an unknown action is refused, not guessed");
    }
}
