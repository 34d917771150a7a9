//! Watchlist state on a user's home shard: whether the user is online (signed in on at least
//! one connection anywhere) and which connections watch the user. Pure state and its rules;
//! the shard glue sends the notices and the events, and runs the offline delay.
//!
//! Counts are signed and every change commutes, so notices from different shards may arrive
//! in any order: a sign-out seen before its sign-in nets to zero, an unwatch before its watch
//! leaves no watcher. A user whose count drops to zero is reported offline only after a delay,
//! and only if it stays at zero: that absorbs a new connection's sign-in still crossing from
//! another shard, and a client that reconnects at once, without an offline/online flap.

use crate::engine::conn::ConnKey;
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

/// What a session change asks of the glue.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Tell these watchers the user's new status now.
    Tell(Status, Vec<Watcher>),
    /// The user's last session went: call [`Watchlists::offline_due`] with this ticket after
    /// the delay.
    OfflineAfterDelay(u64),
}

#[derive(Debug, Default)]
struct User {
    /// Signed-in connections over all shards (may dip below zero while notices cross).
    sessions: i64,
    /// What watchers were last told: online.
    reported_online: bool,
    /// An offline report waiting for its delay (its ticket; 0: none).
    offline_ticket: u64,
    /// Watching connections; a count, for the same reason as `sessions`.
    watchers: AHashMap<Watcher, i32>,
}

impl User {
    fn watchers(&self) -> Vec<Watcher> {
        self.watchers.iter().filter(|(_, n)| **n > 0).map(|(w, _)| *w).collect()
    }

    fn is_idle(&self) -> bool {
        self.sessions == 0
            && !self.reported_online
            && self.offline_ticket == 0
            && self.watchers.is_empty()
    }
}

/// Users homed on this shard that are signed in, watched, or about to be reported offline.
#[derive(Debug, Default)]
pub struct Watchlists {
    users: AHashMap<(u16, Box<str>), User>,
    next_ticket: u64,
}

impl Watchlists {
    /// A connection of `user` signed in (`delta` 1) or went away (-1).
    pub fn session_change(&mut self, app: u16, user: &str, delta: i64) -> Option<Change> {
        let key = (app, Box::<str>::from(user));
        let entry = self.users.entry(key.clone()).or_default();
        let before = entry.sessions > 0;
        entry.sessions += delta;
        let after = entry.sessions > 0;
        let change = match (before, after) {
            (false, true) if entry.offline_ticket != 0 => {
                // Back before the offline report went out: watchers never hear of it.
                entry.offline_ticket = 0;
                None
            }
            (false, true) if !entry.reported_online => {
                entry.reported_online = true;
                Some(Change::Tell(Status::Online, entry.watchers()))
            }
            (true, false) if entry.reported_online => {
                self.next_ticket += 1;
                entry.offline_ticket = self.next_ticket;
                Some(Change::OfflineAfterDelay(self.next_ticket))
            }
            _ => None,
        };
        if entry.is_idle() {
            self.users.remove(&key);
        }
        change
    }

    /// The offline delay of `ticket` ended: if the user is still away, returns the watchers to
    /// tell.
    pub fn offline_due(&mut self, app: u16, user: &str, ticket: u64) -> Option<Vec<Watcher>> {
        let key = (app, Box::<str>::from(user));
        let entry = self.users.get_mut(&key)?;
        if entry.offline_ticket != ticket || entry.sessions > 0 {
            return None;
        }
        entry.offline_ticket = 0;
        entry.reported_online = false;
        let watchers = entry.watchers();
        if entry.is_idle() {
            self.users.remove(&key);
        }
        Some(watchers)
    }

    /// `watcher` watches `users` (`delta` 1) or stops (-1). Returns the users' status as
    /// watchers were last told it, split into (online, offline), for the watcher's first events.
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
            if entry.reported_online {
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

    fn sorted(mut watchers: Vec<Watcher>) -> Vec<Watcher> {
        watchers.sort_by_key(|(shard, key)| (*shard, key.index()));
        watchers
    }

    /// The ticket of a pending offline report.
    fn ticket(change: Option<Change>) -> u64 {
        match change {
            Some(Change::OfflineAfterDelay(ticket)) => ticket,
            other => panic!("expected an offline delay, got {other:?}"),
        }
    }

    #[test]
    fn first_session_is_online_and_last_is_offline_after_the_delay() {
        let mut w = Watchlists::default();
        let first = (1, ConnKey::new(7, 0));
        let (on, off) = w.watch(0, first, &names(&["a", "b"]), 1);
        assert!(on.is_empty());
        assert_eq!(off, names(&["a", "b"]));
        assert_eq!(w.session_change(0, "a", 1), Some(Change::Tell(Status::Online, vec![first])));
        assert_eq!(w.session_change(0, "a", 1), None, "a second connection changes nothing");
        assert_eq!(w.session_change(0, "a", -1), None);
        let due = ticket(w.session_change(0, "a", -1));
        // While the delay runs, a new watcher hears what the others were told: online.
        let second = (0, ConnKey::new(2, 5));
        assert_eq!(w.watch(0, second, &names(&["a"]), 1).0, names(&["a"]));
        assert_eq!(w.offline_due(0, "a", due).map(sorted), Some(vec![second, first]));
        assert_eq!(w.offline_due(0, "a", due), None, "reported once");
        w.watch(0, first, &names(&["a", "b"]), -1);
        w.watch(0, second, &names(&["a"]), -1);
        assert!(w.is_empty(), "nothing is kept for users nobody watches and nobody is");
    }

    #[test]
    fn a_return_within_the_delay_is_never_reported() {
        let mut w = Watchlists::default();
        let watcher = (0, ConnKey::new(1, 0));
        w.watch(0, watcher, &names(&["a"]), 1);
        assert!(matches!(w.session_change(0, "a", 1), Some(Change::Tell(Status::Online, _))));
        let due = ticket(w.session_change(0, "a", -1));
        assert_eq!(w.session_change(0, "a", 1), None, "back in time: no online either");
        assert_eq!(w.offline_due(0, "a", due), None, "the old delay finds the user online");
        let later = ticket(w.session_change(0, "a", -1));
        assert_eq!(w.offline_due(0, "a", later), Some(vec![watcher]));
    }

    #[test]
    fn status_is_per_app_and_unwatched_users_report_to_nobody() {
        let mut w = Watchlists::default();
        assert_eq!(w.session_change(0, "a", 1), Some(Change::Tell(Status::Online, vec![])));
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
        assert_eq!(w.session_change(0, "a", 1), Some(Change::Tell(Status::Online, vec![])));
    }
}
