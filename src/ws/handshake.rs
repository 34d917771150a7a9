//! The opening handshake: read just enough of the first request to decide whether it is a
//! WebSocket upgrade (handled here, never by hyper) or a REST call (handed to hyper with the bytes
//! already read), and for upgrades produce tungstenite's accept key and the 101 answer.

use tungstenite::handshake::derive_accept_key;

/// Longest request head we read before deciding. Larger heads are refused.
pub const MAX_HEAD: usize = 8 * 1024;

/// What the first request on a connection asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Opening {
    /// A valid WebSocket upgrade; `response` is the 101 answer to write.
    Upgrade(Upgrade),
    /// A WebSocket upgrade that is malformed (bad version, no key): answer 400 over HTTP.
    BadUpgrade(&'static str),
    /// A plain HTTP request: hand the bytes to the REST server.
    Http,
}

/// A WebSocket upgrade request, with the parts the dialects route and admit on.
#[derive(Debug, PartialEq, Eq)]
pub struct Upgrade {
    pub path: String,
    pub query: String,
    pub origin: Option<String>,
    /// Every header, names lowercased, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The `Sec-WebSocket-Accept` value answering the client's key.
    pub accept: String,
}

impl Upgrade {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The 101 answer, with `extra` headers (a negotiated extension or subprotocol).
    pub fn response(&self, extra: &[(String, String)]) -> Vec<u8> {
        let mut text = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            self.accept
        );
        for (name, value) in extra {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        text.into_bytes()
    }
}

/// A head we cannot read at all.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed HTTP request head")]
    Malformed,
    #[error("request head larger than {MAX_HEAD} bytes")]
    TooLarge,
}

/// Reads the request head at the start of `buf`: `Ok(None)` means more bytes are needed.
/// On success also returns the head's length.
pub fn read_opening(buf: &[u8]) -> Result<Option<(Opening, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let wants_ws = header("upgrade").is_some_and(|v| has_token(v, "websocket"));
    if !wants_ws {
        return Ok(Some((Opening::Http, len)));
    }
    if req.method != Some("GET") {
        return Ok(Some((Opening::BadUpgrade("WebSocket upgrade must be a GET"), len)));
    }
    if header("sec-websocket-version") != Some("13") {
        return Ok(Some((Opening::BadUpgrade("Sec-WebSocket-Version must be 13"), len)));
    }
    let Some(key) = header("sec-websocket-key") else {
        return Ok(Some((Opening::BadUpgrade("missing Sec-WebSocket-Key"), len)));
    };
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_string()))
        .collect();
    let upgrade = Upgrade {
        path: path.to_string(),
        query: query.to_string(),
        origin: header("origin").map(str::to_string),
        headers,
        accept: derive_accept_key(key.trim().as_bytes()),
    };
    Ok(Some((Opening::Upgrade(upgrade), len)))
}

fn has_token(value: &str, token: &str) -> bool {
    value.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// A minimal HTTP error answer for requests refused before hyper sees them.
pub fn http_error(status: &str, message: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{message}",
        message.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET /prefix/app/app-key?protocol=7&client=js&flash=false HTTP/1.1\r\n\
        Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn upgrade_gets_the_rfc_accept_key() {
        let (opening, len) = read_opening(UPGRADE.as_bytes()).expect("ok").expect("complete");
        assert_eq!(len, UPGRADE.len());
        let Opening::Upgrade(up) = opening else { panic!("not an upgrade: {opening:?}") };
        assert_eq!(up.path, "/prefix/app/app-key");
        assert_eq!(up.query, "protocol=7&client=js&flash=false");
        assert_eq!(up.header("host"), Some("x"));
        let text = String::from_utf8(up.response(&[])).expect("ascii");
        // The accept value from RFC 6455 section 1.3.
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.starts_with("HTTP/1.1 101 "));
    }

    #[test]
    fn partial_head_needs_more() {
        for cut in 0..UPGRADE.len() - 1 {
            assert_eq!(read_opening(&UPGRADE.as_bytes()[..cut]), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn plain_requests_go_to_http() {
        let req = b"POST /apps/1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
        let (opening, len) = read_opening(req).expect("ok").expect("complete");
        assert_eq!(opening, Opening::Http);
        assert_eq!(len, req.len() - 2);
    }

    #[test]
    fn bad_upgrades_and_garbage() {
        let no_key = UPGRADE.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
        let got = read_opening(no_key.as_bytes()).expect("ok").expect("complete").0;
        assert!(matches!(got, Opening::BadUpgrade(_)));
        let old = UPGRADE.replace("Version: 13", "Version: 8");
        let got = read_opening(old.as_bytes()).expect("ok").expect("complete").0;
        assert!(matches!(got, Opening::BadUpgrade(_)));
        assert_eq!(read_opening(b"\x00\x01garbage\r\n\r\n"), Err(HeadError::Malformed));
        let huge = vec![b'a'; MAX_HEAD + 1];
        assert!(read_opening(&huge).is_err());
    }
}
