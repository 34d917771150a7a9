//! REST request signing: the input is `query \0 body` (no 0 byte: all query, empty body).
//! The app and clock are Pusher's documented example, so the seed verifies end to end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pushgate::{config::AppConfig, dialect::pusher::rest::sign::verify};

const NOW: i64 = 1_353_088_179;

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    // The server hands verify the raw query string of the URI, which is always a &str.
    let query = String::from_utf8_lossy(query);
    let app = AppConfig {
        id: "3".into(),
        key: "278d425bdf160c739803".into(),
        secret: "7ad3773142a6692b25b8".into(),
        ..AppConfig::default()
    };
    let paths = ["/apps/3/events", "/prefix/apps/3/events"];
    let _ = verify(&app, "POST", &paths, &query, body, NOW);
});
