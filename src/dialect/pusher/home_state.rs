//! Pusher state that is global to a channel lives on the channel's home shard (engine::home):
//! presence members, the last event of a cache channel, and the channel's subscriber count
//! when an app needs it pushed. A signed-in user's online status and watchers live the same
//! way on `hash(app, user id) % N`. Other shards send their local changes here over the rings.
//! This module is the state and its rules; the shard glue does the messaging.

use super::{
    presence::{Joined, Presence},
    watchlist::Watchlists,
};
use crate::engine::addr::ConnAddr;
use ahash::AHashMap;
use std::time::{Duration, Instant};

/// Per-app maps keyed by channel name, looked up by `&str` without allocating.
#[derive(Debug)]
struct PerApp<T>(Vec<AHashMap<Box<str>, T>>);

impl<T> Default for PerApp<T> {
    fn default() -> Self {
        PerApp(Vec::new())
    }
}

impl<T> PerApp<T> {
    fn get(&self, app: u16, channel: &str) -> Option<&T> {
        self.0.get(usize::from(app))?.get(channel)
    }

    fn get_mut(&mut self, app: u16, channel: &str) -> Option<&mut T> {
        self.0.get_mut(usize::from(app))?.get_mut(channel)
    }

    fn entry(&mut self, app: u16, channel: &str) -> &mut T
    where
        T: Default,
    {
        if self.0.len() <= usize::from(app) {
            self.0.resize_with(usize::from(app) + 1, AHashMap::default);
        }
        let map = &mut self.0[usize::from(app)];
        if !map.contains_key(channel) {
            map.insert(channel.into(), T::default());
        }
        map.get_mut(channel).unwrap_or_else(|| unreachable!("inserted above"))
    }

    fn remove(&mut self, app: u16, channel: &str) {
        if let Some(map) = self.0.get_mut(usize::from(app)) {
            map.remove(channel);
        }
    }

    fn iter(&self, app: u16) -> impl Iterator<Item = (&str, &T)> {
        self.0.get(usize::from(app)).into_iter().flat_map(|m| m.iter().map(|(k, v)| (&**k, v)))
    }
}

/// The last event published on a cache channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub event: Box<str>,
    pub data: Box<str>,
    stored: Instant,
    /// Wall clock when stored, in microseconds: the newest of several nodes' entries wins.
    pub at_us: u64,
}

/// A channel's subscriber count over all shards, for `subscription_count` events and the
/// `channel_occupied` / `channel_vacated` webhooks.
#[derive(Debug, Default)]
pub struct Count {
    pub total: u64,
    /// When the last count event was sent (throttling for big channels).
    pub last_sent: Option<Instant>,
    /// A throttled count event is scheduled.
    pub pending: bool,
    /// `channel_occupied` was sent and `channel_vacated` not yet.
    pub occupied: bool,
    /// A delayed `channel_vacated` is waiting (its ticket; 0: none).
    pub vacating: u64,
}

/// Everything this shard keeps as home of its topics.
#[derive(Debug, Default)]
pub struct HomeState {
    presence: PerApp<Presence>,
    cache: PerApp<Cached>,
    counts: PerApp<Count>,
    /// Delayed `member_removed` webhooks: (app, channel, user) -> ticket.
    removals: AHashMap<(u16, Box<str>, Box<str>), u64>,
    next_ticket: u64,
    /// Users homed here: online status and watchers (a user's home is hashed from its id).
    pub watchlists: Watchlists,
}

impl HomeState {
    /// A connection of `user_id` joins; returns whether it is a new member and the member
    /// snapshot for its `subscription_succeeded`. `Err(max)` when the channel is full.
    pub fn join(
        &mut self,
        app: u16,
        channel: &str,
        user_id: &str,
        socket: ConnAddr,
        user_info: Option<&str>,
        max_members: usize,
    ) -> Result<(Joined, String), usize> {
        let presence = self.presence.entry(app, channel);
        let joined = presence.join(user_id, socket, user_info, max_members);
        let snapshot = presence.snapshot_json();
        if presence.is_empty() {
            self.presence.remove(app, channel);
        }
        joined.map(|j| (j, snapshot))
    }

    /// A connection of `user_id` leaves; true when the user left the channel.
    pub fn leave(&mut self, app: u16, channel: &str, user_id: &str, socket: ConnAddr) -> bool {
        let Some(presence) = self.presence.get_mut(app, channel) else { return false };
        let gone = presence.leave(user_id, socket);
        if presence.is_empty() {
            self.presence.remove(app, channel);
        }
        gone
    }

    /// Member ids of a presence channel, in join order.
    pub fn member_ids(&self, app: u16, channel: &str) -> Vec<String> {
        self.presence
            .get(app, channel)
            .map(|p| p.members().map(|(id, _)| id.to_string()).collect())
            .unwrap_or_default()
    }

    /// Users present on `channel`.
    pub fn user_count(&self, app: u16, channel: &str) -> usize {
        self.presence.get(app, channel).map_or(0, Presence::count)
    }

    /// Presence channels of `app` homed here whose name starts with `prefix`, with user counts.
    pub fn presence_channels(&self, app: u16, prefix: &str) -> Vec<(String, usize)> {
        self.presence
            .iter(app)
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, p)| (name.to_string(), p.count()))
            .collect()
    }

    /// Whether `user_id` is present on `channel` through this node, and its `user_info`.
    pub fn member(&self, app: u16, channel: &str, user_id: &str) -> Option<Option<&str>> {
        self.presence.get(app, channel)?.get(user_id)
    }

    /// Members of `channel` through this node, in join order, with their `user_info` text.
    pub fn members(&self, app: u16, channel: &str) -> Vec<(&str, Option<&str>)> {
        self.presence.get(app, channel).map(|p| p.members().collect()).unwrap_or_default()
    }

    /// Every member homed here: (app, channel, user, user_info), for a cluster snapshot.
    pub fn all_members(&self) -> Vec<(u16, String, String, Option<String>)> {
        let mut out = Vec::new();
        for (app, map) in self.presence.0.iter().enumerate() {
            for (channel, presence) in map {
                for (user, info) in presence.members() {
                    let info = info.map(str::to_string);
                    out.push((app as u16, channel.to_string(), user.to_string(), info));
                }
            }
        }
        out
    }

    /// Every channel homed here with subscribers on this node: (app, channel, subscribers).
    pub fn all_counts(&self) -> Vec<(u16, String, u64)> {
        let mut out = Vec::new();
        for (app, map) in self.counts.0.iter().enumerate() {
            for (channel, count) in map.iter().filter(|(_, c)| c.total > 0) {
                out.push((app as u16, channel.to_string(), count.total));
            }
        }
        out
    }

    /// Keeps the last event of a cache channel.
    pub fn cache_set(&mut self, app: u16, channel: &str, event: &str, data: &str, now: Instant) {
        let at_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let cached = Cached { event: event.into(), data: data.into(), stored: now, at_us };
        if self.cache.0.len() <= usize::from(app) {
            self.cache.0.resize_with(usize::from(app) + 1, AHashMap::default);
        }
        self.cache.0[usize::from(app)].insert(channel.into(), cached);
    }

    /// The cached event if younger than `ttl`, with its remaining time to live.
    pub fn cache_get(
        &mut self,
        app: u16,
        channel: &str,
        ttl: Duration,
        now: Instant,
    ) -> Option<(Cached, Duration)> {
        let cached = self.cache.get(app, channel)?;
        let age = now.saturating_duration_since(cached.stored);
        if age >= ttl {
            self.cache.remove(app, channel);
            return None;
        }
        Some((cached.clone(), ttl - age))
    }

    /// Applies a shard's subscriber change to a channel's total; returns the new total.
    pub fn count_change(&mut self, app: u16, channel: &str, delta: i64) -> &mut Count {
        let count = self.counts.entry(app, channel);
        count.total = count.total.saturating_add_signed(delta);
        count
    }

    /// Forgets the count of a channel nobody is subscribed to and nothing waits on.
    pub fn count_forget(&mut self, app: u16, channel: &str) {
        let idle = |c: &Count| c.total == 0 && !c.pending && !c.occupied && c.vacating == 0;
        if self.counts.get(app, channel).is_some_and(idle) {
            self.counts.remove(app, channel);
        }
    }

    /// A fresh ticket for a delayed webhook.
    pub fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    /// Notes a delayed `member_removed`; returns its ticket.
    pub fn removal_start(&mut self, app: u16, channel: &str, user_id: &str) -> u64 {
        let ticket = self.ticket();
        self.removals.insert((app, channel.into(), user_id.into()), ticket);
        ticket
    }

    /// Cancels a delayed `member_removed` (the user came back); true if one was waiting.
    pub fn removal_cancel(&mut self, app: u16, channel: &str, user_id: &str) -> bool {
        self.removals.remove(&(app, channel.into(), user_id.into())).is_some()
    }

    /// Ends a delayed `member_removed`; true if it is still due (not cancelled or replaced).
    pub fn removal_due(&mut self, app: u16, channel: &str, user_id: &str, ticket: u64) -> bool {
        let key = (app, Box::<str>::from(channel), Box::<str>::from(user_id));
        if self.removals.get(&key) == Some(&ticket) {
            self.removals.remove(&key);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::conn::ConnKey;

    fn member(n: usize) -> ConnAddr {
        ConnAddr::new(0, ConnKey::new(n, 1))
    }

    #[test]
    fn presence_join_and_leave_per_user() {
        let mut home = HomeState::default();
        let (a, b) = (member(1), member(2));
        let (joined, _) = home.join(0, "presence-r", "u1", a, None, 100).expect("join");
        assert_eq!(joined, Joined::NewMember);
        let (joined, snapshot) = home.join(0, "presence-r", "u1", b, None, 100).expect("join");
        assert_eq!(joined, Joined::SameMember);
        assert!(snapshot.contains("\"count\":1"));
        assert_eq!(home.user_count(0, "presence-r"), 1);
        assert_eq!(home.presence_channels(0, "presence-"), vec![("presence-r".to_string(), 1)]);
        assert!(!home.leave(0, "presence-r", "u1", a));
        assert!(home.leave(0, "presence-r", "u1", b));
        assert_eq!(home.user_count(0, "presence-r"), 0);
        assert!(home.presence_channels(0, "").is_empty());
    }

    #[test]
    fn full_channel_leaves_no_state_behind() {
        let mut home = HomeState::default();
        assert_eq!(home.join(0, "presence-full", "u1", member(1), None, 0), Err(0));
        assert!(home.presence_channels(0, "").is_empty());
    }

    #[test]
    fn cache_expires() {
        let mut home = HomeState::default();
        let t0 = Instant::now();
        home.cache_set(0, "cache-x", "e", "d", t0);
        let (cached, left) = home
            .cache_get(0, "cache-x", Duration::from_secs(60), t0 + Duration::from_secs(10))
            .expect("fresh");
        assert_eq!((&*cached.event, &*cached.data, left), ("e", "d", Duration::from_secs(50)));
        assert!(home
            .cache_get(0, "cache-x", Duration::from_secs(60), t0 + Duration::from_secs(61))
            .is_none());
        assert!(home.cache_get(1, "cache-x", Duration::from_secs(60), t0).is_none(), "per app");
    }

    #[test]
    fn delayed_removals_cancel_and_expire() {
        let mut home = HomeState::default();
        let t1 = home.removal_start(0, "presence-r", "u1");
        assert!(home.removal_cancel(0, "presence-r", "u1"));
        assert!(!home.removal_due(0, "presence-r", "u1", t1), "cancelled");
        let t2 = home.removal_start(0, "presence-r", "u1");
        assert!(home.removal_due(0, "presence-r", "u1", t2));
        assert!(!home.removal_cancel(0, "presence-r", "u1"), "already done");
    }

    #[test]
    fn counts_add_up() {
        let mut home = HomeState::default();
        home.count_change(0, "c", 3);
        assert_eq!(home.count_change(0, "c", -1).total, 2);
        home.count_change(0, "c", -2);
        home.count_forget(0, "c");
        assert_eq!(home.count_change(0, "c", 0).total, 0);
    }
}
