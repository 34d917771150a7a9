//! Connection addresses: which shard holds a connection and where in its slab. Any dialect can
//! encode one in the ids it hands out (a Pusher socket id, a gateway sid), so a message for one
//! connection goes straight to its shard and slot, never to every shard.

use super::conn::ConnKey;

/// A connection anywhere in the process: its shard and its key on that shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnAddr {
    pub shard: u16,
    pub key: ConnKey,
}

impl ConnAddr {
    pub fn new(shard: usize, key: ConnKey) -> ConnAddr {
        ConnAddr { shard: shard as u16, key }
    }

    /// The address as 80 bits: shard (16), slab index (32), generation (32).
    pub fn to_bits(self) -> (u16, u64) {
        let low = (u64::from(self.key.generation()) << 32) | self.key.index() as u64;
        (self.shard, low)
    }

    pub fn from_bits(shard: u16, low: u64) -> ConnAddr {
        let key = ConnKey::new((low & 0xffff_ffff) as usize, (low >> 32) as u32);
        ConnAddr { shard, key }
    }
}

/// A keyed, invertible scramble of 64 bits, so ids built from addresses look random and differ
/// in every digit from one connection to the next, yet decode back to the address. Not a
/// cipher: it hides nothing from someone who wants to guess; it keeps apps from reading
/// meaning (or sameness) into the digits.
#[derive(Debug, Clone, Copy)]
pub struct Scramble {
    key: u64,
}

/// Odd multipliers (invertible modulo 2^64) and their inverses.
const M1: u64 = 0xbf58_476d_1ce4_e5b9;
const M2: u64 = 0x94d0_49bb_1331_11eb;

impl Scramble {
    pub fn new(key: u64) -> Scramble {
        Scramble { key }
    }

    pub fn forward(self, x: u64) -> u64 {
        let mut x = x ^ self.key;
        x ^= x >> 30;
        x = x.wrapping_mul(M1);
        x ^= x >> 27;
        x = x.wrapping_mul(M2);
        x ^ (x >> 31)
    }

    pub fn backward(self, y: u64) -> u64 {
        let mut x = unshift(y, 31);
        x = x.wrapping_mul(inverse(M2));
        x = unshift(x, 27);
        x = x.wrapping_mul(inverse(M1));
        x = unshift(x, 30);
        x ^ self.key
    }

    /// The same scramble under a key tweaked by `tweak` (a shard), so equal inputs on two
    /// shards scramble to unrelated outputs.
    pub fn tweaked(self, tweak: u16) -> Scramble {
        Scramble { key: self.key ^ u64::from(tweak).wrapping_mul(0x9e37_79b9_7f4a_7c15) }
    }

    /// A 32-bit check value of `x` under this key (to tell real ids from made-up ones).
    pub fn check(self, x: u64) -> u32 {
        (self.forward(x.rotate_left(17) ^ 0x5bd1_e995) >> 32) as u32
    }
}

/// Inverts `x ^= x >> s`.
fn unshift(y: u64, s: u32) -> u64 {
    let mut x = y;
    let mut shift = s;
    while shift < 64 {
        x = y ^ (x >> s);
        shift += s;
    }
    x
}

/// The multiplicative inverse of an odd number modulo 2^64 (Newton's iteration).
const fn inverse(a: u64) -> u64 {
    let mut x = a;
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scramble_round_trips() {
        let s = Scramble::new(0x1234_5678_9abc_def0);
        for x in [0u64, 1, 2, 0xffff_ffff, u64::MAX, 0x8000_0000_0000_0001, 42 << 32 | 7] {
            assert_eq!(s.backward(s.forward(x)), x, "{x}");
        }
        assert_ne!(s.forward(1), s.forward(2));
        assert_ne!(Scramble::new(1).forward(5), Scramble::new(2).forward(5));
        let t = s.tweaked(3);
        assert_eq!(t.backward(t.forward(77)), 77);
        assert_ne!(t.forward(77), s.tweaked(4).forward(77));
    }

    #[test]
    fn addresses_round_trip_through_bits() {
        let addr = ConnAddr::new(3, ConnKey::new(99, 123_456));
        let (shard, low) = addr.to_bits();
        assert_eq!(ConnAddr::from_bits(shard, low), addr);
    }
}
