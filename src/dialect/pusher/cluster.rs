//! Cluster mode for Pusher: the home shard of a channel (or user) on each node tells the
//! other nodes its own changes (a member joined or left through this node, the node's
//! subscriber count, a user's first or last session here), keeps theirs in its `Replica`,
//! and decides events from both: a presence member is present cluster-wide while present
//! here or on any other node, and `member_added` / `member_removed` go out only when that
//! changes. Each node tells its own subscribers (never through the cluster, so no client
//! hears an event twice); webhooks are sent by the channel's owner node only (`wire::owner`).
//! Snapshots repair what a node missed: sent when its link comes up or a node appears.

use super::{
    home,
    replica::{Replica, Snapshot, Source, Transitions},
    watch,
    wire::{self, Ask, Parts, Told, Wire},
    Pusher,
};
use crate::{dialect::pusher::messages::Tell, engine::shard::Shard};
use ahash::AHashMap;
use bytes::Bytes;
use std::{rc::Rc, sync::Arc};

/// What one shard keeps of the cluster, for what it homes.
#[derive(Debug, Default)]
pub struct ClusterSide {
    /// The other nodes' pieces.
    pub replica: Replica,
    /// Sessions on this node of users homed here (the piece this shard tells others).
    sessions: AHashMap<(u16, Box<str>), i64>,
    /// Snapshots still arriving, by source.
    pending: AHashMap<Source, Snapshot>,
}

/// Whether this node sends the webhooks of `channel`: always on a single node; in a cluster,
/// when it ranks first among the live nodes.
pub fn sends_webhooks(pusher: &Pusher, shard: &Shard, app: u16, channel: &str) -> bool {
    let Some(link) = &shard.cluster else { return true };
    let live = link.live_nodes();
    let nodes = live.iter().map(|n| &**n).chain([&**link.node()]);
    wire::owner(nodes, &pusher.app(app).id, channel) == &**link.node()
}

/// Tells the other nodes; nothing on a single node.
fn send(pusher: &Pusher, shard: &Shard, wire: &Wire) {
    let Some(link) = &shard.cluster else { return };
    match serde_json::to_vec(wire) {
        Ok(body) => link.broadcast(pusher.tag, Bytes::from(body)),
        Err(e) => tracing::warn!("pusher: cannot encode a cluster message: {e}"),
    }
}

/// Home: `user` joined `channel` through this node (its first connection here) or left it
/// (its last). Tells the other nodes; returns whether the user's cluster-wide presence
/// changed (no other node has the user).
pub fn member_here(
    pusher: &Pusher,
    shard: &Shard,
    app: u16,
    channel: &str,
    user: &str,
    info: Option<&str>,
    present: bool,
) -> bool {
    if shard.cluster.is_none() {
        return true;
    }
    let wire = Wire::Member {
        shard: shard.id() as u16,
        app: pusher.app(app).id.clone(),
        channel: channel.into(),
        user: user.into(),
        info: info.map(str::to_string),
        present,
    };
    send(pusher, shard, &wire);
    pusher.cluster.borrow().replica.member_info(app, channel, user).is_none()
}

/// Home: this node's subscribers of `channel` are `count` now.
pub fn count_here(pusher: &Pusher, shard: &Shard, app: u16, channel: &str, count: u64) {
    if shard.cluster.is_some() {
        let (id, me) = (pusher.app(app).id.clone(), shard.id() as u16);
        send(pusher, shard, &Wire::Count { shard: me, app: id, channel: channel.into(), count });
    }
}

/// Subscribers of `channel` on the other nodes (as their home shards last said).
pub fn remote_count(pusher: &Pusher, app: u16, channel: &str) -> u64 {
    pusher.cluster.borrow().replica.count_of(app, channel)
}

/// Home: one of `user`'s sessions on this node began (1) or ended (-1); tells the other nodes
/// when the user's first one began or its last one ended.
pub fn session_here(pusher: &Pusher, shard: &Shard, app: u16, user: &str, delta: i64) {
    if shard.cluster.is_none() {
        return;
    }
    let changed = {
        let mut side = pusher.cluster.borrow_mut();
        let key = (app, Box::<str>::from(user));
        let n = side.sessions.entry(key.clone()).or_default();
        let before = *n > 0;
        *n += delta;
        let after = *n > 0;
        if *n == 0 {
            side.sessions.remove(&key);
        }
        (before != after).then_some(after)
    };
    if let Some(present) = changed {
        let (id, me) = (pusher.app(app).id.clone(), shard.id() as u16);
        send(pusher, shard, &Wire::Session { shard: me, app: id, user: user.into(), present });
    }
}

/// Asks every other node to close `user`'s connections.
pub fn terminate(pusher: &Pusher, shard: &Shard, app: u16, user: &str) {
    let app = pusher.app(app).id.clone();
    send(pusher, shard, &Wire::Terminate { app, user: user.into() });
}

/// A broadcast from node `node` (every shard hears it; each applies what it homes).
pub fn on_broadcast(pusher: &Rc<Pusher>, shard: &Rc<Shard>, node: &Arc<str>, body: &[u8]) {
    let Ok(wire) = serde_json::from_slice::<Wire>(body) else {
        tracing::debug!("pusher: unreadable cluster message from {node}");
        return;
    };
    let app_of = |id: &str| pusher.config.app_by_id(id).map(|(app, _)| app);
    let homed = |app: u16, name: &str| shard.home_of(app, name) == shard.id();
    match wire {
        Wire::Member { shard: from, app, channel, user, info, present } => {
            let Some(app) = app_of(&app).filter(|&a| homed(a, &channel)) else { return };
            let source = (node.clone(), from);
            let info = info.as_deref();
            let changed = pusher
                .cluster
                .borrow_mut()
                .replica
                .member(app, &channel, &user, info, &source, present);
            let mut t = Transitions::default();
            if changed {
                t.members.push((app, channel, user, present));
            }
            apply(pusher, shard, t);
        }
        Wire::Count { shard: from, app, channel, count } => {
            let Some(app) = app_of(&app).filter(|&a| homed(a, &channel)) else { return };
            let source = (node.clone(), from);
            let (before, after) =
                pusher.cluster.borrow_mut().replica.count(app, &channel, &source, count);
            let t =
                Transitions { counts: vec![(app, channel, before, after)], ..Default::default() };
            apply(pusher, shard, t);
        }
        Wire::Session { shard: from, app, user, present } => {
            let Some(app) = app_of(&app).filter(|&a| homed(a, &user)) else { return };
            let source = (node.clone(), from);
            let changed = pusher.cluster.borrow_mut().replica.session(app, &user, &source, present);
            if changed {
                apply(
                    pusher,
                    shard,
                    Transitions { sessions: vec![(app, user, present)], ..Default::default() },
                );
            }
        }
        Wire::Terminate { app, user } => {
            if let Some(app) = app_of(&app) {
                home::on_notice(pusher, shard, Tell::Terminate { app, user_id: user });
            }
        }
        Wire::Snapshot { shard: from, last, part, shards } => {
            let source = (node.clone(), from);
            let done = {
                let mut side = pusher.cluster.borrow_mut();
                part.resolve(app_of, side.pending.entry(source.clone()).or_default());
                if last {
                    side.pending.remove(&source)
                } else {
                    None
                }
            };
            if let Some(snapshot) = done {
                let t = pusher.cluster.borrow_mut().replica.replace(&source, &snapshot, homed);
                apply(pusher, shard, t);
                if from == 0 && shards > 0 {
                    let t = pusher.cluster.borrow_mut().replica.drop_shards(node, shards);
                    apply(pusher, shard, t);
                }
            }
        }
        Wire::Hello { to } => {
            let me = shard.cluster.as_ref().map(|l| l.node().to_string()).unwrap_or_default();
            if to.is_empty() || to.contains(&me) {
                send_snapshot(pusher, shard);
            }
        }
    }
}

/// Nodes came or went: a gone node's pieces are dropped (its members leave, its subscribers
/// and sessions end); a new node gets this shard's snapshot and is asked for its own.
pub fn on_nodes(pusher: &Rc<Pusher>, shard: &Rc<Shard>, up: &[Arc<str>], gone: &[Arc<str>]) {
    for node in gone {
        let t = {
            let mut side = pusher.cluster.borrow_mut();
            side.pending.retain(|source, _| source.0 != *node);
            side.replica.drop_node(node)
        };
        apply(pusher, shard, t);
    }
    if !up.is_empty() {
        send_snapshot(pusher, shard);
        if shard.id() == 0 {
            let to = up.iter().map(|n| n.to_string()).collect();
            send(pusher, shard, &Wire::Hello { to });
        }
    }
}

/// The link came up: this shard's snapshot to everyone, and (once per node) a request for
/// theirs, which repairs whatever a blip lost on either side.
pub fn on_link(pusher: &Rc<Pusher>, shard: &Rc<Shard>, up: bool) {
    if up {
        send_snapshot(pusher, shard);
        if shard.id() == 0 {
            send(pusher, shard, &Wire::Hello { to: Vec::new() });
        }
    }
}

/// Sends everything this shard homes for this node, in parts.
fn send_snapshot(pusher: &Pusher, shard: &Shard) {
    let Some(link) = &shard.cluster else { return };
    let id = |app: u16| pusher.app(app).id.clone();
    let all = {
        let home = pusher.home.borrow();
        let side = pusher.cluster.borrow();
        Parts {
            members: home.all_members().into_iter().map(|(a, c, u, i)| (id(a), c, u, i)).collect(),
            counts: home.all_counts().into_iter().map(|(a, c, n)| (id(a), c, n)).collect(),
            sessions: side
                .sessions
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|((a, u), _)| (id(*a), u.to_string()))
                .collect(),
        }
    };
    let parts = wire::chunks(all, pusher.config.cluster.snapshot_chunk_bytes);
    let (n, me) = (parts.len(), shard.id() as u16);
    for (i, part) in parts.into_iter().enumerate() {
        let shards = shard.nr_shards() as u16;
        let wire = Wire::Snapshot { shard: me, last: i + 1 == n, part, shards };
        match serde_json::to_vec(&wire) {
            Ok(body) => link.broadcast(pusher.tag, Bytes::from(body)),
            Err(e) => tracing::warn!("pusher: cannot encode a snapshot: {e}"),
        }
    }
}

/// Turns changes of the other nodes' pieces into this node's events: a member whose
/// cluster-wide presence changed (this node does not have the user), a count, a session.
fn apply(pusher: &Rc<Pusher>, shard: &Rc<Shard>, t: Transitions) {
    for (app, channel, user, present) in t.members {
        if pusher.home.borrow().member(app, &channel, &user).is_some() {
            continue;
        }
        if present {
            let info = pusher
                .cluster
                .borrow()
                .replica
                .member_info(app, &channel, &user)
                .flatten()
                .map(str::to_string);
            home::member_added(pusher, shard, app, &channel, &user, info.as_deref());
        } else {
            home::member_removed(pusher, shard, app, &channel, &user);
        }
    }
    for (app, channel, before, after) in t.counts {
        home::remote_count_changed(pusher, shard, app, channel, before, after);
    }
    for (app, user, present) in t.sessions {
        watch::on_session(pusher, shard, app, &user, if present { 1 } else { -1 });
    }
}

/// Answers another node's question from this node's shards.
pub async fn answer(pusher: &Rc<Pusher>, shard: &Rc<Shard>, body: &[u8]) -> Bytes {
    use super::messages::{Question, Reply};
    let told = match serde_json::from_slice::<Ask>(body) {
        Ok(Ask::Subscribers { app, channel }) => match pusher.config.app_by_id(&app) {
            Some((app, _)) => {
                let question = Question::Subscribers { app, channel };
                let answers = pusher.ask_all(shard, question).await;
                let count =
                    answers.into_iter().map(|a| if let Reply::Count(n) = a { n } else { 0 }).sum();
                Told::Count { count }
            }
            None => Told::Count { count: 0 },
        },
        Ok(Ask::Channels { app, prefix }) => match pusher.config.app_by_id(&app) {
            Some((app, _)) => {
                let answers = pusher.ask_all(shard, Question::Channels { app, prefix }).await;
                let mut channels: AHashMap<String, u64> = AHashMap::default();
                for answer in answers {
                    if let Reply::Channels { local, .. } = answer {
                        for (name, n) in local {
                            *channels.entry(name).or_default() += n;
                        }
                    }
                }
                Told::Channels { channels: channels.into_iter().collect() }
            }
            None => Told::Channels { channels: Vec::new() },
        },
        Ok(Ask::Cache { app, channel }) => match pusher.config.app_by_id(&app) {
            Some((app, _)) => {
                Told::Cache { cached: cached_here(pusher, shard, app, channel).await }
            }
            None => Told::Cache { cached: None },
        },
        Err(_) => return Bytes::new(),
    };
    serde_json::to_vec(&told).map(Bytes::from).unwrap_or_default()
}

/// The last event of a cache channel: (event, data, seconds left to live). In a cluster each
/// node keeps the last event published through it, and the newest of every node's wins.
pub async fn cached(
    pusher: &Pusher,
    shard: &Rc<Shard>,
    app: u16,
    channel: &str,
) -> Option<(String, String, u64)> {
    let ask = Ask::Cache { app: pusher.app(app).id.clone(), channel: channel.to_string() };
    let (here, (remote, _)) = futures_lite::future::zip(
        cached_here(pusher, shard, app, channel.to_string()),
        ask_nodes(pusher, shard, &ask),
    )
    .await;
    let theirs = remote.into_iter().filter_map(|told| match told {
        Told::Cache { cached } => cached,
        _ => None,
    });
    let newest = here.into_iter().chain(theirs).max_by_key(|(_, _, _, at_us)| *at_us);
    newest.map(|(event, data, left, _)| (event, data, left))
}

/// This node's entry for a cache channel, from its home shard.
async fn cached_here(
    pusher: &Pusher,
    shard: &Rc<Shard>,
    app: u16,
    channel: String,
) -> Option<super::messages::CachedEvent> {
    use super::messages::{Question, Reply};
    let home = shard.home_of(app, &channel);
    match pusher.ask(shard, home, Question::Cache { app, channel }).await {
        Some(Reply::Cache(cached)) => cached,
        _ => None,
    }
}

/// Asks the other nodes; returns their answers and whether every live node answered (true
/// on a single node).
pub async fn ask_nodes(pusher: &Pusher, shard: &Shard, ask: &Ask) -> (Vec<Told>, bool) {
    let Some(link) = &shard.cluster else { return (Vec::new(), true) };
    let Ok(body) = serde_json::to_vec(ask) else { return (Vec::new(), false) };
    let (answers, complete) = link.query(pusher.tag, Bytes::from(body)).await;
    let told = answers.iter().filter_map(|(_, b)| serde_json::from_slice(b).ok()).collect();
    (told, complete)
}
