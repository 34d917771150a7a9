//! The local topic index: (namespace, topic name) -> the connections on this shard subscribed
//! to it. A topic is whatever a dialect makes it: a Pusher channel, a gateway topic, a user.
//!
//! Subscribe, unsubscribe and lookup are O(1): each topic keeps a dense `Vec` of subscribers
//! (fast to walk during fan-out), and each connection remembers its position in every topic it
//! is in, so removal is a `swap_remove` plus one position fix-up.

use super::conn::{ConnEntry, ConnKey};
use ahash::AHashMap;
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

    /// Whether no topic has local subscribers.
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// Topics of `ns` starting with `prefix`, with their local subscriber counts.
    pub fn names(&self, ns: u16, prefix: &str) -> Vec<(String, u64)> {
        let Some(names) = self.by_name.get(usize::from(ns)) else { return Vec::new() };
        names
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .filter_map(|(name, &id)| {
                let topic = self.topics.get(id as usize)?;
                Some((name.to_string(), topic.subscribers.len() as u64))
            })
            .collect()
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
        if conn.subscriptions.iter().any(|&(t, _)| t == id) {
            return false;
        }
        let subscribers = &mut self.topics[id as usize].subscribers;
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
        let ids: Vec<TopicId> = match conns.get(key.index()) {
            Some(conn) => conn.subscriptions.iter().map(|&(id, _)| id).collect(),
            None => return,
        };
        for id in ids {
            self.remove(conns, key, id);
        }
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
        true
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
}
