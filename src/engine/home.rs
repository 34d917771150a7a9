//! Home shards: state that is global to a topic (or a user) lives on one shard, the same one
//! for every shard that asks, `hash(namespace, name) % N`. Other shards send it their changes.

/// The shard that owns `name` of namespace `ns`. Every shard computes the same answer.
pub fn home_of(ns: u16, name: &str, nr_shards: usize) -> usize {
    // Fixed seeds: the hash must agree across shards (and it need not resist collisions
    // chosen by clients: the map lookups use their own random state).
    let state = ahash::RandomState::with_seeds(0x70757368, 0x67617465, 0x686f6d65, 0x73686172);
    (state.hash_one((ns, name)) % nr_shards.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes_are_stable_and_spread() {
        assert_eq!(home_of(0, "a", 4), home_of(0, "a", 4));
        let homes: std::collections::HashSet<usize> =
            (0..64).map(|i| home_of(0, &format!("c{i}"), 4)).collect();
        assert_eq!(homes.len(), 4, "64 names use every shard");
        assert_eq!(home_of(3, "x", 1), 0);
    }
}
