//! gRPC over HTTP/2 as bytes and header values, shared by our client and server: the 5-byte
//! message prefix (compressed flag, u32 big-endian length), the status codes, and the
//! `grpc-message` and `grpc-timeout` encodings. No I/O, so it is tested with byte vectors and
//! fuzzed; limits are checked from the prefix, before a message is buffered.

use bytes::{BufMut, Bytes, BytesMut};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use std::time::Duration;

/// Compressed flag plus length.
pub const PREFIX_LEN: usize = 5;
/// The content type of gRPC requests and replies.
pub const CONTENT_TYPE: &str = "application/grpc";

/// A gRPC status code. Unknown numbers are kept as they came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Code(pub u32);

impl Code {
    pub const OK: Code = Code(0);
    pub const CANCELLED: Code = Code(1);
    pub const UNKNOWN: Code = Code(2);
    pub const INVALID_ARGUMENT: Code = Code(3);
    pub const DEADLINE_EXCEEDED: Code = Code(4);
    pub const NOT_FOUND: Code = Code(5);
    pub const ALREADY_EXISTS: Code = Code(6);
    pub const PERMISSION_DENIED: Code = Code(7);
    pub const RESOURCE_EXHAUSTED: Code = Code(8);
    pub const FAILED_PRECONDITION: Code = Code(9);
    pub const ABORTED: Code = Code(10);
    pub const OUT_OF_RANGE: Code = Code(11);
    pub const UNIMPLEMENTED: Code = Code(12);
    pub const INTERNAL: Code = Code(13);
    pub const UNAVAILABLE: Code = Code(14);
    pub const DATA_LOSS: Code = Code(15);
    pub const UNAUTHENTICATED: Code = Code(16);

    /// The `grpc-status` value: the decimal number, or `None` if it is not one.
    pub fn parse(value: &[u8]) -> Option<Code> {
        std::str::from_utf8(value).ok()?.trim().parse().ok().map(Code)
    }
}

/// A message prefix or body that breaks the framing or our limits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message of {len} bytes is over the {max}-byte limit")]
    TooLarge { len: u64, max: usize },
    #[error("compressed messages are not supported")]
    Compressed,
    #[error("bad compressed flag {0}")]
    BadFlag(u8),
    #[error("no message in the body")]
    Missing,
    #[error("the body ends inside a message")]
    Incomplete,
    #[error("more than one message in a unary body")]
    Trailing,
}

impl MessageError {
    /// The status a server answers a request body with this error.
    pub fn code(&self) -> Code {
        match self {
            MessageError::TooLarge { .. } => Code::RESOURCE_EXHAUSTED,
            MessageError::Compressed => Code::UNIMPLEMENTED,
            _ => Code::INTERNAL,
        }
    }
}

/// `message` with its prefix (uncompressed), refusing one over `max` bytes.
pub fn encode(message: &[u8], max: usize) -> Result<Bytes, MessageError> {
    let len = check(message.len() as u64, max)?;
    let mut out = BytesMut::with_capacity(PREFIX_LEN + message.len());
    out.put_u8(0);
    out.put_u32(len);
    out.put_slice(message);
    Ok(out.freeze())
}

/// The first message in `buf` and the bytes it took, or `Ok(None)` until it is all there.
pub fn decode(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, MessageError> {
    let Some(prefix) = buf.get(..PREFIX_LEN) else {
        return Ok(None);
    };
    match prefix[0] {
        0 => {}
        1 => return Err(MessageError::Compressed),
        flag => return Err(MessageError::BadFlag(flag)),
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
    let end = PREFIX_LEN + check(u64::from(len), max)? as usize;
    Ok(buf.get(PREFIX_LEN..end).map(|message| (message, end)))
}

/// The one message of a unary request or reply body.
pub fn decode_unary(body: &[u8], max: usize) -> Result<&[u8], MessageError> {
    if body.is_empty() {
        return Err(MessageError::Missing);
    }
    match decode(body, max)? {
        None => Err(MessageError::Incomplete),
        Some((message, used)) if used == body.len() => Ok(message),
        Some(_) => Err(MessageError::Trailing),
    }
}

fn check(len: u64, max: usize) -> Result<u32, MessageError> {
    match u32::try_from(len) {
        Ok(n) if len <= max as u64 => Ok(n),
        _ => Err(MessageError::TooLarge { len, max }),
    }
}

/// What `grpc-message` percent-encodes: controls, non-ASCII, and `%` itself.
const MESSAGE_ESCAPES: &AsciiSet = &CONTROLS.add(b'%');

/// A status message as sent in `grpc-message`.
pub fn encode_message(text: &str) -> String {
    utf8_percent_encode(text, MESSAGE_ESCAPES).to_string()
}

/// A `grpc-message` value as text (invalid escapes and UTF-8 kept, lossily).
pub fn decode_message(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    percent_decode_str(&text).decode_utf8_lossy().into_owned()
}

/// A `grpc-timeout` value (`1*8DIGIT` then one of `HMSmun`), or `None` if malformed.
pub fn parse_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `timeout` as a `grpc-timeout` value: milliseconds, or coarser units past 8 digits.
pub fn format_timeout(timeout: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let ms = timeout.as_millis();
    if ms <= MAX {
        return format!("{}m", ms.max(1));
    }
    let secs = timeout.as_secs();
    if u128::from(secs) <= MAX {
        format!("{secs}S")
    } else {
        format!("{}H", (secs / 3600).min(MAX as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_flag_then_big_endian_length() {
        let framed = encode(b"\x0a\x03abc", 100).expect("encode");
        assert_eq!(&framed[..], b"\x00\x00\x00\x00\x05\x0a\x03abc");
        assert_eq!(decode(&framed, 100), Ok(Some((&b"\x0a\x03abc"[..], 10))));
        assert_eq!(decode_unary(&framed, 100), Ok(&b"\x0a\x03abc"[..]));
        let long = encode(&[0; 300], 1000).expect("encode");
        assert_eq!(&long[1..5], &[0, 0, 1, 0x2C], "300 big-endian");
    }

    #[test]
    fn decoding_waits_for_the_whole_message() {
        let framed = encode(b"hello", 100).expect("encode");
        for cut in 0..framed.len() {
            assert_eq!(decode(&framed[..cut], 100), Ok(None), "cut at {cut}");
        }
        assert_eq!(decode_unary(&framed[..7], 100), Err(MessageError::Incomplete));
        assert_eq!(decode_unary(b"", 100), Err(MessageError::Missing));
        assert_eq!(decode_unary(&[0, 0, 0, 0, 0], 100), Ok(&b""[..]), "an empty message");
    }

    #[test]
    fn limits_and_flags_are_checked_from_the_prefix() {
        assert_eq!(
            decode(&[0, 0, 0, 0, 101], 100),
            Err(MessageError::TooLarge { len: 101, max: 100 })
        );
        assert_eq!(decode(&[0, 0xFF, 0xFF, 0xFF, 0xFF], usize::MAX), Ok(None));
        assert_eq!(decode(&[1, 0, 0, 0, 0], 100), Err(MessageError::Compressed));
        assert_eq!(decode(&[7, 0, 0, 0, 0], 100), Err(MessageError::BadFlag(7)));
        assert_eq!(encode(&[0; 101], 100), Err(MessageError::TooLarge { len: 101, max: 100 }));
        let mut two = encode(b"a", 100).expect("encode").to_vec();
        two.extend_from_slice(&two.clone());
        assert_eq!(decode_unary(&two, 100), Err(MessageError::Trailing));
        assert_eq!(MessageError::TooLarge { len: 1, max: 0 }.code(), Code::RESOURCE_EXHAUSTED);
    }

    #[test]
    fn status_and_message_headers() {
        assert_eq!(Code::parse(b"0"), Some(Code::OK));
        assert_eq!(Code::parse(b"14"), Some(Code::UNAVAILABLE));
        assert_eq!(Code::parse(b"x"), None);
        let sent = encode_message("bad 100% topic\n\u{e9}");
        assert_eq!(sent, "bad 100%25 topic%0A%C3%A9");
        assert_eq!(decode_message(sent.as_bytes()), "bad 100% topic\n\u{e9}");
        assert_eq!(decode_message(b"50%"), "50%", "a broken escape is kept");
    }

    #[test]
    fn timeouts_in_every_unit() {
        assert_eq!(parse_timeout(b"250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_timeout(b"2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout(b"99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in [&b""[..], b"m", b"123456789m", b"12x", b"-1S", b"1.5S"] {
            assert_eq!(parse_timeout(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(format_timeout(Duration::from_millis(1500)), "1500m");
        assert_eq!(format_timeout(Duration::ZERO), "1m");
        assert_eq!(format_timeout(Duration::from_secs(200_000)), "200000S");
        let text = format_timeout(Duration::from_secs(u64::MAX));
        assert!(parse_timeout(text.as_bytes()).is_some(), "{text}");
    }
}
