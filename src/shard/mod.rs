//! A shard: one glommio executor that owns a slab of connections, their topic index, the
//! home-shard state of the topics hashed to it, and its ring endpoints. Nothing here is shared
//! with another thread except the per-app connection counters (touched on connect and close).

mod accept;
pub mod home;
mod rings;
mod sweep;
pub mod watch;

pub use accept::serve_listener;

use crate::{
    bus::{Answer, Bus, Notice, Query, ShardMsg},
    config::{AppConfig, Config},
    conn::{identity::Identities, queue::Frame, ConnEntry, ConnKey, SocketId},
    error::CloseCode,
    hook::{
        board::Board,
        event::{now_ms, EmqxEvent, EmqxKind, HookMesh, Hooks},
    },
    metrics::Stats,
    topic::{home::HomeState, TopicIndex},
};
use glommio::channels::channel_mesh::Role;
use slab::Slab;
use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    rc::Rc,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// What one shard owns, behind one `RefCell` so fan-out borrows connections and topics together.
#[derive(Default)]
pub struct ShardState {
    pub conns: Slab<ConnEntry>,
    pub topics: TopicIndex,
    pub identities: Identities,
    pub home: HomeState,
    pub stats: Stats,
    next_generation: u32,
}

/// A connection shard.
pub struct Shard {
    pub config: Arc<Config>,
    pub bus: Bus,
    /// The sending side to the hook shard.
    pub hooks: Hooks,
    pub state: RefCell<ShardState>,
    /// Read buffer shared by every connection of this shard: a connection reads into it and
    /// keeps only an incomplete frame's bytes, so idle connections hold no read buffer.
    pub scratch: RefCell<Vec<u8>>,
    /// Open connections per app over all shards (for `max_connections`).
    app_conns: Arc<[AtomicU64]>,
    socket_high: u32,
    next_socket: Cell<u64>,
    started: Instant,
    pub shutting_down: Cell<bool>,
    /// Per peer: notices (and questions asked behind them) waiting for room in its ring, sent
    /// in order by one task (`None`: the ring had room for the last one, no task runs).
    backlog: RefCell<Vec<Option<VecDeque<ShardMsg>>>>,
}

/// Size of the shared read buffer.
const SCRATCH: usize = 64 * 1024;

impl Shard {
    pub fn new(
        config: Arc<Config>,
        bus: Bus,
        hooks: Hooks,
        app_conns: Arc<[AtomicU64]>,
    ) -> Rc<Shard> {
        let backlog = RefCell::new((0..bus.nr_shards()).map(|_| None).collect());
        Rc::new(Shard {
            config,
            bus,
            hooks,
            state: RefCell::default(),
            scratch: RefCell::new(vec![0; SCRATCH]),
            app_conns,
            socket_high: rand::random_range(1..1_000_000_000),
            next_socket: Cell::new(0),
            started: Instant::now(),
            shutting_down: Cell::new(false),
            backlog,
        })
    }

    pub fn id(&self) -> usize {
        self.bus.shard_id()
    }

    pub fn nr_shards(&self) -> usize {
        self.bus.nr_shards()
    }

    pub fn app(&self, app: u16) -> &AppConfig {
        &self.config.apps[usize::from(app)]
    }

    /// Seconds since the shard started: the coarse clock of activity timeouts.
    pub fn now(&self) -> u32 {
        self.started.elapsed().as_secs() as u32 + 1
    }

    /// The shard that keeps `channel`'s global state.
    pub fn home_of(&self, app: u16, channel: &str) -> usize {
        crate::topic::home::home_of(app, channel, self.nr_shards())
    }

    /// Adds a connection of `app`; `None` when the app is at its connection quota.
    pub fn add_conn(&self, app: u16) -> Option<(ConnKey, SocketId)> {
        let max = self.app(app).max_connections;
        let open = self.app_conns[usize::from(app)].fetch_add(1, Ordering::Relaxed);
        if max > 0 && open >= max {
            self.app_conns[usize::from(app)].fetch_sub(1, Ordering::Relaxed);
            return None;
        }
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
        Some((key, socket_id))
    }

    /// Removes a connection: its subscriptions, its presence memberships, its identity.
    pub fn remove_conn(self: &Rc<Self>, key: ConnKey) {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, topics, identities, .. } = &mut *state;
        let Some(conn) = conns.get(key.index()).filter(|c| c.generation == key.generation()) else {
            return;
        };
        let (app, socket, closing, opened) = (conn.app, conn.socket_id, conn.closing, conn.opened);
        let names = if self.needs_counts(app) { topics.names_of(conn) } else { Vec::new() };
        topics.unsubscribe_all(conns, key);
        conns.remove(key.index());
        let identity = identities.remove(app, key);
        drop(state);
        self.app_conns[usize::from(app)].fetch_sub(1, Ordering::Relaxed);
        for name in names {
            self.count_change(app, &name, -1);
        }
        let identity = identity.unwrap_or_default();
        let reason = closing.map_or("tcp_closed", CloseCode::hook_reason);
        self.disconnected_hooks(socket, identity.user_id.as_deref(), reason, opened);
        if let Some(user) = &identity.user_id {
            watch::signed_out(self, app, key, user, &identity.watchlist);
        }
        for (channel, user_id) in identity.presence {
            let home = self.home_of(app, &channel);
            let notice =
                Notice::Leave { app, channel: channel.into(), user_id: user_id.into(), socket };
            self.tell(home, notice);
        }
    }

    fn disconnected_hooks(&self, socket: SocketId, user: Option<&str>, reason: &str, opened: u32) {
        let connected_at = now_ms().saturating_sub(u64::from(self.now() - opened) * 1000);
        for kind in [EmqxKind::ClientDisconnected, EmqxKind::SessionTerminated] {
            self.hooks.emqx(kind, None, || EmqxEvent {
                username: user.map(str::to_string),
                reason: Some(reason.to_string()),
                connected_at: Some(connected_at),
                ..EmqxEvent::new(kind, socket.to_string())
            });
        }
    }

    /// Subscribes a connection to a topic of its app; false if it already was.
    pub fn subscribe(self: &Rc<Self>, key: ConnKey, topic: &str) -> bool {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, topics, .. } = &mut *state;
        let app = conns.get(key.index()).map(|c| c.app);
        let added = topics.subscribe(conns, key, topic);
        drop(state);
        if let (true, Some(app)) = (added, app) {
            self.count_change(app, topic, 1);
        }
        added
    }

    /// Unsubscribes a connection; false if it was not subscribed.
    pub fn unsubscribe(self: &Rc<Self>, key: ConnKey, topic: &str) -> bool {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, topics, .. } = &mut *state;
        let app = conns.get(key.index()).map(|c| c.app);
        let removed = topics.unsubscribe(conns, key, topic);
        drop(state);
        if let (true, Some(app)) = (removed, app) {
            self.count_change(app, topic, -1);
        }
        removed
    }

    /// Whether the homes of `app`'s channels need subscriber counts: for `subscription_count`
    /// events, or for occupancy and count webhooks.
    pub fn needs_counts(&self, app: u16) -> bool {
        self.app(app).enable_subscription_count
            || ["channel_occupied", "channel_vacated", "subscription_count"]
                .iter()
                .any(|name| self.hooks.wants_pusher(app, name))
    }

    /// Tells the channel's home about a subscriber change, when anything needs counts.
    fn count_change(self: &Rc<Self>, app: u16, channel: &str, delta: i64) {
        if !self.needs_counts(app) {
            return;
        }
        let notice = Notice::CountChange { app, channel: channel.into(), delta };
        self.tell(self.home_of(app, channel), notice);
    }

    /// Queues a frame for one connection (a reply to that connection). Over the limit, the
    /// connection is closed as a slow consumer.
    pub fn send(&self, key: ConnKey, frame: Frame) {
        let limit = self.config.outbound_queue_bytes;
        let mut state = self.state.borrow_mut();
        let ShardState { conns, stats, .. } = &mut *state;
        if let Some(conn) = conns.get_mut(key.index()).filter(|c| c.generation == key.generation())
        {
            enqueue(conn, frame, limit, stats);
        }
    }

    /// Whether a connection is still open (and is the same connection).
    pub fn is_open(&self, key: ConnKey) -> bool {
        let state = self.state.borrow();
        state
            .conns
            .get(key.index())
            .is_some_and(|c| c.generation == key.generation() && c.closing.is_none())
    }

    /// Sends a notice to `peer` (handled at once when that is this shard). Notices to one peer
    /// arrive in the order they were told: once one waits for room in the ring, later ones
    /// queue behind it rather than overtake it.
    pub fn tell(self: &Rc<Self>, peer: usize, notice: Notice) {
        if peer == self.id() {
            return home::on_notice(self, notice);
        }
        let mut backlog = self.backlog.borrow_mut();
        let Some(slot) = backlog.get_mut(peer) else { return };
        if let Some(waiting) = slot {
            return waiting.push_back(ShardMsg::Tell(notice));
        }
        let Err(notice) = self.bus.try_tell(peer, notice) else { return };
        *slot = Some(VecDeque::from([ShardMsg::Tell(notice)]));
        drop(backlog);
        let shard = self.clone();
        glommio::spawn_local(async move {
            loop {
                let next = {
                    let mut backlog = shard.backlog.borrow_mut();
                    let next = backlog[peer].as_mut().and_then(VecDeque::pop_front);
                    if next.is_none() {
                        backlog[peer] = None;
                    }
                    next
                };
                let Some(msg) = next else { break };
                let asked = match &msg {
                    ShardMsg::Ask { request, .. } => Some(*request),
                    _ => None,
                };
                if !shard.bus.send_to(peer, msg).await {
                    // The peer is gone: a question behind the notices gets no answer (None).
                    asked.into_iter().for_each(|request| shard.bus.forget(request));
                }
            }
        })
        .detach();
    }

    /// Asks `peer` (answered at once when that is this shard). A question to a peer with
    /// notices waiting goes behind them, so a join never overtakes the leave before it.
    pub async fn ask(self: &Rc<Self>, peer: usize, query: Query) -> Option<Answer> {
        if peer == self.id() {
            return Some(home::answer(self, query).await);
        }
        let waiting = matches!(self.backlog.borrow().get(peer), Some(Some(_)));
        if !waiting {
            return self.bus.ask(peer, query).await;
        }
        let (request, rx) = self.bus.register();
        let asked = ShardMsg::Ask { from: self.id(), request, query };
        match self.backlog.borrow_mut().get_mut(peer) {
            Some(Some(backlog)) => backlog.push_back(asked),
            _ => {
                self.bus.forget(request);
                return None;
            }
        }
        let answer = rx.recv().await;
        self.bus.forget(request);
        answer
    }

    /// Asks every shard, this one included.
    pub async fn ask_all(self: &Rc<Self>, query: Query) -> Vec<Answer> {
        let mut answers = vec![home::answer(self, query.clone()).await];
        answers.extend(self.bus.ask_peers(query).await);
        answers
    }

    /// This shard's counters, with its gauges filled in.
    pub fn local_stats(&self) -> Stats {
        let state = self.state.borrow();
        Stats {
            connections: state.conns.len() as u64,
            topics: state.topics.len() as u64,
            hook_events_dropped: self.hooks.dropped.get(),
            ring_backlog: self.backlog.borrow().iter().flatten().map(|q| q.len() as u64).sum(),
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

/// What a shard is started with.
pub struct Setup {
    pub config: Arc<Config>,
    pub mesh: crate::bus::Mesh,
    /// The rings to the hook shard, when any hook is configured.
    pub hook_mesh: Option<HookMesh>,
    pub app_conns: Arc<[AtomicU64]>,
    /// The hook shard's counters, for `/metrics`.
    pub board: Arc<Board>,
    pub addr: std::net::SocketAddr,
    pub ready: crossbeam_channel::Sender<Result<usize, String>>,
}

/// Runs a shard: join the meshes, listen, serve until shutdown, then close every client with
/// 4200 and wait (bounded) for them to go.
pub async fn run(setup: Setup) {
    let Setup { config, mesh, hook_mesh, app_conns, board, addr, ready } = setup;
    let listener = match crate::conn::sys::listen(addr, config.listen_backlog) {
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
    let hook_senders = match hook_mesh {
        Some(mesh) => match mesh.join(Role::Producer).await {
            Ok((senders, _)) => Some(senders),
            Err(e) => {
                let _ = ready.send(Err(format!("shard could not reach the hook shard: {e}")));
                return;
            }
        },
        None => None,
    };
    let hooks = Hooks::new(&config, hook_senders, board);
    let shard = Shard::new(config, bus, hooks, app_conns);
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
