//! Presence members of one channel, kept on the channel's home shard. Members are users, not
//! sockets: a user joins with its first connection and leaves with its last. Connections are
//! tracked by address, so a repeated leave (a connection that closed while its join was on
//! the way) changes nothing.

use crate::engine::addr::ConnAddr;
use ahash::AHashMap;

/// A member as Pusher shows it: an id and the app's `user_info` JSON (kept as its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_info: Option<Box<str>>,
    /// Connections of this user on this channel, over all shards.
    pub sockets: Vec<ConnAddr>,
}

/// The members of one presence channel.
#[derive(Debug, Default)]
pub struct Presence {
    members: AHashMap<Box<str>, Member>,
    /// Join order, so listings are stable.
    order: Vec<Box<str>>,
}

/// What a join did.
#[derive(Debug, PartialEq, Eq)]
pub enum Joined {
    /// The user's first connection: others get `member_added`.
    NewMember,
    /// Another connection of a user already present: nobody is told.
    SameMember,
}

impl Presence {
    /// Adds a connection of `user_id`; refuses a new member past `max_members`.
    pub fn join(
        &mut self,
        user_id: &str,
        socket: ConnAddr,
        user_info: Option<&str>,
        max_members: usize,
    ) -> Result<Joined, usize> {
        if let Some(member) = self.members.get_mut(user_id) {
            if !member.sockets.contains(&socket) {
                member.sockets.push(socket);
            }
            return Ok(Joined::SameMember);
        }
        if self.members.len() >= max_members {
            return Err(max_members);
        }
        let member = Member { user_info: user_info.map(Into::into), sockets: vec![socket] };
        self.members.insert(user_id.into(), member);
        self.order.push(user_id.into());
        Ok(Joined::NewMember)
    }

    /// Removes a connection of `user_id`; true when that was the user's last one.
    pub fn leave(&mut self, user_id: &str, socket: ConnAddr) -> bool {
        let Some(member) = self.members.get_mut(user_id) else { return false };
        member.sockets.retain(|s| *s != socket);
        if !member.sockets.is_empty() {
            return false;
        }
        self.members.remove(user_id);
        self.order.retain(|id| &**id != user_id);
        true
    }

    pub fn count(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Members in join order, with their `user_info` text.
    pub fn members(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.order
            .iter()
            .filter_map(|id| self.members.get(id).map(|m| (&**id, m.user_info.as_deref())))
    }

    /// Whether `user_id` is a member, and its `user_info` text.
    pub fn get(&self, user_id: &str) -> Option<Option<&str>> {
        self.members.get(user_id).map(|m| m.user_info.as_deref())
    }

    /// The `presence` object of `subscription_succeeded`: `{"presence":{"ids","hash","count"}}`.
    pub fn snapshot_json(&self) -> String {
        snapshot_json(self.members())
    }
}

/// The `presence` object of `subscription_succeeded` for these members.
pub fn snapshot_json<'a>(members: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let mut ids = Vec::new();
    let mut hash = serde_json::Map::new();
    for (id, info) in members {
        if hash.contains_key(id) {
            continue;
        }
        ids.push(serde_json::Value::String(id.to_string()));
        let info =
            info.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(serde_json::Value::Null);
        hash.insert(id.to_string(), info);
    }
    let count = ids.len();
    serde_json::json!({"presence": {"ids": ids, "hash": hash, "count": count}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::engine::conn::ConnKey;

    fn s(n: usize) -> ConnAddr {
        ConnAddr::new(0, ConnKey::new(n, 1))
    }

    #[test]
    fn members_are_users_not_sockets() {
        let mut p = Presence::default();
        assert_eq!(p.join("u1", s(1), Some(r#"{"name":"A"}"#), 100), Ok(Joined::NewMember));
        assert_eq!(p.join("u1", s(2), None, 100), Ok(Joined::SameMember));
        assert_eq!(p.join("u2", s(3), None, 100), Ok(Joined::NewMember));
        assert_eq!(p.count(), 2);
        assert!(!p.leave("u1", s(1)), "u1 still has a connection");
        assert!(!p.leave("u1", s(1)), "a repeated leave changes nothing");
        assert!(p.leave("u1", s(2)));
        assert!(!p.leave("u1", s(2)), "already gone");
        assert_eq!(p.members().map(|(id, _)| id).collect::<Vec<_>>(), vec!["u2"]);
    }

    #[test]
    fn member_limit_applies_to_new_users_only() {
        let mut p = Presence::default();
        p.join("a", s(1), None, 2).expect("a");
        p.join("b", s(2), None, 2).expect("b");
        assert_eq!(p.join("c", s(3), None, 2), Err(2));
        assert_eq!(p.join("a", s(4), None, 2), Ok(Joined::SameMember));
    }

    #[test]
    fn snapshot_has_ids_hash_and_count() {
        let mut p = Presence::default();
        p.join("7", s(1), Some(r#"{"name":"Seven"}"#), 100).expect("join");
        p.join("8", s(2), None, 100).expect("join");
        let v: serde_json::Value = serde_json::from_str(&p.snapshot_json()).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"presence": {"ids": ["7", "8"], "hash": {"7": {"name": "Seven"}, "8": null}, "count": 2}})
        );
    }
}
