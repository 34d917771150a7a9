//! Who a connection is, for the few that say: the user it signed in as, and the user it is on
//! each presence channel. Kept beside the slab, not in it, so anonymous connections pay nothing.

use crate::engine::conn::ConnKey;
use ahash::AHashMap;

/// What a connection has told us about itself.
#[derive(Debug, Default)]
pub struct Identity {
    /// The signed-in user (`pusher:signin`).
    pub user_id: Option<Box<str>>,
    /// The users it watches (its sign-in's `watchlist`, at most 100), when watchlist events
    /// are on.
    pub watchlist: Vec<String>,
    /// (presence channel, user id on it).
    pub presence: Vec<(Box<str>, Box<str>)>,
}

/// Identities of this shard's connections, and connections by signed-in user.
#[derive(Debug, Default)]
pub struct Identities {
    by_conn: AHashMap<ConnKey, Identity>,
    by_user: AHashMap<(u16, Box<str>), Vec<ConnKey>>,
}

impl Identities {
    /// Records a sign-in. A second sign-in replaces the first; returns the one replaced (its
    /// user and watchlist).
    pub fn sign_in(
        &mut self,
        app: u16,
        key: ConnKey,
        user_id: &str,
        watchlist: Vec<String>,
    ) -> Option<(Box<str>, Vec<String>)> {
        let identity = self.by_conn.entry(key).or_default();
        let old_watchlist = std::mem::replace(&mut identity.watchlist, watchlist);
        let old = identity.user_id.replace(user_id.into());
        if let Some(old) = &old {
            Self::unlink(&mut self.by_user, app, old, key);
        }
        self.by_user.entry((app, user_id.into())).or_default().push(key);
        old.map(|user| (user, old_watchlist))
    }

    /// The user a connection signed in as.
    pub fn user(&self, key: ConnKey) -> Option<&str> {
        self.by_conn.get(&key)?.user_id.as_deref()
    }

    /// Connections signed in as `user_id`.
    pub fn conns_of(&self, app: u16, user_id: &str) -> Vec<ConnKey> {
        self.by_user.get(&(app, user_id.into())).cloned().unwrap_or_default()
    }

    pub fn add_presence(&mut self, key: ConnKey, channel: &str, user_id: &str) {
        self.by_conn.entry(key).or_default().presence.push((channel.into(), user_id.into()));
    }

    /// The user a connection is on a presence channel.
    pub fn presence_user(&self, key: ConnKey, channel: &str) -> Option<&str> {
        let identity = self.by_conn.get(&key)?;
        identity.presence.iter().find(|(c, _)| &**c == channel).map(|(_, u)| &**u)
    }

    /// Forgets a presence membership; returns the user it was.
    pub fn remove_presence(&mut self, key: ConnKey, channel: &str) -> Option<Box<str>> {
        let identity = self.by_conn.get_mut(&key)?;
        let at = identity.presence.iter().position(|(c, _)| &**c == channel)?;
        let (_, user) = identity.presence.swap_remove(at);
        if identity.user_id.is_none() && identity.presence.is_empty() {
            self.by_conn.remove(&key);
        }
        Some(user)
    }

    /// Forgets a closed connection; returns what it was.
    pub fn remove(&mut self, app: u16, key: ConnKey) -> Option<Identity> {
        let identity = self.by_conn.remove(&key)?;
        if let Some(user) = &identity.user_id {
            Self::unlink(&mut self.by_user, app, user, key);
        }
        Some(identity)
    }

    fn unlink(
        by_user: &mut AHashMap<(u16, Box<str>), Vec<ConnKey>>,
        app: u16,
        user: &str,
        key: ConnKey,
    ) {
        let slot = (app, Box::<str>::from(user));
        if let Some(keys) = by_user.get_mut(&slot) {
            keys.retain(|k| *k != key);
            if keys.is_empty() {
                by_user.remove(&slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_presence_and_removal() {
        let mut ids = Identities::default();
        let a = ConnKey::new(1, 0);
        let b = ConnKey::new(2, 0);
        assert!(ids.sign_in(0, a, "u1", vec![]).is_none());
        assert!(ids.sign_in(0, b, "u0", vec!["w".into()]).is_none());
        let replaced = ids.sign_in(0, b, "u1", vec![]);
        assert_eq!(replaced, Some(("u0".into(), vec!["w".to_string()])));
        assert!(ids.conns_of(0, "u0").is_empty());
        assert_eq!(ids.user(a), Some("u1"));
        assert_eq!(ids.conns_of(0, "u1"), vec![a, b]);
        assert!(ids.conns_of(1, "u1").is_empty(), "per app");
        ids.add_presence(a, "presence-r", "u9");
        assert_eq!(ids.presence_user(a, "presence-r"), Some("u9"));
        let gone = ids.remove(0, a).expect("known");
        assert_eq!(gone.presence.len(), 1);
        assert_eq!(ids.conns_of(0, "u1"), vec![b]);
        ids.add_presence(b, "presence-s", "u1");
        assert_eq!(ids.remove_presence(b, "presence-s").as_deref(), Some("u1"));
        assert_eq!(ids.user(b), Some("u1"));
    }
}
