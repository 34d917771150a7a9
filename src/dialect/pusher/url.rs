//! The Pusher connect URL: `[prefix]/app/{key}?protocol=7&...`.

use super::close::CloseCode;

/// Oldest and newest protocol versions spoken. pusher-js sends 7; 5 and 6 differ only in error
/// behaviour we already follow; 1-4 are retired by Pusher.
pub const PROTOCOLS: std::ops::RangeInclusive<u32> = 5..=7;

/// The app key of a Pusher connect path, tolerating a path prefix. `None`: not a Pusher path.
pub fn app_key(path: &str) -> Option<&str> {
    let (_, key) = path.rsplit_once("/app/")?;
    (!key.is_empty() && !key.contains('/')).then_some(key)
}

/// Checks the `protocol` query parameter, ignoring every other parameter.
pub fn check_protocol(query: &str) -> Result<u32, CloseCode> {
    let value = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "protocol")
        .map(|(_, v)| v.into_owned())
        .ok_or(CloseCode::NoProtocol)?;
    let version: u32 = value.parse().map_err(|_| CloseCode::InvalidVersion)?;
    if PROTOCOLS.contains(&version) {
        Ok(version)
    } else {
        Err(CloseCode::UnsupportedProtocol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_and_without_prefix() {
        assert_eq!(app_key("/app/app-key"), Some("app-key"));
        assert_eq!(app_key("/ws/pusher/app/k1"), Some("k1"));
        assert_eq!(app_key("/app/"), None);
        assert_eq!(app_key("/app/a/b"), None);
        assert_eq!(app_key("/apps/x"), None);
        assert_eq!(app_key("/"), None);
    }

    #[test]
    fn protocol_versions() {
        assert_eq!(check_protocol("protocol=7&client=js&version=8.4.0&flash=false"), Ok(7));
        assert_eq!(check_protocol("client=js"), Err(CloseCode::NoProtocol));
        assert_eq!(check_protocol("protocol=seven"), Err(CloseCode::InvalidVersion));
        assert_eq!(check_protocol("protocol=3"), Err(CloseCode::UnsupportedProtocol));
        assert_eq!(check_protocol("protocol=8"), Err(CloseCode::UnsupportedProtocol));
    }
}
