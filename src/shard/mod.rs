//! A shard: one glommio executor that owns a slab of connections, their topic index and its
//! ring endpoints. Nothing here is shared with another thread; other shards send messages.

mod accept;
mod rings;
mod sweep;

pub use accept::serve_listener;

use crate::{
    bus::Bus,
    config::Config,
    conn::{queue::Frame, ConnEntry, ConnKey, SocketId},
    metrics::Stats,
    topic::TopicIndex,
};
use slab::Slab;
use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    sync::Arc,
    time::{Duration, Instant},
};

/// What one shard owns, behind one `RefCell` so fan-out borrows connections and topics together.
#[derive(Default)]
pub struct ShardState {
    pub conns: Slab<ConnEntry>,
    pub topics: TopicIndex,
    pub stats: Stats,
    next_generation: u32,
}

/// A connection shard.
pub struct Shard {
    pub config: Arc<Config>,
    pub bus: Bus,
    pub state: RefCell<ShardState>,
    /// Read buffer shared by every connection of this shard: a connection reads into it and
    /// keeps only an incomplete frame's bytes, so idle connections hold no read buffer.
    pub scratch: RefCell<Vec<u8>>,
    socket_high: u32,
    next_socket: Cell<u64>,
    started: Instant,
    pub shutting_down: Cell<bool>,
}

/// Size of the shared read buffer.
const SCRATCH: usize = 64 * 1024;

impl Shard {
    pub fn new(config: Arc<Config>, bus: Bus) -> Rc<Shard> {
        Rc::new(Shard {
            config,
            bus,
            state: RefCell::default(),
            scratch: RefCell::new(vec![0; SCRATCH]),
            socket_high: rand::random_range(1..1_000_000_000),
            next_socket: Cell::new(0),
            started: Instant::now(),
            shutting_down: Cell::new(false),
        })
    }

    pub fn id(&self) -> usize {
        self.bus.shard_id()
    }

    pub fn nr_shards(&self) -> usize {
        self.bus.nr_shards()
    }

    /// Seconds since the shard started: the coarse clock of activity timeouts.
    pub fn now(&self) -> u32 {
        self.started.elapsed().as_secs() as u32 + 1
    }

    /// Adds a connection of `app`; returns its key and socket id.
    pub fn add_conn(&self, app: u16) -> (ConnKey, SocketId) {
        let seq = self.next_socket.get();
        self.next_socket.set(seq + 1);
        let socket_id = SocketId {
            high: self.socket_high,
            low: seq * self.nr_shards() as u64 + self.id() as u64,
        };
        let now = self.now();
        let mut state = self.state.borrow_mut();
        let generation = state.next_generation;
        state.next_generation = generation.wrapping_add(1);
        let entry = ConnEntry::new(generation, app, socket_id, now);
        let key = ConnKey::new(state.conns.insert(entry), generation);
        state.stats.connections_total += 1;
        (key, socket_id)
    }

    /// Removes a connection and all its subscriptions.
    pub fn remove_conn(&self, key: ConnKey) {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, topics, .. } = &mut *state;
        if conns
            .get(key.index())
            .is_some_and(|c| c.generation == key.generation())
        {
            topics.unsubscribe_all(conns, key);
            conns.remove(key.index());
        }
    }

    /// Subscribes a connection to a topic of its app; false if it already was.
    pub fn subscribe(&self, key: ConnKey, topic: &str) -> bool {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, topics, .. } = &mut *state;
        topics.subscribe(conns, key, topic)
    }

    /// Unsubscribes a connection; false if it was not subscribed.
    pub fn unsubscribe(&self, key: ConnKey, topic: &str) -> bool {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, topics, .. } = &mut *state;
        topics.unsubscribe(conns, key, topic)
    }

    /// Queues a frame for one connection (a reply to that connection). Over the limit, the
    /// connection is closed as a slow consumer.
    pub fn send(&self, key: ConnKey, frame: Frame) {
        let limit = self.config.outbound_queue_bytes;
        let mut state = self.state.borrow_mut();
        let ShardState { conns, stats, .. } = &mut *state;
        if let Some(conn) = conns.get_mut(key.index()) {
            enqueue(conn, frame, limit, stats);
        }
    }

    /// This shard's counters, with its gauges filled in.
    pub fn local_stats(&self) -> Stats {
        let state = self.state.borrow();
        Stats {
            connections: state.conns.len() as u64,
            topics: state.topics.len() as u64,
            ..state.stats
        }
    }
}

/// Queues `frame` on `conn` and wakes it; closes it with 4100 if it is over its limit.
pub fn enqueue(conn: &mut ConnEntry, frame: Frame, limit: usize, stats: &mut Stats) {
    if conn.closing.is_some() {
        return;
    }
    if conn.out.push(frame, limit).is_err() {
        conn.out.clear_unstarted();
        conn.close(crate::error::CloseCode::OverCapacity);
        stats.slow_consumers_closed += 1;
        return;
    }
    stats.frames_out += 1;
    conn.wake();
}

/// Runs a shard: join the mesh, listen, serve until shutdown, then close every client with
/// 4200 and wait (bounded) for them to go.
pub async fn run(
    config: Arc<Config>,
    mesh: crate::bus::Mesh,
    addr: std::net::SocketAddr,
    ready: crossbeam_channel::Sender<Result<usize, String>>,
) {
    let listener = match glommio::net::TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot listen on {addr}: {e}")));
            return;
        }
    };
    let Ok((bus, receivers)) = Bus::join(mesh).await else {
        let _ = ready.send(Err("shard could not join the ring mesh".into()));
        return;
    };
    let shard = Shard::new(config, bus);
    rings::listen(&shard, receivers);
    sweep::start(&shard);
    let accept = glommio::spawn_local(serve_listener(shard.clone(), listener));
    let _ = ready.send(Ok(shard.id()));
    while !crate::runtime::shutdown_requested() {
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
    shard.shutting_down.set(true);
    drop(accept);
    drain(&shard).await;
}

/// Closes every connection with 4200 and waits until they are gone or the grace period ends.
async fn drain(shard: &Shard) {
    for (_, conn) in shard.state.borrow_mut().conns.iter_mut() {
        conn.close(crate::error::CloseCode::Reconnect);
    }
    let deadline = Instant::now() + Duration::from_millis(shard.config.shutdown_grace_ms);
    while !shard.state.borrow().conns.is_empty() && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}
