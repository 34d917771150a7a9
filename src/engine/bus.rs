//! The cross-shard message enum and the full mesh of bounded SPSC rings (glommio shared
//! channels) that carries it. The mesh is built once at start and kept for the process's life.
//! A full ring makes the sender wait: messages are never dropped.
//!
//! Three shapes of message: a publication (by reference), a question with its answer (matched
//! by request id), and a notice that needs no answer. Questions and notices of a dialect travel
//! inside [`Envelope`]s the engine does not open.

use super::{
    addr::ConnAddr,
    conn::{Close, ConnKey, DialectTag},
};
use crate::metrics::Stats;
use ahash::AHashMap;
use bytes::Bytes;
use glommio::channels::{
    channel_mesh::{Full, MeshBuilder, Receivers, Senders},
    local_channel::{self, LocalSender},
};
use std::{
    any::Any,
    cell::{Cell, RefCell},
    sync::Arc,
};

/// Builder every shard joins to get its ring endpoints.
pub type Mesh = MeshBuilder<ShardMsg, Full>;

/// One event on one topic, already encoded as a WebSocket frame.
#[derive(Debug)]
pub struct PubItem {
    pub topic: Box<str>,
    pub frame: Bytes,
    /// The publisher's own connection, which must not receive it.
    pub exclude: Option<ConnAddr>,
    /// Cluster mode: the client id (a socket id, ...) of a publisher's connection that is not
    /// on this node; the node that has it resolves it (`Dialect::addr_of_client`).
    pub exclude_elsewhere: Option<Box<str>>,
    /// The dialect wants to hear who received it (`Dialect::delivered`): only when a hook
    /// asks, since listing receivers costs a vector per publication and shard.
    pub report: bool,
}

/// A publish: every topic's frame, encoded once and shared by reference with every shard.
#[derive(Debug)]
pub struct Publication {
    /// The namespace of the topics (a Pusher app, a gateway, ...).
    pub ns: u16,
    pub items: Vec<PubItem>,
}

/// A dialect's own message between shards, opened only by the dialect with `tag`.
pub struct Envelope {
    pub tag: DialectTag,
    pub body: Box<dyn Any + Send>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Envelope(dialect {})", self.tag)
    }
}

impl Envelope {
    pub fn new<T: Any + Send>(tag: DialectTag, body: T) -> Envelope {
        Envelope { tag, body: Box::new(body) }
    }

    /// The body, if it is a `T`.
    pub fn open<T: Any>(self) -> Option<T> {
        self.body.downcast::<T>().ok().map(|b| *b)
    }
}

/// A question to one shard.
#[derive(Debug)]
pub enum Query {
    /// The shard's counters.
    Stats,
    /// A dialect's question (often to a topic's home shard).
    Dialect(Envelope),
}

/// The answer to a [`Query`].
#[derive(Debug)]
pub enum Answer {
    Stats(Stats),
    Dialect(Envelope),
}

/// A message that needs no answer.
#[derive(Debug)]
pub enum Notice {
    /// Queue `frame` on these connections of the receiving shard (those still open).
    Deliver { keys: Vec<ConnKey>, frame: Bytes },
    /// Close these connections of the receiving shard.
    Close { keys: Vec<ConnKey>, close: Close },
    /// A dialect's notice.
    Dialect(Envelope),
}

/// What shards say to each other.
#[derive(Debug)]
pub enum ShardMsg {
    Publish(Arc<Publication>),
    Ask { from: usize, request: u64, query: Query },
    Answer { request: u64, answer: Answer },
    Tell(Notice),
}

/// This shard's ends of the mesh, plus the answers it is waiting for.
pub struct Bus {
    senders: Senders<ShardMsg>,
    waiting: RefCell<AHashMap<u64, LocalSender<Answer>>>,
    next_request: Cell<u64>,
}

impl Bus {
    /// Joins the mesh; returns this shard's bus and the rings to listen on.
    pub async fn join(mesh: Mesh) -> Result<(Bus, Receivers<ShardMsg>), ()> {
        let (senders, receivers) = mesh.join().await.map_err(|_| ())?;
        let bus = Bus { senders, waiting: RefCell::default(), next_request: Cell::new(0) };
        Ok((bus, receivers))
    }

    pub fn shard_id(&self) -> usize {
        self.senders.peer_id()
    }

    pub fn nr_shards(&self) -> usize {
        self.senders.nr_consumers()
    }

    /// Every shard but this one.
    pub fn peers(&self) -> impl Iterator<Item = usize> {
        let me = self.shard_id();
        (0..self.nr_shards()).filter(move |&p| p != me)
    }

    /// Sends to `peer`, waiting while its ring is full. Fails only if the peer has shut down.
    pub async fn send_to(&self, peer: usize, msg: ShardMsg) -> bool {
        match self.senders.send_to(peer, msg).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("ring to shard {peer} refused a message: {e}");
                false
            }
        }
    }

    /// Registers a question; its answer arrives on the receiver. [`Bus::forget`] it after.
    pub fn register(&self) -> (u64, local_channel::LocalReceiver<Answer>) {
        let request = self.next_request.get();
        self.next_request.set(request + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        self.waiting.borrow_mut().insert(request, tx);
        (request, rx)
    }

    /// Stops waiting for the answer to `request`.
    pub fn forget(&self, request: u64) {
        self.waiting.borrow_mut().remove(&request);
    }

    /// Asks `peer` and waits for its answer (None if the peer is gone).
    pub async fn ask(&self, peer: usize, query: Query) -> Option<Answer> {
        let (request, rx) = self.register();
        let asked = ShardMsg::Ask { from: self.shard_id(), request, query };
        let answer = if self.send_to(peer, asked).await { rx.recv().await } else { None };
        self.waiting.borrow_mut().remove(&request);
        answer
    }

    /// Sends a notice without waiting when the ring has room; hands it back when it is full.
    pub fn try_tell(&self, peer: usize, notice: Notice) -> Result<(), Notice> {
        match self.senders.try_send_to(peer, ShardMsg::Tell(notice)) {
            Ok(()) => Ok(()),
            Err(glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(
                ShardMsg::Tell(n),
            ))) => Err(n),
            Err(e) => {
                tracing::warn!("ring to shard {peer} refused a notice: {e}");
                Ok(())
            }
        }
    }

    /// Hands an answer to the question waiting for it.
    pub fn deliver_answer(&self, request: u64, answer: Answer) {
        if let Some(tx) = self.waiting.borrow().get(&request) {
            let _ = tx.try_send(answer);
        }
    }
}
