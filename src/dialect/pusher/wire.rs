//! Cluster mode: what Pusher nodes say to each other, as JSON inside the cluster's broadcasts
//! and questions (tagged with the Pusher dialect's tag by the link). Apps travel by id, not by
//! number, since nodes may list them in another order. Also the rendezvous rule that names
//! one node per channel to send its webhooks. Pure: encoding, chunking and ranking only.

use super::{messages::CachedEvent, replica::Snapshot};
use serde::{Deserialize, Serialize};

/// A broadcast: a home shard's change, or a snapshot of everything it homes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Wire {
    /// `user` is present on `channel` at the sender's home shard `shard` now, or no longer.
    Member {
        shard: u16,
        app: String,
        channel: String,
        user: String,
        info: Option<String>,
        present: bool,
    },
    /// The sender's home shard `shard` counts `count` subscribers of `channel` on its node.
    Count { shard: u16, app: String, channel: String, count: u64 },
    /// `user` is signed in on the sender's node (its home shard `shard` says), or no longer.
    Session { shard: u16, app: String, user: String, present: bool },
    /// Close every connection signed in as `user`.
    Terminate { app: String, user: String },
    /// One part of a home shard's snapshot; the receiver replaces what it holds of that
    /// source once the part with `last` set arrives (parts of one source are never
    /// interleaved with its changes: a shard sends them all in one step).
    /// `shards` is the sender's shard count: pieces of its shards at or above it are stale (a
    /// node restarted with fewer shards under the same name); 0 from a sender that does not
    /// say.
    Snapshot {
        shard: u16,
        last: bool,
        part: Parts,
        #[serde(default)]
        shards: u16,
    },
    /// "Send me your snapshots": `to` names the nodes asked (empty: every node).
    Hello { to: Vec<String> },
}

/// Snapshot content with apps by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parts {
    /// (app, channel, user, user_info).
    pub members: Vec<(String, String, String, Option<String>)>,
    /// (app, channel, subscribers).
    pub counts: Vec<(String, String, u64)>,
    /// (app, user).
    pub sessions: Vec<(String, String)>,
}

impl Parts {
    /// Into the replica's form, apps numbered by `app` (unknown apps are left out).
    pub fn resolve(self, app: impl Fn(&str) -> Option<u16>, into: &mut Snapshot) {
        for (a, channel, user, info) in self.members {
            if let Some(a) = app(&a) {
                into.members.push((a, channel, user, info));
            }
        }
        for (a, channel, count) in self.counts {
            if let Some(a) = app(&a) {
                into.counts.push((a, channel, count));
            }
        }
        for (a, user) in self.sessions {
            if let Some(a) = app(&a) {
                into.sessions.push((a, user));
            }
        }
    }

    fn weight(&self) -> usize {
        let members: usize = self
            .members
            .iter()
            .map(|m| m.0.len() + m.1.len() + m.2.len() + m.3.as_ref().map_or(0, String::len) + 24)
            .sum();
        let counts: usize = self.counts.iter().map(|c| c.0.len() + c.1.len() + 32).sum();
        let sessions: usize = self.sessions.iter().map(|s| s.0.len() + s.1.len() + 16).sum();
        members + counts + sessions
    }
}

/// Splits a snapshot into parts of about `chunk` bytes each (always at least one part, so an
/// empty snapshot still clears what others hold of its source).
pub fn chunks(all: Parts, chunk: usize) -> Vec<Parts> {
    let mut out = vec![Parts::default()];
    let full = |out: &Vec<Parts>| out.last().is_some_and(|p| p.weight() >= chunk.max(1));
    for m in all.members {
        if full(&out) {
            out.push(Parts::default());
        }
        if let Some(p) = out.last_mut() {
            p.members.push(m);
        }
    }
    for c in all.counts {
        if full(&out) {
            out.push(Parts::default());
        }
        if let Some(p) = out.last_mut() {
            p.counts.push(c);
        }
    }
    for s in all.sessions {
        if full(&out) {
            out.push(Parts::default());
        }
        if let Some(p) = out.last_mut() {
            p.sessions.push(s);
        }
    }
    out
}

/// A question to the other nodes (REST counts), and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Ask {
    /// Subscribers of `channel` on the node.
    Subscribers { app: String, channel: String },
    /// The node's channels starting with `prefix`, with their subscribers there.
    Channels { app: String, prefix: String },
    /// The last event of a cache channel published through the node.
    Cache { app: String, channel: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Told {
    Count {
        count: u64,
    },
    Channels {
        channels: Vec<(String, u64)>,
    },
    /// (event, data, seconds left, stored at microseconds).
    Cache {
        cached: Option<CachedEvent>,
    },
}

/// The node that sends a channel's webhooks: the one of `nodes` (this node and the others
/// alive) that ranks first for (app, channel) by rendezvous hashing. Every node computes the
/// same answer from the same live set, and when a node goes only its channels move.
pub fn owner<'a>(nodes: impl IntoIterator<Item = &'a str>, app: &str, channel: &str) -> &'a str {
    nodes.into_iter().max_by_key(|node| (rank(node, app, channel), *node)).unwrap_or_default()
}

/// FNV-1a over the node, app and channel names: stable across builds and machines (a keyed
/// hasher such as ahash may differ between CPUs, and nodes must agree).
fn rank(node: &str, app: &str, channel: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [node, app, channel] {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // FNV's low bits mix poorly for short keys; a final avalanche (splitmix64).
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_tagged_json() {
        let m = Wire::Member {
            shard: 1,
            app: "app-id".into(),
            channel: "presence-a".into(),
            user: "u1".into(),
            info: Some("{\"name\":\"A\"}".into()),
            present: true,
        };
        let text = serde_json::to_string(&m).expect("encode");
        assert!(text.starts_with("{\"k\":\"member\""), "{text}");
        assert_eq!(serde_json::from_str::<Wire>(&text).expect("decode"), m);
        assert!(serde_json::from_str::<Wire>("{\"k\":\"bogus\"}").is_err());
    }

    #[test]
    fn owners_agree_spread_and_move_only_when_their_node_goes() {
        let three = ["a", "b", "c"];
        let mut per_node = std::collections::HashMap::new();
        for i in 0..300 {
            let channel = format!("c{i}");
            let first = owner(three, "app", &channel);
            assert_eq!(first, owner(["c", "a", "b"], "app", &channel), "order does not matter");
            *per_node.entry(first).or_insert(0) += 1;
            let without_b = owner(["a", "c"], "app", &channel);
            if first != "b" {
                assert_eq!(without_b, first, "only b's channels move when b goes");
            }
        }
        assert!(per_node.values().all(|n| *n > 50), "spread: {per_node:?}");
        assert_eq!(owner([], "app", "x"), "");
    }

    #[test]
    fn snapshots_split_into_parts_and_resolve_known_apps() {
        let all = Parts {
            members: (0..100)
                .map(|i| ("app".into(), "presence-x".into(), format!("u{i}"), None))
                .collect(),
            counts: vec![("app".into(), "c".into(), 3), ("gone".into(), "c".into(), 1)],
            sessions: vec![("app".into(), "u1".into())],
        };
        let parts = chunks(all.clone(), 400);
        assert!(parts.len() > 3, "{}", parts.len());
        let mut back = Snapshot::default();
        for p in parts {
            p.resolve(|a| (a == "app").then_some(0), &mut back);
        }
        assert_eq!(back.members.len(), 100);
        assert_eq!(back.counts, vec![(0, "c".into(), 3)]);
        assert_eq!(back.sessions, vec![(0, "u1".into())]);
        assert_eq!(chunks(Parts::default(), 400).len(), 1, "an empty snapshot is one part");
    }
}
