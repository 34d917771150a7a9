//! Pusher request signing: `auth_key`, `auth_timestamp` (within 600 s), `auth_version=1.0`,
//! `body_md5` and `auth_signature` = hex HMAC-SHA256 over `METHOD\nPATH\nsorted_query`.
//! Signatures are compared in constant time.

use crate::{
    config::AppConfig,
    crypto::{hmac_hex, same},
};
use md5::{Digest, Md5};

/// How far `auth_timestamp` may be from our clock, in seconds.
pub const MAX_SKEW: i64 = 600;

/// Why a request's signature is refused (all answered with 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("Missing query parameter {0}")]
    Missing(&'static str),
    #[error("Unknown auth_key")]
    UnknownKey,
    #[error("Unsupported auth_version (only 1.0)")]
    BadVersion,
    #[error("Timestamp expired: auth_timestamp must be within {MAX_SKEW} s of the server's clock")]
    Expired,
    #[error("body_md5 does not match the body")]
    BodyMd5,
    #[error("Invalid signature")]
    Signature,
}

/// Verifies a request against `app`. `paths` are the paths the client may have signed (with
/// and without a path prefix); `now` is Unix seconds.
pub fn verify(
    app: &AppConfig,
    method: &str,
    paths: &[&str],
    query: &str,
    body: &[u8],
    now: i64,
) -> Result<(), SignError> {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect();
    let get = |name: &'static str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or(SignError::Missing(name))
    };
    let signature = get("auth_signature")?.to_string();
    if get("auth_key")? != app.key {
        return Err(SignError::UnknownKey);
    }
    if get("auth_version")? != "1.0" {
        return Err(SignError::BadVersion);
    }
    let stamp: i64 = get("auth_timestamp")?.parse().map_err(|_| SignError::Expired)?;
    if now.abs_diff(stamp) > MAX_SKEW as u64 {
        return Err(SignError::Expired);
    }
    match params.iter().find(|(k, _)| k == "body_md5") {
        Some((_, md5)) if !same(md5, &hex::encode(Md5::digest(body))) => {
            return Err(SignError::BodyMd5)
        }
        None if !body.is_empty() => return Err(SignError::Missing("body_md5")),
        _ => {}
    }
    params.retain(|(k, _)| k != "auth_signature");
    params.sort();
    let sorted: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let sorted = sorted.join("&");
    let matches = paths.iter().any(|path| {
        let expected = hmac_hex(&app.secret, &format!("{method}\n{path}\n{sorted}"));
        same(&expected, &signature)
    });
    if matches {
        Ok(())
    } else {
        Err(SignError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    const QUERY: &str = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179\
        &auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f\
        &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";

    fn app() -> AppConfig {
        AppConfig {
            id: "3".into(),
            key: "278d425bdf160c739803".into(),
            secret: "7ad3773142a6692b25b8".into(),
            ..AppConfig::default()
        }
    }

    #[test]
    fn pusher_documented_example_verifies() {
        let ok = verify(&app(), "POST", &["/apps/3/events"], QUERY, BODY.as_bytes(), 1353088179);
        assert_eq!(ok, Ok(()));
    }

    #[test]
    fn auth_signature_vectors() {
        let secret = "7ad3773142a6692b25b8";
        assert_eq!(
            hmac_hex(secret, "1234.1234:private-foobar"),
            "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        assert_eq!(
            hmac_hex(secret, "1234.1234::user::{\"id\":\"12345\"}"),
            "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
        );
    }

    #[test]
    fn each_failure_is_named() {
        let t = 1353088179;
        let p = ["/apps/3/events"];
        let body = BODY.as_bytes();
        let wrong_secret = AppConfig { secret: "nope".into(), ..app() };
        assert_eq!(verify(&wrong_secret, "POST", &p, QUERY, body, t), Err(SignError::Signature));
        assert_eq!(verify(&app(), "POST", &p, QUERY, body, t + 601), Err(SignError::Expired));
        assert_eq!(verify(&app(), "POST", &p, QUERY, body, t - 601), Err(SignError::Expired));
        assert_eq!(verify(&app(), "POST", &p, QUERY, b"{}", t), Err(SignError::BodyMd5));
        assert_eq!(verify(&app(), "GET", &p, QUERY, body, t), Err(SignError::Signature));
        assert_eq!(
            verify(&app(), "POST", &["/apps/4/events"], QUERY, body, t),
            Err(SignError::Signature)
        );
        let other_key = QUERY.replace("auth_key=278d", "auth_key=999d");
        assert_eq!(verify(&app(), "POST", &p, &other_key, body, t), Err(SignError::UnknownKey));
        let no_md5 = QUERY.replace("&body_md5=ec365a775a4cd0599faeb73354201b6f", "");
        assert_eq!(
            verify(&app(), "POST", &p, &no_md5, body, t),
            Err(SignError::Missing("body_md5"))
        );
        let v2 = QUERY.replace("auth_version=1.0", "auth_version=2.0");
        assert_eq!(verify(&app(), "POST", &p, &v2, body, t), Err(SignError::BadVersion));
        let unsigned = "auth_key=278d425bdf160c739803";
        assert_eq!(
            verify(&app(), "POST", &p, unsigned, body, t),
            Err(SignError::Missing("auth_signature"))
        );
    }

    #[test]
    fn extreme_timestamps_are_expired_not_a_panic() {
        // Found by the rest_sign fuzz target: `(now - stamp).abs()` overflowed.
        let q = "auth_signature=x&auth_key=278d425bdf160c739803&auth_version=1.0\
                 &auth_timestamp=-9223372036854775808";
        assert_eq!(
            verify(&app(), "POST", &["/apps/3/events"], q, b"", 1353088179),
            Err(SignError::Expired)
        );
        let q = q.replace("-9223372036854775808", "9223372036854775807");
        assert_eq!(
            verify(&app(), "POST", &["/apps/3/events"], &q, b"", -5),
            Err(SignError::Expired)
        );
    }

    #[test]
    fn prefixed_path_may_be_signed_without_prefix() {
        let ok = verify(
            &app(),
            "POST",
            &["/pusher/apps/3/events", "/apps/3/events"],
            QUERY,
            BODY.as_bytes(),
            1353088179,
        );
        assert_eq!(ok, Ok(()));
    }
}
