//! Per-app policy from `[[apps]]`: disabled apps, connection quotas over all shards, allowed
//! origins, and `pusher_internal:subscription_count` events.

mod common;

use common::{clients_on_both_shards, Client, Opened, Server};
use serde_json::json;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(300);

fn app(extra: &str) -> String {
    format!("[[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\n{extra}")
}

fn refused(opened: Opened) -> (serde_json::Value, Option<u16>) {
    match opened {
        Opened::Refused(error, code) => (error, code),
        Opened::Connected(client) => panic!("connected as {}", client.socket_id),
    }
}

fn connected(opened: Opened) -> Client {
    match opened {
        Opened::Connected(client) => *client,
        Opened::Refused(error, code) => panic!("refused with {code:?}: {error}"),
    }
}

#[test]
fn a_disabled_app_refuses_connections_4003_and_rest_403() {
    let server = Server::start(&app("enabled = false\n"), 2);
    for _ in 0..4 {
        let (error, code) = refused(server.open(None));
        assert_eq!(code, Some(4003));
        assert_eq!(error["event"], "pusher:error", "{error}");
        assert_eq!(error["data"]["code"], 4003, "{error}");
    }
    let (status, body) = server.post("events", &json!({"name": "e", "channel": "c", "data": "x"}));
    assert_eq!(status, 403, "{body}");
    assert_eq!(server.get_signed("channels", &[]).0, 403);
}

#[test]
fn other_apps_are_unaffected_by_a_disabled_one() {
    let config = format!(
        "{}\n[[apps]]\nid = \"off\"\nkey = \"off-key\"\nsecret = \"off-secret\"\nenabled = false\n",
        app("")
    );
    let server = Server::start(&config, 1);
    let mut client = server.client();
    client.subscribe("news");
    server.trigger("news", "e", "still on");
    assert_eq!(client.recv()["data"], "still on");
}

#[test]
fn max_connections_counts_over_all_shards() {
    let server = Server::start(&app("max_connections = 2\n"), 2);
    let mut first = server.client();
    let mut second = server.client();
    // Every further attempt is refused, whichever shard it lands on.
    for _ in 0..8 {
        let (error, code) = refused(server.open(None));
        assert_eq!(code, Some(4004), "{error}");
        assert_eq!(error["data"]["code"], 4004, "{error}");
    }
    first.sync();
    second.sync();
    // A closed connection frees its place.
    first.ws.close(None).expect("close");
    while first.ws.read().is_ok() {}
    let mut admitted = None;
    for _ in 0..50 {
        if let Opened::Connected(client) = server.open(None) {
            admitted = Some(*client);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut third = admitted.expect("a place freed by a close is given to a new connection");
    third.sync();
    assert_eq!(refused(server.open(None)).1, Some(4004));
}

#[test]
fn max_connections_is_per_app() {
    let config = format!(
        "{}\n[[apps]]\nid = \"b\"\nkey = \"b-key\"\nsecret = \"b-secret\"\n",
        app("max_connections = 1\n")
    );
    let server = Server::start(&config, 1);
    let _only = server.client();
    assert_eq!(refused(server.open(None)).1, Some(4004));
    let mut other_app = Client::connect(&server, "/app/b-key?protocol=7").expect("app b connects");
    other_app.sync();
}

#[test]
fn allowed_origins_refuse_other_origins_4009() {
    let server = Server::start(&app("allowed_origins = [\"https://ok.example\"]\n"), 1);
    let mut ok = connected(server.open(Some("https://ok.example")));
    ok.sync();
    for origin in [Some("https://evil.example"), Some("https://ok.example.evil"), None] {
        let (error, code) = refused(server.open(origin));
        assert_eq!(code, Some(4009), "origin {origin:?}: {error}");
        assert_eq!(error["event"], "pusher:error", "{error}");
    }
}

#[test]
fn without_allowed_origins_any_origin_connects() {
    let server = Server::start("", 1);
    connected(server.open(Some("https://anything.example"))).sync();
    connected(server.open(None)).sync();
}

/// Reads count events until one says `n`. Counts are decided on the channel's home shard and
/// reach other shards over a ring, so a subscriber may first see a snapshot taken just before it
/// subscribed; it must never see a count that did not exist, and must end on the exact one.
fn expect_count(client: &mut Client, channel: &str, n: u64) {
    for _ in 0..4 {
        let data = client.recv_data("pusher_internal:subscription_count", channel);
        let got = data["subscription_count"].as_u64().expect("a number");
        if got == n {
            return;
        }
        assert!(got.abs_diff(n) == 1, "shard {}: count {got} while expecting {n}", client.shard(2));
    }
    panic!("shard {}: no count of {n}", client.shard(2));
}

#[test]
fn subscription_count_events_follow_subscribes_and_unsubscribes() {
    let server = Server::start(&app("enable_subscription_count = true\n"), 2);
    let (mut zero, mut one) = clients_on_both_shards(&server, 1);
    let (a, b) = (&mut zero[0], &mut one[0]);
    a.subscribe("room");
    expect_count(a, "room", 1);
    b.subscribe("room");
    expect_count(a, "room", 2);
    expect_count(b, "room", 2);
    b.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "room"}}));
    expect_count(a, "room", 1);
    let mut c = server.client();
    c.subscribe("room");
    expect_count(a, "room", 2);
    expect_count(&mut c, "room", 2);
    drop(c);
    expect_count(a, "room", 1);
    // b left: it hears nothing more from the channel.
    let got = b.try_recv(QUIET);
    assert!(got.is_none(), "{got:?}");
}

#[test]
fn subscription_count_events_are_off_by_default_and_never_on_presence() {
    let server = Server::start(&app("enable_subscription_count = true\n"), 1);
    let mut a = server.client();
    a.join_presence("presence-room", r#"{"user_id":"a"}"#);
    let mut b = server.client();
    b.join_presence("presence-room", r#"{"user_id":"b"}"#);
    assert_eq!(a.recv()["event"], "pusher_internal:member_added");
    let got = a.try_recv(QUIET);
    assert!(got.is_none(), "presence channels get no subscription_count: {got:?}");

    let server = Server::start("", 1);
    let mut a = server.client();
    a.subscribe("room");
    server.client().subscribe("room");
    let got = a.try_recv(QUIET);
    assert!(got.is_none(), "counts are off by default: {got:?}");
    server.trigger("room", "e", "control");
    assert_eq!(a.recv()["data"], "control");
}

#[test]
fn subscription_count_for_private_channels() {
    let server = Server::start(&app("enable_subscription_count = true\n"), 1);
    let mut a = server.client();
    a.subscribe_private("private-room");
    expect_count(&mut a, "private-room", 1);
    // A refused subscription does not count.
    let mut b = server.client();
    b.send_subscribe("private-room", None, None);
    b.expect_error();
    let got = a.try_recv(QUIET);
    assert!(got.is_none(), "{got:?}");
}
