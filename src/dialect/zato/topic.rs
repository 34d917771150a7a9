//! A topic on its home shard: its settings, its subscriptions, the GD messages waiting for its
//! first subscriber (the backlog), how many queue entries hold each message (so a GD message
//! leaves the store with its last entry) and the depth counts its limits are checked against.

use super::{
    error::ZatoError,
    message::{Msg, OrderKey},
};
use crate::config::zato::TopicConfig;
use ahash::AHashMap;
use std::{collections::BTreeMap, rc::Rc};

/// One topic homed on this shard.
pub struct TopicState {
    pub config: TopicConfig,
    /// Made through the admin API (kept in the store), not named by the config.
    pub runtime: bool,
    /// Its subscriptions' keys, oldest first.
    pub subs: Vec<String>,
    /// GD messages published while it had no subscription, in delivery order.
    pub backlog: BTreeMap<OrderKey, Rc<Msg>>,
    /// Queue and backlog entries holding each message (by uid).
    refs: AHashMap<u64, u32>,
    /// Distinct messages held, GD and in-RAM.
    held_gd: u64,
    held_non_gd: u64,
    /// GD publications waiting for their commit (counted against the depth).
    pub pending_gd: u64,
    /// Publications so far, for `depth_check_freq`.
    published_gd: u64,
    published_non_gd: u64,
}

impl TopicState {
    pub fn new(config: TopicConfig, runtime: bool) -> TopicState {
        TopicState {
            config,
            runtime,
            subs: Vec::new(),
            backlog: BTreeMap::new(),
            refs: AHashMap::new(),
            held_gd: 0,
            held_non_gd: 0,
            pending_gd: 0,
            published_gd: 0,
            published_non_gd: 0,
        }
    }

    /// Counts `entries` more holders of `msg`.
    pub fn hold(&mut self, msg: &Msg, entries: u32) {
        if entries == 0 {
            return;
        }
        let count = self.refs.entry(msg.uid).or_insert(0);
        if *count == 0 {
            if msg.has_gd {
                self.held_gd += 1;
            } else {
                self.held_non_gd += 1;
            }
        }
        *count += entries;
    }

    /// One holder of `msg` is gone; true when it was the last (a GD message then leaves the
    /// store).
    pub fn release(&mut self, msg: &Msg) -> bool {
        let Some(count) = self.refs.get_mut(&msg.uid) else { return false };
        *count = count.saturating_sub(1);
        if *count > 0 {
            return false;
        }
        self.refs.remove(&msg.uid);
        if msg.has_gd {
            self.held_gd = self.held_gd.saturating_sub(1);
        } else {
            self.held_non_gd = self.held_non_gd.saturating_sub(1);
        }
        true
    }

    /// Holders of the message with this uid.
    pub fn holders(&self, uid: u64) -> u32 {
        self.refs.get(&uid).copied().unwrap_or(0)
    }

    /// (GD, in-RAM) messages held now.
    pub fn depth(&self) -> (u64, u64) {
        (self.held_gd + self.pending_gd, self.held_non_gd)
    }

    /// Counts a publication and, on one in `depth_check_freq`, refuses it when it would take
    /// the topic past its maximum depth (Zato's check and text).
    pub fn admit(&mut self, gd: bool) -> Result<(), ZatoError> {
        let (counter, depth, max) = if gd {
            self.published_gd += 1;
            (self.published_gd, self.held_gd + self.pending_gd, self.config.max_depth_gd)
        } else {
            self.published_non_gd += 1;
            (self.published_non_gd, self.held_non_gd, self.config.max_depth_non_gd)
        };
        if counter % self.config.depth_check_freq.max(1) == 0 && depth + 1 > max {
            return Err(ZatoError::unavailable(format!(
                "Publication rejected - would exceed {} max depth for `{}`",
                if gd { "GD" } else { "non-GD" },
                self.config.name
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::zato::message::sample;

    #[test]
    fn depth_counts_messages_once_and_checks_every_nth_publication() {
        let config = TopicConfig {
            name: "/t".into(),
            max_depth_non_gd: 2,
            depth_check_freq: 2,
            ..TopicConfig::default()
        };
        let mut topic = TopicState::new(config, false);
        let (a, b) = (sample(5, 1, None, 1), sample(5, 2, None, 2));
        topic.hold(&a, 3);
        topic.hold(&b, 1);
        assert_eq!(topic.depth(), (0, 2));
        assert!(topic.admit(false).is_ok(), "first of two is not checked");
        let refused = topic.admit(false).expect_err("second is checked and over");
        assert!(refused.details.contains("non-GD max depth"), "{refused}");
        assert!(!topic.release(&a) && !topic.release(&a));
        assert!(topic.release(&a), "the third release is the last");
        assert_eq!(topic.depth(), (0, 1));
        assert!(!topic.release(&a), "released twice too many is ignored");
    }
}
