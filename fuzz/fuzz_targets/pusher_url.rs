//! The connect URL's parts (app key, protocol query) and channel names, on UTF-8 input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pushgate::dialect::pusher::{channel, url};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(key) = url::app_key(text) {
        assert!(!key.is_empty() && !key.contains('/'));
    }
    if let Ok(version) = url::check_protocol(text) {
        assert!(url::PROTOCOLS.contains(&version));
    }
    if channel::check_name(text, 164).is_ok() {
        assert!(!text.is_empty() && text.len() <= 164);
    }
    let _ = channel::ChannelKind::of(text);
});
