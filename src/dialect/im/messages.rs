//! What IM shards say to each other, inside the engine's envelopes: a connection registering
//! with (and leaving) its user's home shard, questions to homes about the connections that
//! match a filter (to push to, kick or list them), notice work on a user's or conversation's
//! home, and the wake-up of the delayed-request scheduler on shard 0.

use super::pb::{ConnParam, NoticeData};
use crate::engine::addr::ConnAddr;
use bytes::Bytes;

/// Which connections: the AND of the non-empty lists (all connections when all are empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub user_ids: Vec<String>,
    pub platforms: Vec<String>,
    pub devices: Vec<String>,
}

impl Filter {
    /// Whether a registered connection of a user passes the platform and device lists.
    pub fn admits(&self, param: &ConnParam) -> bool {
        (self.platforms.is_empty() || self.platforms.contains(&param.platform))
            && (self.devices.is_empty() || self.devices.contains(&param.device_id))
    }
}

/// What to do with the matching connections.
#[derive(Debug, Clone)]
pub enum Action {
    /// Queue this (encoded WebSocket) frame on each.
    Send(Bytes),
    /// Close each with 1001 "kick".
    Kick,
    /// Only list them.
    List,
}

/// How a home lists the connections it matched: encoded there, from its own table, so an
/// answer naming 10,000 connections costs no copy of their parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Only count them.
    Count,
    /// `ConnParam`s as repeated field 2 (`SendMsgResp.successConnParams`,
    /// `GetUserConnResp.connParams`).
    Proto,
    /// `ConnParam` JSON objects separated by commas.
    Json,
}

/// A message that needs no answer.
#[derive(Debug)]
pub enum Tell {
    /// User's home: a connection of `user` opened at `connected_ms` (closing an older one of
    /// the same device).
    Register { user: String, addr: ConnAddr, param: Box<ConnParam>, connected_ms: u64 },
    /// User's home: that connection is gone.
    Unregister { user: String, addr: ConnAddr },
    /// Users' home: push the next notice to these users' connections.
    Wake { users: Vec<String> },
    /// Shard 0: a delayed request was stored; look at the schedule again.
    Delayed,
}

/// A question to one shard.
#[derive(Debug, Clone)]
pub enum Question {
    /// Homes: the connections of users homed here that match, and `action` applied to them.
    Match { filter: Filter, action: Action, format: Format },
    /// User's home: a device acknowledged a notice; whether its cursor moved.
    Ack { user: String, device: String, conv: String, notice_id: String },
    /// Conversation's home: store a notice (upsert by conversation and id) and push it.
    AddNotice { notice: NoticeData, user: Option<String> },
}

/// The answer to a [`Question`].
#[derive(Debug, Clone)]
pub enum Reply {
    /// How many connections matched, their list (as asked), and the listed users homed here
    /// that have none.
    Matched {
        count: usize,
        list: Vec<u8>,
        missing: Vec<String>,
    },
    Done(Result<bool, String>),
}
