//! The cross-shard message enum and the full mesh of bounded SPSC rings (glommio shared
//! channels) that carries it. The mesh is built once at start and kept for the process's life.
//! A full ring makes the sender wait: messages are never dropped.
//!
//! Three shapes of message: a publication (by reference), a question with its answer (matched
//! by request id), and a notice that needs no answer.

use crate::{
    conn::{ConnKey, SocketId},
    metrics::Stats,
};
use ahash::AHashMap;
use bytes::Bytes;
use glommio::channels::{
    channel_mesh::{Full, MeshBuilder, Receivers, Senders},
    local_channel::{self, LocalSender},
};
use std::{
    cell::{Cell, RefCell},
    sync::Arc,
};

/// Builder every shard joins to get its ring endpoints.
pub type Mesh = MeshBuilder<ShardMsg, Full>;

/// One event on one channel, already encoded as a WebSocket frame.
#[derive(Debug)]
pub struct PubItem {
    pub channel: Box<str>,
    pub frame: Bytes,
    /// The publisher's own connection, which must not receive it (`socket_id` in the API).
    pub exclude: Option<SocketId>,
}

/// A publish: every channel's frame, encoded once and shared by reference with every shard.
#[derive(Debug)]
pub struct Publication {
    pub app: u16,
    pub items: Vec<PubItem>,
}

/// A question to one shard (often a channel's home shard).
#[derive(Debug, Clone)]
pub enum Query {
    /// The shard's counters.
    Stats,
    /// Channels of `app` with local subscribers (and presence channels homed here) by prefix.
    Channels { app: u16, prefix: String },
    /// Local subscribers of one channel.
    Subscribers { app: u16, channel: String },
    /// Home: a connection of `user_id` joins a presence channel.
    Join { app: u16, channel: String, user_id: String, socket: SocketId, user_info: Option<String> },
    /// Home: member ids of a presence channel.
    Members { app: u16, channel: String },
    /// Home: the cached last event of a cache channel.
    Cache { app: u16, channel: String },
}

/// The answer to a [`Query`].
#[derive(Debug, Clone)]
pub enum Answer {
    Stats(Stats),
    Channels {
        local: Vec<(String, u64)>,
        presence: Vec<(String, u64)>,
    },
    Count(u64),
    /// The presence snapshot for `subscription_succeeded`, or why the join was refused.
    Joined(Result<String, String>),
    Members(Vec<String>),
    /// (event, data, seconds left to live).
    Cache(Option<(String, String, u64)>),
}

/// A message that needs no answer.
#[derive(Debug, Clone)]
pub enum Notice {
    /// Home: a connection of `user_id` left a presence channel.
    Leave { app: u16, channel: String, user_id: String, socket: SocketId },
    /// Home: the last event of a cache channel.
    CacheSet { app: u16, channel: String, event: String, data: String },
    /// Home: a shard's subscribers of a channel changed by `delta`.
    CountChange { app: u16, channel: String, delta: i64 },
    /// Every shard: close the connections signed in as `user_id`.
    Terminate { app: u16, user_id: String },
    /// A user's home: one of the user's connections signed in (`delta` 1) or went (-1).
    Session { app: u16, user_id: String, delta: i64 },
    /// A user's home: connection `conn` on `shard` starts (1) or stops (-1) watching `users`.
    Watch { app: u16, shard: usize, conn: ConnKey, users: Vec<String>, delta: i32 },
    /// A watcher's shard: send these connections a `pusher_internal:watchlist_events` text.
    WatchlistEvents { conns: Vec<ConnKey>, text: Vec<u8> },
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

    /// Asks every other shard: all questions go out first, then the answers are gathered.
    pub async fn ask_peers(&self, query: Query) -> Vec<Answer> {
        let mut pending = Vec::new();
        for peer in self.peers() {
            let (request, rx) = self.register();
            let asked = ShardMsg::Ask { from: self.shard_id(), request, query: query.clone() };
            if self.send_to(peer, asked).await {
                pending.push((request, rx));
            } else {
                self.waiting.borrow_mut().remove(&request);
            }
        }
        let mut answers = Vec::with_capacity(pending.len());
        for (request, rx) in pending {
            answers.extend(rx.recv().await);
            self.waiting.borrow_mut().remove(&request);
        }
        answers
    }

    /// Sends a notice without waiting when the ring has room; otherwise a task waits for room.
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
