//! The opening handshake: read just enough of the first request to decide whether it is a
//! WebSocket upgrade (handled here, never by hyper) or a REST call (handed to hyper with the bytes
//! already read), and for upgrades produce tungstenite's accept key and the 101 answer.

use tungstenite::handshake::derive_accept_key;

/// Longest request head we read before deciding. Larger heads are refused. The REST server
/// applies the same limit to every later request on a keep-alive connection.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers in a request head (hyper's default, which the REST server keeps for later
/// requests): upgrades through proxies carry several dozen.
pub const MAX_HEADERS: usize = 100;

/// What the first request on a connection asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Opening {
    /// A valid WebSocket upgrade; `response` is the 101 answer to write.
    Upgrade(Upgrade),
    /// A WebSocket upgrade that is malformed (not a GET, no key): answer 400 over HTTP.
    BadUpgrade(&'static str),
    /// A WebSocket upgrade for a version we do not speak: 400 naming ours (RFC 6455 4.4).
    BadVersion,
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
    #[error("too many headers (more than {MAX_HEADERS})")]
    TooManyHeaders,
}

impl HeadError {
    /// The HTTP status refusing such a head.
    pub fn status(&self) -> &'static str {
        match self {
            HeadError::Malformed => "400 Bad Request",
            HeadError::TooLarge | HeadError::TooManyHeaders => {
                "431 Request Header Fields Too Large"
            }
        }
    }
}

/// Reads the request head at the start of `buf`: `Ok(None)` means more bytes are needed.
/// On success also returns the head's length.
pub fn read_opening(buf: &[u8]) -> Result<Option<(Opening, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
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
    if header("sec-websocket-version").map(str::trim) != Some("13") {
        return Ok(Some((Opening::BadVersion, len)));
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
    http_error_with(status, message, &[])
}

/// [`http_error`] with extra header lines (`Name: value`).
pub fn http_error_with(status: &str, message: &str, extra: &[&str]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        message.len()
    );
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.push_str(message);
    head.into_bytes()
}

/// The answer to an upgrade for a WebSocket version other than 13.
pub fn bad_version() -> Vec<u8> {
    http_error_with(
        "400 Bad Request",
        "Sec-WebSocket-Version must be 13",
        &["Sec-WebSocket-Version: 13"],
    )
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
        assert_eq!(got, Opening::BadVersion);
        assert!(
            String::from_utf8_lossy(&bad_version()).contains("\r\nSec-WebSocket-Version: 13\r\n")
        );
        assert_eq!(read_opening(b"\x00\x01garbage\r\n\r\n"), Err(HeadError::Malformed));
        let huge = vec![b'a'; MAX_HEAD + 1];
        assert!(read_opening(&huge).is_err());
    }

    #[test]
    fn header_count_is_limited_for_its_own_reason() {
        let many: String = (0..60).map(|i| format!("X-Hop-{i}: 1\r\n")).collect();
        let proxied = UPGRADE.replace("Host: x\r\n", &format!("Host: x\r\n{many}"));
        assert!(matches!(read_opening(proxied.as_bytes()), Ok(Some((Opening::Upgrade(_), _)))));
        let flood = format!("GET / HTTP/1.1\r\n{}\r\n", "a:1\r\n".repeat(MAX_HEADERS + 1));
        assert!(flood.len() < MAX_HEAD);
        assert_eq!(read_opening(flood.as_bytes()), Err(HeadError::TooManyHeaders));
    }
}
