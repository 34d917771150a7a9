//! End-to-end tests of the IM (xxim) dialect against the real binary, named after the feature
//! lines F001-01..24 of the reference: connect and auth (`connect`), requests routed to mock
//! gRPC and HTTP backends (`requests`), bad input (`bad_input`), the push API (`push`),
//! notices and delayed delivery with the durable store, across restarts (`durable`), and a
//! client no one here wrote (`interop`: protobufjs, ws and @grpc/grpc-js from npm).

#[path = "../common/mod.rs"]
mod common;

mod backend;
mod bad_input;
mod connect;
mod durable;
mod interop;
mod push;
mod requests;

use backend::Mock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Custom methods the tests route, and the backend paths they go to.
pub const METHODS: [(&str, &str); 6] = [
    ("/v1/test/echo", "/test.Svc/Echo"),
    ("/v1/user/white/login", "/test.Svc/Login"),
    ("/v1/test/slow", "/test.Svc/Slow"),
    ("/v1/test/hang", "/test.Svc/Hang"),
    ("/v1/test/fail", "/test.Svc/Fail"),
    ("/v1/test/garbage", "/test.Svc/Garbage"),
];

/// A config routing events 0..4 and [`METHODS`] to `mock` (gRPC), with `im` keys added to
/// `[im]` and `top` before any table.
pub fn config(mock: &Mock, im: &str, top: &str) -> String {
    let url = mock.url();
    let mut text = format!("{top}\n[im]\nretry_interval_ms = 100\n{im}\n");
    for event in 0..=4 {
        text.push_str(&format!(
            "[[im.routes]]\nevent = {event}\nurl = \"{url}\"\ntimeout_ms = 3000\n"
        ));
    }
    for (method, path) in METHODS {
        text.push_str(&format!(
            "[[im.routes]]\nmethod = \"{method}\"\npath = \"{path}\"\nurl = \"{url}\"\ntimeout_ms = 3000\n"
        ));
    }
    text
}

/// A fresh directory for a server's store.
pub fn store_dir() -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("pushgate-im-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `[store]` at `dir`, for `top`.
pub fn store_toml(dir: &std::path::Path) -> String {
    format!("[store]\npath = \"{}\"\nverify_on_open = false\n", dir.display())
}
