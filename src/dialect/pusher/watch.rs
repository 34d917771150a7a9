//! Watchlist events across shards. A sign-in tells the user's home shard (one more session:
//! maybe `online`) and the homes of the users it watches; each of those homes answers with the
//! watched users' current status and later sends every change, on the same ring, so a
//! watcher sees a user's events in the order the user's home decided them. `offline` waits
//! for the app's `watchlist_offline_delay_ms`. The rules live in `topic::watchlist`; this is
//! the messaging.

use super::{
    messages::Tell,
    outbound,
    watchlist::{Change, Status, Watcher},
    Pusher,
};
use crate::{
    engine::{bus::Notice, conn::ConnKey, shard::Shard},
    ws::frame,
};
use bytes::Bytes;
use std::{rc::Rc, time::Duration};

/// A connection signed in as `user`, watching `watchlist`.
pub fn signed_in(
    pusher: &Rc<Pusher>,
    shard: &Rc<Shard>,
    app: u16,
    key: ConnKey,
    user: &str,
    watchlist: &[String],
) {
    session(pusher, shard, app, user, 1);
    watch(pusher, shard, app, key, watchlist, 1);
}

/// A signed-in connection went away.
pub fn signed_out(
    pusher: &Rc<Pusher>,
    shard: &Rc<Shard>,
    app: u16,
    key: ConnKey,
    user: &str,
    watchlist: &[String],
) {
    session(pusher, shard, app, user, -1);
    watch(pusher, shard, app, key, watchlist, -1);
}

/// A connection signed in again. As the same user, only the watchlist's difference is sent
/// (watchers hear nothing); as another user, it is a sign-out and a sign-in.
pub fn signed_in_again(
    pusher: &Rc<Pusher>,
    shard: &Rc<Shard>,
    app: u16,
    key: ConnKey,
    old: (&str, &[String]),
    new: (&str, &[String]),
) {
    if old.0 != new.0 {
        signed_out(pusher, shard, app, key, old.0, old.1);
        return signed_in(pusher, shard, app, key, new.0, new.1);
    }
    let gone: Vec<String> = old.1.iter().filter(|u| !new.1.contains(u)).cloned().collect();
    let added: Vec<String> = new.1.iter().filter(|u| !old.1.contains(u)).cloned().collect();
    watch(pusher, shard, app, key, &gone, -1);
    watch(pusher, shard, app, key, &added, 1);
}

/// Tells the user's home one of its sessions began (1) or ended (-1).
fn session(pusher: &Pusher, shard: &Rc<Shard>, app: u16, user: &str, delta: i64) {
    if !pusher.app(app).watchlist_events {
        return;
    }
    let tell = Tell::Session { app, user_id: user.to_string(), delta };
    pusher.tell(shard, shard.home_of(app, user), tell);
}

/// Tells the homes of `users` that `key` starts (1) or stops (-1) watching them.
fn watch(pusher: &Pusher, shard: &Rc<Shard>, app: u16, key: ConnKey, users: &[String], delta: i32) {
    if !pusher.app(app).watchlist_events || users.is_empty() {
        return;
    }
    let mut by_home: Vec<Vec<String>> = vec![Vec::new(); shard.nr_shards()];
    for user in users {
        by_home[shard.home_of(app, user)].push(user.clone());
    }
    for (home, users) in by_home.into_iter().enumerate().filter(|(_, u)| !u.is_empty()) {
        let tell = Tell::Watch { app, shard: shard.id(), conn: key, users, delta };
        pusher.tell(shard, home, tell);
    }
}

/// Home: a session of `user` began or ended. A user that came online is announced at once; one
/// whose last session went is announced after the app's offline delay, if it stays away.
pub fn on_session(pusher: &Rc<Pusher>, shard: &Rc<Shard>, app: u16, user: &str, delta: i64) {
    let change = pusher.home.borrow_mut().watchlists.session_change(app, user, delta);
    match change {
        None => {}
        Some(Change::Tell(status, watchers)) => tell_status(shard, status, user, watchers),
        Some(Change::OfflineAfterDelay(ticket)) => {
            let delay = Duration::from_millis(pusher.app(app).watchlist_offline_delay_ms);
            let (pusher, shard, user) = (pusher.clone(), shard.clone(), user.to_string());
            glommio::spawn_local(async move {
                if !delay.is_zero() {
                    glommio::timer::sleep(delay).await;
                }
                let due = pusher.home.borrow_mut().watchlists.offline_due(app, &user, ticket);
                if let Some(watchers) = due {
                    tell_status(&shard, Status::Offline, &user, watchers);
                }
            })
            .detach();
        }
    }
}

fn tell_status(shard: &Rc<Shard>, status: Status, user: &str, watchers: Vec<Watcher>) {
    let ids = [user.to_string()];
    send_to_watchers(shard, watchers, outbound::watchlist_events(&[(status.name(), &ids)]));
}

/// Home: a connection starts or stops watching some users homed here. A new watcher gets
/// their current status at once.
pub fn on_watch(
    pusher: &Pusher,
    shard: &Rc<Shard>,
    app: u16,
    watcher: Watcher,
    users: &[String],
    delta: i32,
) {
    let (online, offline) = pusher.home.borrow_mut().watchlists.watch(app, watcher, users, delta);
    if delta > 0 {
        let lists = [(Status::Online.name(), &online[..]), (Status::Offline.name(), &offline[..])];
        send_to_watchers(shard, vec![watcher], outbound::watchlist_events(&lists));
    }
}

/// Groups watchers by shard: one notice (one encoded event) per shard.
fn send_to_watchers(shard: &Rc<Shard>, watchers: Vec<Watcher>, text: Vec<u8>) {
    let mut by_shard: Vec<Vec<ConnKey>> = vec![Vec::new(); shard.nr_shards()];
    for (on, conn) in watchers {
        if let Some(conns) = by_shard.get_mut(on) {
            conns.push(conn);
        }
    }
    let frame = Bytes::from(frame::text(&text));
    for (on, keys) in by_shard.into_iter().enumerate().filter(|(_, c)| !c.is_empty()) {
        shard.tell(on, Notice::Deliver { keys, frame: frame.clone() });
    }
}
