//! The local topic index: (namespace, topic name) -> the connections on this shard subscribed
//! to it. A topic is whatever a dialect makes it: a Pusher channel, a gateway topic, a user.
//!
//! Subscribe, unsubscribe and lookup are O(1) for connections with a few topics: each topic
//! keeps a dense `Vec` of subscribers (fast to walk during fan-out), and each connection
//! remembers its position in every topic it is in, so removal is a `swap_remove` plus one
//! position fix-up. A connection with very many topics (a gateway connection may hold
//! thousands) stays linear: the duplicate check of a subscribe scans the shorter of the two
//! lists, and bulk removals (`unsubscribe_many`, `unsubscribe_all`) make one pass over the
//! connection's list instead of one scan per topic.

use super::conn::{ConnEntry, ConnKey};
use ahash::{AHashMap, AHashSet};
use slab::Slab;

/// Index of a topic in the shard's topic slab.
pub type TopicId = u32;

/// One topic with local subscribers.
#[derive(Debug)]
pub struct Topic {
    pub ns: u16,
    pub name: Box<str>,
    pub subscribers: Vec<ConnKey>,
}

/// All topics with at least one subscriber on this shard.
#[derive(Debug, Default)]
pub struct TopicIndex {
    topics: Slab<Topic>,
    by_name: Vec<AHashMap<Box<str>, TopicId>>,
}

impl TopicIndex {
    /// The topic `name` of namespace `ns`, if anyone on this shard is subscribed.
    pub fn get(&self, ns: u16, name: &str) -> Option<&Topic> {
        let id = *self.by_name.get(usize::from(ns))?.get(name)?;
        self.topics.get(id as usize)
    }

    /// Number of topics with local subscribers.
    pub fn len(&self) -> usize {
        self.topics.len()
    }

    /// Number of topics of namespace `ns` with local subscribers.
    pub fn count(&self, ns: u16) -> usize {
        self.by_name.get(usize::from(ns)).map_or(0, |names| names.len())
    }

    /// Whether no topic has local subscribers.
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// Topics of `ns` starting with `prefix`, with their local subscriber counts, looking at
    /// `max` slots of the topic slab from slot `from`. Returns them and the slot to go on
    /// from, None when the slab is done. Slots stay put while topics come and go, so a scan in
    /// slices (the shard serving others between them) sees every topic that lives through it.
    pub fn names_from(
        &self,
        ns: u16,
        prefix: &str,
        from: usize,
        max: usize,
    ) -> (Vec<(String, u64)>, Option<usize>) {
        let end = from.saturating_add(max).min(self.topics.capacity());
        let names = (from..end)
            .filter_map(|slot| self.topics.get(slot))
            .filter(|topic| topic.ns == ns && topic.name.starts_with(prefix))
            .map(|topic| (topic.name.to_string(), topic.subscribers.len() as u64))
            .collect();
        (names, (end < self.topics.capacity()).then_some(end))
    }

    /// Topics of `ns` starting with `prefix`, with their local subscriber counts, in one go
    /// (for small namespaces; large listings go in slices with `names_from`).
    pub fn names(&self, ns: u16, prefix: &str) -> Vec<(String, u64)> {
        self.names_from(ns, prefix, 0, usize::MAX).0
    }

    /// Every topic with local subscribers: (namespace, name).
    pub fn all(&self) -> Vec<(u16, Box<str>)> {
        self.topics.iter().map(|(_, t)| (t.ns, t.name.clone())).collect()
    }

    /// Names of the topics a connection is subscribed to.
    pub fn names_of(&self, conn: &ConnEntry) -> Vec<Box<str>> {
        conn.subscriptions
            .iter()
            .filter_map(|&(id, _)| self.topics.get(id as usize).map(|t| t.name.clone()))
            .collect()
    }

    /// Whether `key` is subscribed to `name`.
    pub fn is_subscribed(&self, conn: &ConnEntry, name: &str) -> bool {
        let Some(&id) = self.by_name.get(usize::from(conn.ns)).and_then(|m| m.get(name)) else {
            return false;
        };
        conn.subscriptions.iter().any(|&(t, _)| t == id)
    }

    /// Subscribes `key`; returns false if it already was (re-subscribing is idempotent).
    pub fn subscribe(&mut self, conns: &mut Slab<ConnEntry>, key: ConnKey, name: &str) -> bool {
        let Some(conn) = conns.get_mut(key.index()) else {
            return false;
        };
        let ns = conn.ns;
        if self.by_name.len() <= usize::from(ns) {
            self.by_name.resize_with(usize::from(ns) + 1, AHashMap::default);
        }
        let names = &mut self.by_name[usize::from(ns)];
        let id = match names.get(name) {
            Some(&id) => id,
            None => {
                let topic = Topic { ns, name: name.into(), subscribers: Vec::new() };
                let id = self.topics.insert(topic) as TopicId;
                names.insert(name.into(), id);
                id
            }
        };
        let subscribers = &mut self.topics[id as usize].subscribers;
        let already = if conn.subscriptions.len() <= subscribers.len() {
            conn.subscriptions.iter().any(|&(t, _)| t == id)
        } else {
            subscribers.contains(&key)
        };
        if already {
            return false;
        }
        if conn.subscriptions.capacity() == 0 {
            // Most connections hold one subscription: 8 bytes, not the 32 a first push takes.
            conn.subscriptions.reserve_exact(1);
        }
        conn.subscriptions.push((id, subscribers.len() as u32));
        subscribers.push(key);
        true
    }

    /// Unsubscribes `key` from `name`; returns false if it was not subscribed.
    pub fn unsubscribe(&mut self, conns: &mut Slab<ConnEntry>, key: ConnKey, name: &str) -> bool {
        let Some(conn) = conns.get(key.index()) else {
            return false;
        };
        let Some(&id) = self.by_name.get(usize::from(conn.ns)).and_then(|m| m.get(name)) else {
            return false;
        };
        self.remove(conns, key, id)
    }

    /// Removes `key` from every topic (the connection is going away).
    pub fn unsubscribe_all(&mut self, conns: &mut Slab<ConnEntry>, key: ConnKey) {
        self.remove_where(conns, key, |_| true);
    }

    /// Unsubscribes `key` from those of `names` it holds; returns how many.
    pub fn unsubscribe_many(
        &mut self,
        conns: &mut Slab<ConnEntry>,
        key: ConnKey,
        names: &[&str],
    ) -> usize {
        let Some(conn) = conns.get(key.index()) else { return 0 };
        let Some(by_name) = self.by_name.get(usize::from(conn.ns)) else { return 0 };
        let ids: AHashSet<TopicId> =
            names.iter().filter_map(|n| by_name.get(*n).copied()).collect();
        self.remove_where(conns, key, |id| ids.contains(&id))
    }

    /// Removes `key` from the topics `pick` names, in one pass over its subscriptions (from
    /// the end, so each `swap_remove` moves an entry already looked at).
    fn remove_where(
        &mut self,
        conns: &mut Slab<ConnEntry>,
        key: ConnKey,
        pick: impl Fn(TopicId) -> bool,
    ) -> usize {
        let Some(conn) = conns.get_mut(key.index()) else { return 0 };
        let mut subscriptions = std::mem::take(&mut conn.subscriptions);
        let mut removed = 0;
        for i in (0..subscriptions.len()).rev() {
            let (id, pos) = subscriptions[i];
            if pick(id) {
                subscriptions.swap_remove(i);
                self.detach(conns, id, pos);
                removed += 1;
            }
        }
        if let Some(conn) = conns.get_mut(key.index()) {
            conn.subscriptions = if subscriptions.is_empty() { Vec::new() } else { subscriptions };
        }
        removed
    }

    fn remove(&mut self, conns: &mut Slab<ConnEntry>, key: ConnKey, id: TopicId) -> bool {
        let Some(conn) = conns.get_mut(key.index()) else {
            return false;
        };
        let Some(at) = conn.subscriptions.iter().position(|&(t, _)| t == id) else {
            return false;
        };
        let (_, pos) = conn.subscriptions.swap_remove(at);
        if conn.subscriptions.is_empty() {
            conn.subscriptions = Vec::new();
        }
        self.detach(conns, id, pos);
        true
    }

    /// Takes the subscriber at `pos` out of topic `id`, fixing the position of the one moved
    /// into its place, and drops the topic when it has no subscriber left.
    fn detach(&mut self, conns: &mut Slab<ConnEntry>, id: TopicId, pos: u32) {
        let topic = &mut self.topics[id as usize];
        topic.subscribers.swap_remove(pos as usize);
        if let Some(&moved) = topic.subscribers.get(pos as usize) {
            if let Some(other) = conns.get_mut(moved.index()) {
                if let Some(entry) = other.subscriptions.iter_mut().find(|(t, _)| *t == id) {
                    entry.1 = pos;
                }
            }
        }
        if topic.subscribers.is_empty() {
            let topic = self.topics.remove(id as usize);
            if let Some(names) = self.by_name.get_mut(usize::from(topic.ns)) {
                names.remove(&topic.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(conns: &mut Slab<ConnEntry>, ns: u16) -> ConnKey {
        let entry = conns.vacant_entry();
        let key = ConnKey::new(entry.key(), 7);
        entry.insert(ConnEntry::new(7, ns, 0, 0));
        key
    }

    fn subs(index: &TopicIndex, ns: u16, name: &str) -> Vec<ConnKey> {
        let mut v = index.get(ns, name).map(|t| t.subscribers.clone()).unwrap_or_default();
        v.sort_by_key(|k| k.index());
        v
    }

    #[test]
    fn subscribe_is_idempotent_and_per_namespace() {
        let mut conns = Slab::new();
        let mut index = TopicIndex::default();
        let a = conn(&mut conns, 0);
        let b = conn(&mut conns, 1);
        assert!(index.subscribe(&mut conns, a, "news"));
        assert!(!index.subscribe(&mut conns, a, "news"));
        assert!(index.subscribe(&mut conns, b, "news"));
        assert_eq!(subs(&index, 0, "news"), vec![a]);
        assert_eq!(subs(&index, 1, "news"), vec![b]);
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn names_come_in_slices_of_slots() {
        let mut conns = Slab::new();
        let mut index = TopicIndex::default();
        let a = conn(&mut conns, 0);
        let b = conn(&mut conns, 1);
        for i in 0..10 {
            index.subscribe(&mut conns, a, &format!("room-{i}"));
        }
        index.subscribe(&mut conns, b, "room-x");
        index.subscribe(&mut conns, a, "other");
        let (mut seen, mut from) = (Vec::new(), Some(0));
        while let Some(slot) = from {
            let (names, next) = index.names_from(0, "room-", slot, 3);
            seen.extend(names);
            from = next;
        }
        seen.sort();
        assert_eq!(seen.len(), 10, "{seen:?}");
        assert_eq!(seen[0], ("room-0".to_string(), 1));
    }

    #[test]
    fn removal_keeps_positions_right() {
        let mut conns = Slab::new();
        let mut index = TopicIndex::default();
        let keys: Vec<_> = (0..5).map(|_| conn(&mut conns, 0)).collect();
        for &k in &keys {
            index.subscribe(&mut conns, k, "t");
            index.subscribe(&mut conns, k, "u");
        }
        assert!(index.unsubscribe(&mut conns, keys[1], "t"));
        assert!(!index.unsubscribe(&mut conns, keys[1], "t"));
        index.unsubscribe_all(&mut conns, keys[0]);
        assert_eq!(subs(&index, 0, "t"), vec![keys[2], keys[3], keys[4]]);
        assert_eq!(subs(&index, 0, "u"), vec![keys[1], keys[2], keys[3], keys[4]]);
        // Every remaining position must point back at its connection.
        for &k in &keys[1..] {
            for &(id, pos) in &conns[k.index()].subscriptions {
                assert_eq!(index.topics[id as usize].subscribers[pos as usize], k);
            }
        }
        for &k in &keys {
            index.unsubscribe_all(&mut conns, k);
        }
        assert!(index.is_empty());
        assert!(index.get(0, "t").is_none());
    }

    #[test]
    fn many_topics_on_one_connection_come_and_go_in_bulk() {
        let mut conns = Slab::new();
        let mut index = TopicIndex::default();
        let (big, small) = (conn(&mut conns, 0), conn(&mut conns, 0));
        let names: Vec<String> = (0..2000).map(|i| format!("t{i}")).collect();
        for name in &names {
            assert!(index.subscribe(&mut conns, big, name));
            assert!(!index.subscribe(&mut conns, big, name), "idempotent");
        }
        for name in &names[..10] {
            index.subscribe(&mut conns, small, name);
        }
        let odd: Vec<&str> = names.iter().skip(1).step_by(2).map(String::as_str).collect();
        assert_eq!(index.unsubscribe_many(&mut conns, big, &odd), 1000);
        assert_eq!(index.unsubscribe_many(&mut conns, big, &odd), 0);
        assert_eq!(conns[big.index()].subscriptions.len(), 1000);
        assert_eq!(subs(&index, 0, "t1"), vec![small]);
        assert_eq!(subs(&index, 0, "t2"), vec![big, small]);
        assert!(index.get(0, "t11").is_none(), "its last subscriber went");
        for &k in &[big, small] {
            for &(id, pos) in &conns[k.index()].subscriptions {
                assert_eq!(index.topics[id as usize].subscribers[pos as usize], k);
            }
        }
        index.unsubscribe_all(&mut conns, big);
        assert_eq!(index.count(0), 10);
        index.unsubscribe_all(&mut conns, small);
        assert!(index.is_empty());
    }
}
