//! User sign-in (`pusher:signin`), `#server-to-user-*` channels, and the sign-in deadline.

mod common;

use common::{signin_auth, Client, Server};
use serde_json::json;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(300);

fn app(extra: &str) -> String {
    format!("[[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\n{extra}")
}

fn signin(client: &mut Client, auth: &str, user_data: &str) {
    client.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}));
}

#[test]
fn signin_with_a_valid_auth_succeeds_and_echoes_user_data() {
    let server = Server::start("", 1);
    let mut client = server.client();
    let user_data = r#"{"id":"42","user_info":{"name":"Ann"},"watchlist":["1"]}"#;
    let auth = signin_auth(&client.socket_id, user_data);
    signin(&mut client, &auth, user_data);
    assert_eq!(
        client.recv(),
        json!({"event": "pusher:signin_success", "data": {"user_data": user_data}})
    );
}

#[test]
fn bad_signins_are_refused_and_the_connection_lives() {
    let server = Server::start(&app("max_user_id_len = 4\n"), 1);
    let mut client = server.client();
    let other = server.client();
    let sid = client.socket_id.clone();
    let good = r#"{"id":"42"}"#;
    let cases: Vec<(&str, String, String)> = vec![
        ("signed for another socket", signin_auth(&other.socket_id, good), good.into()),
        ("signed other user_data", signin_auth(&sid, r#"{"id":"1"}"#), good.into()),
        ("garbage auth", "app-key:00".into(), good.into()),
        ("empty auth", String::new(), good.into()),
        ("numeric id", signin_auth(&sid, r#"{"id":42}"#), r#"{"id":42}"#.into()),
        ("no id", signin_auth(&sid, r#"{"name":"x"}"#), r#"{"name":"x"}"#.into()),
        ("empty id", signin_auth(&sid, r#"{"id":""}"#), r#"{"id":""}"#.into()),
        ("not JSON", signin_auth(&sid, "id=42"), "id=42".into()),
        ("id too long", signin_auth(&sid, r#"{"id":"12345"}"#), r#"{"id":"12345"}"#.into()),
    ];
    for (why, auth, user_data) in &cases {
        signin(&mut client, auth, user_data);
        let error = client.expect_error();
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{why}: {error}");
    }
    // A signin without user_data at all.
    client.send(json!({"event": "pusher:signin", "data": {"auth": "app-key:00"}}));
    client.expect_error();
    // None of them signed the connection in.
    client.send_subscribe("#server-to-user-42", Some(""), None);
    client.expect_error();
    client.sign_in(good);
}

#[test]
fn server_to_user_channel_is_only_for_that_user() {
    let server = Server::start("", 2);
    let mut user42 = server.client();
    user42.sign_in(r#"{"id":"42"}"#);
    let mut user43 = server.client();
    user43.sign_in(r#"{"id":"43"}"#);
    let mut anonymous = server.client();
    for client in [&mut user43, &mut anonymous] {
        client.subscribe("control");
        client.send_subscribe("#server-to-user-42", Some(""), None);
        let error = client.expect_error();
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    }
    user42.send_subscribe("#server-to-user-42", Some(""), None);
    assert_eq!(
        user42.recv(),
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "#server-to-user-42", "data": "{}"})
    );
    server.trigger("#server-to-user-42", "notice", "for 42");
    assert_eq!(
        user42.recv(),
        json!({"event": "notice", "channel": "#server-to-user-42", "data": "for 42"})
    );
    for client in [&mut user43, &mut anonymous] {
        server.trigger("control", "control", "ok");
        assert_eq!(client.recv()["event"], "control", "a refused connection got the event");
    }
}

#[test]
fn every_connection_of_a_user_may_subscribe_its_channel() {
    let server = Server::start("", 2);
    let mut phones: Vec<Client> = (0..4).map(|_| server.client()).collect();
    for phone in &mut phones {
        phone.sign_in(r#"{"id":"u7"}"#);
        phone.subscribe("#server-to-user-u7");
    }
    server.trigger("#server-to-user-u7", "ring", "x");
    for phone in &mut phones {
        assert_eq!(phone.recv()["event"], "ring", "shard {}", phone.shard(2));
    }
}

#[test]
fn unsigned_connections_close_4009_after_the_deadline() {
    let server = Server::start(&app("user_authentication_timeout_secs = 1\n"), 1);
    let mut unsigned = server.client();
    let mut signed = server.client();
    signed.sign_in(r#"{"id":"1"}"#);
    assert_eq!(unsigned.close_code(), Some(4009));
    // The signed-in connection is still served after the deadline passed.
    signed.sync();
    assert!(signed.try_recv(QUIET).is_none());
    signed.sync();
}

#[test]
fn without_a_deadline_unsigned_connections_stay() {
    let server = Server::start("", 1);
    let mut unsigned = server.client();
    std::thread::sleep(Duration::from_millis(1500));
    unsigned.sync();
}

#[test]
fn a_watchlist_over_100_ids_gets_4302_and_the_sign_in_stands() {
    let server = Server::start("", 1);
    let ids: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    let mut client = server.client();
    client.sign_in(&json!({"id": "7", "watchlist": ids}).to_string());
    let error = client.recv();
    assert_eq!(
        (error["event"].as_str(), error["data"]["code"].as_u64()),
        (Some("pusher:error"), Some(4302)),
        "{error}"
    );
    // Only the first 100 are watched: their status follows, 7 (the user itself) online.
    let (online, offline) = watchlist_status(&mut client);
    assert_eq!(online, ["7"]);
    assert_eq!(offline.len(), 99);
    assert!(!offline.iter().chain(&online).any(|id| id == "100"), "{offline:?}");
    // Still open and signed in: its user channel works.
    client.subscribe("#server-to-user-7");
    // Exactly 100 is within the limit: the status follows the success, no 4302.
    let mut other = server.client();
    other.sign_in(&json!({"id": "8", "watchlist": ids[..100]}).to_string());
    let (online, offline) = watchlist_status(&mut other);
    assert_eq!((online.len(), offline.len()), (2, 98), "7 and 8 are online");
    other.subscribe("control-8");
    common::assert_quiet(&server, &mut other, "control-8");
}

/// The next message as a one-shard watchlist status: (online ids, offline ids).
fn watchlist_status(client: &mut Client) -> (Vec<String>, Vec<String>) {
    let got = client.recv();
    assert_eq!(got["event"], "pusher_internal:watchlist_events", "{got}");
    let data: serde_json::Value =
        serde_json::from_str(got["data"].as_str().expect("string")).expect("json");
    let ids = |name: &str| -> Vec<String> {
        let events = data["events"].as_array().expect("events");
        let event = events.iter().find(|e| e["name"] == name);
        let ids = event.and_then(|e| e["user_ids"].as_array().cloned()).unwrap_or_default();
        ids.iter().map(|id| id.as_str().expect("id").to_string()).collect()
    };
    (ids("online"), ids("offline"))
}
