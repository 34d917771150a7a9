//! Where Zato keeps its durable state: its tables in the shared store file and their keys.
//! Every table name starts with `zato.`, so other features (the IM dialect's notices and
//! cursors) keep theirs apart in the same file. Topic names are printable ASCII and sub_keys
//! are `zpsk.` identifiers, so a 0 byte ends either unambiguously, and a topic's (or a
//! subscription's) entries form one key prefix that one range scan reads and one range delete
//! removes.
//!
//! | table          | key                        | value                                      |
//! |----------------|----------------------------|--------------------------------------------|
//! | `zato.topics`  | topic                      | JSON `TopicConfig` (topics made at run time) |
//! | `zato.subs`    | topic 0 sub_key            | JSON `SubRecord` (every subscription)       |
//! | `zato.msgs`    | topic 0 uid (8 bytes, BE)  | JSON `Msg` (GD messages, once each)         |
//! | `zato.queue`   | sub_key 0 uid              | empty: the message waits for this sub_key   |
//! | `zato.backlog` | topic 0 uid                | empty: it waits for the topic's first subscriber |
//!
//! A uid is the message's publication number on its topic's home, big-endian: keys grow, so a
//! commit's new entries share the last pages of their ranges and deliveries, which take the
//! oldest first, empty the first pages.
//!
//! A GD publish is one batch: the message and one `queue` (or `backlog`) entry per recipient.
//! A delivery deletes the `queue` entries it delivered, and the message with the last of them.
//! Queue order is not in the keys: it is rebuilt in memory from the messages at start.

use bytes::Bytes;

pub const TOPICS: &str = "zato.topics";
pub const SUBS: &str = "zato.subs";
pub const MSGS: &str = "zato.msgs";
pub const QUEUE: &str = "zato.queue";
pub const BACKLOG: &str = "zato.backlog";

fn joined(prefix: &str, uid: Option<u64>) -> Bytes {
    let mut key = Vec::with_capacity(prefix.len() + 9);
    key.extend_from_slice(prefix.as_bytes());
    key.push(0);
    if let Some(uid) = uid {
        key.extend_from_slice(&uid.to_be_bytes());
    }
    key.into()
}

/// `zato.topics` key.
pub fn topic(name: &str) -> Bytes {
    Bytes::copy_from_slice(name.as_bytes())
}

/// `zato.subs` key of one subscription; `topic_prefix` covers a topic's.
pub fn sub(topic: &str, sub_key: &str) -> Bytes {
    let mut key = joined(topic, None).to_vec();
    key.extend_from_slice(sub_key.as_bytes());
    key.into()
}

/// The prefix of every key of `topic` in `zato.subs`, `zato.msgs` and `zato.backlog`.
pub fn topic_prefix(topic: &str) -> Bytes {
    joined(topic, None)
}

/// `zato.msgs` and `zato.backlog` key of a message.
pub fn msg(topic: &str, uid: u64) -> Bytes {
    joined(topic, Some(uid))
}

/// `zato.queue` key of a message in a subscription's queue.
pub fn queued(sub_key: &str, uid: u64) -> Bytes {
    joined(sub_key, Some(uid))
}

/// The prefix of every `zato.queue` key of a subscription.
pub fn queue_prefix(sub_key: &str) -> Bytes {
    joined(sub_key, None)
}

/// The uid at the end of a `msgs`, `queue` or `backlog` key.
pub fn uid_of(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// The sub_key at the end of a `zato.subs` key.
pub fn sub_key_of(key: &[u8]) -> Option<&str> {
    let at = key.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&key[at + 1..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyRange;

    #[test]
    fn a_topics_keys_share_its_prefix_and_no_other_topics() {
        let range = KeyRange::prefix(topic_prefix("/a"));
        assert!(range.contains(&msg("/a", 7)) && range.contains(&sub("/a", "zpsk.rest.x")));
        assert!(!range.contains(&msg("/a/b", 7)) && !range.contains(&msg("/ab", 7)));
        assert_eq!(uid_of(&msg("/a", 0x0102_0304_0506_0708)), Some(0x0102_0304_0506_0708));
        assert_eq!(sub_key_of(&sub("/a", "zpsk.rest.x")), Some("zpsk.rest.x"));
        let queue = KeyRange::prefix(queue_prefix("zpsk.rest.x"));
        assert!(queue.contains(&queued("zpsk.rest.x", 1)));
        assert!(!queue.contains(&queued("zpsk.rest.xy", 1)));
    }
}
