//! Subscribing, unsubscribing and publishing through the signed REST API, on one and many shards.

mod common;

use common::{Client, Server};
use serde_json::json;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(300);

#[test]
fn publish_reaches_a_subscriber_with_data_as_sent() {
    let server = Server::start("", 1);
    let mut client = server.client();
    client.subscribe("news");
    server.trigger("news", "headline", "{\"title\":\"hi\"}");
    let got = client.recv();
    assert_eq!(got, json!({"event": "headline", "channel": "news", "data": "{\"title\":\"hi\"}"}));
}

#[test]
fn unsubscribe_stops_delivery() {
    let server = Server::start("", 1);
    let mut client = server.client();
    client.subscribe("a");
    client.subscribe("b");
    client.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "a"}}));
    client.sync();
    server.trigger("a", "e", "1");
    server.trigger("b", "e", "2");
    let got = client.recv();
    assert_eq!((got["channel"].as_str(), got["data"].as_str()), (Some("b"), Some("2")));
    assert!(client.try_recv(QUIET).is_none());
}

#[test]
fn resubscribing_is_idempotent() {
    let server = Server::start("", 1);
    let mut client = server.client();
    client.subscribe("news");
    client.subscribe("news");
    server.trigger("news", "e", "once");
    assert_eq!(client.recv()["data"], "once");
    assert!(client.try_recv(QUIET).is_none(), "delivered twice");
}

#[test]
fn publish_to_many_channels() {
    let server = Server::start("", 1);
    let mut a = server.client();
    a.subscribe("c1");
    a.subscribe("c2");
    let mut b = server.client();
    b.subscribe("c3");
    let (status, body) = server
        .post("events", &json!({"name": "e", "channels": ["c1", "c2", "c3", "c4"], "data": "x"}));
    assert_eq!((status, body), (200, json!({})));
    let mut got = vec![a.recv()["channel"].clone(), a.recv()["channel"].clone()];
    got.sort_by_key(|v| v.to_string());
    assert_eq!(got, vec![json!("c1"), json!("c2")]);
    assert_eq!(b.recv()["channel"], "c3");
}

#[test]
fn batch_publish() {
    let server = Server::start("", 1);
    let mut client = server.client();
    client.subscribe("x");
    client.subscribe("y");
    let batch = json!({"batch": [
        {"name": "one", "channel": "x", "data": "1"},
        {"name": "two", "channel": "y", "data": "2"},
        {"name": "three", "channel": "x", "data": "3"},
    ]});
    let (status, body) = server.post("batch_events", &batch);
    assert_eq!((status, body), (200, json!({})));
    let names: Vec<_> =
        (0..3).map(|_| client.recv()["event"].as_str().map(str::to_string)).collect();
    assert_eq!(names, vec![Some("one".into()), Some("two".into()), Some("three".into())]);
}

#[test]
fn socket_id_is_excluded() {
    let server = Server::start("", 2);
    let mut sender = server.client();
    let mut other = server.client();
    sender.subscribe("room");
    other.subscribe("room");
    let body = json!({"name": "e", "channel": "room", "data": "not to sender", "socket_id": sender.socket_id});
    assert_eq!(server.post("events", &body).0, 200);
    server.trigger("room", "e", "to all");
    assert_eq!(other.recv()["data"], "not to sender");
    assert_eq!(other.recv()["data"], "to all");
    // The first message the sender sees is the second publish: the first was withheld.
    assert_eq!(sender.recv()["data"], "to all");
}

#[test]
fn publish_spreads_over_every_shard() {
    let server = Server::start("", 2);
    let mut clients: Vec<Client> = (0..16).map(|_| server.client()).collect();
    let mut shards: Vec<usize> = clients.iter().map(|c| c.shard(2)).collect();
    shards.sort();
    shards.dedup();
    assert_eq!(shards, vec![0, 1], "the kernel put all 16 connections on one shard");
    for c in &mut clients {
        c.subscribe("everyone");
    }
    server.trigger("everyone", "hello", "all shards");
    for c in &mut clients {
        assert_eq!(c.recv()["data"], "all shards", "client on shard {}", c.shard(2));
    }
}

#[test]
fn bad_client_messages_get_pusher_error_and_the_connection_lives() {
    let server = Server::start("", 1);
    let mut client = server.client();
    for bad in [
        "{not json",
        r#"{"event":"pusher:subscribe","data":{}}"#,
        r#"{"event":"no-such-event"}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":"bad name!"}}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":"private-secret"}}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":"presence-room"}}"#,
        r#"{"event":"client-typing","channel":"news","data":{}}"#,
    ] {
        client.send_text(bad);
        let reply = client.recv();
        assert_eq!(reply["event"], "pusher:error", "for {bad}: {reply}");
        assert!(reply["data"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Refused subscriptions did not subscribe.
    server.trigger("private-secret", "e", "leak");
    client.subscribe("news");
    server.trigger("news", "e", "ok");
    assert_eq!(client.recv()["data"], "ok");
}

#[test]
fn long_channel_names_follow_the_configured_limit() {
    let server = Server::start("max_channel_name_len = 10\n", 1);
    let mut client = server.client();
    client.subscribe("abcdefghij");
    client.send(json!({"event": "pusher:subscribe", "data": {"channel": "abcdefghijk"}}));
    assert_eq!(client.recv()["event"], "pusher:error");
}

#[test]
fn a_full_ring_makes_the_publisher_wait_and_drops_nothing() {
    // A one-message ring between the shards: every cross-shard hand-over waits for room.
    let server = Server::start("ring_capacity = 1\n", 2);
    let (mut zero, mut one) = common::clients_on_both_shards(&server, 2);
    let mut clients: Vec<&mut Client> = zero.iter_mut().chain(one.iter_mut()).collect();
    for c in clients.iter_mut() {
        c.subscribe("busy");
    }
    for batch in 0..20 {
        let events: Vec<_> = (0..10)
            .map(|i| json!({"name": "n", "channel": "busy", "data": (batch * 10 + i).to_string()}))
            .collect();
        assert_eq!(server.post("batch_events", &json!({ "batch": events })).0, 200);
    }
    for c in clients.iter_mut() {
        let got: Vec<String> =
            (0..200).map(|_| c.recv()["data"].as_str().unwrap_or("").to_string()).collect();
        let want: Vec<String> = (0..200).map(|i: i32| i.to_string()).collect();
        assert_eq!(got, want, "client on shard {}", c.shard(2));
    }
}
