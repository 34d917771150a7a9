//! Pusher Channels protocol 7 as a dialect: the connect URL and admission (`url`, `admit`),
//! client messages (`inbound`, `session`), server messages (`outbound`), channel names and
//! authorization (`channel`, `auth`), socket ids (`socket_id`), the close codes (`close`),
//! presence, cache, counts and watchlists on home shards (`home`, `home_state`, `presence`,
//! `watch`, `watchlist`), the signed REST API (`rest`), what shards say to each other
//! (`messages`) and, in cluster mode, what nodes say to each other (`wire`), what this node
//! holds of theirs (`replica`) and the glue that turns both into events (`cluster`). Apps are
//! the engine's namespaces: app `i` is namespace `i`.

pub mod admit;
pub mod auth;
pub mod channel;
pub mod close;
pub mod cluster;
pub mod home;
pub mod home_state;
pub mod identity;
pub mod inbound;
pub mod messages;
pub mod outbound;
pub mod presence;
pub mod quota;
pub mod replica;
pub mod rest;
pub mod session;
pub mod socket_id;
pub mod url;
pub mod watch;
pub mod watchlist;
pub mod wire;

use crate::{
    config::{AppConfig, Config},
    engine::{
        addr::{ConnAddr, Scramble},
        bus::{Answer, Envelope, Notice, PubItem, Query},
        conn::{queue::Frame, Close, ConnEntry, ConnKey, DialectTag},
        seam::{Admission, Dialect, Gone, LocalFuture, Policy},
        shard::Shard,
    },
    hook::event::{EmqxEvent, EmqxKind},
    rest::{Reply, Routes},
    ws::{frame, handshake::Upgrade},
};
use ahash::AHashMap;
use close::CloseCode;
use home_state::HomeState;
use identity::Identities;
use messages::{Question, Reply as Answered, Tell};
use socket_id::SocketId;
use std::{
    cell::RefCell,
    net::SocketAddr,
    rc::Rc,
    sync::{atomic::AtomicU64, Arc},
};

/// What every shard's Pusher dialect shares, built once at start.
pub struct Shared {
    /// Open connections per app over all shards (for `max_connections`), touched on connect
    /// and close only.
    pub app_conns: Vec<AtomicU64>,
    /// Channels with subscribers per app over all shards (for `max_channels_per_app`), touched
    /// by a channel's home shard when it appears or disappears app-wide only.
    pub app_channels: Vec<AtomicU64>,
    /// The key socket ids are scrambled with (random per process).
    pub scramble: Scramble,
}

impl Shared {
    pub fn new(config: &Config) -> Arc<Shared> {
        let app_conns = config.apps.iter().map(|_| AtomicU64::new(0)).collect();
        let app_channels = config.apps.iter().map(|_| AtomicU64::new(0)).collect();
        Arc::new(Shared { app_conns, app_channels, scramble: Scramble::new(rand::random()) })
    }
}

/// The Pusher dialect on one shard: its side tables keyed by connection, and the home-shard
/// state of the channels and users hashed to this shard.
pub struct Pusher {
    pub tag: DialectTag,
    pub config: Arc<Config>,
    pub shared: Arc<Shared>,
    /// Signed-in users and presence memberships of this shard's connections.
    pub identities: RefCell<Identities>,
    /// Presence, cache, counts and watchlists of what is homed here.
    pub home: RefCell<HomeState>,
    /// Client events: per connection that sent any, the second of its rate window and the
    /// count in it.
    pub rates: RefCell<AHashMap<ConnKey, (u32, u16)>>,
    /// Channels per app: the ones homed here, and this shard's claims (`quota`).
    pub quota: RefCell<quota::Quota>,
    /// Cluster mode: the other nodes' state of what is homed here.
    pub cluster: RefCell<cluster::ClusterSide>,
}

impl Pusher {
    pub fn app(&self, app: u16) -> &AppConfig {
        &self.config.apps[usize::from(app)]
    }

    /// The socket id of connection `key` of `shard`.
    pub fn socket_id(&self, shard: &Shard, key: ConnKey) -> SocketId {
        SocketId::of(ConnAddr::new(shard.id(), key), self.shared.scramble)
    }

    /// The connection a socket id names, if it names one of ours.
    pub fn addr_of(&self, socket: SocketId) -> Option<ConnAddr> {
        socket.addr(self.shared.scramble)
    }

    /// Asks `peer`'s Pusher dialect (this shard's when `peer` is this one).
    pub async fn ask(
        &self,
        shard: &Rc<Shard>,
        peer: usize,
        question: Question,
    ) -> Option<Answered> {
        let query = Query::Dialect(Envelope::new(self.tag, question));
        match shard.ask(peer, query).await? {
            Answer::Dialect(envelope) => envelope.open::<Answered>(),
            Answer::Stats(_) => None,
        }
    }

    /// Asks every shard's Pusher dialect.
    pub async fn ask_all(&self, shard: &Rc<Shard>, question: Question) -> Vec<Answered> {
        let tag = self.tag;
        let answers = shard.ask_all(|| Query::Dialect(Envelope::new(tag, question.clone()))).await;
        answers
            .into_iter()
            .filter_map(|a| match a {
                Answer::Dialect(envelope) => envelope.open::<Answered>(),
                Answer::Stats(_) => None,
            })
            .collect()
    }

    /// Tells `peer`'s Pusher dialect.
    pub fn tell(&self, shard: &Rc<Shard>, peer: usize, tell: Tell) {
        shard.tell(peer, Notice::Dialect(Envelope::new(self.tag, tell)));
    }

    /// Whether the homes of `app`'s channels need subscriber counts: for `subscription_count`
    /// events, or for occupancy and count webhooks.
    pub fn needs_counts(&self, shard: &Shard, app: u16) -> bool {
        self.app(app).enable_subscription_count
            || ["channel_occupied", "channel_vacated", "subscription_count"]
                .iter()
                .any(|name| shard.hooks.wants_pusher(app, name))
    }

    /// Subscribes a connection and tells the channel's home, when anything needs counts.
    pub fn subscribe(&self, shard: &Rc<Shard>, key: ConnKey, app: u16, channel: &str) -> bool {
        let added = shard.subscribe(key, channel);
        if added {
            self.count_change(shard, app, channel, 1);
        }
        added
    }

    /// Unsubscribes a connection; false if it was not subscribed.
    pub fn unsubscribe(&self, shard: &Rc<Shard>, key: ConnKey, app: u16, channel: &str) -> bool {
        let removed = shard.unsubscribe(key, channel);
        if removed {
            self.count_change(shard, app, channel, -1);
            quota::settle(self, shard, app, channel, None);
        }
        removed
    }

    /// Tells the channel's home about a subscriber change, when anything needs counts.
    pub fn count_change(&self, shard: &Rc<Shard>, app: u16, channel: &str, delta: i64) {
        if self.needs_counts(shard, app) {
            let tell = Tell::CountChange { app, channel: channel.into(), delta };
            self.tell(shard, shard.home_of(app, channel), tell);
        }
    }

    /// Counts a client event; false when it passes the app's limit in the current second.
    pub fn allow_client_event(&self, key: ConnKey, now: u32, per_second: u32) -> bool {
        let mut rates = self.rates.borrow_mut();
        let (second, count) = rates.entry(key).or_insert((now, 0));
        if *second != now {
            *second = now;
            *count = 0;
        }
        *count = count.saturating_add(1);
        u32::from(*count) <= per_second
    }
}

/// The dialect object each shard holds: a handle on that shard's Pusher state.
#[derive(Clone)]
pub struct PusherDialect(pub Rc<Pusher>);

impl PusherDialect {
    pub fn new(tag: DialectTag, config: Arc<Config>, shared: Arc<Shared>) -> PusherDialect {
        PusherDialect(Rc::new(Pusher {
            tag,
            config,
            shared,
            identities: RefCell::default(),
            home: RefCell::default(),
            rates: RefCell::default(),
            quota: RefCell::default(),
            cluster: RefCell::default(),
        }))
    }
}

impl Dialect for PusherDialect {
    fn name(&self) -> &'static str {
        "pusher"
    }

    fn admit<'a>(
        &'a self,
        shard: &'a Rc<Shard>,
        upgrade: &'a Upgrade,
        _peer: Option<SocketAddr>,
    ) -> LocalFuture<'a, Admission> {
        let admission = admit::admit(&self.0, shard, upgrade);
        Box::pin(std::future::ready(admission))
    }

    fn open(&self, shard: &Rc<Shard>, key: ConnKey, _upgrade: &Upgrade, _: Option<SocketAddr>) {
        session::open(&self.0, shard, key);
    }

    fn on_message(
        &self,
        shard: &Rc<Shard>,
        key: ConnKey,
        message: frame::Message<'_>,
    ) -> Result<(), Close> {
        session::on_message(&self.0, shard, key, message)
    }

    fn on_close(&self, shard: &Rc<Shard>, key: ConnKey, gone: &Gone) {
        session::on_close(&self.0, shard, key, gone);
    }

    fn policy(&self) -> Policy {
        let config = &self.0.config;
        Policy {
            idle_secs: u32::try_from(config.activity_timeout).unwrap_or(u32::MAX),
            pong_secs: u32::try_from(config.pong_timeout).unwrap_or(u32::MAX),
            ping: Frame::new(frame::text(&outbound::ping_pong("pusher:ping"))),
            timeout: CloseCode::PongTimeout.into(),
            over_capacity: CloseCode::OverCapacity.into(),
            shutdown: CloseCode::Reconnect.into(),
            deadlines: config.apps.iter().any(|a| a.user_authentication_timeout_secs > 0),
        }
    }

    /// A connection of an app that requires sign-in is closed with 4009 if it has not signed
    /// in within `user_authentication_timeout_secs`.
    fn deadline(&self, key: ConnKey, conn: &ConnEntry, now: u32) -> Option<Close> {
        let within = self.0.app(conn.ns).user_authentication_timeout_secs;
        let late = within > 0 && now.saturating_sub(conn.opened) >= within as u32;
        (late && self.0.identities.borrow().user(key).is_none())
            .then(|| CloseCode::Unauthorized.into())
    }

    fn on_notice(&self, shard: &Rc<Shard>, notice: Envelope) {
        if let Some(tell) = notice.open::<Tell>() {
            home::on_notice(&self.0, shard, tell);
        }
    }

    fn answer(&self, shard: &Rc<Shard>, question: Envelope) -> LocalFuture<'static, Envelope> {
        let (pusher, shard, tag) = (self.0.clone(), shard.clone(), self.0.tag);
        Box::pin(async move {
            match question.open::<Question>() {
                Some(question) => Envelope::new(tag, home::answer(&pusher, &shard, question).await),
                None => Envelope::new(tag, ()),
            }
        })
    }

    fn delivered(&self, shard: &Rc<Shard>, _ns: u16, item: &PubItem, receivers: &[ConnKey]) {
        let from = item.exclude.map_or_else(
            || "http_api".to_string(),
            |addr| SocketId::of(addr, self.0.shared.scramble).to_string(),
        );
        let event = EmqxEvent {
            topic: Some(item.topic.to_string()),
            payload: outbound::event_data(&item.frame),
            from_client_id: Some(from),
            delivered_to: receivers
                .iter()
                .map(|&key| (self.0.socket_id(shard, key).to_string(), None))
                .collect(),
            ..EmqxEvent::new(EmqxKind::MessageDelivered, String::new())
        };
        shard.hooks.send(crate::hook::event::HookMsg::Emqx(event));
    }

    fn client_id(&self, shard: &Shard, key: ConnKey) -> String {
        self.0.socket_id(shard, key).to_string()
    }

    /// A socket id named by a REST publish on another node.
    fn addr_of_client(&self, id: &str) -> Option<ConnAddr> {
        SocketId::parse(id).and_then(|s| self.0.addr_of(s))
    }

    fn on_cluster(&self, shard: &Rc<Shard>, node: &Arc<str>, body: bytes::Bytes) {
        cluster::on_broadcast(&self.0, shard, node, &body);
    }

    fn answer_node(
        &self,
        shard: &Rc<Shard>,
        _node: &Arc<str>,
        body: bytes::Bytes,
    ) -> LocalFuture<'static, bytes::Bytes> {
        let (pusher, shard) = (self.0.clone(), shard.clone());
        Box::pin(async move { cluster::answer(&pusher, &shard, &body).await })
    }

    fn on_nodes(&self, shard: &Rc<Shard>, up: &[Arc<str>], gone: &[Arc<str>], _: &[Arc<str>]) {
        cluster::on_nodes(&self.0, shard, up, gone);
    }

    fn on_link(&self, shard: &Rc<Shard>, up: bool) {
        cluster::on_link(&self.0, shard, up);
    }
}

impl Routes for PusherDialect {
    /// `[prefix]/apps/{app_id}/...`, and `[prefix]/users/{id}/terminate_connections`.
    fn serves(&self, path: &str) -> bool {
        rest::serves(path)
    }

    fn call(
        &self,
        shard: Rc<Shard>,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> LocalFuture<'static, Reply> {
        let pusher = self.0.clone();
        Box::pin(async move { rest::call(&pusher, &shard, request).await })
    }
}
