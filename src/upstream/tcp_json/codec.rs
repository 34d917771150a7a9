//! The frame of APISIX's length-prefixed TCP upstream ("ms1975"), the same in both directions:
//! magic `0xB7 0x00`, the payload length as a little-endian u32, then that many bytes of JSON.
//!
//! No I/O here, so it is tested with byte vectors and fuzzed: `decode` says `Ok(None)` while it
//! needs more bytes, and refuses a bad magic or an over-long length from the header alone, before
//! anything is allocated for the payload.

/// The two bytes every frame starts with.
pub const MAGIC: [u8; 2] = [0xB7, 0x00];
/// Magic plus length.
pub const HEADER_LEN: usize = 6;

/// A frame this side will not write or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("bad frame magic {0:#04x} {1:#04x} (want 0xb7 0x00)")]
    BadMagic(u8, u8),
    #[error("frame payload of {len} bytes is over the {max}-byte limit")]
    TooLong { len: u64, max: usize },
}

/// Encodes and decodes frames whose payload is at most `max_len` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Codec {
    pub max_len: usize,
}

impl Codec {
    pub fn new(max_len: usize) -> Codec {
        Codec { max_len }
    }

    /// Appends the frame for `payload` to `out`.
    pub fn encode_into(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        let len = self.check(payload.len() as u64)?;
        out.reserve(HEADER_LEN + payload.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(payload);
        Ok(())
    }

    /// The frame for `payload`.
    pub fn encode(&self, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::new();
        self.encode_into(payload, &mut out)?;
        Ok(out)
    }

    /// The first frame in `buf`: its payload and the bytes it took (header included), or
    /// `Ok(None)` if `buf` holds only part of it.
    pub fn decode<'a>(&self, buf: &'a [u8]) -> Result<Option<(&'a [u8], usize)>, FrameError> {
        let Some(len) = self.header(buf)? else {
            return Ok(None);
        };
        let end = HEADER_LEN + len;
        Ok(buf.get(HEADER_LEN..end).map(|payload| (payload, end)))
    }

    /// The payload length announced by the header at the start of `buf`, checked; `Ok(None)`
    /// until all six header bytes are there. A wrong magic byte is refused as soon as it arrives.
    pub fn header(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        for (i, (&got, &want)) in buf.iter().zip(MAGIC.iter()).enumerate() {
            if got != want {
                let second = if i == 0 { buf.get(1).copied().unwrap_or(0) } else { got };
                return Err(FrameError::BadMagic(buf[0], second));
            }
        }
        let Some(len) = buf.get(2..HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        Ok(Some(self.check(u64::from(len))? as usize))
    }

    fn check(&self, len: u64) -> Result<u32, FrameError> {
        match u32::try_from(len) {
            Ok(n) if len <= self.max_len as u64 => Ok(n),
            _ => Err(FrameError::TooLong { len, max: self.max_len }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODEC: Codec = Codec { max_len: 64 };

    #[test]
    fn encodes_magic_then_little_endian_length() {
        let frame = CODEC.encode(br#"{"uri":"/a"}"#).expect("encode");
        assert_eq!(&frame[..6], &[0xB7, 0x00, 12, 0, 0, 0]);
        assert_eq!(&frame[6..], br#"{"uri":"/a"}"#);
        let mut long = Vec::new();
        Codec::new(1000).encode_into(&[b' '; 300], &mut long).expect("encode");
        assert_eq!(&long[2..6], &[0x2C, 0x01, 0, 0], "300 little-endian");
    }

    #[test]
    fn decodes_a_frame_and_says_how_much_it_took() {
        let mut buf = CODEC.encode(b"{}").expect("encode");
        buf.extend_from_slice(&[0xB7, 0x00, 1]);
        assert_eq!(CODEC.decode(&buf), Ok(Some((&b"{}"[..], 8))));
        assert_eq!(CODEC.decode(&buf[8..]), Ok(None), "a second frame begun");
    }

    #[test]
    fn needs_more_bytes_at_every_cut() {
        let frame = CODEC.encode(br#"{"status":200}"#).expect("encode");
        for cut in 0..frame.len() {
            assert_eq!(CODEC.decode(&frame[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(CODEC.decode(&frame).expect("whole").is_some());
    }

    #[test]
    fn an_empty_payload_is_a_frame() {
        assert_eq!(CODEC.decode(&[0xB7, 0, 0, 0, 0, 0]), Ok(Some((&b""[..], 6))));
    }

    #[test]
    fn refuses_a_bad_magic_from_its_first_byte() {
        assert_eq!(CODEC.decode(b"G"), Err(FrameError::BadMagic(b'G', 0)));
        assert_eq!(CODEC.decode(b"GET / HTTP/1.1"), Err(FrameError::BadMagic(b'G', b'E')));
        assert_eq!(CODEC.decode(&[0xB7, 0x01]), Err(FrameError::BadMagic(0xB7, 0x01)));
    }

    #[test]
    fn refuses_an_over_long_length_from_the_header() {
        assert_eq!(CODEC.decode(&[0xB7, 0, 64, 0, 0, 0]), Ok(None), "64 is allowed");
        assert_eq!(
            CODEC.decode(&[0xB7, 0, 65, 0, 0, 0]),
            Err(FrameError::TooLong { len: 65, max: 64 })
        );
        let huge = Codec::new(usize::MAX).decode(&[0xB7, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(huge, Ok(None), "u32::MAX announced, nothing allocated");
        assert_eq!(CODEC.encode(&[0; 65]), Err(FrameError::TooLong { len: 65, max: 64 }));
    }
}
