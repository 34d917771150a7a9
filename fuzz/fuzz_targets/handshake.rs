//! The first bytes of a connection: WebSocket upgrade, bad upgrade, or plain HTTP.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pushgate::ws::handshake::{read_opening, Opening};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((opening, len))) = read_opening(data) {
        assert!(len <= data.len(), "head length past the input");
        if let Opening::Upgrade(up) = opening {
            assert!(up.response(&[]).starts_with(b"HTTP/1.1 101 "));
        }
    }
});
