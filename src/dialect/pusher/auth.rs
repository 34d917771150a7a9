//! Channel authorization and user sign-in signatures: `auth` is `key:hex(HMAC-SHA256(secret,
//! string_to_sign))`, compared in constant time.
//!
//! - private and private-encrypted: `socket_id:channel`
//! - presence: `socket_id:channel:channel_data` (the exact string the client sent)
//! - sign-in: `socket_id::user::user_data`

use crate::{
    config::AppConfig,
    crypto::{hmac_hex, same},
};

/// Why an `auth` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Missing auth")]
    Missing,
    #[error("Invalid key in auth: it must start with the app key")]
    WrongKey,
    #[error("Invalid signature: Expected HMAC SHA256 hex digest of {0}, but got {1}")]
    BadSignature(String, String),
}

/// Checks `auth` against the string the server signs itself.
pub fn check(app: &AppConfig, auth: Option<&str>, string_to_sign: &str) -> Result<(), AuthError> {
    let auth = auth.filter(|a| !a.is_empty()).ok_or(AuthError::Missing)?;
    let (key, signature) = auth.split_once(':').ok_or(AuthError::WrongKey)?;
    if key != app.key {
        return Err(AuthError::WrongKey);
    }
    if same(&hmac_hex(&app.secret, string_to_sign), signature) {
        Ok(())
    } else {
        let what = string_to_sign.split(':').take(2).collect::<Vec<_>>().join(":");
        Err(AuthError::BadSignature(format!("{what}[...]"), signature.to_string()))
    }
}

/// The string a private or encrypted channel's auth signs.
pub fn channel_string(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    match channel_data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    }
}

/// The string a sign-in's auth signs.
pub fn signin_string(socket_id: &str, user_data: &str) -> String {
    format!("{socket_id}::user::{user_data}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppConfig {
        AppConfig {
            key: "278d425bdf160c739803".into(),
            secret: "7ad3773142a6692b25b8".into(),
            ..AppConfig::default()
        }
    }

    #[test]
    fn pusher_documented_vectors() {
        let private =
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
        let s = channel_string("1234.1234", "private-foobar", None);
        assert_eq!(check(&app(), Some(private), &s), Ok(()));
        let data = r#"{"user_id":10,"user_info":{"name":"Mr. Pusher"}}"#;
        let s = channel_string("1234.1234", "presence-foobar", Some(data));
        let presence = format!("278d425bdf160c739803:{}", hmac_hex("7ad3773142a6692b25b8", &s));
        assert!(
            presence.ends_with("afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c")
        );
        assert_eq!(check(&app(), Some(&presence), &s), Ok(()));
        let user =
            "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba";
        let s = signin_string("1234.1234", r#"{"id":"12345"}"#);
        assert_eq!(check(&app(), Some(user), &s), Ok(()));
    }

    #[test]
    fn refusals() {
        let s = channel_string("1.2", "private-x", None);
        assert_eq!(check(&app(), None, &s), Err(AuthError::Missing));
        assert_eq!(check(&app(), Some(""), &s), Err(AuthError::Missing));
        assert_eq!(check(&app(), Some("nocolon"), &s), Err(AuthError::WrongKey));
        assert_eq!(check(&app(), Some("other:abc"), &s), Err(AuthError::WrongKey));
        let good = format!("{}:{}", app().key, hmac_hex(&app().secret, &s));
        // A signature for another socket or channel does not pass.
        let other = channel_string("1.3", "private-x", None);
        assert!(matches!(check(&app(), Some(&good), &other), Err(AuthError::BadSignature(..))));
        // Tampered channel_data does not pass.
        let signed = channel_string("1.2", "presence-r", Some(r#"{"user_id":"1"}"#));
        let auth = format!("{}:{}", app().key, hmac_hex(&app().secret, &signed));
        let tampered = channel_string("1.2", "presence-r", Some(r#"{"user_id":"2"}"#));
        assert!(check(&app(), Some(&auth), &tampered).is_err());
    }
}
