//! The notice tables and their keys. Ids are text without NUL, so `a \0 b` keys sort by `a`
//! then `b` and a prefix scan of `a \0` is exactly `a`'s entries. A notice's order key is its
//! createTime (8 bytes, big-endian ms) then its id: byte order is time order, and two notices
//! of the same millisecond still have distinct, ordered keys.

use super::super::pb::NoticeData;
use bytes::Bytes;

/// Notices to one user: `user \0 conv \0 order` -> [`Stored`].
pub const USER_NOTICES: &str = "im_notice_user";
/// Notices to a conversation's members: `conv \0 order` -> [`Stored`].
pub const CONV_NOTICES: &str = "im_notice_conv";
/// Where a notice is: `conv \0 noticeId` -> order's createTime (8) + target user (empty: all).
pub const NOTICE_IDS: &str = "im_notice_id";
/// Conversations a user has notices of: `user \0 conv` -> empty.
pub const USER_CONVS: &str = "im_user_conv";
/// Conversations a user is a member of: `user \0 conv` -> empty.
pub const MEMBER_CONVS: &str = "im_member_conv";
/// Members of a conversation: `conv \0 user` -> empty.
pub const CONV_MEMBERS: &str = "im_conv_member";
/// Ack cursors: `user \0 device \0 conv` -> the order key of the last notice acknowledged.
pub const CURSORS: &str = "im_ack";
/// Devices seen: `user \0 device` -> the first connect, ms (8, big-endian). A device's cursors
/// start there, so notices older than a new device are not replayed to it.
pub const DEVICES: &str = "im_device";

/// A stored notice: the notice, and whether it may still be pushed (`onlinePushOnce` ones
/// are marked once pushed).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Stored {
    #[prost(message, optional, tag = "1")]
    pub notice: Option<NoticeData>,
    #[prost(bool, tag = "2")]
    pub push_invalid: bool,
}

/// `parts` joined with NUL separators.
pub fn key(parts: &[&str]) -> Bytes {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out.into()
}

/// `parts` joined with NUL separators and a final NUL: the prefix of their children.
pub fn prefix(parts: &[&str]) -> Bytes {
    let mut out = key(parts).to_vec();
    out.push(0);
    out.into()
}

/// `prefix` followed by `tail`.
pub fn under(prefix: &[u8], tail: &[u8]) -> Bytes {
    [prefix, tail].concat().into()
}

/// A notice's order key.
pub fn order(create_ms: u64, notice_id: &str) -> Vec<u8> {
    [&create_ms.to_be_bytes()[..], notice_id.as_bytes()].concat()
}

/// The order key just before every notice of millisecond `ms` (an id is never empty).
pub fn before_ms(ms: u64) -> Vec<u8> {
    ms.to_be_bytes().to_vec()
}

/// The last part of a key: what follows its final NUL.
pub fn last(key: &[u8]) -> &[u8] {
    key.iter().rposition(|&b| b == 0).map_or(key, |at| &key[at + 1..])
}

/// An 8-byte big-endian number at the start of `bytes`.
pub fn ms(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Whether an id can be part of a key.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && !id.contains('\0') && id.len() <= 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_sort_by_time_then_id() {
        assert!(order(1, "z") < order(2, "a"));
        assert!(order(5, "a") < order(5, "b"));
        assert!(order(4, "zzz") < before_ms(5) && before_ms(5) < order(5, "a"));
        assert_eq!(ms(&order(42, "x")), Some(42));
    }

    #[test]
    fn prefixes_hold_exactly_their_children() {
        assert_eq!(&key(&["u", "c"])[..], b"u\0c");
        assert_eq!(&prefix(&["u", "d"])[..], b"u\0d\0");
        assert_eq!(last(b"u\0d\0conv"), b"conv");
        assert!(!valid_id("a\0b") && !valid_id("") && valid_id("notice:1"));
    }
}
