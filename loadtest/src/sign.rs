//! Pusher REST API request signing (auth_version 1.0: body_md5 + HMAC-SHA256 over method, path and sorted query).

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

/// Application credentials used to sign REST requests.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub app_id: String,
    pub key: String,
    pub secret: String,
}

/// Hex MD5 of a request body, as sent in `body_md5`.
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// The string that gets HMAC'd: `METHOD\nPATH\nk=v&k=v` with keys sorted, not URL-escaped.
pub fn string_to_sign(method: &str, path: &str, params: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> =
        params.iter().filter(|(k, _)| *k != "auth_signature").collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let query: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{method}\n{path}\n{}", query.join("&"))
}

/// Hex HMAC-SHA256 of `data` keyed with `secret`.
pub fn hmac_hex(secret: &str, data: &str) -> String {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(data.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Path and signed query string (`/apps/{id}/events?auth_key=...&auth_signature=...`) for a POST of `body`.
pub fn signed_events_uri(creds: &Credentials, body: &[u8], timestamp: u64) -> String {
    let path = format!("/apps/{}/events", creds.app_id);
    let params = vec![
        ("auth_key", creds.key.clone()),
        ("auth_timestamp", timestamp.to_string()),
        ("auth_version", "1.0".to_string()),
        ("body_md5", body_md5(body)),
    ];
    let to_sign = string_to_sign("POST", &path, &params);
    let sig = hmac_hex(&creds.secret, &to_sign);
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}&auth_signature={sig}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;

    #[test]
    fn body_md5_matches_known_vector() {
        assert_eq!(body_md5(BODY.as_bytes()), "ec365a775a4cd0599faeb73354201b6f");
    }

    #[test]
    fn string_to_sign_is_sorted_and_unescaped() {
        let params = vec![
            ("body_md5", "ec365a775a4cd0599faeb73354201b6f".to_string()),
            ("auth_version", "1.0".to_string()),
            ("auth_key", "278d425bdf160c739803".to_string()),
            ("auth_timestamp", "1353088179".to_string()),
            ("auth_signature", "ignored".to_string()),
        ];
        assert_eq!(
            string_to_sign("POST", "/apps/3/events", &params),
            "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179\
             &auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
        );
    }

    #[test]
    fn signature_matches_known_vector() {
        let to_sign =
            "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179\
                       &auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f";
        assert_eq!(
            hmac_hex("7ad3773142a6692b25b8", to_sign),
            "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
    }

    #[test]
    fn signed_uri_carries_expected_signature() {
        let creds = Credentials {
            app_id: "3".into(),
            key: "278d425bdf160c739803".into(),
            secret: "7ad3773142a6692b25b8".into(),
        };
        let uri = signed_events_uri(&creds, BODY.as_bytes(), 1353088179);
        assert_eq!(
            uri,
            "/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179\
             &auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f\
             &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
    }
}
