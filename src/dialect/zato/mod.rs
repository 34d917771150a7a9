//! Zato-style publish/subscribe as a dialect: topics with guaranteed-delivery (GD, durable) and
//! in-RAM queues, subscriptions delivered by notify (HTTP through the hook shard), by pull (REST
//! get-messages) or to WSX WebSocket clients, and queue browsing for admins.
//!
//! Each topic lives on its home shard (`Shard::home_of(ns, topic)`), in this shard's [`Zato`]
//! object: its settings, subscriptions, queues and the one delivery task per subscription that
//! keeps its order. Other shards forward what concerns a topic to its home in envelopes
//! (`messages`). GD messages are committed to the durable store (`layout`) before a publish is
//! acknowledged; each home loads its topics back at start (`load`).
//!
//! - `access`: endpoints by credentials, `pub=`/`sub=` glob permissions.
//! - `ids`, `error`, `message`, `sub`, `topic`: identifiers and times, errors, messages and
//!   their order, subscriptions and their options, topics and their depth.
//! - `home`: publish, subscribe, fetch, unsubscribe and resume on the home shard.
//! - `deliver`: the delivery task (notify over HTTP, WSX frames) and the expiry sweep.
//! - `admin`: topics, subscriptions and browsing for the admin API.
//! - `load`: reading a home's topics back from the store at start.
//! - `wsx`, `wsx_out`: the WSX client protocol (sessions, service calls, server messages).
//! - `rest`: the REST API under `/zato/pubsub/` (the pub/sub API and the admin API).
//! - `fields`: the publish and subscribe fields shared by REST and WSX.
//! - `cluster`: publications crossing nodes to the subscriptions each node holds.

pub mod access;
pub mod admin;
pub mod cluster;
pub mod deliver;
pub mod error;
pub mod fields;
pub mod home;
pub mod ids;
pub mod layout;
pub mod load;
pub mod message;
pub mod messages;
pub mod rest;
pub mod sub;
pub mod topic;
pub mod wsx;
pub mod wsx_out;

use crate::{
    config::{zato::ZatoConfig, Config},
    engine::{
        bus::{Answer as BusAnswer, Envelope, Notice, Query},
        conn::{queue::Frame, Close, ConnEntry, ConnKey, DialectTag},
        seam::{Admission, Dialect, Gone, LocalFuture, Policy},
        shard::Shard,
    },
    rest::{Reply, Routes},
    store::StoreHandle,
    ws::{frame, handshake::Upgrade},
};
use access::Endpoints;
use ahash::AHashMap;
use messages::{Answer, Question, Tell};
use std::{
    cell::{Cell, RefCell},
    net::SocketAddr,
    rc::Rc,
    sync::Arc,
    time::Duration,
};
use sub::SubState;
use topic::TopicState;

/// The Zato dialect on one shard: the topics homed here with their subscriptions, and the WSX
/// sessions of this shard's connections.
pub struct Zato {
    pub tag: DialectTag,
    /// The namespace of Zato topics and WSX connections.
    pub ns: u16,
    pub config: Arc<Config>,
    pub endpoints: Endpoints,
    /// The durable store (None when nothing needs it: no topic can exist).
    pub store: Option<StoreHandle>,
    pub topics: RefCell<AHashMap<String, TopicState>>,
    /// Subscriptions of the topics homed here, by sub_key.
    pub subs: RefCell<AHashMap<String, Rc<SubState>>>,
    /// WSX sessions of this shard's connections.
    pub sessions: RefCell<AHashMap<ConnKey, wsx::Session>>,
    /// Last publication number given on this shard.
    seq: Cell<u64>,
    /// The topics homed here are loaded from the store.
    loaded: Cell<bool>,
    /// Cluster mode: topics homed here this node follows (those with a subscription).
    pub followed: RefCell<ahash::AHashSet<String>>,
    /// Cluster mode: topics homed here that other nodes follow.
    pub followers: RefCell<cluster::Followers>,
}

impl Zato {
    pub fn zc(&self) -> &ZatoConfig {
        &self.config.zato
    }

    /// The next publication number: increasing on this shard, and above every number loaded
    /// from the store (it starts at the clock in microseconds).
    pub fn next_seq(&self, now_micros: u64) -> u64 {
        let next = (self.seq.get() + 1).max(now_micros);
        self.seq.set(next);
        next
    }

    fn note_seq(&self, seq: u64) {
        self.seq.set(self.seq.get().max(seq));
    }

    /// Waits until the topics homed here are loaded (at once after start).
    pub async fn wait_loaded(&self) {
        while !self.loaded.get() {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The home shard of `topic`.
    pub fn home(&self, shard: &Shard, topic: &str) -> usize {
        shard.home_of(self.ns, topic)
    }

    /// Asks `peer`'s Zato dialect (this one's when `peer` is this shard).
    pub async fn ask(&self, shard: &Rc<Shard>, peer: usize, question: Question) -> Answer {
        let query = Query::Dialect(Envelope::new(self.tag, question));
        match shard.ask(peer, query).await? {
            BusAnswer::Dialect(envelope) => envelope.open::<Answer>().flatten(),
            BusAnswer::Stats(_) => None,
        }
    }

    /// Asks every shard; the answers of those that hold what was asked for.
    pub async fn ask_all(&self, shard: &Rc<Shard>, question: Question) -> Vec<Answer> {
        let tag = self.tag;
        let answers = shard.ask_all(|| Query::Dialect(Envelope::new(tag, question.clone()))).await;
        answers
            .into_iter()
            .map(|a| match a {
                BusAnswer::Dialect(envelope) => envelope.open::<Answer>().flatten(),
                BusAnswer::Stats(_) => None,
            })
            .collect()
    }

    /// Asks every shard and keeps the one answer of the shard that holds it.
    pub async fn ask_holder(&self, shard: &Rc<Shard>, question: Question) -> Answer {
        self.ask_all(shard, question).await.into_iter().flatten().next()
    }

    pub fn tell(&self, shard: &Rc<Shard>, peer: usize, tell: Tell) {
        shard.tell(peer, Notice::Dialect(Envelope::new(self.tag, tell)));
    }

    /// Answers a question on this shard.
    async fn answer(self: &Rc<Self>, shard: &Rc<Shard>, question: Question) -> Answer {
        match question {
            Question::Publish(request) => home::publish(self, shard, request).await,
            Question::Subscribe(request) => home::subscribe(self, shard, request).await,
            Question::Unsubscribe { topic, sub_key, endpoint } => {
                home::unsubscribe(self, shard, &topic, &sub_key, endpoint.as_deref()).await
            }
            Question::Fetch { topic, sub_key, endpoint } => {
                home::fetch(self, &topic, &sub_key, &endpoint).await
            }
            Question::Resume { sub_key, endpoint, addr } => {
                home::resume(self, shard, &sub_key, &endpoint, addr).await
            }
            Question::Admin(op) => admin::apply(self, shard, op).await,
            Question::WsxDeliver { key, frame } => {
                let open = shard.is_open(key);
                if open {
                    shard.send(key, Frame::new(frame));
                }
                Some(Ok(serde_json::Value::Bool(open)))
            }
        }
    }
}

/// The dialect object each shard holds.
#[derive(Clone)]
pub struct ZatoDialect(pub Rc<Zato>);

impl ZatoDialect {
    pub fn new(tag: DialectTag, ns: u16, config: Arc<Config>, store: Option<StoreHandle>) -> Self {
        let endpoints = Endpoints::new(&config.zato.endpoints);
        ZatoDialect(Rc::new(Zato {
            tag,
            ns,
            config,
            endpoints,
            store,
            topics: RefCell::default(),
            subs: RefCell::default(),
            sessions: RefCell::default(),
            seq: Cell::new(0),
            loaded: Cell::new(false),
            followed: RefCell::default(),
            followers: RefCell::default(),
        }))
    }
}

/// Close codes of WSX connections.
pub mod close {
    use crate::engine::conn::Close;

    /// Two pings unanswered (Zato's `code_pings_missed`).
    pub const PINGS_MISSED: Close = Close::fixed(4002, "Pings missed");
    /// Text that is not UTF-8 before a session exists (Zato's `code_invalid_utf8`).
    pub const INVALID_UTF8: Close = Close::fixed(4001, "Invalid UTF-8 bytes");
    /// Bad credentials, a wrong token, or no session in time.
    pub const FORBIDDEN: Close =
        Close::fixed(1008, "You are not authorized to access this resource");
    pub const OVER_CAPACITY: Close = Close::fixed(1013, "Over capacity");
    pub const SHUTDOWN: Close = Close::fixed(1001, "Server is shutting down");
    pub const UNSUPPORTED: Close = Close::fixed(1003, "Binary messages are not supported");
}

impl Dialect for ZatoDialect {
    fn name(&self) -> &'static str {
        "zato"
    }

    fn start(&self, shard: &Rc<Shard>) {
        load::start(&self.0, shard);
        deliver::start_sweep(&self.0, shard);
    }

    fn admit<'a>(
        &'a self,
        shard: &'a Rc<Shard>,
        _upgrade: &'a Upgrade,
        _peer: Option<SocketAddr>,
    ) -> LocalFuture<'a, Admission> {
        let admission = if shard.shutting_down.get() {
            Admission::Refuse {
                status: 503,
                body: "Shutting down".into(),
                why: "server_unavailable",
            }
        } else {
            Admission::Accept { ns: self.0.ns, headers: Vec::new() }
        };
        Box::pin(std::future::ready(admission))
    }

    fn open(&self, _shard: &Rc<Shard>, key: ConnKey, _: &Upgrade, _: Option<SocketAddr>) {
        self.0.sessions.borrow_mut().insert(key, wsx::Session::default());
    }

    fn on_message(
        &self,
        shard: &Rc<Shard>,
        key: ConnKey,
        message: frame::Message<'_>,
    ) -> Result<(), Close> {
        wsx::on_message(&self.0, shard, key, message)
    }

    fn on_close(&self, shard: &Rc<Shard>, key: ConnKey, _gone: &Gone) {
        wsx::on_close(&self.0, shard, key);
    }

    /// Pings after `ping_interval_secs` of silence; a client silent for the pings it may miss
    /// (each given up to 5 s to answer, as Zato waits) is closed with 4002.
    fn policy(&self) -> Policy {
        let zato = self.0.zc();
        let interval = zato.ping_interval_secs.max(1);
        let wait = interval.min(5);
        Policy {
            idle_secs: interval,
            pong_secs: interval.saturating_mul(zato.pings_missed_threshold.max(1) - 1) + wait,
            ping: Frame::new(wsx_out::ping()),
            timeout: close::PINGS_MISSED,
            over_capacity: close::OVER_CAPACITY,
            shutdown: close::SHUTDOWN,
            deadlines: true,
        }
    }

    /// A connection that has not created its session in time is closed.
    fn deadline(&self, key: ConnKey, conn: &ConnEntry, now: u32) -> Option<Close> {
        let within = self.0.zc().new_session_timeout_secs;
        if now.saturating_sub(conn.opened) < within {
            return None;
        }
        let sessions = self.0.sessions.borrow();
        let authenticated = sessions.get(&key).is_some_and(|s| s.endpoint.is_some());
        (!authenticated).then_some(close::FORBIDDEN)
    }

    fn on_notice(&self, shard: &Rc<Shard>, notice: Envelope) {
        if let Some(Tell::WsxGone { sub_key, addr }) = notice.open::<Tell>() {
            let (zato, shard) = (self.0.clone(), shard.clone());
            glommio::spawn_local(
                async move { home::wsx_gone(&zato, &shard, &sub_key, addr).await },
            )
            .detach();
        }
    }

    fn answer(&self, shard: &Rc<Shard>, question: Envelope) -> LocalFuture<'static, Envelope> {
        let (zato, shard, tag) = (self.0.clone(), shard.clone(), self.0.tag);
        Box::pin(async move {
            let answer: Answer = match question.open::<Question>() {
                Some(question) => zato.answer(&shard, question).await,
                None => None,
            };
            Envelope::new(tag, answer)
        })
    }

    fn on_node_publish(&self, shard: &Rc<Shard>, topic: &str, body: &bytes::Bytes) -> bool {
        cluster::on_publish(&self.0, shard, topic, body);
        true
    }

    fn node_topics(&self, _shard: &Shard) -> Vec<(u16, Box<str>)> {
        cluster::followed(&self.0)
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
        let (zato, shard) = (self.0.clone(), shard.clone());
        Box::pin(async move { cluster::answer(&zato, &shard, &body).await })
    }

    fn on_nodes(&self, shard: &Rc<Shard>, up: &[Arc<str>], gone: &[Arc<str>], _: &[Arc<str>]) {
        cluster::on_gone(&self.0, gone);
        if !up.is_empty() {
            cluster::tell_follows(&self.0, shard);
        }
    }

    fn on_link(&self, shard: &Rc<Shard>, up: bool) {
        if up {
            cluster::tell_follows(&self.0, shard);
        }
    }

    fn client_id(&self, shard: &Shard, key: ConnKey) -> String {
        let addr = crate::engine::addr::ConnAddr::new(shard.id(), key);
        let (high, low) = addr.to_bits();
        format!("zwsx.{high}.{low:x}")
    }
}

impl Routes for ZatoDialect {
    /// `/zato/pubsub/...`.
    fn serves(&self, path: &str) -> bool {
        path.starts_with("/zato/pubsub/")
    }

    fn call(
        &self,
        shard: Rc<Shard>,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> LocalFuture<'static, Reply> {
        let zato = self.0.clone();
        Box::pin(async move { rest::call(&zato, &shard, request).await })
    }
}
