//! The seam between the engine and the protocols: the [`Dialect`] trait. The engine calls a
//! connection's dialect for each complete message, when the connection goes, for its keepalive
//! policy, and for the dialect's own cross-shard messages; the edge calls `admit` before the
//! 101. One dialect object per shard owns that dialect's per-shard state (side tables keyed by
//! connection, home-shard state), so the engine's slab entry holds no protocol field.
//! `docs/design/why-one-engine-many-dialects.md` explains the choice and how to add one.

use super::{
    addr::ConnAddr,
    bus::{Envelope, PubItem},
    conn::{queue::Frame, Close, ConnEntry, ConnKey},
    shard::Shard,
};
use crate::ws::{frame::Message, handshake::Upgrade};
use bytes::Bytes;
use std::{future::Future, net::SocketAddr, pin::Pin, rc::Rc, sync::Arc};

/// A boxed future that stays on its shard.
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What a dialect says to a WebSocket upgrade.
#[derive(Debug)]
pub enum Admission {
    /// Accept it into namespace `ns`; `headers` are added to the 101 answer.
    Accept { ns: u16, headers: Vec<(String, String)> },
    /// Refuse it before the 101 with an HTTP status and a body. `why` is the reason an
    /// EMQX-style `client.connack` hook reports (`not_authorized`, `server_unavailable`...).
    Refuse { status: u16, body: String, why: &'static str },
    /// Answer 101, send `frames` (already encoded), then close with `close`: protocols whose
    /// clients only understand refusals made inside the WebSocket (Pusher's 4001...).
    RefuseInside { frames: Vec<u8>, close: Close, why: &'static str },
}

/// How the engine treats a dialect's connections: the once-a-second sweep's keepalive, and the
/// closes the engine itself decides (silence, slow reading, shutdown).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Seconds of client silence before the server pings (0: never ping).
    pub idle_secs: u32,
    /// Seconds after an unanswered ping before the connection is closed with `timeout`.
    pub pong_secs: u32,
    /// The ping to send (a protocol message or a WebSocket ping frame).
    pub ping: Frame,
    pub timeout: Close,
    /// The close of a connection whose outbound queue passed `outbound_queue_bytes`.
    pub over_capacity: Close,
    /// The close every connection gets when the server shuts down.
    pub shutdown: Close,
    /// Call [`Dialect::deadline`] for every connection on each sweep.
    pub deadlines: bool,
}

/// What the engine knows about a connection that is going away.
#[derive(Debug, Clone)]
pub struct Gone {
    pub ns: u16,
    /// Our close, if we closed it (None: the client vanished or closed first).
    pub close: Option<Close>,
    /// Shard clock second it opened.
    pub opened: u32,
}

/// A protocol at the edge. Implementations do no socket I/O: they queue frames through the
/// shard and send cross-shard messages through it.
pub trait Dialect {
    /// Short name for logs and metrics (`pusher`, `gateway`).
    fn name(&self) -> &'static str;

    /// Decides on an upgrade before anything is answered. May wait (a token check upstream).
    fn admit<'a>(
        &'a self,
        shard: &'a Rc<Shard>,
        upgrade: &'a Upgrade,
        peer: Option<SocketAddr>,
    ) -> LocalFuture<'a, Admission>;

    /// The shard is up (its rings listen, its sweep runs): start the dialect's own background
    /// work, such as loading durable state and the tasks that deliver it. Called once.
    fn start(&self, _shard: &Rc<Shard>) {}

    /// The connection exists and its 101 is written: queue the opening frames.
    fn open(&self, shard: &Rc<Shard>, key: ConnKey, upgrade: &Upgrade, peer: Option<SocketAddr>);

    /// One complete client message. `Err` closes the connection with that close.
    fn on_message(
        &self,
        shard: &Rc<Shard>,
        key: ConnKey,
        message: Message<'_>,
    ) -> Result<(), Close>;

    /// The connection is going: called while its slab entry and subscriptions still exist.
    fn on_close(&self, shard: &Rc<Shard>, key: ConnKey, gone: &Gone);

    /// How the engine treats this dialect's connections.
    fn policy(&self) -> Policy;

    /// A per-connection deadline checked by the sweep when `Policy::deadlines` is set
    /// (a sign-in due by a time): `Some` closes the connection.
    fn deadline(&self, _key: ConnKey, _conn: &ConnEntry, _now: u32) -> Option<Close> {
        None
    }

    /// A notice from another shard (or this one) in this dialect's envelope.
    fn on_notice(&self, shard: &Rc<Shard>, notice: Envelope);

    /// A question from another shard (or this one); the answer goes back in an envelope.
    fn answer(&self, shard: &Rc<Shard>, question: Envelope) -> LocalFuture<'static, Envelope>;

    /// The receivers on this shard of an item published with `report` set.
    fn delivered(&self, _shard: &Rc<Shard>, _ns: u16, _item: &PubItem, _receivers: &[ConnKey]) {}

    /// The id hooks and logs use for a connection of this dialect (a socket id, a sid).
    fn client_id(&self, shard: &Shard, key: ConnKey) -> String;

    /// Cluster mode: another node's publication on `topic` of this dialect's namespace (every
    /// shard hears it). `false` (the default): the engine delivers it to the topic's
    /// subscribers on this shard; `true`: the dialect took it.
    fn on_node_publish(&self, _shard: &Rc<Shard>, _topic: &str, _body: &Bytes) -> bool {
        false
    }

    /// Cluster mode: the connection on this node a client id (from `client_id`'s space, as
    /// a publisher named it) belongs to, if any.
    fn addr_of_client(&self, _id: &str) -> Option<ConnAddr> {
        None
    }

    /// Cluster mode: topics this shard follows for the dialect beyond the engine's topic
    /// index (they count in the interest drift check and its resync).
    fn node_topics(&self, _shard: &Shard) -> Vec<(u16, Box<str>)> {
        Vec::new()
    }

    /// Cluster mode: a broadcast of this dialect from node `node` (every shard hears it).
    fn on_cluster(&self, _shard: &Rc<Shard>, _node: &Arc<str>, _body: Bytes) {}

    /// Cluster mode: a question of this dialect from node `node`; the answer's body.
    fn answer_node(
        &self,
        _shard: &Rc<Shard>,
        _node: &Arc<str>,
        _body: Bytes,
    ) -> LocalFuture<'static, Bytes> {
        Box::pin(std::future::ready(Bytes::new()))
    }

    /// Cluster mode: nodes came or went (every shard hears it); `live` are the others alive.
    fn on_nodes(
        &self,
        _shard: &Rc<Shard>,
        _up: &[Arc<str>],
        _gone: &[Arc<str>],
        _live: &[Arc<str>],
    ) {
    }

    /// Cluster mode: the link to the other nodes came up or went down (every shard hears it).
    fn on_link(&self, _shard: &Rc<Shard>, _up: bool) {}
}
