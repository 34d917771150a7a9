//! The APISIX `ht-ws-msg-pub` / `ht-msg-sub` + API7 Push Gateway protocol (seed 000) as a
//! dialect: JSON frames `{uri, header, body}` routed by `uri` (`table`) to an action
//! (`action`) through an upstream (`upstream`: length-prefixed TCP JSON or HTTP, through the
//! hook shard), in order per connection (`session`); frames read and answered as the original
//! does (`request`, `outbound`); pushes to topics and to one connection's `sig_<sid>` (`sid`,
//! `publish`), `GET /list/topics` (`rest`), its metrics (`metrics`) and what its shards ask
//! each other (`messages`). The gateway is one namespace of the engine.

pub mod action;
pub mod messages;
pub mod metrics;
pub mod outbound;
pub mod publish;
pub mod request;
pub mod rest;
pub mod session;
pub mod sid;
pub mod table;
pub mod upstream;

use crate::{
    config::Config,
    engine::{
        addr::{ConnAddr, Scramble},
        bus::{Answer, Envelope, Query},
        conn::{Close, ConnKey, DialectTag},
        seam::{Admission, Dialect, Gone, LocalFuture, Policy},
        shard::Shard,
    },
    rest::{Reply, Routes},
    upstream::grpc::{
        pushserverpb::MSG_PATH,
        server::{H2Reply, H2Request},
    },
    ws::{frame, handshake::Upgrade},
};
use ahash::AHashMap;
use messages::{Question, Reply as Answered};
use metrics::{Metrics, Snapshot};
use request::Limits;
use session::Session;
use sid::Sids;
use std::{
    cell::{Cell, RefCell},
    net::{IpAddr, SocketAddr},
    rc::Rc,
    sync::Arc,
};
use table::{RouteTable, Upstream};

/// What every shard's gateway shares, built once at start.
pub struct Shared {
    pub sids: Sids,
    /// `GatewayIP` in `gateway-metadata`, and the first part of sids.
    pub gateway_ip: String,
    pub routes: RouteTable,
}

impl Shared {
    pub fn new(config: &Config) -> Arc<Shared> {
        let gateway_ip = gateway_ip(config);
        Arc::new(Shared {
            sids: Sids::new(gateway_ip.clone(), Scramble::new(rand::random())),
            gateway_ip,
            routes: RouteTable::new(&config.gateway),
        })
    }
}

/// The configured gateway IP, else the listen address, else the address of the interface
/// that routes out (a connected UDP socket sends nothing), else loopback.
fn gateway_ip(config: &Config) -> String {
    if !config.gateway.gateway_ip.is_empty() {
        return config.gateway.gateway_ip.clone();
    }
    if let Ok(ip) = config.host.parse::<IpAddr>() {
        if !ip.is_unspecified() {
            return ip.to_string();
        }
    }
    let routed = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|socket| {
        socket.connect("192.0.2.1:9")?;
        socket.local_addr()
    });
    routed.map_or_else(|_| "127.0.0.1".into(), |addr| addr.ip().to_string())
}

/// The gateway on one shard: its side table of sessions and its counters.
pub struct Gateway {
    pub tag: DialectTag,
    /// The engine namespace of the gateway's topics.
    pub ns: u16,
    pub config: Arc<Config>,
    pub shared: Arc<Shared>,
    pub sessions: RefCell<AHashMap<ConnKey, Session>>,
    pub metrics: RefCell<Metrics>,
    /// Per route: the next pick in its upstream's weighted order (HTTP routes).
    picks: RefCell<Vec<usize>>,
    /// The original's `_uuid` counter (wraps at 2^30).
    uuid: Cell<u32>,
}

impl Gateway {
    /// The sid of connection `key`.
    pub fn sid(&self, shard: &Shard, key: ConnKey) -> String {
        self.shared.sids.of(ConnAddr::new(shard.id(), key))
    }

    /// The `sig_<sid>` topic of connection `key`.
    pub fn sig(&self, shard: &Shard, key: ConnKey) -> String {
        self.shared.sids.topic(ConnAddr::new(shard.id(), key))
    }

    /// The sid, `sig_<sid>` and a fresh `_uuid` (`<sid>_<n>`) of a request of `key`.
    pub fn identity(&self, shard: &Shard, key: ConnKey) -> (String, String, String) {
        let sid = self.sid(shard, key);
        let n = if self.uuid.get() >= 1 << 30 { 1 } else { self.uuid.get() + 1 };
        self.uuid.set(n);
        let sig = format!("{}{sid}", sid::SIG);
        let uuid = format!("{sid}_{n}");
        (sid, sig, uuid)
    }

    pub fn limits(&self) -> Limits {
        let g = &self.config.gateway;
        Limits { max_topics: g.max_topics_per_connection, max_topic_len: g.max_topic_len }
    }

    /// The next node of route `route` (weighted round robin, per shard).
    pub fn pick(&self, route: usize, upstream: &Upstream) -> String {
        let mut picks = self.picks.borrow_mut();
        if picks.len() <= route {
            picks.resize(route + 1, 0);
        }
        let n = picks[route];
        picks[route] = n.wrapping_add(1);
        upstream.picks.get(n % upstream.picks.len().max(1)).cloned().unwrap_or_default()
    }

    /// Asks every shard's gateway.
    pub async fn ask_all(&self, shard: &Rc<Shard>, question: Question) -> Vec<Answered> {
        let tag = self.tag;
        let answers = shard.ask_all(|| Query::Dialect(Envelope::new(tag, question))).await;
        answers
            .into_iter()
            .filter_map(|a| match a {
                Answer::Dialect(envelope) => envelope.open::<Answered>(),
                Answer::Stats(_) => None,
            })
            .collect()
    }

    fn answer(&self, shard: &Shard, question: Question) -> Answered {
        match question {
            Question::Topics => {
                let names = shard.state.borrow().topics.names(self.ns, "");
                Answered::Topics(names.into_iter().map(|(name, _)| name).collect())
            }
            Question::Metrics => Answered::Metrics(Box::new(self.snapshot(shard))),
        }
    }

    /// This shard's metrics.
    pub fn snapshot(&self, shard: &Shard) -> Snapshot {
        let state = shard.state.borrow();
        let queued_bytes = state
            .conns
            .iter()
            .filter(|(_, c)| c.tag == self.tag)
            .map(|(_, c)| c.out.bytes() as u64)
            .sum();
        let sessions = self.sessions.borrow();
        Snapshot {
            shard: shard.id(),
            metrics: self.metrics.borrow().clone(),
            connections: sessions.len() as u64,
            topics: state.topics.count(self.ns) as u64,
            queued_bytes,
            requests_waiting: sessions.values().map(|s| s.waiting() as u64).sum(),
        }
    }

    /// `/metrics` text for the gateway, gathered from every shard.
    pub async fn render_metrics(&self, shard: &Rc<Shard>) -> String {
        let mut snapshots: Vec<Snapshot> = self
            .ask_all(shard, Question::Metrics)
            .await
            .into_iter()
            .filter_map(|a| match a {
                Answered::Metrics(snapshot) => Some(*snapshot),
                Answered::Topics(_) => None,
            })
            .collect();
        snapshots.sort_by_key(|s| s.shard);
        let routes = &self.shared.routes;
        let subroute = |i: usize| routes.get(i).map(|r| r.uri.clone()).unwrap_or_default();
        metrics::render(&snapshots, &self.config.gateway.path, subroute)
    }
}

/// The dialect object each shard holds: a handle on that shard's gateway.
#[derive(Clone)]
pub struct GatewayDialect(pub Rc<Gateway>);

impl GatewayDialect {
    pub fn new(tag: DialectTag, ns: u16, config: Arc<Config>, shared: Arc<Shared>) -> Self {
        let routes = shared.routes.len();
        GatewayDialect(Rc::new(Gateway {
            tag,
            ns,
            config,
            shared,
            sessions: RefCell::default(),
            metrics: RefCell::default(),
            picks: RefCell::new(vec![0; routes]),
            uuid: Cell::new(0),
        }))
    }
}

impl Dialect for GatewayDialect {
    fn name(&self) -> &'static str {
        "gateway"
    }

    fn admit<'a>(
        &'a self,
        shard: &'a Rc<Shard>,
        _upgrade: &'a Upgrade,
        _peer: Option<SocketAddr>,
    ) -> LocalFuture<'a, Admission> {
        let admission = if shard.shutting_down.get() {
            let body = "server shutting down".to_string();
            Admission::Refuse { status: 503, body, why: "server_unavailable" }
        } else {
            Admission::Accept { ns: self.0.ns, headers: Vec::new() }
        };
        Box::pin(std::future::ready(admission))
    }

    fn open(&self, _shard: &Rc<Shard>, key: ConnKey, _upgrade: &Upgrade, peer: Option<SocketAddr>) {
        session::open(&self.0, key, peer);
    }

    fn on_message(
        &self,
        shard: &Rc<Shard>,
        key: ConnKey,
        message: frame::Message<'_>,
    ) -> Result<(), Close> {
        session::on_message(&self.0, shard, key, message)
    }

    fn on_close(&self, shard: &Rc<Shard>, key: ConnKey, _gone: &Gone) {
        session::on_close(&self.0, shard, key);
    }

    fn policy(&self) -> Policy {
        let config = &self.0.config;
        Policy {
            idle_secs: u32::try_from(config.gateway.ping_interval_secs).unwrap_or(u32::MAX),
            pong_secs: u32::try_from(config.pong_timeout).unwrap_or(u32::MAX),
            ping: outbound::ping(),
            timeout: outbound::ping_timeout(),
            over_capacity: outbound::over_capacity(),
            shutdown: outbound::shutting_down(),
            deadlines: false,
        }
    }

    fn on_notice(&self, _shard: &Rc<Shard>, _notice: Envelope) {}

    fn answer(&self, shard: &Rc<Shard>, question: Envelope) -> LocalFuture<'static, Envelope> {
        let tag = self.0.tag;
        let answer = match question.open::<Question>() {
            Some(question) => Envelope::new(tag, self.0.answer(shard, question)),
            None => Envelope::new(tag, ()),
        };
        Box::pin(std::future::ready(answer))
    }

    /// Cluster mode: another node lists its topics for `GET /list/topics` (a JSON array).
    fn answer_node(
        &self,
        shard: &Rc<Shard>,
        _node: &Arc<str>,
        _body: bytes::Bytes,
    ) -> LocalFuture<'static, bytes::Bytes> {
        let (gw, shard) = (self.0.clone(), shard.clone());
        Box::pin(async move {
            let topics = rest::list_topics(&gw, &shard).await;
            serde_json::to_vec(&topics).unwrap_or_default().into()
        })
    }

    fn client_id(&self, shard: &Shard, key: ConnKey) -> String {
        self.0.sid(shard, key)
    }
}

impl Routes for GatewayDialect {
    fn serves(&self, path: &str) -> bool {
        path == rest::PUBLISH || path == rest::LIST_TOPICS
    }

    fn call(
        &self,
        shard: Rc<Shard>,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> LocalFuture<'static, Reply> {
        let gw = self.0.clone();
        Box::pin(async move { rest::call(&gw, &shard, request).await })
    }

    fn serves_h2(&self, path: &str) -> bool {
        path == MSG_PATH
    }

    fn call_h2(&self, shard: Rc<Shard>, request: H2Request) -> LocalFuture<'static, H2Reply> {
        let gw = self.0.clone();
        Box::pin(async move { publish::grpc(&gw, &shard, request).await })
    }

    fn metrics(&self, shard: Rc<Shard>) -> LocalFuture<'static, String> {
        let gw = self.0.clone();
        Box::pin(async move { gw.render_metrics(&shard).await })
    }
}
