//! A connection as the shard sees it: its slab entry (namespace, dialect tag, subscriptions,
//! outbound queue, the waker of its task) and the task that drives its socket (`driver`), over
//! a plain or TLS `transport`.
//! Nothing here belongs to a protocol: what a dialect knows about a connection lives in the
//! dialect's own side tables, keyed by [`ConnKey`].

pub mod driver;
pub mod queue;
pub mod sys;
pub mod tls;
pub mod transport;

use queue::Outbound;
use std::{borrow::Cow, task::Waker};

/// A slab index plus a generation, so a stale key never reaches a reused slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// Which dialect drives a connection: its index in the shard's dialect table.
pub type DialectTag = u8;

/// A WebSocket close: the code and the reason sent with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: Cow<'static, str>,
}

impl Close {
    /// 1000: the client closed, we answer in kind.
    pub const NORMAL: Close = Close::fixed(1000, "Bye");
    /// 1002: the peer broke the WebSocket framing rules.
    pub const PROTOCOL_ERROR: Close = Close::fixed(1002, "Protocol error");
    /// 1007: a text message that is not UTF-8.
    pub const INVALID_DATA: Close = Close::fixed(1007, "Invalid UTF-8");
    /// 1008: a frame or fragmented message left unfinished past `message_assembly_timeout_secs`.
    pub const ASSEMBLY_TIMEOUT: Close = Close::fixed(1008, "Message not completed in time");
    /// 1009: a message larger than `max_message_bytes`.
    pub const TOO_BIG: Close = Close::fixed(1009, "Message too big");

    pub const fn fixed(code: u16, reason: &'static str) -> Close {
        Close { code, reason: Cow::Borrowed(reason) }
    }
}

/// What the shard keeps per connection. Kept small: idle connections are most of them.
#[derive(Debug)]
pub struct ConnEntry {
    pub generation: u32,
    /// The namespace its topics live in (a Pusher app, a gateway, a tenant).
    pub ns: u16,
    /// The dialect that speaks to it.
    pub tag: DialectTag,
    /// The close took too long (the client does not read): drop the socket.
    pub abandoned: bool,
    pub out: Outbound,
    /// The connection task's waker, taken by whoever queues a frame or asks it to close.
    pub waker: Option<Waker>,
    /// Set when the server decides to close this connection (boxed: few connections close at
    /// once, and every idle one pays for this field).
    pub closing: Option<Box<Close>>,
    /// (topic, position in that topic's subscriber list).
    pub subscriptions: Vec<(u32, u32)>,
    /// Shard clock second of the last inbound bytes.
    pub last_seen: u32,
    /// Shard clock second a server ping was sent and not yet answered (0: none).
    pub ping_sent: u32,
    /// Shard clock second the sweeper first saw this connection closing (0: not yet).
    pub close_seen: u32,
    /// Shard clock second the connection opened.
    pub opened: u32,
}

impl ConnEntry {
    pub fn new(generation: u32, ns: u16, tag: DialectTag, now: u32) -> ConnEntry {
        ConnEntry {
            generation,
            ns,
            tag,
            abandoned: false,
            out: Outbound::default(),
            waker: None,
            closing: None,
            subscriptions: Vec::new(),
            last_seen: now,
            ping_sent: 0,
            close_seen: 0,
            opened: now,
        }
    }

    /// Wakes the connection's task so it writes or closes.
    pub fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Asks the connection to close with `close` (the first reason wins).
    pub fn close(&mut self, close: Close) {
        if self.closing.is_none() {
            self.closing = Some(Box::new(close));
        }
        self.wake();
    }

    /// The close code it is closing with, if it is.
    pub fn close_code(&self) -> Option<u16> {
        self.closing.as_ref().map(|c| c.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection pays for its slab entry; at a million connections each 8 bytes is 8 MB.
    #[test]
    fn a_connection_entry_fits_in_112_bytes() {
        assert!(std::mem::size_of::<ConnEntry>() <= 112, "{}", std::mem::size_of::<ConnEntry>());
    }

    #[test]
    fn the_first_close_reason_wins() {
        let mut conn = ConnEntry::new(0, 0, 0, 5);
        conn.close(Close::TOO_BIG);
        conn.close(Close::NORMAL);
        assert_eq!(conn.close_code(), Some(1009));
    }
}
