//! Client frame decoding and server frame encoding. Headers are parsed and formatted by
//! tungstenite; this module adds limits, unmasking and fragment reassembly, and never allocates
//! for a frame it can refuse first.

use std::io::Cursor;
use tungstenite::protocol::frame::{
    coding::{Control, Data, OpCode},
    FrameHeader,
};

/// Why a client's bytes cannot be a WebSocket stream we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("malformed frame header")]
    BadHeader,
    #[error("client frames must be masked")]
    Unmasked,
    #[error("reserved bits set without an extension")]
    Reserved,
    #[error("message larger than the limit")]
    TooBig,
    #[error("continuation frame without a message to continue")]
    StrayContinuation,
    #[error("new data frame while a fragmented message is open")]
    InterleavedMessage,
    #[error("control frame fragmented or longer than 125 bytes")]
    BadControl,
    #[error("text message is not UTF-8")]
    NotUtf8,
    #[error("close frame with a code no endpoint may send, or a 1-byte payload")]
    BadCloseCode,
}

/// One complete thing a client said.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A whole text message (reassembled if it came in fragments).
    Text(&'a mut [u8]),
    /// A whole binary message. Pusher does not use them; dialects refuse them.
    Binary(&'a mut [u8]),
    Ping(&'a [u8]),
    Pong,
    /// The close code the client sent, if any.
    Close(Option<u16>),
}

/// Reassembly state of one connection: empty (no allocation) unless a message is fragmented.
#[derive(Debug, Default)]
pub struct Reassembly {
    buf: Vec<u8>,
    opcode: Option<Data>,
}

/// Decodes the next frame at the start of `input`.
///
/// Returns `Ok(None)` when more bytes are needed (nothing consumed), otherwise the number of
/// bytes consumed and, when a message completed, the message. Payloads are unmasked in place.
pub fn decode<'a>(
    input: &'a mut [u8],
    reassembly: &'a mut Reassembly,
    max_message: usize,
) -> Result<Option<(usize, Option<Message<'a>>)>, FrameError> {
    let mut cursor = Cursor::new(&input[..]);
    let (header, len) = match FrameHeader::parse(&mut cursor) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(None),
        Err(_) => return Err(FrameError::BadHeader),
    };
    let start = cursor.position() as usize;
    if header.rsv1 || header.rsv2 || header.rsv3 {
        return Err(FrameError::Reserved);
    }
    let mask = header.mask.ok_or(FrameError::Unmasked)?;
    if let OpCode::Control(_) = header.opcode {
        // Refused from the header: a control frame is never buffered past 125 bytes.
        if !header.is_final || len > 125 {
            return Err(FrameError::BadControl);
        }
    }
    if len > max_message as u64 {
        return Err(FrameError::TooBig);
    }
    let len = len as usize;
    if input.len() - start < len {
        return Ok(None);
    }
    let end = start + len;
    let payload = &mut input[start..end];
    unmask(payload, mask);
    let message = match header.opcode {
        OpCode::Control(control) => {
            if !header.is_final || len > 125 {
                return Err(FrameError::BadControl);
            }
            match control {
                Control::Ping => Some(Message::Ping(payload)),
                Control::Pong => Some(Message::Pong),
                Control::Close => Some(Message::Close(close_code(payload)?)),
                Control::Reserved(_) => return Err(FrameError::BadControl),
            }
        }
        OpCode::Data(data) => data_frame(data, header.is_final, payload, reassembly, max_message)?,
    };
    Ok(Some((end, message)))
}

fn data_frame<'a>(
    data: Data,
    is_final: bool,
    payload: &'a mut [u8],
    reassembly: &'a mut Reassembly,
    max_message: usize,
) -> Result<Option<Message<'a>>, FrameError> {
    let opcode = match (data, reassembly.opcode) {
        (Data::Continue, None) => return Err(FrameError::StrayContinuation),
        (Data::Continue, Some(open)) => open,
        (Data::Text | Data::Binary, Some(_)) => return Err(FrameError::InterleavedMessage),
        (Data::Text, None) => Data::Text,
        (Data::Binary, None) => Data::Binary,
        (Data::Reserved(_), _) => return Err(FrameError::BadHeader),
    };
    if is_final && reassembly.opcode.is_none() {
        return finish(opcode, payload);
    }
    if reassembly.buf.len() + payload.len() > max_message {
        return Err(FrameError::TooBig);
    }
    reassembly.buf.extend_from_slice(payload);
    reassembly.opcode = Some(opcode);
    if !is_final {
        return Ok(None);
    }
    reassembly.opcode = None;
    finish(opcode, &mut reassembly.buf)
}

fn finish(opcode: Data, payload: &mut [u8]) -> Result<Option<Message<'_>>, FrameError> {
    match opcode {
        Data::Text => {
            std::str::from_utf8(payload).map_err(|_| FrameError::NotUtf8)?;
            Ok(Some(Message::Text(payload)))
        }
        _ => Ok(Some(Message::Binary(payload))),
    }
}

impl Reassembly {
    /// Frees the buffer of a message that just completed, so idle connections hold none.
    pub fn release(&mut self) {
        if self.opcode.is_none() && self.buf.capacity() > 0 {
            self.buf = Vec::new();
        }
    }

    /// No message under way and no buffer held.
    pub fn is_idle(&self) -> bool {
        self.opcode.is_none() && self.buf.capacity() == 0
    }
}

/// The code of a client's close frame (None: no payload). RFC 6455 section 7.4: a 1-byte
/// payload, a code under 1000, one of the codes no endpoint may send (1004-1006, 1015) or an
/// unassigned one (1016-2999, 5000 up) is a protocol error; the reason must be UTF-8.
fn close_code(payload: &[u8]) -> Result<Option<u16>, FrameError> {
    let (code, reason) = match payload {
        [] => return Ok(None),
        [_] => return Err(FrameError::BadCloseCode),
        [high, low, reason @ ..] => (u16::from_be_bytes([*high, *low]), reason),
    };
    let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !valid {
        return Err(FrameError::BadCloseCode);
    }
    std::str::from_utf8(reason).map_err(|_| FrameError::NotUtf8)?;
    Ok(Some(code))
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// Encodes an unmasked server frame: header then payload, in one buffer.
pub fn encode(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader { opcode, ..FrameHeader::default() };
    let mut out = Vec::with_capacity(header.len(payload.len() as u64) + payload.len());
    // Writing into a Vec cannot fail.
    let _ = header.format(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// A client frame as a browser sends it: `first` is the first header byte (FIN bit and opcode),
/// the payload masked with a fixed key. The server never sends one; tests, benches and fuzz
/// seeds use it to speak as a client.
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(first);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

/// A server text frame.
pub fn text(payload: &[u8]) -> Vec<u8> {
    encode(OpCode::Data(Data::Text), payload)
}

/// A server close frame with a code and reason.
pub fn close(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    encode(OpCode::Control(Control::Close), &payload)
}

/// A server pong answering a ping's payload.
pub fn pong(payload: &[u8]) -> Vec<u8> {
    encode(OpCode::Control(Control::Pong), payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_masked_text_frame() {
        let mut bytes = client_frame(0x81, b"{\"event\":\"pusher:ping\"}");
        let total = bytes.len();
        let mut r = Reassembly::default();
        let (used, msg) = decode(&mut bytes, &mut r, 1024).expect("valid").expect("complete");
        assert_eq!(used, total);
        assert_eq!(msg, Some(Message::Text(&mut b"{\"event\":\"pusher:ping\"}".to_vec()[..])));
    }

    #[test]
    fn needs_more_bytes_without_consuming() {
        let bytes = client_frame(0x81, b"hello");
        let mut r = Reassembly::default();
        for cut in 0..bytes.len() {
            let mut part = bytes[..cut].to_vec();
            assert_eq!(decode(&mut part, &mut r, 1024), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn refuses_unmasked_and_reserved_bits() {
        let mut r = Reassembly::default();
        let mut unmasked = vec![0x81, 0x02, b'h', b'i'];
        assert_eq!(decode(&mut unmasked, &mut r, 1024), Err(FrameError::Unmasked));
        let mut rsv = client_frame(0xC1, b"hi");
        assert_eq!(decode(&mut rsv, &mut r, 1024), Err(FrameError::Reserved));
    }

    #[test]
    fn refuses_oversized_before_reading_payload() {
        let mut bytes = client_frame(0x81, &[b'a'; 200]);
        bytes.truncate(10); // the payload has not arrived: the header alone is enough to refuse
        let mut r = Reassembly::default();
        assert_eq!(decode(&mut bytes, &mut r, 100), Err(FrameError::TooBig));
    }

    #[test]
    fn reassembles_fragments_and_answers_pings_between_them() {
        let mut r = Reassembly::default();
        let mut first = client_frame(0x01, b"hel");
        assert_eq!(decode(&mut first, &mut r, 1024).expect("ok").expect("frame").1, None);
        let mut ping = client_frame(0x89, b"p");
        let got = decode(&mut ping, &mut r, 1024).expect("ok").expect("frame").1;
        assert_eq!(got, Some(Message::Ping(b"p")));
        let mut last = client_frame(0x80, b"lo");
        let got = decode(&mut last, &mut r, 1024).expect("ok").expect("frame").1;
        assert_eq!(got, Some(Message::Text(&mut b"hello".to_vec()[..])));
        r.release();
        assert_eq!(r.buf.capacity(), 0);
    }

    #[test]
    fn fragment_total_is_limited() {
        let mut r = Reassembly::default();
        let mut first = client_frame(0x01, &[b'a'; 60]);
        decode(&mut first, &mut r, 100).expect("first fits");
        let mut second = client_frame(0x80, &[b'a'; 60]);
        assert_eq!(decode(&mut second, &mut r, 100), Err(FrameError::TooBig));
    }

    #[test]
    fn protocol_violations() {
        let mut r = Reassembly::default();
        let mut stray = client_frame(0x80, b"x");
        assert_eq!(decode(&mut stray, &mut r, 1024), Err(FrameError::StrayContinuation));
        let mut bad_utf8 = client_frame(0x81, &[0xff, 0xfe]);
        assert_eq!(decode(&mut bad_utf8, &mut r, 1024), Err(FrameError::NotUtf8));
        let mut long_ping = client_frame(0x89, &[0u8; 126]);
        assert_eq!(decode(&mut long_ping, &mut r, 1024), Err(FrameError::BadControl));
        // Refused from its header alone, before the 1,000 bytes it announces arrive.
        let mut long_close_head = client_frame(0x88, &[0u8; 1000])[..8].to_vec();
        assert_eq!(decode(&mut long_close_head, &mut r, 4096), Err(FrameError::BadControl));
        let mut open = client_frame(0x01, b"a");
        decode(&mut open, &mut r, 1024).expect("opens");
        let mut interleaved = client_frame(0x81, b"b");
        assert_eq!(decode(&mut interleaved, &mut r, 1024), Err(FrameError::InterleavedMessage));
    }

    #[test]
    fn close_frames_carry_their_code() {
        let mut r = Reassembly::default();
        let mut close_frame = client_frame(0x88, &[0x03, 0xE8]);
        let got = decode(&mut close_frame, &mut r, 1024).expect("ok").expect("frame").1;
        assert_eq!(got, Some(Message::Close(Some(1000))));
        let mut empty = client_frame(0x88, &[]);
        let got = decode(&mut empty, &mut r, 1024).expect("ok").expect("frame").1;
        assert_eq!(got, Some(Message::Close(None)));
    }

    #[test]
    fn invalid_close_frames_are_protocol_errors() {
        let mut r = Reassembly::default();
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
            let mut frame = client_frame(0x88, &code.to_be_bytes());
            assert_eq!(decode(&mut frame, &mut r, 1024), Err(FrameError::BadCloseCode), "{code}");
        }
        let mut one_byte = client_frame(0x88, &[3]);
        assert_eq!(decode(&mut one_byte, &mut r, 1024), Err(FrameError::BadCloseCode));
        let mut bad_reason = client_frame(0x88, &[0x03, 0xE8, 0xff]);
        assert_eq!(decode(&mut bad_reason, &mut r, 1024), Err(FrameError::NotUtf8));
        for code in [1000u16, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
            let mut frame = client_frame(0x88, &code.to_be_bytes());
            assert!(decode(&mut frame, &mut r, 1024).is_ok(), "{code}");
        }
    }

    #[test]
    fn encodes_server_frames() {
        assert_eq!(text(b"hi"), vec![0x81, 0x02, b'h', b'i']);
        let long = text(&[b'x'; 300]);
        assert_eq!(&long[..4], &[0x81, 126, 0x01, 0x2C]);
        assert_eq!(long.len(), 304);
        assert_eq!(close(4100, "Over capacity")[..4], [0x88, 15, 0x10, 0x04]);
        assert_eq!(pong(b"p"), vec![0x8A, 0x01, b'p']);
    }
}
