//! Pusher socket ids, `high.low` in decimal, built from the connection's address so that a
//! publish excluding a socket, or a message for one socket, goes straight to its shard and
//! slot. Both parts look random and differ from one connection to the next (apps read
//! meaning into them: a third-party test suite derives user ids from the first part); a
//! process-wide random key makes them differ across restarts too, and the key is tweaked by the
//! shard, so the same slot on two shards gives unrelated ids. `high` carries the shard in its
//! low 10 bits and a check value of `low` in the rest, so made-up ids decode to nothing.

use crate::engine::{
    addr::{ConnAddr, Scramble},
    conn::ConnKey,
};
use std::fmt;

/// Shards an id can name (the config allows at most this many).
const SHARD_BITS: u32 = 10;
const SHARD_MASK: u32 = (1 << SHARD_BITS) - 1;

/// A Pusher socket id.
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

    /// The id of the connection at `addr`.
    pub fn of(addr: ConnAddr, scramble: Scramble) -> SocketId {
        let (shard, bits) = addr.to_bits();
        let scramble = scramble.tweaked(shard);
        let low = scramble.forward(bits);
        let high = (scramble.check(low) & !SHARD_MASK) | (u32::from(shard) & SHARD_MASK);
        SocketId { high, low }
    }

    /// The address this id names, if it is one of ours.
    pub fn addr(self, scramble: Scramble) -> Option<ConnAddr> {
        let shard = (self.high & SHARD_MASK) as u16;
        let scramble = scramble.tweaked(shard);
        if scramble.check(self.low) & !SHARD_MASK != self.high & !SHARD_MASK {
            return None;
        }
        Some(ConnAddr::from_bits(shard, scramble.backward(self.low)))
    }

    /// The id of connection `key` on shard `shard`, as text.
    pub fn text(shard: usize, key: ConnKey, scramble: Scramble) -> String {
        SocketId::of(ConnAddr::new(shard, key), scramble).to_string()
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.high, self.low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_to_their_address() {
        let s = Scramble::new(0xdead_beef_0bad_cafe);
        for (shard, index, generation) in [(0, 0, 0), (3, 17, 99), (1023, u32::MAX as usize, 7)] {
            let addr = ConnAddr::new(shard, ConnKey::new(index, generation));
            let id = SocketId::of(addr, s);
            assert_eq!(SocketId::parse(&id.to_string()), Some(id));
            assert_eq!(id.addr(s), Some(addr));
        }
    }

    #[test]
    fn both_parts_vary_between_connections() {
        let s = Scramble::new(42);
        let a = SocketId::of(ConnAddr::new(0, ConnKey::new(1, 1)), s);
        let b = SocketId::of(ConnAddr::new(0, ConnKey::new(2, 2)), s);
        assert_ne!(a.high, b.high);
        assert_ne!(a.low, b.low);
        // The same slot on another shard.
        let c = SocketId::of(ConnAddr::new(1, ConnKey::new(1, 1)), s);
        assert_ne!(a.high >> SHARD_BITS, c.high >> SHARD_BITS);
        assert_ne!(a.low, c.low);
    }

    #[test]
    fn made_up_ids_name_nothing() {
        let s = Scramble::new(7);
        let id = SocketId::of(ConnAddr::new(1, ConnKey::new(5, 6)), s);
        let forged = SocketId { high: id.high ^ (1 << 20), low: id.low };
        assert_eq!(forged.addr(s), None);
        assert_eq!(SocketId { high: 1, low: 2 }.addr(s), None);
    }

    #[test]
    fn parsing() {
        assert_eq!(SocketId::parse("12.34"), Some(SocketId { high: 12, low: 34 }));
        for bad in ["", "1", "1.", ".1", "a.1", "1.2.3", "-1.2", "99999999999.1"] {
            assert_eq!(SocketId::parse(bad), None, "{bad}");
        }
    }
}
