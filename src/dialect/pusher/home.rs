//! The home-shard side of the Pusher dialect: answering questions about this shard's
//! connections and the channels homed here, and applying notices. Member and count events are
//! published from here, so every shard's subscribers see them in the order the home decided.
//! In cluster mode the home also counts the other nodes' members and subscribers (`cluster`)
//! and publishes these events to this node's subscribers only.

use super::{
    channel::ChannelKind,
    close::CloseCode,
    cluster,
    messages::{Question, Reply, Tell},
    outbound,
    presence::{self, Joined},
    quota, watch, Pusher,
};
use crate::{
    engine::{
        self,
        bus::{PubItem, Publication},
        fanout,
        shard::Shard,
    },
    hook::event::PusherEvent,
    ws::frame,
};
use bytes::Bytes;
use std::{
    rc::Rc,
    time::{Duration, Instant},
};

/// Channels bigger than this get at most one count event per `COUNT_THROTTLE` (Pusher).
const COUNT_THROTTLE_ABOVE: u64 = 100;
const COUNT_THROTTLE: Duration = Duration::from_secs(5);

/// Answers a question. State changes happen before the first await, so questions and notices
/// apply in the order they arrive.
pub async fn answer(pusher: &Rc<Pusher>, shard: &Rc<Shard>, question: Question) -> Reply {
    match question {
        Question::Channels { app, prefix } => {
            let local = local_channels(shard, app, &prefix).await;
            Reply::Channels { local, presence: presence_channels(pusher, app, &prefix) }
        }
        Question::Subscribers { app, channel } => {
            let state = shard.state.borrow();
            let n = state.topics.get(app, &channel).map_or(0, |t| t.subscribers.len());
            Reply::Count(n as u64)
        }
        Question::Join { app, channel, user_id, member, user_info } => {
            let info = user_info.as_deref();
            // Members present only on other nodes count towards the limit too.
            let elsewhere =
                remote_only(pusher, app, &channel).iter().filter(|u| **u != user_id).count();
            let max = pusher.app(app).max_presence_members.saturating_sub(elsewhere);
            let joined = pusher.home.borrow_mut().join(app, &channel, &user_id, member, info, max);
            match joined {
                Ok((Joined::NewMember, _)) => {
                    if cluster::member_here(pusher, shard, app, &channel, &user_id, info, true) {
                        member_added(pusher, shard, app, &channel, &user_id, info);
                    }
                    Reply::Joined(Ok(snapshot(pusher, app, &channel)))
                }
                Ok((Joined::SameMember, _)) => Reply::Joined(Ok(snapshot(pusher, app, &channel))),
                Err(_) => Reply::Joined(Err(format!(
                    "Presence channel {channel} is full ({} members)",
                    pusher.app(app).max_presence_members
                ))),
            }
        }
        Question::Members { app, channel } => Reply::Members(member_ids(pusher, app, &channel)),
        Question::Cache { app, channel } => {
            let ttl = Duration::from_secs(pusher.app(app).cache_ttl_secs);
            let cached = pusher.home.borrow_mut().cache_get(app, &channel, ttl, Instant::now());
            Reply::Cache(
                cached.map(|(c, left)| (c.event.into(), c.data.into(), left.as_secs(), c.at_us)),
            )
        }
        Question::Claim { app, channel, shard: from } => {
            Reply::Claimed(quota::claim_here(pusher, shard, app, &channel, from))
        }
    }
}

/// Members of a presence channel cluster-wide: this node's in join order, then those only on
/// other nodes.
fn members_of(pusher: &Pusher, app: u16, channel: &str) -> Vec<(String, Option<String>)> {
    let home = pusher.home.borrow();
    let side = pusher.cluster.borrow();
    let mut all: Vec<(String, Option<String>)> = home
        .members(app, channel)
        .into_iter()
        .map(|(u, i)| (u.to_string(), i.map(str::to_string)))
        .collect();
    for (user, info) in side.replica.members(app, channel) {
        if home.member(app, channel, user).is_none() {
            all.push((user.to_string(), info.map(str::to_string)));
        }
    }
    all
}

/// Member ids of a presence channel, cluster-wide.
fn member_ids(pusher: &Pusher, app: u16, channel: &str) -> Vec<String> {
    members_of(pusher, app, channel).into_iter().map(|(u, _)| u).collect()
}

/// Users present on `channel` on other nodes only.
fn remote_only(pusher: &Pusher, app: u16, channel: &str) -> Vec<String> {
    let home = pusher.home.borrow();
    let side = pusher.cluster.borrow();
    let remote = side.replica.members(app, channel).into_iter();
    remote.filter(|(u, _)| home.member(app, channel, u).is_none()).map(|(u, _)| u.into()).collect()
}

/// The `presence` object of `subscription_succeeded`, cluster-wide.
fn snapshot(pusher: &Pusher, app: u16, channel: &str) -> String {
    let all = members_of(pusher, app, channel);
    presence::snapshot_json(all.iter().map(|(u, i)| (u.as_str(), i.as_deref())))
}

/// Presence channels homed here (with members on any node) by prefix, with user counts.
fn presence_channels(pusher: &Pusher, app: u16, prefix: &str) -> Vec<(String, u64)> {
    let mut names: Vec<String> = {
        let home = pusher.home.borrow();
        let side = pusher.cluster.borrow();
        let local = home.presence_channels(app, prefix).into_iter().map(|(name, _)| name);
        let remote = side.replica.presence_channels(app, prefix).into_iter().map(str::to_string);
        local.chain(remote).collect()
    };
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let n = members_of(pusher, app, &name).len() as u64;
            (name, n)
        })
        .collect()
}

/// Topic slab slots looked at per slice of a channel listing.
pub const LISTING_SLICE: usize = 2048;

/// This shard's channels of `app` starting with `prefix`, with their local subscribers, in
/// slices: a listing of many channels does not keep the shard from its other connections.
async fn local_channels(shard: &Shard, app: u16, prefix: &str) -> Vec<(String, u64)> {
    let mut all = Vec::new();
    let mut from = Some(0);
    while let Some(slot) = from {
        let (names, next) =
            shard.state.borrow().topics.names_from(app, prefix, slot, LISTING_SLICE);
        all.extend(names);
        from = next;
        if from.is_some() {
            engine::breathe().await;
        }
    }
    all
}

/// Applies a notice; anything it must publish goes out from a task of its own.
pub fn on_notice(pusher: &Rc<Pusher>, shard: &Rc<Shard>, tell: Tell) {
    match tell {
        Tell::Leave { app, channel, user_id, member } => {
            let left = pusher.home.borrow_mut().leave(app, &channel, &user_id, member);
            if left && cluster::member_here(pusher, shard, app, &channel, &user_id, None, false) {
                member_removed(pusher, shard, app, &channel, &user_id);
            }
        }
        Tell::Release { app, channel, shard: from } => {
            quota::release_here(pusher, app, &channel, from)
        }
        Tell::CacheSet { app, channel, event, data } => {
            pusher.home.borrow_mut().cache_set(app, &channel, &event, &data, Instant::now());
        }
        Tell::CountChange { app, channel, delta } => {
            count_change(pusher, shard, app, channel, delta)
        }
        Tell::Session { app, user_id, delta } => {
            cluster::session_here(pusher, shard, app, &user_id, delta);
            watch::on_session(pusher, shard, app, &user_id, delta)
        }
        Tell::Watch { app, shard: on, conn, users, delta } => {
            watch::on_watch(pusher, shard, app, (on, conn), &users, delta)
        }
        Tell::Terminate { app, user_id } => {
            let keys = pusher.identities.borrow().conns_of(app, &user_id);
            for key in keys {
                shard.close(key, CloseCode::Unauthorized.into());
            }
        }
    }
}

/// A user became present on a channel cluster-wide: the `member_added` event to this node's
/// subscribers, and the webhook.
pub fn member_added(
    pusher: &Rc<Pusher>,
    shard: &Rc<Shard>,
    app: u16,
    channel: &str,
    user_id: &str,
    user_info: Option<&str>,
) {
    member_webhook_added(pusher, shard, app, channel, user_id, user_info);
    let data = serde_json::json!({"user_id": user_id, "user_info": info_value(user_info)});
    let event = "pusher_internal:member_added";
    spawn_broadcast(shard, app, channel.to_string(), event, data.to_string());
}

/// A user left a channel cluster-wide: `member_removed` to this node's subscribers, and the
/// webhook after its delay.
pub fn member_removed(
    pusher: &Rc<Pusher>,
    shard: &Rc<Shard>,
    app: u16,
    channel: &str,
    user_id: &str,
) {
    member_webhook_removed(pusher, shard, app, channel, user_id);
    let data = serde_json::json!({ "user_id": user_id }).to_string();
    let event = "pusher_internal:member_removed";
    spawn_broadcast(shard, app, channel.to_string(), event, data);
}

/// A user's first connection joined: `member_added`, unless this only undoes a removal still
/// inside its delay (then neither webhook is sent, as Pusher does).
fn member_webhook_added(
    pusher: &Pusher,
    shard: &Shard,
    app: u16,
    channel: &str,
    user_id: &str,
    user_info: Option<&str>,
) {
    if pusher.home.borrow_mut().removal_cancel(app, channel, user_id) {
        return;
    }
    if shard.hooks.wants_pusher(app, "member_added")
        && cluster::sends_webhooks(pusher, shard, app, channel)
    {
        let mut event = PusherEvent::new("member_added", channel);
        event.user_id = Some(user_id.to_string());
        event.user_info = user_info.map(str::to_string);
        shard.hooks.pusher(app, event);
    }
}

/// A user's last connection left: `member_removed` after the delay, if the user stays away.
fn member_webhook_removed(
    pusher: &Rc<Pusher>,
    shard: &Rc<Shard>,
    app: u16,
    channel: &str,
    user_id: &str,
) {
    if !shard.hooks.wants_pusher(app, "member_removed") {
        return;
    }
    let ticket = pusher.home.borrow_mut().removal_start(app, channel, user_id);
    let (pusher, shard) = (pusher.clone(), shard.clone());
    let (channel, user_id) = (channel.to_string(), user_id.to_string());
    glommio::spawn_local(async move {
        glommio::timer::sleep(Duration::from_millis(shard.config.hooks.vacate_delay_ms)).await;
        let due = pusher.home.borrow_mut().removal_due(app, &channel, &user_id, ticket);
        if due && cluster::sends_webhooks(&pusher, &shard, app, &channel) {
            let mut event = PusherEvent::new("member_removed", &channel);
            event.user_id = Some(user_id);
            shard.hooks.pusher(app, event);
        }
    })
    .detach();
}

/// Applies a shard's subscriber change to this node's count of the channel (told to the
/// other nodes), then to the cluster-wide count.
fn count_change(pusher: &Rc<Pusher>, shard: &Rc<Shard>, app: u16, channel: String, delta: i64) {
    let (before, after) = {
        let mut home = pusher.home.borrow_mut();
        let before = home.count_change(app, &channel, 0).total;
        (before, home.count_change(app, &channel, delta).total)
    };
    if before != after {
        cluster::count_here(pusher, shard, app, &channel, after);
    }
    let remote = cluster::remote_count(pusher, app, &channel);
    counted(pusher, shard, app, channel, before + remote, after + remote);
}

/// The other nodes' subscribers of a channel homed here went from `before` to `after`.
pub fn remote_count_changed(
    pusher: &Rc<Pusher>,
    shard: &Rc<Shard>,
    app: u16,
    channel: String,
    before: u64,
    after: u64,
) {
    let local = pusher.home.borrow_mut().count_change(app, &channel, 0).total;
    counted(pusher, shard, app, channel, local + before, local + after);
}

/// Subscribers of a channel homed here, cluster-wide.
fn total(pusher: &Pusher, app: u16, channel: &str) -> u64 {
    let local = pusher.home.borrow_mut().count_change(app, channel, 0).total;
    local + cluster::remote_count(pusher, app, channel)
}

/// The channel's cluster-wide count went from `before` to `total`: occupancy webhooks
/// (vacated after a delay, cancelled by a quick return) and the throttled
/// `subscription_count` event and webhook.
fn counted(
    pusher: &Rc<Pusher>,
    shard: &Rc<Shard>,
    app: u16,
    channel: String,
    before: u64,
    total: u64,
) {
    let mut home = pusher.home.borrow_mut();
    let count = home.count_change(app, &channel, 0);
    let mut vacate = None;
    if before == 0 && total > 0 {
        if count.vacating != 0 {
            count.vacating = 0;
        } else if !count.occupied {
            count.occupied = true;
            if cluster::sends_webhooks(pusher, shard, app, &channel) {
                shard.hooks.pusher(app, PusherEvent::new("channel_occupied", &channel));
            }
        }
    } else if before > 0 && total == 0 && count.occupied {
        vacate = Some(());
    }
    let counted = ChannelKind::of(&channel) != ChannelKind::Presence
        && (pusher.app(app).enable_subscription_count
            || shard.hooks.wants_pusher(app, "subscription_count"));
    drop(home);
    if vacate.is_some() {
        schedule_vacated(pusher, shard, app, &channel);
    }
    if counted && before != total {
        schedule_count(pusher, shard, app, channel);
    } else if !counted {
        pusher.home.borrow_mut().count_forget(app, &channel);
    }
}

fn schedule_vacated(pusher: &Rc<Pusher>, shard: &Rc<Shard>, app: u16, channel: &str) {
    let ticket = {
        let mut home = pusher.home.borrow_mut();
        let ticket = home.ticket();
        home.count_change(app, channel, 0).vacating = ticket;
        ticket
    };
    let (pusher, shard, channel) = (pusher.clone(), shard.clone(), channel.to_string());
    glommio::spawn_local(async move {
        glommio::timer::sleep(Duration::from_millis(shard.config.hooks.vacate_delay_ms)).await;
        let due = {
            let mut home = pusher.home.borrow_mut();
            let remote = cluster::remote_count(&pusher, app, &channel);
            let count = home.count_change(app, &channel, 0);
            let due = count.vacating == ticket && count.total + remote == 0;
            if due {
                count.vacating = 0;
                count.occupied = false;
            }
            home.count_forget(app, &channel);
            due
        };
        if due && cluster::sends_webhooks(&pusher, &shard, app, &channel) {
            shard.hooks.pusher(app, PusherEvent::new("channel_vacated", &channel));
        }
    })
    .detach();
}

/// Sends the channel's count (event and webhook), at most once per 5 s on channels over 100.
fn schedule_count(pusher: &Rc<Pusher>, shard: &Rc<Shard>, app: u16, channel: String) {
    let now = Instant::now();
    let all = total(pusher, app, &channel);
    let mut home = pusher.home.borrow_mut();
    let count = home.count_change(app, &channel, 0);
    if count.pending {
        return;
    }
    if all == 0 {
        home.count_forget(app, &channel);
        return;
    }
    let wait = match count.last_sent {
        Some(at) if all > COUNT_THROTTLE_ABOVE => COUNT_THROTTLE.saturating_sub(now - at),
        _ => Duration::ZERO,
    };
    count.pending = true;
    drop(home);
    let (pusher, shard) = (pusher.clone(), shard.clone());
    glommio::spawn_local(async move {
        if !wait.is_zero() {
            glommio::timer::sleep(wait).await;
        }
        let total = total(&pusher, app, &channel);
        {
            let mut home = pusher.home.borrow_mut();
            let count = home.count_change(app, &channel, 0);
            count.pending = false;
            count.last_sent = Some(Instant::now());
            home.count_forget(app, &channel);
        }
        if total == 0 {
            return;
        }
        if cluster::sends_webhooks(&pusher, &shard, app, &channel) {
            let mut event = PusherEvent::new("subscription_count", &channel);
            event.subscription_count = Some(total);
            shard.hooks.pusher(app, event);
        }
        if pusher.app(app).enable_subscription_count {
            let data = serde_json::json!({ "subscription_count": total }).to_string();
            broadcast(&shard, app, &channel, "pusher_internal:subscription_count", &data).await;
        }
    })
    .detach();
}

fn info_value(info: Option<&str>) -> serde_json::Value {
    info.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(serde_json::Value::Null)
}

fn spawn_broadcast(
    shard: &Rc<Shard>,
    app: u16,
    channel: String,
    event: &'static str,
    data: String,
) {
    let shard = shard.clone();
    glommio::spawn_local(async move { broadcast(&shard, app, &channel, event, &data).await })
        .detach();
}

/// Publishes a server event on a channel to its subscribers on every shard of this node (reported once as
/// webman's `server_event`, when a webhook wants that).
pub async fn broadcast(shard: &Rc<Shard>, app: u16, channel: &str, event: &str, data: &str) {
    let text = outbound::channel_event(event, channel, data);
    // webman reports each such frame to each receiver; one report per broadcast here, so a
    // fan-out costs nothing per subscriber.
    shard.hooks.server_event(app, &text);
    let frame = Bytes::from(frame::text(&text));
    let item = PubItem {
        topic: channel.into(),
        frame,
        exclude: None,
        exclude_elsewhere: None,
        report: false,
    };
    let publication = Publication { ns: app, items: vec![item] };
    // In a cluster every node derives these events from its own replica and tells its own
    // subscribers: sent through the cluster too, each client would hear them twice.
    match shard.cluster {
        Some(_) => fanout::publish_local(shard, publication).await,
        None => fanout::publish(shard, publication).await,
    };
}
