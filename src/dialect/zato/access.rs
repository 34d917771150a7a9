//! Who may do what: endpoints found by their HTTP Basic Auth credentials (or a WSX
//! `create-session`'s username and secret), compared in constant time, and their `pub=` /
//! `sub=` topic patterns, globs as Zato's (globre): `*` matches within one `/` segment, `**`
//! across segments, `?` one character other than `/`.

use crate::{config::zato::EndpointConfig, crypto};
use base64::Engine;

/// The endpoints of the config, looked up by credentials.
#[derive(Debug, Clone)]
pub struct Endpoints {
    list: Vec<EndpointConfig>,
}

impl Endpoints {
    pub fn new(list: &[EndpointConfig]) -> Endpoints {
        Endpoints { list: list.to_vec() }
    }

    pub fn get(&self, index: usize) -> Option<&EndpointConfig> {
        self.list.get(index)
    }

    /// The index of the endpoint named `name`.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.list.iter().position(|e| e.name == name)
    }

    /// The active endpoint with these credentials.
    pub fn login(&self, username: &str, password: &str) -> Option<usize> {
        let index = self.list.iter().position(|e| e.username == username)?;
        let endpoint = &self.list[index];
        (endpoint.active && crypto::same(&endpoint.password, password)).then_some(index)
    }

    /// The endpoint an `Authorization: Basic ...` header logs in as.
    pub fn basic(&self, header: Option<&str>) -> Option<usize> {
        let (username, password) = basic_credentials(header?)?;
        self.login(&username, &password)
    }
}

/// The user name and password of a Basic Auth header value.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The first of `patterns` that `topic` matches.
pub fn matched<'a>(patterns: &'a [String], topic: &str) -> Option<&'a str> {
    patterns.iter().find(|p| glob(p.as_bytes(), topic.as_bytes())).map(String::as_str)
}

/// Whether `name` matches `pattern` (see the module header).
pub fn glob(pattern: &[u8], name: &[u8]) -> bool {
    // can[j]: the pattern read so far matches name[..j].
    let mut can = vec![false; name.len() + 1];
    can[0] = true;
    let mut i = 0;
    while i < pattern.len() {
        let mut next = vec![false; name.len() + 1];
        match pattern[i] {
            b'*' if pattern.get(i + 1) == Some(&b'*') => {
                let mut reached = false;
                for j in 0..=name.len() {
                    reached |= can[j];
                    next[j] = reached;
                }
                i += 1;
            }
            b'*' => {
                for j in 0..=name.len() {
                    next[j] = can[j] || (j > 0 && next[j - 1] && name[j - 1] != b'/');
                }
            }
            b'?' => {
                for j in 1..=name.len() {
                    next[j] = can[j - 1] && name[j - 1] != b'/';
                }
            }
            literal => {
                for j in 1..=name.len() {
                    next[j] = can[j - 1] && name[j - 1] == literal;
                }
            }
        }
        can = next;
        i += 1;
    }
    can[name.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(pattern: &str, name: &str) -> bool {
        glob(pattern.as_bytes(), name.as_bytes())
    }

    #[test]
    fn globs_match_as_zatos_patterns() {
        assert!(g("/zato/demo/*", "/zato/demo/sample"));
        assert!(!g("/zato/demo/*", "/zato/demo/a/b"));
        assert!(g("/zato/demo/**", "/zato/demo/a/b"));
        assert!(g("/customer/*/new", "/customer/uk/new"));
        assert!(!g("/customer/*/new", "/customer/uk/old"));
        assert!(g("/a/?", "/a/b") && !g("/a/?", "/a/bc") && !g("/a?", "/a/"));
        assert!(g("**", "/anything/at/all") && g("/exact", "/exact") && !g("/exact", "/exac"));
        assert!(g("/x/*", "/x/") && !g("", "/x"));
    }

    #[test]
    fn basic_auth_finds_active_endpoints_only() {
        let endpoint = |name: &str, active| EndpointConfig {
            name: name.into(),
            username: format!("{name}-user"),
            password: "secret".into(),
            active,
            ..EndpointConfig::default()
        };
        let endpoints = Endpoints::new(&[endpoint("a", true), endpoint("b", false)]);
        let header = |user: &str, pass: &str| {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            format!("Basic {encoded}")
        };
        assert_eq!(endpoints.basic(Some(&header("a-user", "secret"))), Some(0));
        assert_eq!(endpoints.basic(Some(&header("a-user", "wrong"))), None);
        assert_eq!(endpoints.basic(Some(&header("b-user", "secret"))), None);
        assert_eq!(endpoints.basic(Some("Bearer x")), None);
        assert_eq!(endpoints.basic(None), None);
    }
}
