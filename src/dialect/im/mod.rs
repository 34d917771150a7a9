//! The xxim IM gateway as a dialect: binary protobuf frames on `/ws?userId&token&platform&
//! deviceId...`, token check on connect (`admit`, `auth`), requests routed to backends
//! (`request`, `backend`, `wire`), each user's connections registered on the user's home shard
//! (`home`, `messages`) so pushes, kicks and the duplicate-device rule are exact across shards,
//! the push API over HTTP JSON and gRPC (`push`, `rest`), notices kept until acknowledged
//! (`notice`), delayed `SendMsgList` (`delay`), and the calls after connect and disconnect
//! (`hooks`), and what IM nodes of a cluster say to each other (`cluster`). Protobuf types are
//! in `pb`; the server frames in `frames`.

pub mod admit;
pub mod auth;
pub mod backend;
pub mod cluster;
pub mod delay;
pub mod frames;
pub mod home;
pub mod hooks;
pub mod messages;
pub mod notice;
pub mod params;
pub mod pb;
pub mod push;
pub mod request;
pub mod rest;
pub mod session;
pub mod wire;

use crate::{
    config::{im::ImConfig, Config},
    engine::{
        bus::{Answer, Envelope, Notice, Query},
        conn::{queue::Frame, Close, ConnKey, DialectTag},
        seam::{Admission, Dialect, Gone, LocalFuture, Policy},
        shard::Shard,
    },
    rest::{Reply, Routes},
    store::StoreHandle,
    upstream::grpc::server::{H2Reply, H2Request},
    ws::{frame, handshake::Upgrade},
};
use ahash::AHashMap;
use messages::{Question, Reply as Answered, Tell};
use std::{cell::RefCell, net::SocketAddr, rc::Rc, sync::Arc};
use tungstenite::protocol::frame::coding::{Control, OpCode};

/// The IM dialect on one shard: its connections' state, and the users homed here.
pub struct Im {
    pub tag: DialectTag,
    /// The namespace of IM connections.
    pub ns: u16,
    pub config: Arc<Config>,
    /// The durable store (notices, cursors, delayed requests), when `[im] durable` is on.
    pub store: Option<StoreHandle>,
    /// This shard's IM connections.
    pub conns: RefCell<AHashMap<ConnKey, session::ConnState>>,
    /// Users homed on this shard: their connections on every shard.
    pub home: RefCell<home::HomeState>,
    /// Notice pushes running per user homed here.
    pub notices: RefCell<notice::Runs>,
    /// The delayed-request scheduler (shard 0 only).
    pub delay: delay::Scheduler,
    /// Routes by key (event number as text, or method).
    pub routes: AHashMap<String, backend::Route>,
    /// The dialect also has `/` (no other dialect claims it).
    pub root: bool,
}

impl Im {
    pub fn im(&self) -> &ImConfig {
        &self.config.im
    }

    /// Tells `peer`'s IM dialect.
    pub fn tell(&self, shard: &Rc<Shard>, peer: usize, tell: Tell) {
        shard.tell(peer, Notice::Dialect(Envelope::new(self.tag, tell)));
    }

    /// Asks `peer`'s IM dialect; `None` if the peer is gone.
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

    /// The home shard of a user.
    pub fn home_of(&self, shard: &Shard, user: &str) -> usize {
        shard.home_of(self.ns, user)
    }
}

/// The dialect object each shard holds.
#[derive(Clone)]
pub struct ImDialect(pub Rc<Im>);

impl ImDialect {
    pub fn new(
        tag: DialectTag,
        ns: u16,
        config: Arc<Config>,
        store: Option<StoreHandle>,
        root: bool,
    ) -> Self {
        let routes = backend::routes(&config.im);
        ImDialect(Rc::new(Im {
            tag,
            ns,
            store: store.filter(|_| config.im.needs_store()),
            config,
            conns: RefCell::default(),
            home: RefCell::default(),
            notices: RefCell::default(),
            delay: delay::Scheduler::default(),
            routes,
            root,
        }))
    }
}

impl Dialect for ImDialect {
    fn name(&self) -> &'static str {
        "im"
    }

    fn admit<'a>(
        &'a self,
        shard: &'a Rc<Shard>,
        upgrade: &'a Upgrade,
        peer: Option<SocketAddr>,
    ) -> LocalFuture<'a, Admission> {
        Box::pin(admit::admit(&self.0, shard, upgrade, peer))
    }

    fn start(&self, shard: &Rc<Shard>) {
        delay::start(&self.0, shard);
    }

    fn open(&self, shard: &Rc<Shard>, key: ConnKey, upgrade: &Upgrade, peer: Option<SocketAddr>) {
        session::open(&self.0, shard, key, upgrade, peer);
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
        let im = self.0.im();
        Policy {
            idle_secs: im.idle_secs,
            pong_secs: im.pong_secs,
            ping: Frame::new(frame::encode(OpCode::Control(Control::Ping), b"")),
            timeout: Close::fixed(1001, "ping timeout"),
            over_capacity: Close::fixed(1008, "over capacity"),
            shutdown: Close::fixed(1001, "server shutting down"),
            deadlines: false,
        }
    }

    fn on_notice(&self, shard: &Rc<Shard>, notice: Envelope) {
        if let Some(tell) = notice.open::<Tell>() {
            home::on_tell(&self.0, shard, tell);
        }
    }

    fn answer(&self, shard: &Rc<Shard>, question: Envelope) -> LocalFuture<'static, Envelope> {
        let (im, shard, tag) = (self.0.clone(), shard.clone(), self.0.tag);
        Box::pin(async move {
            match question.open::<Question>() {
                Some(question) => Envelope::new(tag, home::answer(&im, &shard, question).await),
                None => Envelope::new(tag, ()),
            }
        })
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
        let (im, shard) = (self.0.clone(), shard.clone());
        Box::pin(async move { cluster::answer(&im, &shard, &body).await })
    }

    fn client_id(&self, _shard: &Shard, key: ConnKey) -> String {
        let conns = self.0.conns.borrow();
        conns.get(&key).map_or_else(String::new, |c| {
            format!("{}/{}/{}", c.params.user_id, c.params.platform, c.params.device_id)
        })
    }
}

impl Routes for ImDialect {
    fn serves(&self, path: &str) -> bool {
        rest::serves(&self.0, path)
    }

    fn call(
        &self,
        shard: Rc<Shard>,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> LocalFuture<'static, Reply> {
        let im = self.0.clone();
        Box::pin(async move { rest::call(&im, &shard, request).await })
    }

    fn serves_h2(&self, path: &str) -> bool {
        rest::grpc::serves(path)
    }

    fn call_h2(&self, shard: Rc<Shard>, request: H2Request) -> LocalFuture<'static, H2Reply> {
        let im = self.0.clone();
        Box::pin(async move { rest::grpc::call(&im, &shard, request).await })
    }
}
