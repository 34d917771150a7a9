//! Benchmark event payload: a per-channel sequence number and a send timestamp, padded to a size.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the UNIX epoch (wall clock; publisher and subscribers share the host clock).
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Encode `"<seq> <ts_ns> "` followed by `x` padding up to `size` bytes (never truncated below the header).
pub fn encode(seq: u64, ts_ns: u64, size: usize) -> String {
    let mut s = format!("{seq} {ts_ns} ");
    while s.len() < size {
        s.push('x');
    }
    s
}

/// Decode a payload made by [`encode`]; `None` if it is not one of ours.
pub fn decode(data: &str) -> Option<(u64, u64)> {
    let mut parts = data.splitn(3, ' ');
    let seq = parts.next()?.parse().ok()?;
    let ts = parts.next()?.parse().ok()?;
    Some((seq, ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let p = encode(42, 1_700_000_000_123_456_789, 64);
        assert_eq!(p.len(), 64);
        assert_eq!(decode(&p), Some((42, 1_700_000_000_123_456_789)));
    }

    #[test]
    fn short_size_keeps_header() {
        let p = encode(7, 99, 1);
        assert_eq!(p, "7 99 ");
        assert_eq!(decode(&p), Some((7, 99)));
    }

    #[test]
    fn rejects_foreign_data() {
        assert_eq!(decode("{}"), None);
        assert_eq!(decode("hello world"), None);
        assert_eq!(decode("12"), None);
    }
}
