//! The cluster thread: one NATS connection (async-nats on a current-thread tokio runtime of its
//! own), the node's subscriptions (one per followed topic, plus heartbeats, broadcasts and
//! questions), node liveness from heartbeats, and queries to the other nodes. It talks to the
//! shards only through the bounded channels of [`super::link`].

use super::{
    board::Board,
    interest::{Changes, Interest, TopicKey},
    link::LinkSeed,
    subject::Subjects,
    FromCluster, ToCluster,
};
use crate::{config::cluster::ClusterConfig, shutdown::Shutdown};
use ahash::AHashMap;
use async_nats::{Client, ConnectOptions, Event, HeaderMap, Message};
use bytes::Bytes;
use futures_lite::StreamExt;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{sync::mpsc, task::JoinHandle};

/// What the runtime gets back: each shard's link and the channel it listens on.
pub struct Started {
    pub links: Vec<LinkSeed>,
    pub receivers: Vec<flume::Receiver<FromCluster>>,
    pub board: Arc<Board>,
    pub node: Arc<str>,
}

/// Starts the cluster thread; `ns_names` names each namespace the same way on every node.
pub fn start(
    config: &ClusterConfig,
    nr_shards: usize,
    ns_names: Vec<String>,
    shutdown: Shutdown,
) -> Result<Started, String> {
    let node: Arc<str> = config.node_name().into();
    let board = Arc::new(Board::default());
    let (to_cluster, from_shards) = flume::bounded(config.queue_capacity);
    let mut senders = Vec::with_capacity(nr_shards);
    let mut receivers = Vec::with_capacity(nr_shards);
    for _ in 0..nr_shards {
        let (tx, rx) = flume::bounded(config.queue_capacity);
        senders.push(tx);
        receivers.push(rx);
    }
    let links = (0..nr_shards)
        .map(|shard| LinkSeed::new(shard, to_cluster.clone(), board.clone(), node.clone(), config))
        .collect();
    let thread = Thread {
        config: config.clone(),
        node: node.clone(),
        subjects: Subjects::new(&config.prefix),
        ns_names: ns_names.into(),
        board: board.clone(),
        shards: senders.into(),
        from_shards,
        shutdown,
    };
    std::thread::Builder::new()
        .name("cluster".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            match runtime {
                Ok(runtime) => runtime.block_on(thread.run()),
                Err(e) => tracing::error!("cluster thread cannot start its runtime: {e}"),
            }
        })
        .map_err(|e| format!("cannot start the cluster thread: {e}"))?;
    Ok(Started { links, receivers, board, node })
}

/// The thread's state that does not change.
struct Thread {
    config: ClusterConfig,
    node: Arc<str>,
    subjects: Subjects,
    ns_names: Arc<[String]>,
    board: Arc<Board>,
    shards: Arc<[flume::Sender<FromCluster>]>,
    from_shards: flume::Receiver<ToCluster>,
    shutdown: Shutdown,
}

/// What changes while it runs.
struct State {
    client: Client,
    interest: Interest,
    subscriptions: AHashMap<TopicKey, JoinHandle<()>>,
    nodes: AHashMap<Arc<str>, Instant>,
    up: bool,
    ever_up: bool,
    next_question: usize,
}

impl Thread {
    async fn run(self) {
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let (min, max) = (self.config.reconnect_min_ms, self.config.reconnect_max_ms);
        let options = ConnectOptions::new()
            .name(&*self.node)
            .no_echo()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(move |attempt| backoff(min, max, attempt))
            .event_callback(move |event| {
                let events_tx = events_tx.clone();
                async move {
                    let _ = events_tx.send(event);
                }
            });
        let client = match options.connect(self.config.servers.clone()).await {
            Ok(client) => client,
            Err(e) => {
                tracing::error!("cluster: cannot set up the NATS client: {e}");
                return;
            }
        };
        let subscribe = |subject: String| client.subscribe(subject);
        let (hb, broadcasts, questions) = match (
            subscribe(self.subjects.heartbeat()).await,
            subscribe(self.subjects.all_broadcasts()).await,
            subscribe(self.subjects.all_questions()).await,
        ) {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            _ => {
                tracing::error!("cluster: cannot subscribe to the cluster's subjects");
                return;
            }
        };
        let (mut hb, mut broadcasts, mut questions) = (hb, broadcasts, questions);
        let mut state = State {
            client: client.clone(),
            interest: Interest::new(self.shards.len()),
            subscriptions: AHashMap::default(),
            nodes: AHashMap::default(),
            up: false,
            ever_up: false,
            next_question: 0,
        };
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.heartbeat_ms));
        loop {
            tokio::select! {
                msg = self.from_shards.recv_async() => match msg {
                    Ok(msg) => self.handle_shard(&mut state, msg).await,
                    Err(_) => break,
                },
                Some(msg) = hb.next() => self.heartbeat(&mut state, &msg),
                Some(msg) = broadcasts.next() => self.broadcast_in(msg),
                Some(msg) = questions.next() => self.question_in(&mut state, msg),
                Some(event) = events.recv() => self.event(&mut state, event),
                _ = tick.tick() => {
                    if self.shutdown.requested() {
                        break;
                    }
                    self.tick(&mut state).await;
                }
            }
        }
        let _ = client.flush().await;
    }

    async fn handle_shard(&self, state: &mut State, msg: ToCluster) {
        match msg {
            ToCluster::Publish { ns, topic, frame, exclude } => {
                if !state.up {
                    Board::add(&self.board.missed_while_down, 1);
                    return;
                }
                let subject = self.subjects.topic(&self.ns_name(ns), &topic);
                let sent = match exclude {
                    None => state.client.publish(subject, frame).await,
                    Some(id) => {
                        let mut headers = HeaderMap::new();
                        headers.insert(EXCLUDE, &*id);
                        state.client.publish_with_headers(subject, headers, frame).await
                    }
                };
                if sent.is_ok() {
                    Board::add(&self.board.published, 1);
                } else {
                    Board::add(&self.board.missed_while_down, 1);
                }
            }
            ToCluster::Interest { shard, ns, topic, on, ready } => {
                let mut changes = Changes::default();
                state.interest.report(shard, (ns, topic), on, &mut changes);
                let subscribed = !changes.follow.is_empty();
                self.apply(state, changes).await;
                if subscribed && state.up {
                    // The server has the subscription once it answered the flush's ping.
                    let _ = state.client.flush().await;
                }
                if let Some(ready) = ready {
                    let _ = ready.try_send(());
                }
            }
            ToCluster::Digest { shard, count, hash } => {
                if !state.interest.matches(shard, count, hash) {
                    Board::add(&self.board.resyncs, 1);
                    self.to_shard(shard, FromCluster::Resync);
                }
            }
            ToCluster::Topics { shard, topics } => {
                let mut changes = Changes::default();
                state.interest.replace(shard, topics, &mut changes);
                self.apply(state, changes).await;
            }
            ToCluster::Broadcast { tag, body } => {
                if state.up {
                    let headers = self.signed_headers();
                    let subject = self.subjects.broadcast(tag);
                    if state.client.publish_with_headers(subject, headers, body).await.is_ok() {
                        Board::add(&self.board.broadcasts_out, 1);
                    }
                }
            }
            ToCluster::Query { shard, id, tag, body } => self.query(state, shard, id, tag, body),
            ToCluster::Reply { inbox, body } => {
                let _ = state.client.publish_with_headers(inbox, self.signed_headers(), body).await;
            }
        }
    }

    /// Follows and unfollows topics on NATS.
    async fn apply(&self, state: &mut State, changes: Changes) {
        for topic in changes.unfollow {
            if let Some(task) = state.subscriptions.remove(&topic) {
                // Dropping the subscriber in the aborted task unsubscribes it.
                task.abort();
            }
        }
        for topic in changes.follow {
            let subject = self.subjects.topic(&self.ns_name(topic.0), &topic.1);
            let Ok(mut subscriber) = state.client.subscribe(subject).await else {
                tracing::warn!("cluster: cannot subscribe to topic {}", topic.1);
                continue;
            };
            let (shards, board) = (self.shards.clone(), self.board.clone());
            let (ns, name): (u16, Arc<str>) = (topic.0, topic.1.clone().into());
            let task = tokio::spawn(async move {
                while let Some(msg) = subscriber.next().await {
                    Board::add(&board.received, 1);
                    let exclude = msg.headers.as_ref().and_then(|h| h.get(EXCLUDE));
                    let exclude = exclude.map(|id| Arc::<str>::from(id.as_str()));
                    let publish = FromCluster::Publish {
                        ns,
                        topic: name.clone(),
                        frame: msg.payload,
                        exclude,
                    };
                    for shard in shards.iter() {
                        if shard.try_send(publish.clone()).is_err() {
                            Board::add(&board.dropped_in, 1);
                        }
                    }
                }
            });
            state.subscriptions.insert(topic, task);
        }
        Board::set(&self.board.interest, state.interest.len() as u64);
    }

    fn heartbeat(&self, state: &mut State, msg: &Message) {
        let Ok(name) = std::str::from_utf8(&msg.payload) else { return };
        if name == &*self.node {
            return;
        }
        let now = Instant::now();
        if let Some(seen) = state.nodes.get_mut(name) {
            *seen = now;
            return;
        }
        let name: Arc<str> = name.into();
        state.nodes.insert(name.clone(), now);
        Board::set(&self.board.nodes, state.nodes.len() as u64);
        self.nodes_changed(state, vec![name], Vec::new());
    }

    fn broadcast_in(&self, msg: Message) {
        let (Some(tag), Some(node)) = (Subjects::tag_of(&msg.subject), sender(&msg)) else {
            return;
        };
        Board::add(&self.board.broadcasts_in, 1);
        let broadcast = FromCluster::Broadcast { tag, node, body: msg.payload };
        for shard in 0..self.shards.len() {
            self.to_shard(shard, broadcast.clone());
        }
    }

    fn question_in(&self, state: &mut State, msg: Message) {
        let (Some(tag), Some(node), Some(inbox)) =
            (Subjects::tag_of(&msg.subject), sender(&msg), msg.reply.as_ref())
        else {
            return;
        };
        let shard = state.next_question % self.shards.len().max(1);
        state.next_question = state.next_question.wrapping_add(1);
        let question =
            FromCluster::Question { tag, node, inbox: inbox.to_string(), body: msg.payload };
        self.to_shard(shard, question);
    }

    /// Asks every other live node; the answers (those in time) go to the asking shard.
    fn query(&self, state: &State, shard: usize, id: u64, tag: u8, body: Bytes) {
        let expected = state.nodes.len();
        let reply_to = self.shards.get(shard).cloned();
        if expected == 0 || !state.up {
            let complete = expected == 0;
            self.to_shard(shard, FromCluster::Answers { id, answers: Vec::new(), complete });
            return;
        }
        let (client, subject, board) =
            (state.client.clone(), self.subjects.question(tag), self.board.clone());
        let (headers, timeout) =
            (self.signed_headers(), Duration::from_millis(self.config.query_timeout_ms));
        tokio::spawn(async move {
            let started = Instant::now();
            let inbox = client.new_inbox();
            let mut answers = Vec::new();
            if let Ok(mut replies) = client.subscribe(inbox.clone()).await {
                let asked = client.publish_with_reply_and_headers(subject, inbox, headers, body);
                if asked.await.is_ok() {
                    let deadline = tokio::time::sleep(timeout);
                    tokio::pin!(deadline);
                    while answers.len() < expected {
                        tokio::select! {
                            Some(msg) = replies.next() => {
                                if let Some(node) = sender(&msg) {
                                    answers.push((node, msg.payload));
                                }
                            }
                            _ = &mut deadline => break,
                        }
                    }
                }
            }
            let complete = answers.len() >= expected;
            board.query_took(started.elapsed().as_micros() as u64, !complete);
            if let Some(tx) = reply_to {
                let _ = tx.try_send(FromCluster::Answers { id, answers, complete });
            }
        });
    }

    fn event(&self, state: &mut State, event: Event) {
        match event {
            Event::Connected => {
                if state.ever_up {
                    Board::add(&self.board.reconnects, 1);
                    tracing::info!("cluster: link to NATS restored");
                }
                state.up = true;
                state.ever_up = true;
                Board::set(&self.board.link_up, 1);
                self.to_all(FromCluster::Link { up: true });
            }
            Event::Disconnected | Event::Closed => {
                if state.up {
                    tracing::warn!("cluster: link to NATS lost; publishes reach this node only");
                }
                state.up = false;
                Board::set(&self.board.link_up, 0);
                self.to_all(FromCluster::Link { up: false });
            }
            other => tracing::debug!("cluster: {other}"),
        }
    }

    /// Heartbeat out, and nodes not heard from for too long are gone.
    async fn tick(&self, state: &mut State) {
        if state.up {
            let name = Bytes::copy_from_slice(self.node.as_bytes());
            let _ = state.client.publish(self.subjects.heartbeat(), name).await;
        }
        let timeout = Duration::from_millis(self.config.node_timeout_ms);
        let gone: Vec<Arc<str>> = state
            .nodes
            .iter()
            .filter(|(_, seen)| seen.elapsed() > timeout)
            .map(|(name, _)| name.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        for name in &gone {
            state.nodes.remove(name);
            tracing::warn!("cluster: node {name} is gone (no heartbeat for {timeout:?})");
        }
        Board::add(&self.board.nodes_gone, gone.len() as u64);
        Board::set(&self.board.nodes, state.nodes.len() as u64);
        self.nodes_changed(state, Vec::new(), gone);
    }

    fn nodes_changed(&self, state: &State, up: Vec<Arc<str>>, gone: Vec<Arc<str>>) {
        let live: Vec<Arc<str>> = state.nodes.keys().cloned().collect();
        self.to_all(FromCluster::Nodes { up, gone, live });
    }

    fn ns_name(&self, ns: u16) -> std::borrow::Cow<'_, str> {
        match self.ns_names.get(usize::from(ns)) {
            Some(name) => name.as_str().into(),
            None => format!("ns{ns}").into(),
        }
    }

    fn signed_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("node", &*self.node);
        headers
    }

    fn to_shard(&self, shard: usize, msg: FromCluster) {
        let sent = self.shards.get(shard).is_some_and(|tx| tx.try_send(msg).is_ok());
        if !sent {
            Board::add(&self.board.dropped_in, 1);
        }
    }

    fn to_all(&self, msg: FromCluster) {
        for shard in 0..self.shards.len() {
            self.to_shard(shard, msg.clone());
        }
    }
}

/// The header naming a publisher's connection that must not receive a publication.
const EXCLUDE: &str = "exclude";

/// The node a message came from (its `node` header).
fn sender(msg: &Message) -> Option<Arc<str>> {
    Some(msg.headers.as_ref()?.get("node")?.as_str().into())
}

/// Reconnect delay: doubling from `min` to `max` milliseconds.
fn backoff(min: u64, max: u64, attempt: usize) -> Duration {
    let factor = 1u64 << attempt.min(16);
    Duration::from_millis(min.saturating_mul(factor).min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        assert_eq!(backoff(100, 5000, 0), Duration::from_millis(100));
        assert_eq!(backoff(100, 5000, 3), Duration::from_millis(800));
        assert_eq!(backoff(100, 5000, 10), Duration::from_millis(5000));
        assert_eq!(backoff(100, 5000, usize::MAX), Duration::from_millis(5000));
    }
}
