//! What Pusher shards say to each other, carried inside the engine's envelopes: questions to a
//! channel's (or user's) home shard and their answers, and notices that need none.

use crate::engine::{addr::ConnAddr, conn::ConnKey};

/// A cache channel's last event: (event, data, seconds left to live, wall clock microseconds
/// when stored).
pub type CachedEvent = (String, String, u64, u64);

/// A question to one shard (often a channel's home shard).
#[derive(Debug, Clone)]
pub enum Question {
    /// Channels of `app` with local subscribers (and presence channels homed here) by prefix.
    Channels { app: u16, prefix: String },
    /// Local subscribers of one channel.
    Subscribers { app: u16, channel: String },
    /// Home: a connection of `user_id` joins a presence channel.
    Join { app: u16, channel: String, user_id: String, member: ConnAddr, user_info: Option<String> },
    /// Home: member ids of a presence channel.
    Members { app: u16, channel: String },
    /// Home: the cached last event of a cache channel.
    Cache { app: u16, channel: String },
    /// Home: `shard` is about to hold `channel` (counted for `max_channels_per_app`).
    Claim { app: u16, channel: String, shard: u16 },
}

/// The answer to a [`Question`].
#[derive(Debug, Clone)]
pub enum Reply {
    Channels {
        local: Vec<(String, u64)>,
        presence: Vec<(String, u64)>,
    },
    Count(u64),
    /// The presence snapshot for `subscription_succeeded`, or why the join was refused.
    Joined(Result<String, String>),
    Members(Vec<String>),
    /// (event, data, seconds left to live).
    /// A cache channel's last event: (event, data, seconds left to live, stored at us).
    Cache(Option<CachedEvent>),
    /// The claim is counted, or the app has its `max_channels_per_app` (the limit).
    Claimed(Result<(), usize>),
}

/// A message that needs no answer.
#[derive(Debug, Clone)]
pub enum Tell {
    /// Home: a connection of `user_id` left a presence channel.
    Leave { app: u16, channel: String, user_id: String, member: ConnAddr },
    /// Home: the last event of a cache channel.
    CacheSet { app: u16, channel: String, event: String, data: String },
    /// Home: a shard's subscribers of a channel changed by `delta`.
    CountChange { app: u16, channel: String, delta: i64 },
    /// Home: `shard` holds `channel` no more (its last local subscriber left).
    Release { app: u16, channel: String, shard: u16 },
    /// Every shard: close the connections signed in as `user_id`.
    Terminate { app: u16, user_id: String },
    /// A user's home: one of the user's connections signed in (`delta` 1) or went (-1).
    Session { app: u16, user_id: String, delta: i64 },
    /// A user's home: connection `conn` on `shard` starts (1) or stops (-1) watching `users`.
    Watch { app: u16, shard: usize, conn: ConnKey, users: Vec<String>, delta: i32 },
}
