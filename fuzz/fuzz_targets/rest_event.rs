//! A REST trigger body: JSON, then the event validation (single event, `channels` allowed),
//! and each element of a `batch` array as batch_events validates it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pushgate::{config::AppConfig, dialect::pusher::rest::events::parse_event};
use simd_json::prelude::*;

fuzz_target!(|data: &[u8]| {
    let mut body = data.to_vec();
    let Ok(value) = simd_json::to_borrowed_value(&mut body) else {
        return;
    };
    let app = AppConfig::default();
    let _ = parse_event(&value, &app, 164, true);
    if let Some(items) = value.get("batch").and_then(|b| b.as_array()) {
        for item in items.iter().take(app.max_batch_size) {
            let _ = parse_event(item, &app, 164, false);
        }
    }
});
