//! Which topics this node follows: a topic is followed while at least one shard has a local
//! subscriber of it. Shards report their first subscriber and their last one leaving; a
//! periodic digest per shard (count and hash of its sorted topics) catches a report lost on a
//! full channel, and a full list then replaces that shard's view.

use ahash::{AHashMap, AHashSet};
use std::hash::{BuildHasher, Hash, Hasher};

/// A topic: namespace number and name.
pub type TopicKey = (u16, Box<str>);

/// What changed for the node's subscriptions.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub follow: Vec<TopicKey>,
    pub unfollow: Vec<TopicKey>,
}

/// Topics per shard, and how many shards have each.
#[derive(Debug, Default)]
pub struct Interest {
    shards: Vec<AHashSet<TopicKey>>,
    counts: AHashMap<TopicKey, usize>,
}

impl Interest {
    pub fn new(nr_shards: usize) -> Interest {
        Interest { shards: vec![AHashSet::default(); nr_shards], counts: AHashMap::default() }
    }

    /// Topics the node follows.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Every followed topic.
    pub fn topics(&self) -> impl Iterator<Item = &TopicKey> {
        self.counts.keys()
    }

    /// Shard `shard` gained (`on`) or lost its subscribers of `topic`.
    pub fn report(&mut self, shard: usize, topic: TopicKey, on: bool, changes: &mut Changes) {
        let Some(set) = self.shards.get_mut(shard) else { return };
        if on {
            if set.insert(topic.clone()) {
                let n = self.counts.entry(topic.clone()).or_insert(0);
                *n += 1;
                if *n == 1 {
                    changes.follow.push(topic);
                }
            }
        } else if set.remove(&topic) {
            if let Some(n) = self.counts.get_mut(&topic) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(&topic);
                    changes.unfollow.push(topic);
                }
            }
        }
    }

    /// Whether shard `shard`'s digest matches what the node knows of it.
    pub fn matches(&self, shard: usize, count: u64, hash: u64) -> bool {
        self.shards.get(shard).is_some_and(|set| {
            set.len() as u64 == count && digest(set.iter().map(|(ns, t)| (*ns, &**t))).1 == hash
        })
    }

    /// Replaces shard `shard`'s topics with `topics` (after a digest mismatch).
    pub fn replace(&mut self, shard: usize, topics: Vec<TopicKey>, changes: &mut Changes) {
        let Some(old) = self.shards.get(shard).cloned() else { return };
        let new: AHashSet<TopicKey> = topics.into_iter().collect();
        for topic in old.difference(&new) {
            self.report(shard, topic.clone(), false, changes);
        }
        for topic in new.difference(&old) {
            self.report(shard, topic.clone(), true, changes);
        }
    }
}

/// (count, hash) of a set of topics, independent of their order.
pub fn digest<'a>(topics: impl Iterator<Item = (u16, &'a str)>) -> (u64, u64) {
    let mut sorted: Vec<(u16, &str)> = topics.collect();
    sorted.sort_unstable();
    let state = ahash::RandomState::with_seeds(1, 2, 3, 4);
    let mut hasher = state.build_hasher();
    for topic in &sorted {
        topic.hash(&mut hasher);
    }
    (sorted.len() as u64, hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> TopicKey {
        (0, name.into())
    }

    #[test]
    fn a_topic_is_followed_while_any_shard_has_it() {
        let mut interest = Interest::new(2);
        let mut changes = Changes::default();
        interest.report(0, key("a"), true, &mut changes);
        interest.report(1, key("a"), true, &mut changes);
        interest.report(0, key("a"), true, &mut changes);
        assert_eq!(changes.follow, vec![key("a")]);
        interest.report(0, key("a"), false, &mut changes);
        assert!(changes.unfollow.is_empty());
        interest.report(1, key("a"), false, &mut changes);
        assert_eq!(changes.unfollow, vec![key("a")]);
        assert!(interest.is_empty());
    }

    #[test]
    fn digests_find_drift_and_a_full_list_repairs_it() {
        let mut interest = Interest::new(1);
        let mut changes = Changes::default();
        interest.report(0, key("a"), true, &mut changes);
        let (n, h) = digest([(0u16, "a"), (0, "b")].into_iter());
        assert!(!interest.matches(0, n, h), "b was never reported");
        let mut changes = Changes::default();
        interest.replace(0, vec![key("b"), key("a")], &mut changes);
        assert_eq!(changes.follow, vec![key("b")]);
        assert!(interest.matches(0, n, h));
        assert_eq!(digest([(0u16, "b"), (0, "a")].into_iter()), (n, h), "order does not matter");
    }
}
