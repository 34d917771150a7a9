//! A shard: one glommio executor that owns a slab of connections, their topic index, its ring
//! endpoints and one object per dialect (which owns that dialect's per-shard state). Nothing
//! here is shared with another thread; other shards are reached only through the rings.

use super::{
    bus::{Answer, Bus, Notice, Query, ShardMsg},
    calls::Calls,
    conn::{queue::Frame, Close, ConnEntry, ConnKey, DialectTag},
    home,
    seam::{Dialect, Gone, Policy},
    topics::TopicIndex,
};
use crate::{cluster::link::Link, config::Config, hook::event::Hooks, metrics::Stats};
use slab::Slab;
use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    rc::Rc,
    sync::Arc,
    time::Instant,
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
    /// The sending side to the hook shard.
    pub hooks: Hooks,
    /// Upstream calls waiting for their answers.
    pub calls: Calls,
    /// The link to the other nodes, in cluster mode.
    pub cluster: Option<Link>,
    pub state: RefCell<ShardState>,
    /// Read buffer shared by every connection of this shard: a connection reads into it and
    /// keeps only an incomplete frame's bytes, so idle connections hold no read buffer.
    pub scratch: RefCell<Vec<u8>>,
    /// The dialects, indexed by tag, and each one's keepalive policy.
    dialects: Vec<Rc<dyn Dialect>>,
    policies: Vec<Policy>,
    /// The dialect of each namespace.
    ns_tags: Vec<DialectTag>,
    started: Instant,
    pub shutting_down: Cell<bool>,
    /// Per peer: notices (and questions asked behind them) waiting for room in its ring, sent
    /// in order by one task (`None`: the ring had room for the last one, no task runs).
    backlog: RefCell<Vec<Option<VecDeque<ShardMsg>>>>,
}

/// Size of the shared read buffer.
const SCRATCH: usize = 64 * 1024;

impl Shard {
    /// A shard with its dialects (by tag) and the dialect of each namespace.
    pub fn new(
        config: Arc<Config>,
        bus: Bus,
        hooks: Hooks,
        calls: Calls,
        cluster: Option<Link>,
        dialects: Vec<Rc<dyn Dialect>>,
        ns_tags: Vec<DialectTag>,
    ) -> Rc<Shard> {
        let backlog = RefCell::new((0..bus.nr_shards()).map(|_| None).collect());
        let policies = dialects.iter().map(|d| d.policy()).collect();
        Rc::new(Shard {
            config,
            bus,
            hooks,
            calls,
            cluster,
            state: RefCell::default(),
            scratch: RefCell::new(vec![0; SCRATCH]),
            dialects,
            policies,
            ns_tags,
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

    /// Seconds since the shard started: the coarse clock of activity timeouts.
    pub fn now(&self) -> u32 {
        self.started.elapsed().as_secs() as u32 + 1
    }

    /// The dialect with `tag`.
    pub fn dialect(&self, tag: DialectTag) -> Option<&Rc<dyn Dialect>> {
        self.dialects.get(usize::from(tag))
    }

    /// Calls every dialect's `start` once.
    pub(crate) fn start_dialects(self: &Rc<Self>) {
        for dialect in &self.dialects {
            dialect.start(self);
        }
    }

    /// The dialect of namespace `ns`.
    pub fn tag_of_ns(&self, ns: u16) -> Option<DialectTag> {
        self.ns_tags.get(usize::from(ns)).copied()
    }

    pub(crate) fn policy(&self, tag: DialectTag) -> Option<&Policy> {
        self.policies.get(usize::from(tag))
    }

    /// The shard that keeps `name`'s global state in namespace `ns`.
    pub fn home_of(&self, ns: u16, name: &str) -> usize {
        home::home_of(ns, name, self.nr_shards())
    }

    /// Adds a connection of namespace `ns` spoken to by dialect `tag`.
    pub fn add_conn(&self, ns: u16, tag: DialectTag) -> ConnKey {
        let now = self.now();
        let mut state = self.state.borrow_mut();
        let generation = state.next_generation;
        state.next_generation = generation.wrapping_add(1);
        let entry = ConnEntry::new(generation, ns, tag, now);
        let key = ConnKey::new(state.conns.insert(entry), generation);
        state.stats.connections_total += 1;
        key
    }

    /// The live entry of `key` (same generation).
    pub fn with_conn<R>(&self, key: ConnKey, f: impl FnOnce(&mut ConnEntry) -> R) -> Option<R> {
        let mut state = self.state.borrow_mut();
        state.conns.get_mut(key.index()).filter(|c| c.generation == key.generation()).map(f)
    }

    /// Removes a connection: its dialect hears of it first, then its subscriptions and slot go.
    pub fn remove_conn(self: &Rc<Self>, key: ConnKey) {
        let gone = {
            let state = self.state.borrow();
            let Some(conn) =
                state.conns.get(key.index()).filter(|c| c.generation == key.generation())
            else {
                return;
            };
            (
                conn.tag,
                Gone { ns: conn.ns, close: conn.closing.as_deref().cloned(), opened: conn.opened },
            )
        };
        let (tag, gone) = gone;
        if let Some(dialect) = self.dialect(tag).cloned() {
            dialect.on_close(self, key, &gone);
        }
        let mut state = self.state.borrow_mut();
        let ShardState { conns, topics, .. } = &mut *state;
        let names = match (&self.cluster, conns.get(key.index())) {
            (Some(_), Some(conn)) => topics.names_of(conn),
            _ => Vec::new(),
        };
        topics.unsubscribe_all(conns, key);
        conns.remove(key.index());
        if let Some(link) = &self.cluster {
            for name in names.iter().filter(|n| topics.get(gone.ns, n).is_none()) {
                link.interest(gone.ns, name, false);
            }
        }
    }

    /// Subscribes a connection to a topic of its namespace; false if it already was.
    pub fn subscribe(&self, key: ConnKey, topic: &str) -> bool {
        self.subscribe_ready(key, topic).0
    }

    /// Subscribes like [`Shard::subscribe`]; in cluster mode, when this is the shard's first
    /// subscriber of the topic, also returns what tells when publications from other nodes
    /// will reach it (a dialect that promises delivery after its reply waits for it).
    pub fn subscribe_ready(
        &self,
        key: ConnKey,
        topic: &str,
    ) -> (bool, Option<flume::Receiver<()>>) {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, topics, .. } = &mut *state;
        let ns = conns.get(key.index()).map(|c| c.ns);
        let new_topic = ns.is_some_and(|ns| topics.get(ns, topic).is_none());
        let added = topics.subscribe(conns, key, topic);
        let ready = match (added, new_topic, &self.cluster, ns) {
            (true, true, Some(link), Some(ns)) => link.interest(ns, topic, true),
            _ => None,
        };
        (added, ready)
    }

    /// Cluster mode, before a subscription that promises delivery from its reply on: when
    /// this shard has no subscriber of the topic yet, has the node follow it now and returns
    /// what tells when the other nodes' publications will reach it. Pair with
    /// [`Shard::follow_release`] once the subscription is made or given up.
    pub fn follow_ahead(&self, ns: u16, topic: &str) -> Option<flume::Receiver<()>> {
        let link = self.cluster.as_ref()?;
        if self.state.borrow().topics.get(ns, topic).is_some() {
            return None;
        }
        link.interest(ns, topic, true)
    }

    /// Undoes [`Shard::follow_ahead`] if the topic got no subscriber here after all.
    pub fn follow_release(&self, ns: u16, topic: &str) {
        let Some(link) = &self.cluster else { return };
        if self.state.borrow().topics.get(ns, topic).is_none() {
            link.interest(ns, topic, false);
        }
    }

    /// Unsubscribes a connection; false if it was not subscribed.
    pub fn unsubscribe(&self, key: ConnKey, topic: &str) -> bool {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, topics, .. } = &mut *state;
        let ns = conns.get(key.index()).map(|c| c.ns);
        let removed = topics.unsubscribe(conns, key, topic);
        if let (true, Some(link), Some(ns)) = (removed, &self.cluster, ns) {
            if topics.get(ns, topic).is_none() {
                link.interest(ns, topic, false);
            }
        }
        removed
    }

    /// Unsubscribes a connection from those of `topics` it holds, in one pass; returns how many.
    pub fn unsubscribe_many(&self, key: ConnKey, topics: &[&str]) -> usize {
        let mut state = self.state.borrow_mut();
        let ShardState { conns, topics: index, .. } = &mut *state;
        index.unsubscribe_many(conns, key, topics)
    }

    /// Whether a connection is subscribed to `topic`.
    pub fn is_subscribed(&self, key: ConnKey, topic: &str) -> bool {
        let state = self.state.borrow();
        let Some(conn) = state.conns.get(key.index()).filter(|c| c.generation == key.generation())
        else {
            return false;
        };
        state.topics.is_subscribed(conn, topic)
    }

    /// Queues a frame for one connection (a reply to that connection). Over the limit, the
    /// connection is closed as a slow consumer.
    pub fn send(&self, key: ConnKey, frame: Frame) {
        let limit = self.config.outbound_queue_bytes;
        let mut state = self.state.borrow_mut();
        let ShardState { conns, stats, .. } = &mut *state;
        if let Some(conn) = conns.get_mut(key.index()).filter(|c| c.generation == key.generation())
        {
            let over = self.over_capacity(conn.tag);
            enqueue(conn, frame, limit, stats, &over);
        }
    }

    /// Asks a connection to close.
    pub fn close(&self, key: ConnKey, close: Close) {
        self.with_conn(key, |conn| conn.close(close));
    }

    /// Whether a connection is still open (and is the same connection).
    pub fn is_open(&self, key: ConnKey) -> bool {
        let state = self.state.borrow();
        state
            .conns
            .get(key.index())
            .is_some_and(|c| c.generation == key.generation() && c.closing.is_none())
    }

    /// The close a dialect's slow consumers get.
    pub(crate) fn over_capacity(&self, tag: DialectTag) -> Close {
        self.policy(tag).map_or(Close::fixed(4100, "Over capacity"), |k| k.over_capacity.clone())
    }

    /// Sends a notice to `peer` (handled at once when that is this shard). Notices to one peer
    /// arrive in the order they were told: once one waits for room in the ring, later ones
    /// queue behind it rather than overtake it.
    pub fn tell(self: &Rc<Self>, peer: usize, notice: Notice) {
        if peer == self.id() {
            return self.apply_notice(notice);
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
        glommio::spawn_local(async move { shard.drain_backlog(peer).await }).detach();
    }

    /// Sends what waits for `peer`, in order, until nothing is left.
    async fn drain_backlog(self: Rc<Self>, peer: usize) {
        loop {
            let next = {
                let mut backlog = self.backlog.borrow_mut();
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
            if !self.bus.send_to(peer, msg).await {
                // The peer is gone: a question behind the notices gets no answer (None).
                asked.into_iter().for_each(|request| self.bus.forget(request));
            }
        }
    }

    /// Asks `peer` (answered at once when that is this shard). A question to a peer with
    /// notices waiting goes behind them, so a join never overtakes the leave before it.
    pub async fn ask(self: &Rc<Self>, peer: usize, query: Query) -> Option<Answer> {
        if peer == self.id() {
            return Some(self.answer(query).await);
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

    /// Asks every shard, this one included: all questions go out first, then the answers are
    /// gathered (a shard that is gone gives none).
    pub async fn ask_all(self: &Rc<Self>, query: impl Fn() -> Query) -> Vec<Answer> {
        let mut pending = Vec::new();
        for peer in self.bus.peers() {
            let shard = self.clone();
            let query = query();
            pending.push(glommio::spawn_local(async move { shard.ask(peer, query).await }));
        }
        let mut answers = vec![self.answer(query()).await];
        for task in pending {
            answers.extend(task.await);
        }
        answers
    }

    /// Answers a question asked of this shard.
    pub async fn answer(self: &Rc<Self>, query: Query) -> Answer {
        match query {
            Query::Stats => Answer::Stats(self.local_stats()),
            Query::Dialect(envelope) => match self.dialect(envelope.tag).cloned() {
                Some(dialect) => Answer::Dialect(dialect.answer(self, envelope).await),
                None => Answer::Dialect(envelope),
            },
        }
    }

    /// Applies a notice sent to this shard.
    pub fn apply_notice(self: &Rc<Self>, notice: Notice) {
        match notice {
            Notice::Deliver { keys, frame } => {
                let frame = Frame::new(frame);
                for key in keys {
                    self.send(key, frame.clone());
                }
            }
            Notice::Close { keys, close } => {
                for key in keys {
                    self.close(key, close.clone());
                }
            }
            Notice::Dialect(envelope) => {
                if let Some(dialect) = self.dialect(envelope.tag).cloned() {
                    dialect.on_notice(self, envelope);
                }
            }
        }
    }

    /// This shard's counters, with its gauges filled in.
    pub fn local_stats(&self) -> Stats {
        let state = self.state.borrow();
        Stats {
            connections: state.conns.len() as u64,
            topics: state.topics.len() as u64,
            hook_events_dropped: self.hooks.dropped.get(),
            ring_backlog: self.backlog.borrow().iter().flatten().map(|q| q.len() as u64).sum(),
            calls_in_flight: self.calls.in_flight() as u64,
            ..state.stats
        }
    }
}

/// Queues `frame` on `conn` and wakes it; closes it with `over` if it is over its limit.
pub fn enqueue(conn: &mut ConnEntry, frame: Frame, limit: usize, stats: &mut Stats, over: &Close) {
    if conn.closing.is_some() {
        return;
    }
    if conn.out.push(frame, limit).is_err() {
        conn.out.clear_unstarted();
        conn.close(over.clone());
        stats.slow_consumers_closed += 1;
        return;
    }
    stats.frames_out += 1;
    conn.wake();
}
