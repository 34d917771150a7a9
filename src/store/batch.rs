//! What a writer hands the store: a [`Batch`] of operations on named tables, applied atomically
//! (all or nothing), and the [`KeyRange`] that range deletes and scans take. Keys and values are
//! bytes; tables are `&'static str` names that each feature declares once as constants.

use bytes::Bytes;
use std::ops::Bound;

/// One change to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sets `key` to `value`, replacing any value it had.
    Put { table: &'static str, key: Bytes, value: Bytes },
    /// Removes `key` (nothing if absent).
    Delete { table: &'static str, key: Bytes },
    /// Removes every key in `range`.
    DeleteRange { table: &'static str, range: KeyRange },
}

impl Op {
    pub fn table(&self) -> &'static str {
        match self {
            Op::Put { table, .. } | Op::Delete { table, .. } | Op::DeleteRange { table, .. } => {
                table
            }
        }
    }

    /// Key and value bytes carried (what the store counts as written).
    pub fn payload_bytes(&self) -> usize {
        match self {
            Op::Put { key, value, .. } => key.len() + value.len(),
            Op::Delete { key, .. } => key.len(),
            Op::DeleteRange { .. } => 0,
        }
    }
}

/// Operations committed together: after the commit, all of them are on disk, or none.
/// Within a batch, later operations see earlier ones (a put then a delete of the key leaves
/// nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn put(
        &mut self,
        table: &'static str,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> &mut Batch {
        self.ops.push(Op::Put { table, key: key.into(), value: value.into() });
        self
    }

    pub fn delete(&mut self, table: &'static str, key: impl Into<Bytes>) -> &mut Batch {
        self.ops.push(Op::Delete { table, key: key.into() });
        self
    }

    pub fn delete_range(&mut self, table: &'static str, range: KeyRange) -> &mut Batch {
        self.ops.push(Op::DeleteRange { table, range });
        self
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Key and value bytes of every operation.
    pub fn payload_bytes(&self) -> usize {
        self.ops.iter().map(Op::payload_bytes).sum()
    }

    /// Checks the batch against the store's limits before it is queued, so that a group
    /// commit never fails because of one writer's batch.
    pub(crate) fn check(&self, max_ops: usize, max_entry_bytes: usize) -> Result<(), String> {
        if self.ops.len() > max_ops {
            return Err(format!("{} operations, more than max_batch_ops {max_ops}", self.len()));
        }
        for op in &self.ops {
            if op.table().is_empty() {
                return Err("an operation names no table".into());
            }
            if op.payload_bytes() > max_entry_bytes {
                let size = op.payload_bytes();
                return Err(format!("an entry of {size} bytes, more than {max_entry_bytes}"));
            }
        }
        Ok(())
    }
}

/// A range of keys in byte order: a start and an end bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Bound<Bytes>,
    pub end: Bound<Bytes>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> KeyRange {
        KeyRange { start: Bound::Unbounded, end: Bound::Unbounded }
    }

    /// Keys from `start` (included) to `end` (excluded).
    pub fn span(start: impl Into<Bytes>, end: impl Into<Bytes>) -> KeyRange {
        KeyRange { start: Bound::Included(start.into()), end: Bound::Excluded(end.into()) }
    }

    /// Keys that start with `prefix`.
    pub fn prefix(prefix: impl Into<Bytes>) -> KeyRange {
        let prefix: Bytes = prefix.into();
        let end = match prefix_end(&prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        KeyRange { start: Bound::Included(prefix), end }
    }

    /// The same range, keeping only keys after `key`: the next page of a forward scan whose
    /// last key was `key`.
    pub fn after(&self, key: impl Into<Bytes>) -> KeyRange {
        KeyRange { start: Bound::Excluded(key.into()), end: self.end.clone() }
    }

    /// The same range, keeping only keys before `key`: the next page of a backward scan whose
    /// last key was `key`.
    pub fn before(&self, key: impl Into<Bytes>) -> KeyRange {
        KeyRange { start: self.start.clone(), end: Bound::Excluded(key.into()) }
    }

    /// Whether no key can be in the range (start past end). redb, like `BTreeMap`, must not be
    /// asked for such a range.
    pub fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s), Bound::Excluded(e))
            | (Bound::Excluded(s), Bound::Included(e))
            | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
            _ => false,
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        let above = match &self.start {
            Bound::Included(s) => key >= &s[..],
            Bound::Excluded(s) => key > &s[..],
            Bound::Unbounded => true,
        };
        let below = match &self.end {
            Bound::Included(e) => key <= &e[..],
            Bound::Excluded(e) => key < &e[..],
            Bound::Unbounded => true,
        };
        above && below
    }

    /// The bounds as borrowed slices, the form redb takes.
    pub(crate) fn as_slices(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (bound_slice(&self.start), bound_slice(&self.end))
    }
}

fn bound_slice(bound: &Bound<Bytes>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(b) => Bound::Included(&b[..]),
        Bound::Excluded(b) => Bound::Excluded(&b[..]),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The smallest key greater than every key starting with `prefix`; None when there is none
/// (empty prefix, or all bytes 0xFF).
fn prefix_end(prefix: &[u8]) -> Option<Bytes> {
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_holds_exactly_the_keys_with_the_prefix() {
        let range = KeyRange::prefix(&b"ab"[..]);
        for key in [&b"ab"[..], b"ab\x00", b"ab\xff\xff", b"abz"] {
            assert!(range.contains(key), "{key:?}");
        }
        for key in [&b"a"[..], b"aa\xff", b"ac", b"b", b""] {
            assert!(!range.contains(key), "{key:?}");
        }
    }

    #[test]
    fn prefix_of_high_bytes_ends_after_the_last_byte_below_ff() {
        assert_eq!(prefix_end(b"a\xff\xff"), Some(Bytes::from_static(b"b")));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
        let range = KeyRange::prefix(&b"\xff"[..]);
        assert!(range.contains(b"\xff\xff\xff"));
        assert!(!range.contains(b"\xfe\xff"));
    }

    #[test]
    fn after_and_before_page_through_a_range() {
        let range = KeyRange::span(&b"b"[..], &b"f"[..]);
        let next = range.after(&b"c"[..]);
        assert!(!next.contains(b"c") && next.contains(b"d") && !next.contains(b"f"));
        let back = range.before(&b"d"[..]);
        assert!(back.contains(b"b") && back.contains(b"c") && !back.contains(b"d"));
    }

    #[test]
    fn inverted_and_touching_ranges_are_empty() {
        assert!(KeyRange::span(&b"b"[..], &b"a"[..]).is_empty());
        assert!(KeyRange::span(&b"a"[..], &b"a"[..]).is_empty());
        assert!(!KeyRange::span(&b"a"[..], &b"b"[..]).is_empty());
        assert!(KeyRange::all().after(&b"x"[..]).before(&b"x"[..]).is_empty());
        assert!(!KeyRange::all().is_empty());
    }

    #[test]
    fn check_refuses_oversized_batches_entries_and_unnamed_tables() {
        let mut batch = Batch::new();
        batch.put("t", &b"k"[..], vec![0u8; 10]).delete("t", &b"k"[..]);
        assert_eq!(batch.payload_bytes(), 12);
        assert!(batch.check(2, 11).is_ok());
        assert!(batch.check(1, 100).expect_err("too many ops").contains("max_batch_ops"));
        assert!(batch.check(2, 10).expect_err("too large").contains("11 bytes"));
        let mut unnamed = Batch::new();
        unnamed.delete_range("", KeyRange::all());
        assert!(unnamed.check(10, 10).is_err());
    }
}
