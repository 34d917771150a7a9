//! The home-shard side of the IM dialect: every connection of a user is registered on the
//! user's home shard, wherever it lives, so the duplicate-device rule (a second connection of
//! the same user, platform and device closes the first with 1000 "duplicate connection"),
//! pushes, kicks and listings are exact across shards. Pushes reach a connection through its
//! address (`Notice::Deliver` to its shard), one notice per shard.

use super::{
    cluster, delay,
    messages::{Action, Filter, Format, Question, Reply, Tell},
    notice,
    pb::ConnParam,
    push, Im,
};
use crate::engine::{addr::ConnAddr, bus::Notice, conn::Close, conn::ConnKey, shard::Shard};
use ahash::AHashMap;
use std::rc::Rc;

/// One registered connection of a user homed here.
#[derive(Debug)]
pub struct Registered {
    pub addr: ConnAddr,
    pub param: ConnParam,
    /// Wall clock at connect, ms: a new device's notices start there.
    pub connected_ms: u64,
    /// The order key of the last notice pushed to this connection (not pushed twice).
    pub last_notice: Option<Vec<u8>>,
}

/// The users homed on this shard and their connections.
#[derive(Debug, Default)]
pub struct HomeState {
    pub users: AHashMap<String, Vec<Registered>>,
}

impl HomeState {
    /// Registers a connection; returns the older connection of the same device it replaces.
    pub fn register(
        &mut self,
        user: String,
        addr: ConnAddr,
        param: ConnParam,
        connected_ms: u64,
    ) -> Option<ConnAddr> {
        let conns = self.users.entry(user).or_default();
        let same = conns.iter().position(|r| {
            r.param.platform == param.platform && r.param.device_id == param.device_id
        });
        let old = same.map(|at| conns.swap_remove(at).addr).filter(|a| *a != addr);
        conns.push(Registered { addr, param, connected_ms, last_notice: None });
        old
    }

    /// Forgets a connection (only that one: a newer one of the same device stays).
    pub fn unregister(&mut self, user: &str, addr: ConnAddr) {
        if let Some(conns) = self.users.get_mut(user) {
            conns.retain(|r| r.addr != addr);
            if conns.is_empty() {
                self.users.remove(user);
            }
        }
    }

    /// Calls `f` with each registered connection matching `filter`.
    pub fn each_match(&self, filter: &Filter, mut f: impl FnMut(&Registered)) {
        let mut visit = |conns: &Vec<Registered>| {
            conns.iter().filter(|r| filter.admits(&r.param)).for_each(&mut f);
        };
        if filter.user_ids.is_empty() {
            self.users.values().for_each(&mut visit);
        } else {
            filter.user_ids.iter().filter_map(|u| self.users.get(u)).for_each(&mut visit);
        }
    }

    /// The listed users with no matching connection.
    pub fn missing(&self, filter: &Filter) -> Vec<String> {
        let none = |u: &&String| {
            self.users.get(*u).is_none_or(|c| !c.iter().any(|r| filter.admits(&r.param)))
        };
        filter.user_ids.iter().filter(none).cloned().collect()
    }
}

/// Applies a notice sent to this shard.
pub fn on_tell(im: &Rc<Im>, shard: &Rc<Shard>, tell: Tell) {
    match tell {
        Tell::Register { user, addr, param, connected_ms } => {
            let old = im.home.borrow_mut().register(user.clone(), addr, *param, connected_ms);
            if let Some(registered) = im.home.borrow().users.get(&user).and_then(|c| c.last()) {
                cluster::connected(shard, &user, registered, im);
            }
            if let Some(old) = old {
                let close = Close::fixed(1000, "duplicate connection");
                shard.tell(usize::from(old.shard), Notice::Close { keys: vec![old.key], close });
            }
            notice::wake(im, shard, &user);
        }
        Tell::Unregister { user, addr } => im.home.borrow_mut().unregister(&user, addr),
        Tell::Wake { users } => users.iter().for_each(|user| notice::wake(im, shard, user)),
        Tell::Delayed => delay::wake(im),
    }
}

/// Answers a question asked of this shard.
pub async fn answer(im: &Rc<Im>, shard: &Rc<Shard>, question: Question) -> Reply {
    match question {
        Question::Match { filter, action, format } => {
            let (count, list) = apply(im, shard, &filter, action, format);
            let missing = im.home.borrow().missing(&filter);
            Reply::Matched { count, list, missing }
        }
        Question::Ack { user, device, conv, notice_id } => {
            Reply::Done(notice::ack(im, shard, &user, &device, &conv, &notice_id).await)
        }
        Question::AddNotice { notice, user } => {
            Reply::Done(notice::add::add(im, shard, notice, user).await.map(|()| true))
        }
    }
}

/// Finds the matching connections of users homed here, applies `action` to them and lists
/// them in `format`.
fn apply(
    im: &Im,
    shard: &Rc<Shard>,
    filter: &Filter,
    action: Action,
    format: Format,
) -> (usize, Vec<u8>) {
    let mut by_shard: Vec<Vec<ConnKey>> = vec![Vec::new(); shard.nr_shards()];
    let (mut count, mut list) = (0, Vec::new());
    im.home.borrow().each_match(filter, |r| {
        if let Some(keys) = by_shard.get_mut(usize::from(r.addr.shard)) {
            keys.push(r.addr.key);
        }
        push::list(format, &r.param, count, &mut list);
        count += 1;
    });
    for (peer, keys) in by_shard.into_iter().enumerate().filter(|(_, k)| !k.is_empty()) {
        match &action {
            Action::Send(frame) => shard.tell(peer, Notice::Deliver { keys, frame: frame.clone() }),
            Action::Kick => {
                shard.tell(peer, Notice::Close { keys, close: Close::fixed(1001, "kick") })
            }
            Action::List => {}
        }
    }
    (count, list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(user: &str, platform: &str, device: &str) -> ConnParam {
        ConnParam {
            user_id: user.into(),
            platform: platform.into(),
            device_id: device.into(),
            ..ConnParam::default()
        }
    }

    fn addr(shard: usize, index: usize) -> ConnAddr {
        ConnAddr::new(shard, ConnKey::new(index, 1))
    }

    #[test]
    fn the_same_device_replaces_the_older_connection() {
        let mut home = HomeState::default();
        assert_eq!(home.register("u".into(), addr(0, 1), param("u", "ios", "d"), 0), None);
        assert_eq!(home.register("u".into(), addr(1, 2), param("u", "web", "d"), 0), None);
        let old = home.register("u".into(), addr(1, 3), param("u", "ios", "d"), 0);
        assert_eq!(old, Some(addr(0, 1)));
        home.unregister("u", addr(0, 1));
        assert_eq!(home.users["u"].len(), 2, "the older one leaving removes nothing newer");
    }

    #[test]
    fn filters_are_an_and_of_the_non_empty_lists() {
        let mut home = HomeState::default();
        home.register("a".into(), addr(0, 1), param("a", "ios", "d1"), 0);
        home.register("a".into(), addr(0, 2), param("a", "web", "d2"), 0);
        home.register("b".into(), addr(0, 3), param("b", "ios", "d3"), 0);
        let count = |filter: &Filter| {
            let mut n = 0;
            home.each_match(filter, |_| n += 1);
            n
        };
        assert_eq!(count(&Filter::default()), 3);
        let ios = Filter { platforms: vec!["ios".into()], ..Filter::default() };
        assert_eq!(count(&ios), 2);
        let a_ios = Filter { user_ids: vec!["a".into(), "c".into()], ..ios };
        assert_eq!(count(&a_ios), 1);
        assert_eq!(home.missing(&a_ios), vec!["c".to_string()]);
        let none =
            Filter { user_ids: vec!["a".into()], devices: vec!["d3".into()], ..Filter::default() };
        assert_eq!(count(&none), 0);
        assert_eq!(home.missing(&none), vec!["a".to_string()]);
    }
}
