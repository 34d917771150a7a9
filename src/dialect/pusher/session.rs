//! A Pusher connection's requests applied to its shard: subscriptions of every channel kind,
//! client events, sign-in. Replies and errors are queued on the connection; questions to a
//! channel's home shard (presence, cache) run as small tasks. No I/O: the driver does that.

use super::{
    auth,
    channel::{self, ChannelKind},
    close::CloseCode,
    cluster,
    inbound::{self, Request, Subscribe},
    messages::{Question, Reply, Tell},
    outbound,
    quota::{self, Admit},
    socket_id::SocketId,
    watch, Pusher,
};
use crate::{
    engine::{
        addr::ConnAddr,
        bus::{PubItem, Publication},
        conn::{queue::Frame, Close, ConnKey},
        fanout,
        seam::Gone,
        shard::Shard,
    },
    hook::event::{now_ms, EmqxEvent, EmqxKind, PusherEvent},
    ws::frame::{self, Message},
};
use bytes::Bytes;
use std::{rc::Rc, sync::atomic::Ordering};

/// User ids a sign-in's `watchlist` may hold (Pusher's limit); more get a 4302 `pusher:error`
/// after `signin_success`, and only the first 100 are watched.
const WATCHLIST_MAX: usize = 100;

/// A watchlist entry as a user id: a string, or a number written as one (as presence ids are).
fn watched_id(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Queues `connection_established` for a new connection.
pub fn open(pusher: &Pusher, shard: &Shard, key: ConnKey) {
    let socket_id = pusher.socket_id(shard, key).to_string();
    let text = outbound::connection_established(&socket_id, shard.config.activity_timeout);
    reply(shard, key, &text);
}

/// Handles one complete client message. `Err` closes the connection with that code.
pub fn on_message(
    pusher: &Rc<Pusher>,
    shard: &Rc<Shard>,
    key: ConnKey,
    message: Message<'_>,
) -> Result<(), Close> {
    match message {
        Message::Text(text) => {
            shard.state.borrow_mut().stats.messages_in += 1;
            on_text(pusher, shard, key, text);
        }
        Message::Binary(_) => {
            error(shard, key, "Binary frames are not supported; send JSON text frames");
        }
        Message::Ping(payload) => shard.send(key, Frame::new(frame::pong(payload))),
        Message::Pong => {}
        Message::Close(_) => return Err(CloseCode::Normal.into()),
    }
    Ok(())
}

/// A connection is going: its counts, hooks, sign-in and presence memberships are undone.
pub fn on_close(pusher: &Rc<Pusher>, shard: &Rc<Shard>, key: ConnKey, gone: &Gone) {
    let app = gone.ns;
    pusher.shared.app_conns[usize::from(app)].fetch_sub(1, Ordering::Relaxed);
    pusher.rates.borrow_mut().remove(&key);
    let counts = pusher.needs_counts(shard, app);
    if counts || shard.config.max_channels_per_app > 0 {
        let names = {
            let state = shard.state.borrow();
            state.conns.get(key.index()).map(|c| state.topics.names_of(c)).unwrap_or_default()
        };
        for name in names {
            if counts {
                pusher.count_change(shard, app, &name, -1);
            }
            quota::settle(pusher, shard, app, &name, Some(key));
        }
    }
    let identity = pusher.identities.borrow_mut().remove(app, key).unwrap_or_default();
    let reason = gone.close.as_ref().map_or("tcp_closed", |c| CloseCode::hook_reason(c.code));
    let socket = pusher.socket_id(shard, key);
    disconnected_hooks(shard, socket, identity.user_id.as_deref(), reason, gone.opened);
    if let Some(user) = &identity.user_id {
        watch::signed_out(pusher, shard, app, key, user, &identity.watchlist);
    }
    let member = ConnAddr::new(shard.id(), key);
    for (channel, user_id) in identity.presence {
        let home = shard.home_of(app, &channel);
        let tell = Tell::Leave { app, channel: channel.into(), user_id: user_id.into(), member };
        pusher.tell(shard, home, tell);
    }
}

fn disconnected_hooks(
    shard: &Shard,
    socket: SocketId,
    user: Option<&str>,
    reason: &str,
    opened: u32,
) {
    let connected_at = now_ms().saturating_sub(u64::from(shard.now() - opened) * 1000);
    for kind in [EmqxKind::ClientDisconnected, EmqxKind::SessionTerminated] {
        shard.hooks.emqx(kind, None, || EmqxEvent {
            username: user.map(str::to_string),
            reason: Some(reason.to_string()),
            connected_at: Some(connected_at),
            ..EmqxEvent::new(kind, socket.to_string())
        });
    }
}

fn on_text(pusher: &Rc<Pusher>, shard: &Rc<Shard>, key: ConnKey, text: &mut [u8]) {
    let Some(app) = shard.with_conn(key, |c| c.ns) else { return };
    let socket = pusher.socket_id(shard, key);
    let conn = Conn { pusher, shard, key, app, socket };
    match inbound::parse(text) {
        Ok(Request::Ping) => reply(shard, key, &outbound::ping_pong("pusher:pong")),
        Ok(Request::Pong) => {}
        Ok(Request::Subscribe(request)) => conn.subscribe(request),
        Ok(Request::Unsubscribe { channel }) => conn.unsubscribe(&channel),
        Ok(Request::Signin { auth, user_data }) => conn.sign_in(&auth, &user_data),
        Ok(Request::ClientEvent { event, channel, data }) => {
            conn.client_event(&event, &channel, &data)
        }
        Ok(Request::Unknown { event }) => error(shard, key, &format!("Unknown event: {event}")),
        Err(e) => error(shard, key, &e.to_string()),
    }
}

/// One connection's view of its shard while handling a message.
struct Conn<'a> {
    pusher: &'a Rc<Pusher>,
    shard: &'a Rc<Shard>,
    key: ConnKey,
    app: u16,
    socket: SocketId,
}

impl Conn<'_> {
    fn error(&self, message: &str) {
        error(self.shard, self.key, message);
    }

    /// The user this connection signed in as (the `username` of EMQX-style hooks).
    fn username(&self) -> Option<String> {
        self.pusher.identities.borrow().user(self.key).map(str::to_string)
    }

    /// An EMQX-style event about this connection and `topic`, if a rule wants it.
    fn hook(&self, kind: EmqxKind, topic: &str) {
        self.shard.hooks.emqx(kind, Some(topic), || EmqxEvent {
            username: self.username(),
            topic: Some(topic.to_string()),
            ..EmqxEvent::new(kind, self.socket.to_string())
        });
    }

    fn subscribe(&self, request: Subscribe) {
        let name = request.channel.as_str();
        self.hook(EmqxKind::ClientSubscribe, name);
        if let Err(e) = channel::check_name(name, self.shard.config.max_channel_name_len) {
            return self.error(&format!("{e}: {name}"));
        }
        if let Err(why) = room_for(self.shard, self.key, name) {
            return self.error(&why);
        }
        let app = self.pusher.app(self.app);
        let socket = self.socket.to_string();
        let refused = match ChannelKind::of(name) {
            ChannelKind::Public => None,
            ChannelKind::Private | ChannelKind::PrivateEncrypted => {
                let signed = auth::channel_string(&socket, name, None);
                auth::check(app, request.auth.as_deref(), &signed).err().map(|e| e.to_string())
            }
            ChannelKind::ServerToUser => {
                let owner = name.strip_prefix("#server-to-user-");
                let identities = self.pusher.identities.borrow();
                (identities.user(self.key) != owner)
                    .then(|| format!("{name} is only for the connection signed in as that user"))
            }
            ChannelKind::Presence => return self.join_presence(request),
        };
        if let Some(why) = refused {
            return self.error(&why);
        }
        let Some(ready) = self.shard.follow_ahead(self.app, name) else {
            return self.admit(name);
        };
        // Cluster mode: `subscription_succeeded` promises the publications made after it, on
        // any node; so it waits until NATS has this node's interest in the channel.
        let (pusher, shard, key, app) =
            (self.pusher.clone(), self.shard.clone(), self.key, self.app);
        let (socket, name) = (self.socket, name.to_string());
        glommio::spawn_local(async move {
            followed(&shard, ready).await;
            if shard.is_open(key) {
                Conn { pusher: &pusher, shard: &shard, key, app, socket }.admit(&name);
            }
            shard.follow_release(app, &name);
        })
        .detach();
    }

    /// A subscription that passed its checks, counted against `max_channels_per_app`.
    fn admit(&self, name: &str) {
        match quota::admit(self.pusher, self.shard, self.app, name) {
            Admit::Now => self.subscribed(name),
            Admit::Ask => {
                let (pusher, shard, key, app) =
                    (self.pusher.clone(), self.shard.clone(), self.key, self.app);
                let (socket, name) = (self.socket, name.to_string());
                glommio::spawn_local(async move {
                    let claimed = quota::claim(&pusher, &shard, app, &name).await;
                    let conn = Conn { pusher: &pusher, shard: &shard, key, app, socket };
                    match claimed {
                        Ok(()) if shard.is_open(key) => conn.subscribed(&name),
                        Ok(()) => {}
                        Err(why) => conn.error(&why),
                    }
                    quota::settle(&pusher, &shard, app, &name, None);
                })
                .detach();
            }
        }
    }

    /// A subscription that passed its checks: the reply, the subscription, hooks and the
    /// cache replay.
    fn subscribed(&self, name: &str) {
        if let Err(why) = room_for(self.shard, self.key, name) {
            return self.error(&why);
        }
        // The reply is queued before the subscription exists: glommio runs a spawned task's first
        // poll at once, so events the subscription triggers (a locally homed count event) would
        // otherwise overtake it.
        reply(self.shard, self.key, &outbound::subscription_succeeded(name));
        self.pusher.subscribe(self.shard, self.key, self.app, name);
        self.hook(EmqxKind::SessionSubscribed, name);
        if channel::is_cache(name) {
            replay_cache(self.pusher, self.shard, self.key, self.app, name.to_string());
        }
    }

    /// Checks a presence subscription here, then asks the channel's home shard to add the
    /// member; the subscription completes when the home answers with the member list.
    fn join_presence(&self, request: Subscribe) {
        let app = self.pusher.app(self.app);
        let name = request.channel;
        let Some(channel_data) = request.channel_data else {
            return self.error(&format!("Presence channel {name} needs channel_data"));
        };
        let signed = auth::channel_string(&self.socket.to_string(), &name, Some(&channel_data));
        if let Err(e) = auth::check(app, request.auth.as_deref(), &signed) {
            return self.error(&e.to_string());
        }
        let (user_id, user_info) = match member(&channel_data, app) {
            Ok(member) => member,
            Err(why) => return self.error(&why),
        };
        {
            let mut identities = self.pusher.identities.borrow_mut();
            if identities.presence_user(self.key, &name).is_some() {
                drop(identities);
                return self.error(&format!("Existing subscription to channel {name}"));
            }
            // Recorded now, so a close while the join is on its way still sends the leave.
            identities.add_presence(self.key, &name, &user_id);
        }
        let (pusher, shard, key, app) =
            (self.pusher.clone(), self.shard.clone(), self.key, self.app);
        glommio::spawn_local(async move {
            if let Admit::Ask = quota::admit(&pusher, &shard, app, &name) {
                if let Err(why) = quota::claim(&pusher, &shard, app, &name).await {
                    pusher.identities.borrow_mut().remove_presence(key, &name);
                    quota::settle(&pusher, &shard, app, &name, None);
                    return error(&shard, key, &why);
                }
            }
            let ready = shard.follow_ahead(app, &name);
            let home = shard.home_of(app, &name);
            let member = ConnAddr::new(shard.id(), key);
            let question = Question::Join {
                app,
                channel: name.clone(),
                user_id: user_id.clone(),
                member,
                user_info,
            };
            let answer = pusher.ask(&shard, home, question).await;
            if let Some(ready) = ready {
                followed(&shard, ready).await;
            }
            finish_join(&pusher, &shard, key, app, &name, &user_id, answer);
            shard.follow_release(app, &name);
            quota::settle(&pusher, &shard, app, &name, None);
        })
        .detach();
    }

    fn unsubscribe(&self, name: &str) {
        self.hook(EmqxKind::ClientUnsubscribe, name);
        if self.pusher.unsubscribe(self.shard, self.key, self.app, name) {
            self.hook(EmqxKind::SessionUnsubscribed, name);
        }
        if self.pusher.app(self.app).unsubscription_replies {
            reply(self.shard, self.key, &outbound::unsubscription_succeeded(name));
        }
        let user = self.pusher.identities.borrow_mut().remove_presence(self.key, name);
        if let Some(user_id) = user {
            let (app, member) = (self.app, ConnAddr::new(self.shard.id(), self.key));
            let tell = Tell::Leave { app, channel: name.into(), user_id: user_id.into(), member };
            self.pusher.tell(self.shard, self.shard.home_of(app, name), tell);
        }
    }

    fn sign_in(&self, auth_value: &str, user_data: &str) {
        let app = self.pusher.app(self.app);
        let signed = auth::signin_string(&self.socket.to_string(), user_data);
        if let Err(e) = auth::check(app, Some(auth_value), &signed) {
            return self.error(&e.to_string());
        }
        let value = serde_json::from_str::<serde_json::Value>(user_data).ok();
        let id = value
            .as_ref()
            .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string))
            .filter(|id| !id.is_empty());
        let Some(id) = id else {
            return self.error("user_data must be a JSON object with a non-empty string id");
        };
        if id.len() > app.max_user_id_len {
            return self.error(&format!("User id longer than {} characters", app.max_user_id_len));
        }
        let listed = value.as_ref().and_then(|v| v.get("watchlist")?.as_array().cloned());
        let listed = listed.unwrap_or_default();
        let mut watchlist: Vec<String> = Vec::new();
        if app.watchlist_events {
            let ids = listed.iter().take(WATCHLIST_MAX).filter_map(watched_id);
            // An id no user could sign in with (too long) is not watched.
            for user in ids.filter(|id| id.len() <= app.max_user_id_len) {
                if !watchlist.contains(&user) {
                    watchlist.push(user);
                }
            }
        }
        let replaced =
            self.pusher.identities.borrow_mut().sign_in(self.app, self.key, &id, watchlist.clone());
        reply(self.shard, self.key, &outbound::signin_success(user_data));
        if listed.len() > WATCHLIST_MAX {
            let text = outbound::error(
                Some(4302),
                "Watchlist limit exceeded. Only the first 100 user IDs are accepted",
            );
            reply(self.shard, self.key, &text);
        }
        match replaced {
            Some((old_user, old_list)) => watch::signed_in_again(
                self.pusher,
                self.shard,
                self.app,
                self.key,
                (&old_user, &old_list),
                (&id, &watchlist),
            ),
            None => watch::signed_in(self.pusher, self.shard, self.app, self.key, &id, &watchlist),
        }
    }

    fn client_event(&self, event: &str, name: &str, data: &str) {
        let app = self.pusher.app(self.app);
        if !app.enable_client_messages {
            return self.error("Client events are disabled for this app");
        }
        let kind = ChannelKind::of(name);
        if !matches!(kind, ChannelKind::Private | ChannelKind::Presence) {
            return self.error("Client events are only allowed on private and presence channels");
        }
        if event.len() > app.max_event_name_len || data.len() > app.max_event_payload_bytes {
            return self.error("Client event too large");
        }
        let now = self.shard.now();
        let subscribed = self.shard.is_subscribed(self.key, name);
        let allowed = subscribed
            && self.pusher.allow_client_event(self.key, now, app.max_client_events_per_second);
        let user_id =
            self.pusher.identities.borrow().presence_user(self.key, name).map(str::to_string);
        if !subscribed {
            return self.error(&format!("Client events need a subscription to {name}"));
        }
        if !allowed {
            let text = outbound::error(Some(4301), "Client event rejected due to rate limit");
            return reply(self.shard, self.key, &text);
        }
        let user = if kind == ChannelKind::Presence { user_id.as_deref() } else { None };
        self.client_event_hooks(event, name, data, user);
        let text = outbound::client_event(event, name, data, user);
        let item = PubItem {
            topic: name.into(),
            frame: Bytes::from(frame::text(&text)),
            exclude: Some(ConnAddr::new(self.shard.id(), self.key)),
            exclude_elsewhere: None,
            report: self.shard.hooks.wants_emqx(EmqxKind::MessageDelivered, Some(name)),
        };
        let (shard, ns) = (self.shard.clone(), self.app);
        glommio::spawn_local(async move {
            fanout::publish(&shard, Publication { ns, items: vec![item] }).await;
        })
        .detach();
    }
}

impl Conn<'_> {
    /// The `client_event` webhook and the EMQX-style message.publish of a client event.
    fn client_event_hooks(&self, event: &str, name: &str, data: &str, user: Option<&str>) {
        let mut webhook = PusherEvent::new("client_event", name);
        webhook.event = Some(event.to_string());
        webhook.data = Some(data.to_string());
        webhook.socket_id = Some(self.socket.to_string());
        webhook.user_id = user.map(str::to_string);
        self.shard.hooks.pusher(self.app, webhook);
        self.shard.hooks.emqx(EmqxKind::MessagePublish, Some(name), || EmqxEvent {
            from_client_id: Some(self.socket.to_string()),
            from_username: self.username(),
            topic: Some(name.to_string()),
            payload: Some(data.to_string()),
            ..EmqxEvent::new(EmqxKind::MessagePublish, self.socket.to_string())
        });
    }
}

/// `channel_data` of a presence subscription: `user_id` (string or number) and `user_info`.
fn member(
    channel_data: &str,
    app: &crate::config::AppConfig,
) -> Result<(String, Option<String>), String> {
    let value: serde_json::Value =
        serde_json::from_str(channel_data).map_err(|_| "channel_data must be JSON".to_string())?;
    let user_id = match value.get("user_id") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err("channel_data needs a user_id".into()),
    };
    if user_id.len() > app.max_user_id_len {
        return Err(format!("user_id longer than {} characters", app.max_user_id_len));
    }
    let user_info = value.get("user_info").map(|v| v.to_string());
    if user_info.as_ref().is_some_and(|i| i.len() > app.max_presence_user_info_bytes) {
        return Err(format!("user_info larger than {} bytes", app.max_presence_user_info_bytes));
    }
    Ok((user_id, user_info))
}

/// Waits until the node follows a channel on NATS, or `query_timeout_ms` at most (a link
/// that is down answers at once: nothing will come from the other nodes then anyway).
async fn followed(shard: &Shard, ready: flume::Receiver<()>) {
    let most = std::time::Duration::from_millis(shard.config.cluster.query_timeout_ms);
    let told = async {
        let _ = ready.recv_async().await;
    };
    futures_lite::future::or(told, glommio::timer::sleep(most)).await;
}

/// Completes a presence subscription with the home shard's answer.
fn finish_join(
    pusher: &Rc<Pusher>,
    shard: &Rc<Shard>,
    key: ConnKey,
    app: u16,
    name: &str,
    user_id: &str,
    answer: Option<Reply>,
) {
    let snapshot = match answer {
        Some(Reply::Joined(Ok(snapshot))) => snapshot,
        other => {
            pusher.identities.borrow_mut().remove_presence(key, name);
            let why = match other {
                Some(Reply::Joined(Err(why))) => why,
                _ => format!("Presence channel {name} is unavailable"),
            };
            return error(shard, key, &why);
        }
    };
    let member = ConnAddr::new(shard.id(), key);
    let room = room_for(shard, key, name);
    if !shard.is_open(key) || room.is_err() {
        // Closed while joining, or its subscriptions filled up meanwhile: leave again (a
        // repeated leave is harmless at the home).
        pusher.identities.borrow_mut().remove_presence(key, name);
        let tell = Tell::Leave { app, channel: name.into(), user_id: user_id.into(), member };
        pusher.tell(shard, shard.home_of(app, name), tell);
        if let Err(why) = room {
            error(shard, key, &why);
        }
        return;
    }
    reply(shard, key, &outbound::presence_succeeded(name, &snapshot));
    pusher.subscribe(shard, key, app, name);
    let socket = pusher.socket_id(shard, key);
    Conn { pusher, shard, key, app, socket }.hook(EmqxKind::SessionSubscribed, name);
    if channel::is_cache(name) {
        replay_cache(pusher, shard, key, app, name.to_string());
    }
}

/// Sends a cache channel's last event, or `pusher:cache_miss`, right after subscribing.
fn replay_cache(pusher: &Rc<Pusher>, shard: &Rc<Shard>, key: ConnKey, app: u16, name: String) {
    let (pusher, shard) = (pusher.clone(), shard.clone());
    glommio::spawn_local(async move {
        let text = match cluster::cached(&pusher, &shard, app, &name).await {
            Some((event, data, _)) => outbound::channel_event(&event, &name, &data),
            None => {
                shard.hooks.pusher(app, PusherEvent::new("cache_miss", &name));
                outbound::cache_miss(&name)
            }
        };
        reply(&shard, key, &text);
    })
    .detach();
}

/// Whether connection `key` may hold one more subscription (`max_subscriptions_per_connection`);
/// subscribing again to a channel it holds is always allowed.
fn room_for(shard: &Shard, key: ConnKey, name: &str) -> Result<(), String> {
    let max = shard.config.max_subscriptions_per_connection;
    let held = shard.with_conn(key, |c| c.subscriptions.len()).unwrap_or(0);
    if held < max || shard.is_subscribed(key, name) {
        return Ok(());
    }
    Err(format!(
        "Too many subscriptions: a connection may hold {max} (max_subscriptions_per_connection); \
         unsubscribe from one first"
    ))
}

/// Queues a server message on the connection; reported as webman's `server_event` when a
/// webhook wants that (one flag test otherwise).
fn reply(shard: &Shard, key: ConnKey, text: &[u8]) {
    shard.send(key, Frame::new(frame::text(text)));
    if shard.hooks.any_server_event() {
        if let Some(app) = shard.with_conn(key, |c| c.ns) {
            shard.hooks.server_event(app, text);
        }
    }
}

fn error(shard: &Shard, key: ConnKey, message: &str) {
    reply(shard, key, &outbound::error(None, message));
}
