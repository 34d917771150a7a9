//! A connection as the shard sees it: its slab entry (identity, subscriptions, outbound queue,
//! the waker of its task) and the task that drives its socket (`driver`).

pub mod driver;
pub mod identity;
pub mod queue;
pub mod sys;

use crate::error::CloseCode;
use queue::Outbound;
use std::{fmt, task::Waker};

/// A slab index plus a generation, so a stale key never reaches a reused slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    index: u32,
    generation: u32,
}

impl ConnKey {
    pub fn new(index: usize, generation: u32) -> ConnKey {
        ConnKey { index: index as u32, generation }
    }

    pub fn index(self) -> usize {
        self.index as usize
    }

    pub fn generation(self) -> u32 {
        self.generation
    }
}

/// A Pusher socket id, `high.low`: `high` is random per shard and process, `low` is
/// `sequence * nr_shards + shard_id`, so ids are unique across shards and name their shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId {
    pub high: u32,
    pub low: u64,
}

impl SocketId {
    /// Parses `\d+\.\d+`, the only form the SDKs accept.
    pub fn parse(text: &str) -> Option<SocketId> {
        let (high, low) = text.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(high) || !digits(low) {
            return None;
        }
        Some(SocketId { high: high.parse().ok()?, low: low.parse().ok()? })
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.high, self.low)
    }
}

/// What the shard keeps per connection. Kept small: idle connections are most of them.
#[derive(Debug)]
pub struct ConnEntry {
    pub generation: u32,
    pub app: u16,
    pub socket_id: SocketId,
    pub out: Outbound,
    /// The connection task's waker, taken by whoever queues a frame or asks it to close.
    pub waker: Option<Waker>,
    /// Set when the server decides to close this connection.
    pub closing: Option<CloseCode>,
    /// (topic, position in that topic's subscriber list).
    pub subscriptions: Vec<(u32, u32)>,
    /// Shard clock second of the last inbound bytes.
    pub last_seen: u32,
    /// Shard clock second a server ping was sent and not yet answered (0: none).
    pub ping_sent: u32,
    /// Shard clock second the sweeper first saw this connection closing (0: not yet).
    pub close_seen: u32,
    /// The close took too long (the client does not read): drop the socket.
    pub abandoned: bool,
    /// Shard clock second the connection opened.
    pub opened: u32,
    /// It signed in (`pusher:signin`).
    pub signed_in: bool,
    /// Client events: the second of the current rate window and the count in it.
    pub events_second: u32,
    pub events_in_second: u16,
}

impl ConnEntry {
    pub fn new(generation: u32, app: u16, socket_id: SocketId, now: u32) -> ConnEntry {
        ConnEntry {
            generation,
            app,
            socket_id,
            out: Outbound::default(),
            waker: None,
            closing: None,
            subscriptions: Vec::new(),
            last_seen: now,
            ping_sent: 0,
            close_seen: 0,
            abandoned: false,
            opened: now,
            signed_in: false,
            events_second: 0,
            events_in_second: 0,
        }
    }

    /// Wakes the connection's task so it writes or closes.
    pub fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Counts a client event; false when it passes `per_second` in the current second.
    pub fn allow_client_event(&mut self, now: u32, per_second: u32) -> bool {
        if self.events_second != now {
            self.events_second = now;
            self.events_in_second = 0;
        }
        self.events_in_second = self.events_in_second.saturating_add(1);
        u32::from(self.events_in_second) <= per_second
    }

    /// Asks the connection to close with `code` (the first reason wins).
    pub fn close(&mut self, code: CloseCode) {
        if self.closing.is_none() {
            self.closing = Some(code);
        }
        self.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection pays for its slab entry; at a million connections each 8 bytes is 8 MB.
    #[test]
    fn a_connection_entry_fits_in_128_bytes() {
        assert!(std::mem::size_of::<ConnEntry>() <= 128, "{}", std::mem::size_of::<ConnEntry>());
    }

    #[test]
    fn the_client_event_window_counts_per_second_and_saturates() {
        let mut conn = ConnEntry::new(0, 0, SocketId { high: 1, low: 1 }, 5);
        assert!((0..3).all(|_| conn.allow_client_event(5, 3)));
        assert!(!conn.allow_client_event(5, 3), "the fourth in one second");
        assert!(conn.allow_client_event(6, 3), "a new second");
        for _ in 0..70_000 {
            conn.allow_client_event(7, u32::MAX);
        }
        assert!(conn.allow_client_event(7, u32::MAX), "a huge limit is never passed");
    }
}
