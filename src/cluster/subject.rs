//! Subjects: `{prefix}.t.{ns}.{topic}` for a topic's publications, `{prefix}.b.{tag}` for a
//! dialect's broadcasts, `{prefix}.q.{tag}` for its questions, `{prefix}.hb` for heartbeats.
//! Namespace and topic names can hold any character (NATS subjects cannot hold `.`, `*`, `>`
//! or spaces), so they travel as base64url tokens; namespaces by name, not by number, since
//! nodes may number them differently.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

/// The subjects of one cluster.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    pub fn new(prefix: &str) -> Subjects {
        Subjects { prefix: prefix.to_string() }
    }

    pub fn topic(&self, ns: &str, topic: &str) -> String {
        format!("{}.t.{}.{}", self.prefix, token(ns), token(topic))
    }

    pub fn broadcast(&self, tag: u8) -> String {
        format!("{}.b.{tag}", self.prefix)
    }

    pub fn question(&self, tag: u8) -> String {
        format!("{}.q.{tag}", self.prefix)
    }

    pub fn heartbeat(&self) -> String {
        format!("{}.hb", self.prefix)
    }

    /// Every broadcast subject, for one subscription.
    pub fn all_broadcasts(&self) -> String {
        format!("{}.b.*", self.prefix)
    }

    /// Every question subject, for one subscription.
    pub fn all_questions(&self) -> String {
        format!("{}.q.*", self.prefix)
    }

    /// The dialect tag of a broadcast or question subject.
    pub fn tag_of(subject: &str) -> Option<u8> {
        subject.rsplit('.').next()?.parse().ok()
    }
}

fn token(name: &str) -> String {
    if name.is_empty() {
        // An empty token is not a valid subject part.
        return "_".into();
    }
    URL_SAFE_NO_PAD.encode(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_valid_tokens() {
        let s = Subjects::new("pg");
        let subject = s.topic("app:app-id", "a.b c*>");
        assert!(subject.starts_with("pg.t."));
        let parts: Vec<&str> = subject.split('.').collect();
        assert_eq!(parts.len(), 4, "{subject}");
        assert!(parts.iter().all(|p| !p.is_empty() && !p.contains([' ', '*', '>'])));
        assert_ne!(s.topic("a", "x"), s.topic("a", "y"));
        assert_ne!(s.topic("a", "x"), s.topic("b", "x"));
        assert_eq!(Subjects::tag_of(&s.broadcast(3)), Some(3));
        assert_eq!(s.topic("a", ""), "pg.t.YQ._");
    }
}
