//! A gRPC request or reply body: the 5-byte-prefixed messages `decode` finds one after another,
//! `decode_unary`'s verdict on the whole body, and the `grpc-timeout` and `grpc-message` header
//! parsers on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pushgate::upstream::grpc::wire::{self, MessageError, PREFIX_LEN};

const MAX_MESSAGE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    let mut messages = 0;
    let mut stopped = None;
    while at < data.len() {
        match wire::decode(&data[at..], MAX_MESSAGE) {
            Ok(Some((message, used))) => {
                assert_eq!(used, PREFIX_LEN + message.len());
                assert!(message.len() <= MAX_MESSAGE);
                let again = wire::encode(message, MAX_MESSAGE).expect("re-encodes");
                assert_eq!(&again[..], &data[at..at + used], "encode inverts decode");
                at += used;
                messages += 1;
            }
            Ok(None) => break,
            Err(e) => {
                stopped = Some(e);
                break;
            }
        }
    }
    let unary = wire::decode_unary(data, MAX_MESSAGE);
    match (messages, at == data.len(), &stopped) {
        (1, true, None) => assert!(unary.is_ok(), "one whole message: {unary:?}"),
        (0, _, Some(e)) => assert_eq!(unary.as_ref().err(), Some(e)),
        (0, _, None) if data.is_empty() => assert_eq!(unary, Err(MessageError::Missing)),
        (0, _, None) => assert_eq!(unary, Err(MessageError::Incomplete)),
        _ => assert_eq!(unary, Err(MessageError::Trailing)),
    }
    if let Some(timeout) = wire::parse_timeout(data) {
        assert!(timeout.as_secs() <= 99_999_999 * 3600);
    }
    let text = wire::decode_message(data);
    assert_eq!(wire::decode_message(wire::encode_message(&text).as_bytes()), text);
});
