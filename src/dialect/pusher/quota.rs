//! `max_channels_per_app`: channels with subscribers, counted once each over all shards. A
//! channel's home shard knows which shards hold it (they claim it there before their first
//! local subscriber and release it after their last), so it alone decides whether a claim
//! makes a new channel; the app's total is one shared counter touched only when a channel
//! appears or disappears app-wide, never per message. See
//! `docs/design/why-channels-are-counted-at-their-home-shard.md`.
//!
//! Local side: per channel this shard does not hold yet, the claims in flight; per channel it
//! holds, that it does. A release waits for the claims in flight, so the home never forgets a
//! shard that is about to subscribe.

use super::{
    messages::{Question, Reply, Tell},
    Pusher,
};
use crate::engine::{conn::ConnKey, shard::Shard};
use ahash::AHashMap;
use std::{
    rc::Rc,
    sync::atomic::{AtomicU64, Ordering},
};

/// Both sides of the count on one shard.
#[derive(Debug, Default)]
pub struct Quota {
    /// Home side: channels homed here with subscribers somewhere, and the shards holding them.
    homed: Vec<AHashMap<Box<str>, Vec<u16>>>,
    /// Local side: channels this shard holds (claimed) or is claiming.
    local: Vec<AHashMap<Box<str>, Local>>,
}

/// This shard's standing for one channel.
#[derive(Debug, Default, Clone, Copy)]
struct Local {
    /// The home counts this shard as holding the channel.
    held: bool,
    /// Claims sent and not yet answered.
    in_flight: u32,
}

/// What a subscription to a channel needs before it can be made.
pub enum Admit {
    /// Nothing: the channel is held here, or there is no limit.
    Now,
    /// A claim at the channel's home shard (`claim` answers it).
    Ask,
}

fn slot<'a, T: Default>(
    maps: &'a mut Vec<AHashMap<Box<str>, T>>,
    app: u16,
    name: &str,
) -> &'a mut T {
    if maps.len() <= usize::from(app) {
        maps.resize_with(usize::from(app) + 1, AHashMap::default);
    }
    let map = &mut maps[usize::from(app)];
    if !map.contains_key(name) {
        map.insert(name.into(), T::default());
    }
    map.get_mut(name).unwrap_or_else(|| unreachable!("inserted above"))
}

impl Quota {
    /// Home side: shard `from` will hold `name`. A channel new to the app is counted in
    /// `total` unless the app has its `max` channels (`Err(max)`).
    pub fn claim_home(
        &mut self,
        app: u16,
        name: &str,
        from: u16,
        max: usize,
        total: &AtomicU64,
    ) -> Result<(), usize> {
        let known = self.homed.get(usize::from(app)).is_some_and(|m| m.contains_key(name));
        if !known {
            let room = |n: u64| (n < max as u64).then_some(n + 1);
            if total.fetch_update(Ordering::Relaxed, Ordering::Relaxed, room).is_err() {
                return Err(max);
            }
        }
        let shards = slot(&mut self.homed, app, name);
        if !shards.contains(&from) {
            shards.push(from);
        }
        Ok(())
    }

    /// Home side: shard `from` holds `name` no more; the last shard gone uncounts it.
    pub fn release_home(&mut self, app: u16, name: &str, from: u16, total: &AtomicU64) {
        let Some(map) = self.homed.get_mut(usize::from(app)) else { return };
        let Some(shards) = map.get_mut(name) else { return };
        shards.retain(|&s| s != from);
        if shards.is_empty() {
            map.remove(name);
            let _ = total.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    fn local(&self, app: u16, name: &str) -> Option<Local> {
        self.local.get(usize::from(app))?.get(name).copied()
    }
}

/// Whether a subscription to `name` may go ahead now, or must claim the channel first.
pub fn admit(pusher: &Pusher, shard: &Shard, app: u16, name: &str) -> Admit {
    if shard.config.max_channels_per_app == 0 {
        return Admit::Now;
    }
    let held = pusher.quota.borrow().local(app, name).is_some_and(|l| l.held);
    let here = shard.state.borrow().topics.get(app, name).is_some();
    if held || here {
        Admit::Now
    } else {
        Admit::Ask
    }
}

/// Claims `name` at its home for this shard. `Err` says why the subscription is refused.
/// Call [`settle`] once the subscription is made (or not).
pub async fn claim(
    pusher: &Rc<Pusher>,
    shard: &Rc<Shard>,
    app: u16,
    name: &str,
) -> Result<(), String> {
    slot(&mut pusher.quota.borrow_mut().local, app, name).in_flight += 1;
    let home = shard.home_of(app, name);
    let me = shard.id() as u16;
    let answer = if home == shard.id() {
        Reply::Claimed(claim_here(pusher, shard, app, name, me))
    } else {
        let question = Question::Claim { app, channel: name.to_string(), shard: me };
        pusher.ask(shard, home, question).await.unwrap_or(Reply::Claimed(Ok(())))
    };
    let claimed = matches!(answer, Reply::Claimed(Ok(())));
    {
        let mut quota = pusher.quota.borrow_mut();
        let local = slot(&mut quota.local, app, name);
        local.in_flight = local.in_flight.saturating_sub(1);
        local.held |= claimed;
    }
    match answer {
        Reply::Claimed(Err(max)) => Err(format!(
            "Too many channels: the app has its {max} channels (max_channels_per_app); \
             subscribe to an existing one or wait for one to be vacated"
        )),
        _ => Ok(()),
    }
}

/// The home side of a claim, on this shard.
pub fn claim_here(
    pusher: &Pusher,
    shard: &Shard,
    app: u16,
    name: &str,
    from: u16,
) -> Result<(), usize> {
    let max = shard.config.max_channels_per_app;
    let total = &pusher.shared.app_channels[usize::from(app)];
    pusher.quota.borrow_mut().claim_home(app, name, from, max, total)
}

/// The home side of a release, on this shard.
pub fn release_here(pusher: &Pusher, app: u16, name: &str, from: u16) {
    let total = &pusher.shared.app_channels[usize::from(app)];
    pusher.quota.borrow_mut().release_home(app, name, from, total);
}

/// After a subscription was made or refused, or a local subscriber left: if this shard holds
/// `name` with no local subscriber (other than `leaving`, a connection being removed) and no
/// claim in flight, it releases the channel at its home.
pub fn settle(pusher: &Pusher, shard: &Rc<Shard>, app: u16, name: &str, leaving: Option<ConnKey>) {
    if shard.config.max_channels_per_app == 0 {
        return;
    }
    let Some(local) = pusher.quota.borrow().local(app, name) else { return };
    if local.in_flight > 0 {
        return;
    }
    let subscribed = {
        let state = shard.state.borrow();
        state
            .topics
            .get(app, name)
            .is_some_and(|t| t.subscribers.iter().any(|&k| Some(k) != leaving))
    };
    if subscribed {
        return;
    }
    if let Some(map) = pusher.quota.borrow_mut().local.get_mut(usize::from(app)) {
        map.remove(name);
    }
    if local.held {
        let me = shard.id() as u16;
        let home = shard.home_of(app, name);
        if home == shard.id() {
            release_here(pusher, app, name, me);
        } else {
            pusher.tell(shard, home, Tell::Release { app, channel: name.to_string(), shard: me });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_counts_once_whatever_shards_hold_it() {
        let (mut quota, total) = (Quota::default(), AtomicU64::new(0));
        assert_eq!(quota.claim_home(0, "a", 0, 2, &total), Ok(()));
        assert_eq!(quota.claim_home(0, "a", 1, 2, &total), Ok(()));
        assert_eq!(quota.claim_home(0, "a", 1, 2, &total), Ok(()), "idempotent");
        assert_eq!(quota.claim_home(0, "b", 1, 2, &total), Ok(()));
        assert_eq!(total.load(Ordering::Relaxed), 2);
        assert_eq!(quota.claim_home(0, "c", 0, 2, &total), Err(2));
        assert_eq!(quota.claim_home(0, "a", 2, 2, &total), Ok(()), "existing channels stay open");
        quota.release_home(0, "a", 0, &total);
        quota.release_home(0, "a", 1, &total);
        assert_eq!(total.load(Ordering::Relaxed), 2, "shard 2 still holds a");
        quota.release_home(0, "a", 2, &total);
        quota.release_home(0, "a", 2, &total);
        assert_eq!(total.load(Ordering::Relaxed), 1);
        assert_eq!(quota.claim_home(0, "c", 0, 2, &total), Ok(()));
    }
}
