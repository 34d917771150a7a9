//! Private, private-encrypted and cache channels: subscription auth, refusals that leave no
//! subscription behind, and the cache channel's last-event replay.

mod common;

use common::{channel_auth, clients_on_both_shards, Client, Server, KEY};
use serde_json::json;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(300);

/// Asserts that `client` gets nothing from `channel`: a publish there, then a publish on a
/// public channel it is subscribed to (`control`) must be the next thing it sees.
fn assert_not_subscribed(server: &Server, client: &mut Client, channel: &str, control: &str) {
    server.trigger(channel, "leak", "must not arrive");
    server.trigger(control, "control", "ok");
    let got = client.recv();
    assert_eq!((got["channel"].as_str(), got["event"].as_str()), (Some(control), Some("control")));
}

#[test]
fn private_subscription_with_valid_auth_succeeds_and_receives() {
    let server = Server::start("", 1);
    let mut client = server.client();
    let auth = channel_auth(&client.socket_id, "private-x", None);
    client.send_subscribe("private-x", Some(&auth), None);
    assert_eq!(
        client.recv(),
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "private-x", "data": "{}"})
    );
    server.trigger("private-x", "e", "secret");
    assert_eq!(client.recv(), json!({"event": "e", "channel": "private-x", "data": "secret"}));
}

#[test]
fn private_subscription_without_valid_auth_is_refused() {
    let server = Server::start("", 2);
    let mut client = server.client();
    let other = server.client();
    client.subscribe("control");
    let sid = client.socket_id.clone();
    let wrong = [
        None,
        Some(String::new()),
        Some("no-colon-at-all".to_string()),
        // Signed for another connection.
        Some(channel_auth(&other.socket_id, "private-x", None)),
        // Signed for another channel.
        Some(channel_auth(&sid, "private-y", None)),
        // Right signature, wrong key.
        Some(channel_auth(&sid, "private-x", None).replacen(KEY, "other-key", 1)),
        // Right key, signature garbled.
        Some(format!("{KEY}:{}", "0".repeat(64))),
    ];
    for auth in &wrong {
        client.send_subscribe("private-x", auth.as_deref(), None);
        let error = client.expect_error();
        assert_eq!(error["code"], json!(null), "for auth {auth:?}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    }
    assert_not_subscribed(&server, &mut client, "private-x", "control");
}

#[test]
fn private_encrypted_channels_need_auth_too() {
    let server = Server::start("", 1);
    let mut client = server.client();
    client.subscribe("control");
    let name = "private-encrypted-vault";
    client.send_subscribe(name, None, None);
    client.expect_error();
    assert_not_subscribed(&server, &mut client, name, "control");
    client.subscribe_private(name);
    server.trigger(name, "e", "{\"nonce\":\"n\",\"ciphertext\":\"c\"}");
    assert_eq!(client.recv()["data"], "{\"nonce\":\"n\",\"ciphertext\":\"c\"}");
}

#[test]
fn an_auth_is_bound_to_its_socket_even_when_replayed_on_another() {
    let server = Server::start("", 1);
    let mut thief = server.client();
    thief.subscribe("control");
    let owner = server.client();
    let stolen = channel_auth(&owner.socket_id, "private-x", None);
    thief.send_subscribe("private-x", Some(&stolen), None);
    thief.expect_error();
    assert_not_subscribed(&server, &mut thief, "private-x", "control");
}

#[test]
fn cache_channel_sends_cache_miss_when_empty() {
    let server = Server::start("", 1);
    let mut client = server.client();
    client.subscribe("cache-x");
    assert_eq!(client.recv(), json!({"event": "pusher:cache_miss", "channel": "cache-x"}));
    // A public non-cache channel sends nothing after subscription_succeeded.
    client.subscribe("plain");
    assert!(client.try_recv(QUIET).is_none());
    server.trigger("plain", "e", "control");
    assert_eq!(client.recv()["data"], "control");
}

#[test]
fn cache_channel_replays_the_last_event_to_new_subscribers() {
    let server = Server::start("", 2);
    server.trigger("cache-x", "first", "1");
    server.trigger("cache-x", "second", "{\"n\":2}");
    let (mut zero, mut one) = clients_on_both_shards(&server, 1);
    for client in zero.iter_mut().chain(one.iter_mut()) {
        client.subscribe("cache-x");
        let got = client.recv();
        assert_eq!(
            got,
            json!({"event": "second", "channel": "cache-x", "data": "{\"n\":2}"}),
            "client on shard {}",
            client.shard(2)
        );
        assert!(client.try_recv(QUIET).is_none(), "more than the last event replayed");
    }
}

#[test]
fn private_and_presence_cache_channels_replay_after_auth() {
    let server = Server::start("", 1);
    server.trigger("private-cache-x", "e", "p");
    server.trigger("private-encrypted-cache-x", "e", "enc");
    server.trigger("presence-cache-x", "e", "pr");
    let mut client = server.client();
    client.subscribe_private("private-cache-x");
    assert_eq!(client.recv(), json!({"event": "e", "channel": "private-cache-x", "data": "p"}));
    client.subscribe_private("private-encrypted-cache-x");
    assert_eq!(client.recv()["data"], "enc");
    client.join_presence("presence-cache-x", r#"{"user_id":"u1"}"#);
    assert_eq!(client.recv(), json!({"event": "e", "channel": "presence-cache-x", "data": "pr"}));
    // A refused private-cache subscription gets neither the event nor a cache miss.
    let mut other = server.client();
    other.send_subscribe("private-cache-x", None, None);
    other.expect_error();
    assert!(other.try_recv(QUIET).is_none());
}

#[test]
fn cached_events_expire_after_the_app_ttl() {
    let config = "[[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\ncache_ttl_secs = 1\n";
    let server = Server::start(config, 1);
    server.trigger("cache-x", "e", "soon stale");
    let mut fresh = server.client();
    fresh.subscribe("cache-x");
    assert_eq!(fresh.recv()["data"], "soon stale");
    std::thread::sleep(Duration::from_millis(1500));
    let mut late = server.client();
    late.subscribe("cache-x");
    assert_eq!(late.recv(), json!({"event": "pusher:cache_miss", "channel": "cache-x"}));
}
