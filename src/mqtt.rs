//! MQTT topic filters, exactly as MQTT 3.1.1 and 5 define them (and EMQX implements them):
//! validation of names and filters, and matching, used by the EMQX-style event hook rules.

/// Why a topic name or filter is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic must not be empty")]
    Empty,
    #[error("topic longer than 65535 bytes")]
    TooLong,
    #[error("topic must not contain U+0000")]
    Nul,
    #[error("`#` must be a whole level and the last one")]
    BadMultiLevel,
    #[error("`+` must be a whole level")]
    BadSingleLevel,
    #[error("wildcards are not allowed in a topic name")]
    WildcardInName,
    #[error("`$share/<group>/<filter>` needs a group without / + # and a filter")]
    BadShare,
}

fn check_common(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > 65535 {
        return Err(TopicError::TooLong);
    }
    if topic.contains('\0') {
        return Err(TopicError::Nul);
    }
    Ok(())
}

/// Checks a topic name (what is published to): no wildcards.
pub fn check_name(name: &str) -> Result<(), TopicError> {
    check_common(name)?;
    if name.contains(['+', '#']) {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Checks a filter (what is subscribed to / what a rule names).
pub fn check_filter(filter: &str) -> Result<(), TopicError> {
    check_common(filter)?;
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i != levels.len() - 1) {
            return Err(TopicError::BadMultiLevel);
        }
        if level.contains('+') && *level != "+" {
            return Err(TopicError::BadSingleLevel);
        }
    }
    Ok(())
}

/// Splits `$share/<group>/<filter>` (and EMQX's `$queue/<filter>`) into (group, filter);
/// a plain filter has no group.
pub fn parse_shared(filter: &str) -> Result<(Option<&str>, &str), TopicError> {
    if let Some(rest) = filter.strip_prefix("$share/") {
        let (group, inner) = rest.split_once('/').ok_or(TopicError::BadShare)?;
        if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
            return Err(TopicError::BadShare);
        }
        return Ok((Some(group), inner));
    }
    if let Some(inner) = filter.strip_prefix("$queue/") {
        if inner.is_empty() {
            return Err(TopicError::BadShare);
        }
        return Ok((Some("$queue"), inner));
    }
    Ok((None, filter))
}

/// Whether `topic` matches `filter`. Level by level; `+` and `#` appearing in `topic` (the
/// subscribed filter of a subscribe event) only match themselves, as in EMQX. A filter starting
/// with a wildcard never matches a topic starting with `$`.
pub fn matches(topic: &str, filter: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut names = topic.split('/');
    let mut filters = filter.split('/');
    loop {
        match (filters.next(), names.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(n)) if f == n => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_level_wildcard() {
        assert!(matches("sport", "sport/#"));
        assert!(matches("sport/", "sport/#"));
        assert!(matches("sport/tennis/player1", "sport/#"));
        assert!(matches("sport/tennis/player1/ranking", "sport/tennis/#"));
        assert!(matches("anything/at/all", "#"));
        assert!(matches("/leading", "#"));
        assert!(!matches("sports", "sport/#"));
    }

    #[test]
    fn single_level_wildcard() {
        assert!(matches("sport/", "sport/+"));
        assert!(!matches("sport", "sport/+"));
        assert!(!matches("sport/tennis/player1/ranking", "sport/tennis/+"));
        assert!(matches("sport/tennis/player1", "sport/tennis/+"));
        assert!(matches("/finance", "+/+"));
        assert!(matches("/finance", "/+"));
        assert!(!matches("/finance", "+"));
        assert!(matches("a/b/c", "+/b/+"));
        assert!(matches("x/tennis/y/z", "+/tennis/#"));
    }

    #[test]
    fn dollar_topics() {
        assert!(!matches("$SYS/x", "#"));
        assert!(!matches("$SYS/monitor/Clients", "+/monitor/Clients"));
        assert!(matches("$SYS/monitor/Clients", "$SYS/#"));
        assert!(matches("$SYS/monitor/Clients", "$SYS/monitor/+"));
    }

    #[test]
    fn case_and_empty_levels_are_exact() {
        assert!(!matches("Sport", "sport"));
        assert!(!matches("a//b", "a/b"));
        assert!(matches("a//b", "a//b"));
        assert!(matches("a//b", "a/+/b"));
        assert!(matches("with space/x", "with space/+"));
    }

    #[test]
    fn wildcards_in_the_event_topic_are_literal() {
        assert!(matches("a/+", "a/+"));
        assert!(matches("a/+", "a/#"));
        assert!(matches("a/#", "a/#"));
        assert!(!matches("a/+", "a/b"));
    }

    #[test]
    fn filter_validation() {
        for ok in
            ["sport/tennis/#", "#", "+", "+/tennis/#", "sport/+/player1", "/+", "a//b", "$SYS/#"]
        {
            assert_eq!(check_filter(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_filter("sport/tennis#"), Err(TopicError::BadMultiLevel));
        assert_eq!(check_filter("sport/#/ranking"), Err(TopicError::BadMultiLevel));
        assert_eq!(check_filter("sport+"), Err(TopicError::BadSingleLevel));
        assert_eq!(check_filter(""), Err(TopicError::Empty));
        assert_eq!(check_filter("a\0b"), Err(TopicError::Nul));
        assert_eq!(check_filter(&"a".repeat(65536)), Err(TopicError::TooLong));
        assert_eq!(check_name("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(check_name("a/#"), Err(TopicError::WildcardInName));
        assert_eq!(check_name("a/b"), Ok(()));
    }

    #[test]
    fn shared_subscriptions() {
        assert_eq!(parse_shared("$share/g1/a/+"), Ok((Some("g1"), "a/+")));
        assert_eq!(parse_shared("$queue/a/b"), Ok((Some("$queue"), "a/b")));
        assert_eq!(parse_shared("a/b"), Ok((None, "a/b")));
        assert_eq!(parse_shared("$share/g1"), Err(TopicError::BadShare));
        assert_eq!(parse_shared("$share//a"), Err(TopicError::BadShare));
        assert_eq!(parse_shared("$share/g+/a"), Err(TopicError::BadShare));
        assert_eq!(parse_shared("$share/g1/"), Err(TopicError::BadShare));
    }
}
