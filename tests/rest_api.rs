//! The REST API's signing checks and limits, with the status codes Pusher uses.

mod common;

use common::{now, sign, Server, APP_ID, KEY, SECRET};
use serde_json::json;

fn event_body() -> String {
    json!({"name": "e", "channel": "c", "data": "d"}).to_string()
}

fn post_signed(server: &Server, key: &str, secret: &str, stamp: i64, body: &str) -> u16 {
    let path = format!("/apps/{APP_ID}/events");
    let query = sign("POST", &path, body, key, secret, stamp);
    server.post_raw(&format!("{path}?{query}"), body).0
}

#[test]
fn a_correct_signature_is_accepted() {
    let server = Server::start("", 1);
    assert_eq!(post_signed(&server, KEY, SECRET, now(), &event_body()), 200);
}

#[test]
fn signing_failures_are_401() {
    let server = Server::start("", 1);
    let body = event_body();
    assert_eq!(post_signed(&server, KEY, "wrong-secret", now(), &body), 401, "wrong secret");
    assert_eq!(post_signed(&server, "other-key", SECRET, now(), &body), 401, "unknown key");
    assert_eq!(post_signed(&server, KEY, SECRET, now() - 601, &body), 401, "stale timestamp");
    assert_eq!(post_signed(&server, KEY, SECRET, now() + 601, &body), 401, "future timestamp");

    let path = format!("/apps/{APP_ID}/events");
    let query = sign("POST", &path, &body, KEY, SECRET, now());
    let tampered = query.replace("auth_signature=", "auth_signature=0");
    assert_eq!(server.post_raw(&format!("{path}?{tampered}"), &body).0, 401, "wrong signature");
    // The signature covers a different body than the one sent: body_md5 mismatch.
    let other = json!({"name": "e", "channel": "c", "data": "changed"}).to_string();
    let (status, reply) = server.post_raw(&format!("{path}?{query}"), &other);
    assert_eq!(status, 401, "bad body_md5");
    assert!(reply["error"].as_str().is_some_and(|e| e.contains("body_md5")), "{reply}");
    let (status, _) = server.post_raw(&path, &body);
    assert_eq!(status, 401, "unsigned");
}

#[test]
fn unknown_app_is_404() {
    let server = Server::start("", 1);
    let body = event_body();
    let path = "/apps/no-such-app/events";
    let query = sign("POST", path, &body, KEY, SECRET, now());
    assert_eq!(server.post_raw(&format!("{path}?{query}"), &body).0, 404);
}

#[test]
fn malformed_events_are_400() {
    let server = Server::start("", 1);
    for body in [
        json!({"channel": "c", "data": "d"}),
        json!({"name": "e", "data": "d"}),
        json!({"name": "e", "channel": "c"}),
        json!({"name": "e", "channel": "bad name", "data": "d"}),
        json!({"name": "e", "channels": (0..101).map(|i| format!("c{i}")).collect::<Vec<_>>(), "data": "d"}),
        json!({"name": "e", "channel": "c", "data": "d", "socket_id": "nope"}),
    ] {
        let (status, reply) = server.post("events", &body);
        assert_eq!(status, 400, "{body} -> {reply}");
        assert!(reply["error"].is_string(), "JSON error body: {reply}");
    }
    let path = format!("/apps/{APP_ID}/events");
    let query = sign("POST", &path, "{oops", KEY, SECRET, now());
    assert_eq!(server.post_raw(&format!("{path}?{query}"), "{oops").0, 400, "invalid JSON");
}

#[test]
fn batches_over_ten_are_400() {
    let server = Server::start("", 1);
    let batch: Vec<_> =
        (0..11).map(|i| json!({"name": "e", "channel": format!("c{i}"), "data": "d"})).collect();
    let (status, _) = server.post("batch_events", &json!({ "batch": batch }));
    assert_eq!(status, 400);
    let batch: Vec<_> =
        (0..10).map(|i| json!({"name": "e", "channel": format!("c{i}"), "data": "d"})).collect();
    assert_eq!(server.post("batch_events", &json!({ "batch": batch })).0, 200);
}

#[test]
fn payload_limit_is_413_and_configurable() {
    let server = Server::start("", 1);
    let fits = "x".repeat(10 * 1024);
    let (status, _) = server.post("events", &json!({"name": "e", "channel": "c", "data": fits}));
    assert_eq!(status, 200);
    let big = "x".repeat(10 * 1024 + 1);
    let (status, reply) = server.post("events", &json!({"name": "e", "channel": "c", "data": big}));
    assert_eq!(status, 413, "{reply}");

    let server = Server::start(
        "[[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\nmax_event_payload_bytes = 100\n",
        1,
    );
    let (status, _) =
        server.post("events", &json!({"name": "e", "channel": "c", "data": "x".repeat(101)}));
    assert_eq!(status, 413);
}
