//! Watchlist state on a user's home shard: whether the user is online (signed in on at least
//! one connection anywhere) and which connections watch the user. Pure state and its rules;
//! the shard glue sends the notices and the events.
//!
//! Notices from one shard can overtake each other when a ring is full, so every change is a
//! signed count that commutes: a sign-out seen before its sign-in nets to zero and reports
//! nothing, and an unwatch before its watch leaves no watcher behind.

use crate::conn::ConnKey;
use ahash::AHashMap;

/// A connection that watches users: its shard and its key there.
pub type Watcher = (usize, ConnKey);

/// Online or offline, as the `name` of a watchlist event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Online,
    Offline,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Offline => "offline",
        }
    }
}

#[derive(Debug, Default)]
struct User {
    /// Signed-in connections over all shards (may dip below zero while notices cross).
    sessions: i64,
    /// Watching connections; a count, for the same reason.
    watchers: AHashMap<Watcher, i32>,
}

impl User {
    fn online(&self) -> bool {
        self.sessions > 0
    }

    fn is_idle(&self) -> bool {
        self.sessions == 0 && self.watchers.is_empty()
    }
}

/// Users homed on this shard that are signed in or watched.
#[derive(Debug, Default)]
pub struct Watchlists {
    users: AHashMap<(u16, Box<str>), User>,
}

impl Watchlists {
    /// A connection of `user` signed in (`delta` 1) or went away (-1). When that changes the
    /// user's status, returns the new status and the connections watching the user.
    pub fn session_change(
        &mut self,
        app: u16,
        user: &str,
        delta: i64,
    ) -> Option<(Status, Vec<Watcher>)> {
        let key = (app, Box::<str>::from(user));
        let entry = self.users.entry(key.clone()).or_default();
        let before = entry.online();
        entry.sessions += delta;
        let after = entry.online();
        let change = (before != after).then(|| {
            let status = if after { Status::Online } else { Status::Offline };
            let watchers = entry.watchers.iter().filter(|(_, n)| **n > 0).map(|(w, _)| *w);
            (status, watchers.collect())
        });
        if entry.is_idle() {
            self.users.remove(&key);
        }
        change
    }

    /// `watcher` watches `users` (`delta` 1) or stops (-1). Returns the users' current status,
    /// split into (online, offline), for the watcher's first events.
    pub fn watch(
        &mut self,
        app: u16,
        watcher: Watcher,
        users: &[String],
        delta: i32,
    ) -> (Vec<String>, Vec<String>) {
        let (mut online, mut offline) = (Vec::new(), Vec::new());
        for user in users {
            let key = (app, Box::<str>::from(user.as_str()));
            let entry = self.users.entry(key.clone()).or_default();
            let count = entry.watchers.entry(watcher).or_default();
            *count += delta;
            if *count == 0 {
                entry.watchers.remove(&watcher);
            }
            if entry.online() {
                online.push(user.clone());
            } else {
                offline.push(user.clone());
            }
            if entry.is_idle() {
                self.users.remove(&key);
            }
        }
        (online, offline)
    }

    /// Users with state here (for tests and gauges).
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn first_session_is_online_and_last_is_offline() {
        let mut w = Watchlists::default();
        let watcher = (1, ConnKey::new(7, 0));
        let (on, off) = w.watch(0, watcher, &names(&["a", "b"]), 1);
        assert!(on.is_empty());
        assert_eq!(off, names(&["a", "b"]));
        assert_eq!(w.session_change(0, "a", 1), Some((Status::Online, vec![watcher])));
        assert_eq!(w.session_change(0, "a", 1), None, "a second connection changes nothing");
        assert_eq!(w.session_change(0, "a", -1), None);
        assert_eq!(w.session_change(0, "a", -1), Some((Status::Offline, vec![watcher])));
        let (on, off) = w.watch(0, watcher, &names(&["a", "b"]), -1);
        assert_eq!((on.len(), off.len()), (0, 2));
        assert!(w.is_empty(), "nothing is kept for users nobody watches and nobody is");
    }

    #[test]
    fn status_is_per_app_and_unwatched_users_report_to_nobody() {
        let mut w = Watchlists::default();
        assert_eq!(w.session_change(0, "a", 1), Some((Status::Online, vec![])));
        let (on, _) = w.watch(1, (0, ConnKey::new(1, 0)), &names(&["a"]), 1);
        assert!(on.is_empty(), "app 1's a is not app 0's a");
        let (on, _) = w.watch(0, (0, ConnKey::new(1, 0)), &names(&["a"]), 1);
        assert_eq!(on, names(&["a"]));
    }

    #[test]
    fn crossed_notices_net_to_nothing() {
        let mut w = Watchlists::default();
        let watcher = (0, ConnKey::new(3, 1));
        assert_eq!(w.session_change(0, "a", -1), None, "a sign-out seen first reports nothing");
        assert_eq!(w.session_change(0, "a", 1), None);
        w.watch(0, watcher, &names(&["a"]), -1);
        w.watch(0, watcher, &names(&["a"]), 1);
        assert!(w.is_empty());
        assert_eq!(w.session_change(0, "a", 1), Some((Status::Online, vec![])));
    }
}
