//! Endpoint URLs as the operator wrote them may carry credentials: userinfo
//! (`http://user:password@host/`) and query tokens (`?token=...`). This module shows a URL
//! without them, for `/metrics` labels and log lines, and turns userinfo into the Basic
//! credentials a request sends.

use base64::Engine;

/// What replaces each query value.
const HIDDEN: &str = "redacted";

/// `url` without its userinfo, with every query value replaced and no fragment; scheme, host,
/// port, path and query names stay, so the endpoint is still recognizable.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut shown = if scheme.is_empty() { String::new() } else { format!("{scheme}://") };
    shown.push_str(host);
    shown.push_str(path);
    if !query.is_empty() {
        let names: Vec<String> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}={HIDDEN}"),
                None => pair.to_string(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&names.join("&"));
    }
    shown
}

/// The `Authorization: Basic ...` value for a URL's userinfo (percent-decoded), if it has any.
pub fn basic_auth(authority: &str) -> Option<String> {
    let (userinfo, _) = authority.rsplit_once('@')?;
    let decoded = percent_encoding::percent_decode_str(userinfo).decode_utf8_lossy();
    let token = base64::engine::general_purpose::STANDARD.encode(decoded.as_bytes());
    Some(format!("Basic {token}"))
}

/// The authority without its userinfo: what the Host header says.
pub fn host_port(authority: &str) -> &str {
    authority.rsplit_once('@').map_or(authority, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_removed_and_the_endpoint_stays_recognizable() {
        let url = "http://hookuser:s3cret@127.0.0.1:8080/pusher/hook?token=t0p&v=2#frag";
        assert_eq!(redact(url), "http://127.0.0.1:8080/pusher/hook?token=redacted&v=redacted");
        assert_eq!(redact("https://example.com"), "https://example.com");
        assert_eq!(redact("https://a@example.com/x?flag"), "https://example.com/x?flag");
        assert_eq!(redact("https://u:p@h/p@q"), "https://h/p@q");
    }

    #[test]
    fn userinfo_becomes_basic_credentials() {
        assert_eq!(basic_auth("user:pa%40ss@host:80"), Some("Basic dXNlcjpwYUBzcw==".into()));
        assert_eq!(basic_auth("host:80"), None);
        assert_eq!(host_port("user:pass@host:80"), "host:80");
        assert_eq!(host_port("host"), "host");
    }
}
