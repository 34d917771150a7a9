//! Upstream bytes as a stream of APISIX TCP JSON frames: decode frame after frame, as the
//! client's read loop does, and check what `decode` and `header` promise about lengths.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pushgate::upstream::tcp_json::codec::{Codec, HEADER_LEN};

const MAX_FRAME: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let codec = Codec::new(MAX_FRAME);
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        let header = codec.header(rest);
        match codec.decode(rest) {
            Ok(Some((payload, used))) => {
                assert_eq!(used, HEADER_LEN + payload.len(), "used is header plus payload");
                assert!(used <= rest.len(), "decode consumed past the input");
                assert!(payload.len() <= MAX_FRAME);
                assert_eq!(header, Ok(Some(payload.len())), "header and decode agree");
                let again = codec.encode(payload).expect("a decoded payload re-encodes");
                assert_eq!(&again[..], &rest[..used], "encode inverts decode");
                at += used;
            }
            Ok(None) => {
                if let Ok(Some(len)) = header {
                    assert!(rest.len() < HEADER_LEN + len, "a whole frame was not decoded");
                }
                break;
            }
            Err(_) => {
                assert!(header.is_err(), "decode refused what header accepted");
                break;
            }
        }
    }
});
