//! Client bytes as a stream: decode frame after frame, as a connection's read loop does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pushgate::ws::frame::{decode, Message, Reassembly};

const MAX_MESSAGE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut input = data.to_vec();
    let mut reassembly = Reassembly::default();
    let mut at = 0;
    while at < input.len() {
        let left = input.len() - at;
        match decode(&mut input[at..], &mut reassembly, MAX_MESSAGE) {
            Ok(Some((used, message))) => {
                assert!(used > 0, "decode consumed nothing but returned a frame");
                assert!(used <= left, "decode consumed past the input");
                match message {
                    Some(Message::Text(text)) => {
                        assert!(text.len() <= MAX_MESSAGE);
                        assert!(std::str::from_utf8(text).is_ok(), "text message not UTF-8");
                    }
                    Some(Message::Binary(bytes)) => assert!(bytes.len() <= MAX_MESSAGE),
                    Some(Message::Ping(payload)) => assert!(payload.len() <= 125),
                    Some(Message::Pong | Message::Close(_)) | None => {}
                }
                at += used;
                reassembly.release();
            }
            Ok(None) | Err(_) => break,
        }
    }
    reassembly.release();
});
