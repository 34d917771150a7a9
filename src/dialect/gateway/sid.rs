//! Gateway sids: `<gateway ip>_<shard>_<24 hex digits>`, the original's three-part shape
//! (`<server ip>_<worker>_<counter>`) with the connection's address in the last part, so a
//! push to `sig_<sid>` goes straight to its shard and slot. The hex digits are the address's
//! 64 bits under a keyed scramble (16 digits) and a 32-bit check of them and the shard (8
//! digits): they differ from one connection to the next, and made-up sids decode to nothing.

use crate::engine::addr::{ConnAddr, Scramble};

/// The topic prefix that reaches one connection.
pub const SIG: &str = "sig_";

/// Makes and reads the sids of this process.
#[derive(Debug, Clone)]
pub struct Sids {
    ip: String,
    scramble: Scramble,
}

impl Sids {
    pub fn new(ip: String, scramble: Scramble) -> Sids {
        Sids { ip, scramble }
    }

    /// The sid of the connection at `addr`.
    pub fn of(&self, addr: ConnAddr) -> String {
        let (shard, bits) = addr.to_bits();
        let low = self.scramble.forward(bits);
        format!("{}_{shard}_{low:016x}{:08x}", self.ip, self.check(shard, low))
    }

    /// The `sig_<sid>` topic of the connection at `addr`.
    pub fn topic(&self, addr: ConnAddr) -> String {
        format!("{SIG}{}", self.of(addr))
    }

    /// The address a sid names, if it is one of this process's.
    pub fn addr(&self, sid: &str) -> Option<ConnAddr> {
        let (rest, tail) = sid.rsplit_once('_')?;
        let (ip, shard) = rest.rsplit_once('_')?;
        if ip != self.ip || tail.len() != 24 || !tail.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let shard: u16 = shard.parse().ok()?;
        let low = u64::from_str_radix(&tail[..16], 16).ok()?;
        let check = u32::from_str_radix(&tail[16..], 16).ok()?;
        (check == self.check(shard, low))
            .then(|| ConnAddr::from_bits(shard, self.scramble.backward(low)))
    }

    /// The address a `sig_<sid>` topic names, if it names one of ours.
    pub fn addr_of_topic(&self, topic: &str) -> Option<ConnAddr> {
        self.addr(topic.strip_prefix(SIG)?)
    }

    fn check(&self, shard: u16, low: u64) -> u32 {
        self.scramble.check(low ^ (u64::from(shard) << 48))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::conn::ConnKey;

    fn sids() -> Sids {
        Sids::new("10.0.0.7".into(), Scramble::new(0x5eed))
    }

    #[test]
    fn sids_round_trip_to_their_address() {
        let s = sids();
        for (shard, index, generation) in [(0, 0, 0), (3, 17, 99), (1023, u32::MAX as usize, 7)] {
            let addr = ConnAddr::new(shard, ConnKey::new(index, generation));
            let sid = s.of(addr);
            assert!(sid.starts_with(&format!("10.0.0.7_{shard}_")), "{sid}");
            assert_eq!(s.addr(&sid), Some(addr));
            assert_eq!(s.addr_of_topic(&s.topic(addr)), Some(addr));
        }
    }

    #[test]
    fn made_up_or_foreign_sids_name_nothing() {
        let s = sids();
        let sid = s.of(ConnAddr::new(1, ConnKey::new(5, 6)));
        let other_shard = sid.replacen("_1_", "_2_", 1);
        assert_eq!(s.addr(&other_shard), None);
        let other_ip = sid.replacen("10.0.0.7", "10.0.0.8", 1);
        assert_eq!(s.addr(&other_ip), None);
        let mut flipped = sid.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(s.addr(&String::from_utf8(flipped).expect("ascii")), None);
        for bad in ["", "sig_x", "10.0.0.7_1_zz", "10.0.0.7_x_000000000000000000000000", "a_b"] {
            assert_eq!(s.addr(bad), None, "{bad}");
        }
        assert_eq!(s.addr_of_topic("hq_100001_129"), None);
    }

    #[test]
    fn consecutive_connections_get_unlike_sids() {
        let s = sids();
        let a = s.of(ConnAddr::new(0, ConnKey::new(1, 1)));
        let b = s.of(ConnAddr::new(0, ConnKey::new(2, 2)));
        assert_ne!(a[..a.len() - 8], b[..b.len() - 8]);
    }
}
