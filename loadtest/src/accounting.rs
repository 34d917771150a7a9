//! Delivery accounting: which sequence numbers each connection received, and missing/duplicate tallies.

/// Growable bit set over sequence numbers.
#[derive(Debug, Default, Clone)]
pub struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    /// Set bit `i`; returns true if it was not set before.
    pub fn insert(&mut self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let was = self.words[w] & (1 << b) != 0;
        self.words[w] |= 1 << b;
        !was
    }

    #[cfg(test)]
    pub fn contains(&self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        self.words.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    pub fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Number of bits set in `self` but not in `other`.
    pub fn count_missing_from(&self, other: &BitSet) -> u64 {
        self.words
            .iter()
            .enumerate()
            .map(|(i, w)| u64::from((w & !other.words.get(i).copied().unwrap_or(0)).count_ones()))
            .sum()
    }
}

/// What one subscribed connection saw on its channel.
#[derive(Debug, Default, Clone)]
pub struct SeqTracker {
    pub received: BitSet,
    /// Messages carrying a sequence number already received.
    pub duplicates: u64,
    /// All benchmark messages received, duplicates included.
    pub total: u64,
}

impl SeqTracker {
    /// Record a delivery; returns true if this sequence number is new for this connection.
    pub fn record(&mut self, seq: u64) -> bool {
        self.total += 1;
        let fresh = self.received.insert(seq);
        if !fresh {
            self.duplicates += 1;
        }
        fresh
    }
}

/// Totals over all connections.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub expected: u64,
    pub delivered: u64,
    pub delivered_unique: u64,
    pub missing: u64,
    pub duplicated: u64,
    /// Received sequence numbers that the publisher never saw acknowledged (e.g. HTTP error after fan-out).
    pub unexpected: u64,
}

/// Compare each connection's receipts (`(channel index, tracker)`) with what was published per channel.
pub fn tally<'a>(
    published: &[BitSet],
    conns: impl IntoIterator<Item = (usize, &'a SeqTracker)>,
) -> Tally {
    let mut t = Tally::default();
    for (ch, tr) in conns {
        let empty = BitSet::default();
        let pubs = published.get(ch).unwrap_or(&empty);
        t.expected += pubs.len();
        t.delivered += tr.total;
        t.delivered_unique += tr.received.len();
        t.duplicated += tr.duplicates;
        t.missing += pubs.count_missing_from(&tr.received);
        t.unexpected += tr.received.count_missing_from(pubs);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[u64]) -> BitSet {
        let mut b = BitSet::default();
        for &i in items {
            b.insert(i);
        }
        b
    }

    #[test]
    fn bitset_basics() {
        let mut b = BitSet::default();
        assert!(b.insert(3));
        assert!(!b.insert(3));
        assert!(b.insert(200));
        assert!(b.contains(200) && b.contains(3) && !b.contains(4));
        assert_eq!(b.len(), 2);
        assert_eq!(set(&[1, 2, 3, 130]).count_missing_from(&set(&[2])), 3);
    }

    #[test]
    fn counts_missing_and_duplicates() {
        let published = vec![set(&[0, 1, 2, 3]), set(&[0, 1])];
        let mut a = SeqTracker::default(); // channel 0: got all, 1 twice
        for s in [0, 1, 1, 2, 3] {
            a.record(s);
        }
        let mut b = SeqTracker::default(); // channel 0: missing 2 and 3
        for s in [0, 1] {
            b.record(s);
        }
        let mut c = SeqTracker::default(); // channel 1: got an unpublished 5
        for s in [0, 1, 5] {
            c.record(s);
        }
        let t = tally(&published, [(0, &a), (0, &b), (1, &c)]);
        assert_eq!(
            t,
            Tally {
                expected: 10,
                delivered: 10,
                delivered_unique: 9,
                missing: 2,
                duplicated: 1,
                unexpected: 1,
            }
        );
    }

    #[test]
    fn duplicate_on_one_conn_does_not_hide_missing_on_another() {
        let published = vec![set(&[0])];
        let mut a = SeqTracker::default();
        a.record(0);
        a.record(0);
        let b = SeqTracker::default();
        let t = tally(&published, [(0, &a), (0, &b)]);
        assert_eq!((t.missing, t.duplicated, t.delivered), (1, 1, 2));
    }
}
