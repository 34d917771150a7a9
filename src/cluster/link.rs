//! A shard's side of the cluster: it hands messages to the cluster thread without ever
//! waiting (a full queue drops the message and counts it) and keeps what it learns back: the
//! link's state, the live nodes, and the queries it is waiting on.

use super::{board::Board, ToCluster};
use crate::config::cluster::{ClusterConfig, WhenDown};
use ahash::AHashMap;
use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalSender};
use std::{
    cell::{Cell, RefCell},
    sync::Arc,
};

/// Answers from other nodes: (node, body), and whether every live node answered.
pub type Answers = (Vec<(Arc<str>, Bytes)>, bool);

/// What a shard's link is made from (built on the main thread, sent to the shard's).
pub struct LinkSeed {
    shard: usize,
    to: flume::Sender<ToCluster>,
    board: Arc<Board>,
    node: Arc<str>,
    when_down: WhenDown,
}

impl LinkSeed {
    pub fn new(
        shard: usize,
        to: flume::Sender<ToCluster>,
        board: Arc<Board>,
        node: Arc<str>,
        config: &ClusterConfig,
    ) -> LinkSeed {
        LinkSeed { shard, to, board, node, when_down: config.when_down }
    }
}

/// One shard's link to the cluster thread.
pub struct Link {
    seed: LinkSeed,
    up: Cell<bool>,
    /// Other nodes alive, as the cluster thread last said.
    live: RefCell<Vec<Arc<str>>>,
    queries: RefCell<AHashMap<u64, LocalSender<Answers>>>,
    next_query: Cell<u64>,
}

impl Link {
    pub fn new(seed: LinkSeed) -> Link {
        Link {
            seed,
            up: Cell::new(false),
            live: RefCell::default(),
            queries: RefCell::default(),
            next_query: Cell::new(0),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &Arc<str> {
        &self.seed.node
    }

    pub fn board(&self) -> &Arc<Board> {
        &self.seed.board
    }

    /// Whether the link to NATS is up.
    pub fn is_up(&self) -> bool {
        self.up.get()
    }

    /// Whether a publish should be refused now (link down and `when_down = "refuse"`).
    pub fn refuses_publishes(&self) -> bool {
        !self.up.get() && self.seed.when_down == WhenDown::Refuse
    }

    /// The other nodes alive.
    pub fn live_nodes(&self) -> Vec<Arc<str>> {
        self.live.borrow().clone()
    }

    fn send(&self, msg: ToCluster) -> bool {
        let sent = self.seed.to.try_send(msg).is_ok();
        if !sent {
            Board::add(&self.seed.board.dropped_out, 1);
        }
        sent
    }

    /// Publishes a topic's frame to the nodes that follow it; `exclude` names a publisher's
    /// connection on some other node, which must not receive it.
    pub fn publish(&self, ns: u16, topic: &str, frame: Bytes, exclude: Option<Box<str>>) {
        self.send(ToCluster::Publish { ns, topic: topic.into(), frame, exclude });
    }

    /// This shard gained its first subscriber of a topic (`on`) or lost its last. For `on`,
    /// returns what tells when the other nodes' publications on it will reach this node.
    pub fn interest(&self, ns: u16, topic: &str, on: bool) -> Option<flume::Receiver<()>> {
        let (ready, told) = match on {
            true => {
                let (tx, rx) = flume::bounded(1);
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        let shard = self.seed.shard;
        let sent = self.send(ToCluster::Interest { shard, ns, topic: topic.into(), on, ready });
        told.filter(|_| sent)
    }

    /// This shard's topics, for the drift check.
    pub fn digest(&self, count: u64, hash: u64) {
        self.send(ToCluster::Digest { shard: self.seed.shard, count, hash });
    }

    /// This shard's full topic list, after a mismatch.
    pub fn topics(&self, topics: Vec<(u16, Box<str>)>) {
        self.send(ToCluster::Topics { shard: self.seed.shard, topics });
    }

    /// A dialect's message to every other node.
    pub fn broadcast(&self, tag: u8, body: Bytes) {
        self.send(ToCluster::Broadcast { tag, body });
    }

    /// Answers another node's question.
    pub fn reply(&self, inbox: String, body: Bytes) {
        self.send(ToCluster::Reply { inbox, body });
    }

    /// Asks every other node; returns the answers that came in time and whether all did.
    pub async fn query(&self, tag: u8, body: Bytes) -> Answers {
        let id = self.next_query.get();
        self.next_query.set(id + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        self.queries.borrow_mut().insert(id, tx);
        let shard = self.seed.shard;
        let answers = if self.send(ToCluster::Query { shard, id, tag, body }) {
            rx.recv().await
        } else {
            None
        };
        self.queries.borrow_mut().remove(&id);
        answers.unwrap_or((Vec::new(), false))
    }

    /// The cluster thread's answers to query `id`.
    pub fn answered(&self, id: u64, answers: Answers) {
        if let Some(tx) = self.queries.borrow().get(&id) {
            let _ = tx.try_send(answers);
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.set(up);
    }

    pub fn set_live(&self, live: Vec<Arc<str>>) {
        *self.live.borrow_mut() = live;
    }
}
