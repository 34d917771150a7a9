//! Cluster mode: what the other nodes hold of the Pusher state that must be exact cluster-wide,
//! kept on the home shard of each channel (or user) on this node. Each piece comes from a
//! source, a node and the shard there that homes it; a source's pieces are replaced whole by
//! its snapshot and dropped whole when its node goes. Pure state: the glue (`cluster`) decides
//! what each change means together with this node's own state.

use ahash::AHashMap;
use std::sync::Arc;

/// Where replicated state comes from: a node and its shard that homes the channel or user.
pub type Source = (Arc<str>, u16);

/// A channel or a user of an app.
type Key = (u16, Box<str>);

/// A user present on a channel on other nodes.
#[derive(Debug, Default)]
struct Remote {
    info: Option<Box<str>>,
    sources: Vec<Source>,
}

/// Everything a source says, as its snapshot carries it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// (app, channel, user, user_info).
    pub members: Vec<(u16, String, String, Option<String>)>,
    /// (app, channel, subscribers there).
    pub counts: Vec<(u16, String, u64)>,
    /// (app, user) signed in there.
    pub sessions: Vec<(u16, String)>,
}

/// What a change did to the other nodes' side of the state.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Transitions {
    /// (app, channel, user, present on some other node now) for users whose remote presence
    /// appeared or vanished.
    pub members: Vec<(u16, String, String, bool)>,
    /// (app, channel, remote subscribers before, after).
    pub counts: Vec<(u16, String, u64, u64)>,
    /// (app, user, signed in on some other node now).
    pub sessions: Vec<(u16, String, bool)>,
}

/// The other nodes' presence members, subscriber counts and sessions homed here.
#[derive(Debug, Default)]
pub struct Replica {
    members: AHashMap<Key, AHashMap<Box<str>, Remote>>,
    counts: AHashMap<Key, AHashMap<Source, u64>>,
    sessions: AHashMap<Key, Vec<Source>>,
}

impl Replica {
    /// `user` is present on `channel` at `source` now, or no longer. Returns whether the user's
    /// presence on other nodes appeared or vanished with it.
    pub fn member(
        &mut self,
        app: u16,
        channel: &str,
        user: &str,
        info: Option<&str>,
        source: &Source,
        present: bool,
    ) -> bool {
        let key = (app, Box::<str>::from(channel));
        let users = self.members.entry(key.clone()).or_default();
        let remote = users.entry(user.into()).or_default();
        let before = !remote.sources.is_empty();
        if present {
            if !remote.sources.contains(source) {
                remote.sources.push(source.clone());
            }
            if info.is_some() {
                remote.info = info.map(Into::into);
            }
        } else {
            remote.sources.retain(|s| s != source);
        }
        let after = !remote.sources.is_empty();
        if !after {
            users.remove(user);
            if users.is_empty() {
                self.members.remove(&key);
            }
        }
        before != after
    }

    /// Whether `user` is present on `channel` on some other node, and its info there.
    pub fn member_info(&self, app: u16, channel: &str, user: &str) -> Option<Option<&str>> {
        let users = self.members.get(&(app, channel.into()))?;
        users.get(user).map(|r| r.info.as_deref())
    }

    /// Users present on `channel` on other nodes, with their info.
    pub fn members(&self, app: u16, channel: &str) -> Vec<(&str, Option<&str>)> {
        self.members
            .get(&(app, channel.into()))
            .map(|users| users.iter().map(|(u, r)| (&**u, r.info.as_deref())).collect())
            .unwrap_or_default()
    }

    /// Presence channels of `app` with members on other nodes, whose name starts with `prefix`.
    pub fn presence_channels(&self, app: u16, prefix: &str) -> Vec<&str> {
        self.members
            .keys()
            .filter(|(a, c)| *a == app && c.starts_with(prefix))
            .map(|(_, c)| &**c)
            .collect()
    }

    /// `source` has `count` subscribers of `channel`; returns the other nodes' total before and
    /// after.
    pub fn count(&mut self, app: u16, channel: &str, source: &Source, count: u64) -> (u64, u64) {
        let key = (app, Box::<str>::from(channel));
        let before = self.count_of(app, channel);
        let sources = self.counts.entry(key.clone()).or_default();
        if count == 0 {
            sources.remove(source);
            if sources.is_empty() {
                self.counts.remove(&key);
            }
        } else {
            sources.insert(source.clone(), count);
        }
        (before, self.count_of(app, channel))
    }

    /// Subscribers of `channel` on the other nodes.
    pub fn count_of(&self, app: u16, channel: &str) -> u64 {
        self.counts.get(&(app, channel.into())).map_or(0, |s| s.values().sum())
    }

    /// `user` is signed in at `source` now, or no longer; returns whether the user's being
    /// signed in on some other node changed.
    pub fn session(&mut self, app: u16, user: &str, source: &Source, online: bool) -> bool {
        let key = (app, Box::<str>::from(user));
        let sources = self.sessions.entry(key.clone()).or_default();
        let before = !sources.is_empty();
        if online {
            if !sources.contains(source) {
                sources.push(source.clone());
            }
        } else {
            sources.retain(|s| s != source);
        }
        let after = !sources.is_empty();
        if !after {
            self.sessions.remove(&key);
        }
        before != after
    }

    /// Whether `user` is signed in on some other node.
    pub fn is_online(&self, app: u16, user: &str) -> bool {
        self.sessions.contains_key(&(app, user.into()))
    }

    /// Replaces what `source` said (of what `homed` says is homed here) with its snapshot.
    pub fn replace(
        &mut self,
        source: &Source,
        snapshot: &Snapshot,
        homed: impl Fn(u16, &str) -> bool,
    ) -> Transitions {
        let mut out = self.forget(|s| s == source, &homed);
        for (app, channel, user, info) in &snapshot.members {
            if homed(*app, channel)
                && self.member(*app, channel, user, info.as_deref(), source, true)
            {
                out.members.push((*app, channel.clone(), user.clone(), true));
            }
        }
        for (app, channel, count) in &snapshot.counts {
            if homed(*app, channel) {
                let (before, after) = self.count(*app, channel, source, *count);
                out.counts.push((*app, channel.clone(), before, after));
            }
        }
        for (app, user) in &snapshot.sessions {
            if homed(*app, user) && self.session(*app, user, source, true) {
                out.sessions.push((*app, user.clone(), true));
            }
        }
        normalize(out)
    }

    /// Drops everything node `node` said (it is gone).
    pub fn drop_node(&mut self, node: &str) -> Transitions {
        normalize(self.forget(|s| &*s.0 == node, &|_, _| true))
    }

    /// Drops what node `node` said through its shards numbered `shards` and above (it has
    /// fewer shards now).
    pub fn drop_shards(&mut self, node: &str, shards: u16) -> Transitions {
        normalize(self.forget(|s| &*s.0 == node && s.1 >= shards, &|_, _| true))
    }

    /// Removes every piece from sources `from` (of what is homed here).
    fn forget(
        &mut self,
        from: impl Fn(&Source) -> bool,
        homed: &impl Fn(u16, &str) -> bool,
    ) -> Transitions {
        let mut out = Transitions::default();
        let member_keys: Vec<(Key, Box<str>, Source)> = self
            .members
            .iter()
            .filter(|((app, channel), _)| homed(*app, channel))
            .flat_map(|(key, users)| {
                users.iter().flat_map(move |(user, remote)| {
                    remote.sources.iter().map(move |s| (key.clone(), user.clone(), s.clone()))
                })
            })
            .filter(|(_, _, s)| from(s))
            .collect();
        for ((app, channel), user, source) in member_keys {
            if self.member(app, &channel, &user, None, &source, false) {
                out.members.push((app, channel.to_string(), user.to_string(), false));
            }
        }
        let count_keys: Vec<(Key, Source)> = self
            .counts
            .iter()
            .filter(|((app, channel), _)| homed(*app, channel))
            .flat_map(|(key, sources)| sources.keys().map(move |s| (key.clone(), s.clone())))
            .filter(|(_, s)| from(s))
            .collect();
        for ((app, channel), source) in count_keys {
            let (before, after) = self.count(app, &channel, &source, 0);
            out.counts.push((app, channel.to_string(), before, after));
        }
        let session_keys: Vec<(Key, Source)> = self
            .sessions
            .iter()
            .filter(|((app, user), _)| homed(*app, user))
            .flat_map(|(key, sources)| sources.iter().map(move |s| (key.clone(), s.clone())))
            .filter(|(_, s)| from(s))
            .collect();
        for ((app, user), source) in session_keys {
            if self.session(app, &user, &source, false) {
                out.sessions.push((app, user.to_string(), false));
            }
        }
        out
    }
}

/// Collapses a removal followed by a re-addition of the same piece into nothing, and keeps
/// one count transition per channel (first before, last after).
fn normalize(t: Transitions) -> Transitions {
    let mut members: Vec<(u16, String, String, bool)> = Vec::new();
    for m in t.members {
        match members.iter().position(|x| x.0 == m.0 && x.1 == m.1 && x.2 == m.2) {
            Some(i) => {
                members.remove(i);
            }
            None => members.push(m),
        }
    }
    let mut counts: Vec<(u16, String, u64, u64)> = Vec::new();
    for c in t.counts {
        match counts.iter_mut().find(|x| x.0 == c.0 && x.1 == c.1) {
            Some(x) => x.3 = c.3,
            None => counts.push(c),
        }
    }
    counts.retain(|c| c.2 != c.3);
    let mut sessions: Vec<(u16, String, bool)> = Vec::new();
    for s in t.sessions {
        match sessions.iter().position(|x| x.0 == s.0 && x.1 == s.1) {
            Some(i) => {
                sessions.remove(i);
            }
            None => sessions.push(s),
        }
    }
    Transitions { members, counts, sessions }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(node: &str, shard: u16) -> Source {
        (node.into(), shard)
    }

    #[test]
    fn a_member_is_present_while_any_source_has_it() {
        let mut r = Replica::default();
        assert!(r.member(0, "presence-a", "u1", Some("{}"), &src("b", 0), true));
        assert!(!r.member(0, "presence-a", "u1", None, &src("c", 1), true));
        assert_eq!(r.member_info(0, "presence-a", "u1"), Some(Some("{}")));
        assert!(!r.member(0, "presence-a", "u1", None, &src("b", 0), false));
        assert!(r.member(0, "presence-a", "u1", None, &src("c", 1), false));
        assert_eq!(r.member_info(0, "presence-a", "u1"), None);
        assert!(r.members(0, "presence-a").is_empty());
    }

    #[test]
    fn counts_and_sessions_sum_over_sources() {
        let mut r = Replica::default();
        assert_eq!(r.count(0, "c", &src("b", 0), 3), (0, 3));
        assert_eq!(r.count(0, "c", &src("c", 0), 2), (3, 5));
        assert_eq!(r.count(0, "c", &src("b", 0), 0), (5, 2));
        assert!(r.session(0, "u", &src("b", 0), true));
        assert!(!r.session(0, "u", &src("c", 0), true));
        assert!(r.is_online(0, "u"));
    }

    #[test]
    fn a_gone_node_takes_everything_it_said() {
        let mut r = Replica::default();
        r.member(0, "presence-a", "u1", None, &src("b", 0), true);
        r.member(0, "presence-a", "u2", None, &src("b", 1), true);
        r.member(0, "presence-a", "u2", None, &src("c", 0), true);
        r.count(0, "c", &src("b", 0), 4);
        r.session(0, "u1", &src("b", 0), true);
        let t = r.drop_node("b");
        assert_eq!(t.members, vec![(0, "presence-a".into(), "u1".into(), false)]);
        assert_eq!(t.counts, vec![(0, "c".into(), 4, 0)]);
        assert_eq!(t.sessions, vec![(0, "u1".into(), false)]);
        assert_eq!(r.members(0, "presence-a").len(), 1, "u2 stays: node c has it too");
    }

    #[test]
    fn a_snapshot_replaces_its_source_and_reports_only_real_changes() {
        let mut r = Replica::default();
        let b = src("b", 0);
        r.member(0, "presence-a", "u1", None, &b, true);
        r.member(0, "presence-a", "gone", None, &b, true);
        r.count(0, "c", &b, 1);
        let snapshot = Snapshot {
            members: vec![
                (0, "presence-a".into(), "u1".into(), None),
                (0, "presence-a".into(), "new".into(), None),
            ],
            counts: vec![(0, "c".into(), 1)],
            sessions: vec![],
        };
        let t = r.replace(&b, &snapshot, |_, _| true);
        let mut members = t.members.clone();
        members.sort();
        assert_eq!(
            members,
            vec![
                (0, "presence-a".into(), "gone".into(), false),
                (0, "presence-a".into(), "new".into(), true)
            ]
        );
        assert!(t.counts.is_empty(), "the count did not change");
    }
}
