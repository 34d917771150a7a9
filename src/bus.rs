//! The cross-shard message enum and the full mesh of bounded SPSC rings (glommio shared
//! channels) that carries it. The mesh is built once at start and kept for the process's life.
//! A full ring makes the sender wait: messages are never dropped.

use crate::{conn::SocketId, metrics::Stats};
use ahash::AHashMap;
use bytes::Bytes;
use glommio::channels::{
    channel_mesh::{Full, MeshBuilder, Receivers, Senders},
    local_channel::{self, LocalSender},
};
use std::{cell::RefCell, sync::Arc};

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

/// A REST publish: every channel's frame, encoded once and shared by reference with every shard.
#[derive(Debug)]
pub struct Publication {
    pub app: u16,
    pub items: Vec<PubItem>,
}

/// What shards say to each other.
#[derive(Debug)]
pub enum ShardMsg {
    Publish(Arc<Publication>),
    StatsRequest { from: usize, request: u64 },
    StatsReply { request: u64, stats: Stats },
}

/// This shard's ends of the mesh, plus the replies it is waiting for.
pub struct Bus {
    senders: Senders<ShardMsg>,
    waiting: RefCell<AHashMap<u64, LocalSender<Stats>>>,
    next_request: std::cell::Cell<u64>,
}

impl Bus {
    /// Joins the mesh; returns this shard's bus and the rings to listen on.
    pub async fn join(mesh: Mesh) -> Result<(Bus, Receivers<ShardMsg>), ()> {
        let (senders, receivers) = mesh.join().await.map_err(|_| ())?;
        let bus = Bus {
            senders,
            waiting: RefCell::default(),
            next_request: Default::default(),
        };
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
    pub async fn send_to(&self, peer: usize, msg: ShardMsg) -> Result<(), ShardMsg> {
        self.senders.send_to(peer, msg).await.map_err(|e| match e {
            glommio::GlommioError::Closed(glommio::ResourceType::Channel(msg)) => msg,
            glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(msg)) => msg,
            other => {
                tracing::error!("ring send to shard {peer} failed: {other}");
                ShardMsg::StatsReply {
                    request: u64::MAX,
                    stats: Stats::default(),
                }
            }
        })
    }

    /// Asks every other shard for its counters; `local` is this shard's own.
    pub async fn gather_stats(&self, local: Stats) -> Stats {
        let request = self.next_request.get();
        self.next_request.set(request + 1);
        let (tx, rx) = local_channel::new_unbounded();
        self.waiting.borrow_mut().insert(request, tx);
        let mut asked = 0;
        for peer in self.peers() {
            let msg = ShardMsg::StatsRequest {
                from: self.shard_id(),
                request,
            };
            if self.send_to(peer, msg).await.is_ok() {
                asked += 1;
            }
        }
        let mut total = local;
        for _ in 0..asked {
            match rx.recv().await {
                Some(stats) => total += stats,
                None => break,
            }
        }
        self.waiting.borrow_mut().remove(&request);
        total
    }

    /// Hands a stats reply to the request waiting for it.
    pub fn deliver_reply(&self, request: u64, stats: Stats) {
        if let Some(tx) = self.waiting.borrow().get(&request) {
            let _ = tx.try_send(stats);
        }
    }
}
