//! Watchlist events across shards. A sign-in tells the user's home shard (one more session:
//! maybe `online`) and the homes of the users it watches; each of those homes answers with the
//! watched users' current status and later sends every change, on the same ring, so a
//! watcher sees a user's events in the order the user's home decided them. The rules live in
//! `topic::watchlist`; this is the messaging.

use super::Shard;
use crate::{
    bus::Notice,
    conn::{queue::Frame, ConnKey},
    dialect::pusher::outbound,
    topic::watchlist::{Status, Watcher},
    ws::frame,
};
use std::rc::Rc;

/// A connection signed in as `user`, watching `watchlist`.
pub fn signed_in(shard: &Rc<Shard>, app: u16, key: ConnKey, user: &str, watchlist: &[String]) {
    session(shard, app, key, user, watchlist, 1);
}

/// A signed-in connection went away (or signed in again as someone else).
pub fn signed_out(shard: &Rc<Shard>, app: u16, key: ConnKey, user: &str, watchlist: &[String]) {
    session(shard, app, key, user, watchlist, -1);
}

fn session(shard: &Rc<Shard>, app: u16, key: ConnKey, user: &str, watched: &[String], delta: i32) {
    if !shard.app(app).watchlist_events {
        return;
    }
    let notice = Notice::Session { app, user_id: user.to_string(), delta: i64::from(delta) };
    shard.tell(shard.home_of(app, user), notice);
    let mut by_home: Vec<Vec<String>> = vec![Vec::new(); shard.nr_shards()];
    for user in watched {
        by_home[shard.home_of(app, user)].push(user.clone());
    }
    for (home, users) in by_home.into_iter().enumerate().filter(|(_, u)| !u.is_empty()) {
        let notice = Notice::Watch { app, shard: shard.id(), conn: key, users, delta };
        shard.tell(home, notice);
    }
}

/// Home: a session of `user` began or ended; tells the watchers when the status changed.
pub fn on_session(shard: &Rc<Shard>, app: u16, user: &str, delta: i64) {
    let change = shard.state.borrow_mut().home.watchlists.session_change(app, user, delta);
    let Some((status, watchers)) = change else { return };
    let ids = [user.to_string()];
    let text = outbound::watchlist_events(&[(status.name(), &ids)]);
    send_to_watchers(shard, watchers, text);
}

/// Home: a connection starts or stops watching some users homed here. A new watcher gets
/// their current status at once.
pub fn on_watch(shard: &Rc<Shard>, app: u16, watcher: Watcher, users: &[String], delta: i32) {
    let (online, offline) =
        shard.state.borrow_mut().home.watchlists.watch(app, watcher, users, delta);
    if delta > 0 {
        let lists = [(Status::Online.name(), &online[..]), (Status::Offline.name(), &offline[..])];
        send_to_watchers(shard, vec![watcher], outbound::watchlist_events(&lists));
    }
}

/// The watcher's shard: queues the event on each connection still open.
pub fn on_events(shard: &Shard, conns: &[ConnKey], text: &[u8]) {
    let frame = Frame::new(frame::text(text));
    for &key in conns {
        shard.send(key, frame.clone());
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
    for (on, conns) in by_shard.into_iter().enumerate().filter(|(_, c)| !c.is_empty()) {
        shard.tell(on, Notice::WatchlistEvents { conns, text: text.clone() });
    }
}
