//! The home-shard side of the bus: answering questions about this shard's connections and the
//! topics homed here, and applying notices. Member and count events are published from here,
//! so every shard's subscribers see them in the order the home decided them.

use super::{watch, Shard, ShardState};
use crate::{
    bus::{Answer, Notice, PubItem, Publication, Query},
    dialect::pusher::{channel::ChannelKind, outbound},
    error::CloseCode,
    fanout,
    hook::event::PusherEvent,
    topic::presence::Joined,
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
pub async fn answer(shard: &Rc<Shard>, query: Query) -> Answer {
    match query {
        Query::Stats => Answer::Stats(shard.local_stats()),
        Query::Channels { app, prefix } => {
            let state = shard.state.borrow();
            let local = state.topics.channels(app, &prefix);
            let presence = state.home.presence_channels(app, &prefix);
            let presence = presence.into_iter().map(|(name, n)| (name, n as u64)).collect();
            Answer::Channels { local, presence }
        }
        Query::Subscribers { app, channel } => {
            let state = shard.state.borrow();
            let n = state.topics.get(app, &channel).map_or(0, |t| t.subscribers.len());
            Answer::Count(n as u64)
        }
        Query::Join { app, channel, user_id, socket, user_info } => {
            let max = shard.app(app).max_presence_members;
            let info = user_info.as_deref();
            let joined =
                shard.state.borrow_mut().home.join(app, &channel, &user_id, socket, info, max);
            match joined {
                Ok((Joined::NewMember, snapshot)) => {
                    member_webhook_added(shard, app, &channel, &user_id);
                    let data = serde_json::json!({"user_id": user_id, "user_info": info_value(user_info.as_deref())});
                    broadcast(
                        shard,
                        app,
                        &channel,
                        "pusher_internal:member_added",
                        &data.to_string(),
                    )
                    .await;
                    Answer::Joined(Ok(snapshot))
                }
                Ok((Joined::SameMember, snapshot)) => Answer::Joined(Ok(snapshot)),
                Err(max) => Answer::Joined(Err(format!(
                    "Presence channel {channel} is full ({max} members)"
                ))),
            }
        }
        Query::Members { app, channel } => {
            Answer::Members(shard.state.borrow().home.member_ids(app, &channel))
        }
        Query::Cache { app, channel } => {
            let ttl = Duration::from_secs(shard.app(app).cache_ttl_secs);
            let cached =
                shard.state.borrow_mut().home.cache_get(app, &channel, ttl, Instant::now());
            Answer::Cache(cached.map(|(c, left)| (c.event.into(), c.data.into(), left.as_secs())))
        }
    }
}

/// Applies a notice; anything it must publish goes out from a task of its own.
pub fn on_notice(shard: &Rc<Shard>, notice: Notice) {
    match notice {
        Notice::Leave { app, channel, user_id, socket } => {
            if shard.state.borrow_mut().home.leave(app, &channel, &user_id, socket) {
                member_webhook_removed(shard, app, &channel, &user_id);
                let data = serde_json::json!({ "user_id": user_id }).to_string();
                spawn_broadcast(shard, app, channel, "pusher_internal:member_removed", data);
            }
        }
        Notice::CacheSet { app, channel, event, data } => {
            shard.state.borrow_mut().home.cache_set(app, &channel, &event, &data, Instant::now());
        }
        Notice::CountChange { app, channel, delta } => count_change(shard, app, channel, delta),
        Notice::Session { app, user_id, delta } => watch::on_session(shard, app, &user_id, delta),
        Notice::Watch { app, shard: on, conn, users, delta } => {
            watch::on_watch(shard, app, (on, conn), &users, delta)
        }
        Notice::WatchlistEvents { conns, text } => watch::on_events(shard, &conns, &text),
        Notice::Terminate { app, user_id } => {
            let mut state = shard.state.borrow_mut();
            let ShardState { conns, identities, .. } = &mut *state;
            for key in identities.conns_of(app, &user_id) {
                if let Some(conn) = conns.get_mut(key.index()) {
                    conn.close(CloseCode::Unauthorized);
                }
            }
        }
    }
}

/// A user's first connection joined: `member_added`, unless this only undoes a removal still
/// inside its delay (then neither webhook is sent, as Pusher does).
fn member_webhook_added(shard: &Rc<Shard>, app: u16, channel: &str, user_id: &str) {
    if shard.state.borrow_mut().home.removal_cancel(app, channel, user_id) {
        return;
    }
    let mut event = PusherEvent::new("member_added", channel);
    event.user_id = Some(user_id.to_string());
    shard.hooks.pusher(app, event);
}

/// A user's last connection left: `member_removed` after the delay, if the user stays away.
fn member_webhook_removed(shard: &Rc<Shard>, app: u16, channel: &str, user_id: &str) {
    if !shard.hooks.wants_pusher(app, "member_removed") {
        return;
    }
    let ticket = shard.state.borrow_mut().home.removal_start(app, channel, user_id);
    let (shard, channel, user_id) = (shard.clone(), channel.to_string(), user_id.to_string());
    glommio::spawn_local(async move {
        glommio::timer::sleep(Duration::from_millis(shard.config.hooks.vacate_delay_ms)).await;
        if shard.state.borrow_mut().home.removal_due(app, &channel, &user_id, ticket) {
            let mut event = PusherEvent::new("member_removed", &channel);
            event.user_id = Some(user_id);
            shard.hooks.pusher(app, event);
        }
    })
    .detach();
}

/// Applies a shard's subscriber change: occupancy webhooks (vacated after a delay, cancelled
/// by a quick return) and the throttled `subscription_count` event and webhook.
fn count_change(shard: &Rc<Shard>, app: u16, channel: String, delta: i64) {
    let mut state = shard.state.borrow_mut();
    let count = state.home.count_change(app, &channel, 0);
    let before = count.total;
    let count = state.home.count_change(app, &channel, delta);
    let total = count.total;
    let mut vacate = None;
    if before == 0 && total > 0 {
        if count.vacating != 0 {
            count.vacating = 0;
        } else if !count.occupied {
            count.occupied = true;
            shard.hooks.pusher(app, PusherEvent::new("channel_occupied", &channel));
        }
    } else if before > 0 && total == 0 && count.occupied {
        vacate = Some(());
    }
    let counted = ChannelKind::of(&channel) != ChannelKind::Presence
        && (shard.app(app).enable_subscription_count
            || shard.hooks.wants_pusher(app, "subscription_count"));
    drop(state);
    if vacate.is_some() {
        schedule_vacated(shard, app, &channel);
    }
    if counted {
        schedule_count(shard, app, channel);
    } else {
        shard.state.borrow_mut().home.count_forget(app, &channel);
    }
}

fn schedule_vacated(shard: &Rc<Shard>, app: u16, channel: &str) {
    let ticket = {
        let mut state = shard.state.borrow_mut();
        let ticket = state.home.ticket();
        state.home.count_change(app, channel, 0).vacating = ticket;
        ticket
    };
    let (shard, channel) = (shard.clone(), channel.to_string());
    glommio::spawn_local(async move {
        glommio::timer::sleep(Duration::from_millis(shard.config.hooks.vacate_delay_ms)).await;
        let due = {
            let mut state = shard.state.borrow_mut();
            let count = state.home.count_change(app, &channel, 0);
            let due = count.vacating == ticket && count.total == 0;
            if due {
                count.vacating = 0;
                count.occupied = false;
            }
            state.home.count_forget(app, &channel);
            due
        };
        if due {
            shard.hooks.pusher(app, PusherEvent::new("channel_vacated", &channel));
        }
    })
    .detach();
}

/// Sends the channel's count (event and webhook), at most once per 5 s on channels over 100.
fn schedule_count(shard: &Rc<Shard>, app: u16, channel: String) {
    let now = Instant::now();
    let mut state = shard.state.borrow_mut();
    let count = state.home.count_change(app, &channel, 0);
    if count.pending {
        return;
    }
    if count.total == 0 {
        state.home.count_forget(app, &channel);
        return;
    }
    let wait = match count.last_sent {
        Some(at) if count.total > COUNT_THROTTLE_ABOVE => COUNT_THROTTLE.saturating_sub(now - at),
        _ => Duration::ZERO,
    };
    count.pending = true;
    drop(state);
    let shard = shard.clone();
    glommio::spawn_local(async move {
        if !wait.is_zero() {
            glommio::timer::sleep(wait).await;
        }
        let total = {
            let mut state = shard.state.borrow_mut();
            let count = state.home.count_change(app, &channel, 0);
            count.pending = false;
            count.last_sent = Some(Instant::now());
            let total = count.total;
            state.home.count_forget(app, &channel);
            total
        };
        if total == 0 {
            return;
        }
        let mut event = PusherEvent::new("subscription_count", &channel);
        event.subscription_count = Some(total);
        shard.hooks.pusher(app, event);
        if shard.app(app).enable_subscription_count {
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

/// Publishes a server event on a channel to its subscribers on every shard.
pub async fn broadcast(shard: &Rc<Shard>, app: u16, channel: &str, event: &str, data: &str) {
    let text = outbound::channel_event(event, channel, data);
    let item =
        PubItem { channel: channel.into(), frame: Bytes::from(frame::text(&text)), exclude: None };
    fanout::publish(shard, Publication { app, items: vec![item] }).await;
}
