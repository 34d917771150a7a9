//! Pusher channel names: the kind a prefix selects, and the name rules.

/// What a channel's name makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Public,
    Private,
    PrivateEncrypted,
    Presence,
    /// `#server-to-user-{id}`: only the connection signed in as that user.
    ServerToUser,
}

impl ChannelKind {
    /// The kind of `name`, from its prefix. `cache-` variants take their base kind.
    pub fn of(name: &str) -> ChannelKind {
        let base = name
            .strip_prefix("private-encrypted-cache-")
            .map(|_| "private-encrypted-")
            .or_else(|| name.strip_prefix("private-cache-").map(|_| "private-"))
            .or_else(|| name.strip_prefix("presence-cache-").map(|_| "presence-"))
            .unwrap_or(name);
        if base.starts_with("private-encrypted-") {
            ChannelKind::PrivateEncrypted
        } else if base.starts_with("private-") {
            ChannelKind::Private
        } else if base.starts_with("presence-") {
            ChannelKind::Presence
        } else if base.starts_with("#server-to-user-") {
            ChannelKind::ServerToUser
        } else {
            ChannelKind::Public
        }
    }
}

/// Whether a channel keeps its last event (`cache-`, `private-cache-`, `presence-cache-`,
/// `private-encrypted-cache-`).
pub fn is_cache(name: &str) -> bool {
    ["cache-", "private-cache-", "presence-cache-", "private-encrypted-cache-"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Why a channel name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("Channel name must not be empty")]
    Empty,
    #[error("Channel name longer than {0} characters")]
    TooLong(usize),
    #[error("Channel name may only contain A-Z, a-z, 0-9, _ - = @ , . ;")]
    BadCharacter,
}

/// Checks a channel name against Pusher's rules: `[A-Za-z0-9_\-=@,.;]+`, at most `max_len`
/// characters, and `#` only as the start of `#server-to-user-`.
pub fn check_name(name: &str, max_len: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > max_len {
        return Err(NameError::TooLong(max_len));
    }
    let body = name.strip_prefix("#server-to-user-").unwrap_or(name);
    if body.is_empty() || !body.bytes().all(allowed) {
        return Err(NameError::BadCharacter);
    }
    Ok(())
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b'@' | b',' | b'.' | b';')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_prefixes() {
        assert_eq!(ChannelKind::of("news"), ChannelKind::Public);
        assert_eq!(ChannelKind::of("cache-news"), ChannelKind::Public);
        assert_eq!(ChannelKind::of("private-x"), ChannelKind::Private);
        assert_eq!(ChannelKind::of("private-cache-x"), ChannelKind::Private);
        assert_eq!(ChannelKind::of("private-encrypted-x"), ChannelKind::PrivateEncrypted);
        assert_eq!(ChannelKind::of("private-encrypted-cache-x"), ChannelKind::PrivateEncrypted);
        assert_eq!(ChannelKind::of("presence-room"), ChannelKind::Presence);
        assert_eq!(ChannelKind::of("presence-cache-room"), ChannelKind::Presence);
        assert_eq!(ChannelKind::of("#server-to-user-42"), ChannelKind::ServerToUser);
    }

    #[test]
    fn cache_channels() {
        for yes in ["cache-a", "private-cache-a", "presence-cache-a", "private-encrypted-cache-a"] {
            assert!(is_cache(yes), "{yes}");
        }
        for no in ["a", "private-a", "presence-a", "cachex", "private-encrypted-a"] {
            assert!(!is_cache(no), "{no}");
        }
    }

    #[test]
    fn name_rules() {
        assert_eq!(check_name("a-Z_0=9@,.;", 164), Ok(()));
        assert_eq!(check_name("#server-to-user-7", 164), Ok(()));
        assert_eq!(check_name("", 164), Err(NameError::Empty));
        assert_eq!(check_name("has space", 164), Err(NameError::BadCharacter));
        assert_eq!(check_name("a#b", 164), Err(NameError::BadCharacter));
        assert_eq!(check_name("#other", 164), Err(NameError::BadCharacter));
        assert_eq!(check_name("#server-to-user-", 164), Err(NameError::BadCharacter));
        assert_eq!(check_name("caf\u{e9}", 164), Err(NameError::BadCharacter));
        assert_eq!(check_name(&"a".repeat(165), 164), Err(NameError::TooLong(164)));
        assert_eq!(check_name(&"a".repeat(164), 164), Ok(()));
    }
}
