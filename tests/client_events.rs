//! Client events (`client-*`): relayed to the other subscribers of a private or presence
//! channel, never echoed, refused where Pusher refuses them, and rate limited with 4301.

mod common;

use common::{assert_quiet, clients_on_both_shards, Server};
use serde_json::{json, Value};
use std::time::Duration;

fn app(extra: &str) -> String {
    format!("[[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\n{extra}")
}

fn client_event(channel: &str, data: Value) -> Value {
    json!({"event": "client-typing", "channel": channel, "data": data})
}

#[test]
fn private_client_events_reach_the_others_but_not_the_sender() {
    let server = Server::start("", 1);
    let mut sender = server.client();
    let mut b = server.client();
    let mut c = server.client();
    for client in [&mut sender, &mut b, &mut c] {
        client.subscribe_private("private-chat");
    }
    sender.send(client_event("private-chat", json!({"text": "hi", "n": [1, 2]})));
    let want = client_event("private-chat", json!({"text": "hi", "n": [1, 2]}));
    assert_eq!(b.recv(), want);
    assert_eq!(c.recv(), want);
    assert_quiet(&server, &mut sender, "private-chat");
}

#[test]
fn client_event_data_is_relayed_as_sent() {
    let server = Server::start("", 1);
    let mut sender = server.client();
    let mut receiver = server.client();
    sender.subscribe_private("private-chat");
    receiver.subscribe_private("private-chat");
    for data in [json!("a string"), json!(42), json!({"nested": {"a": null}}), json!([true])] {
        sender.send(client_event("private-chat", data.clone()));
        assert_eq!(receiver.recv()["data"], data);
    }
}

#[test]
fn presence_client_events_carry_the_user_id() {
    let server = Server::start("", 1);
    let mut sender = server.client();
    let mut receiver = server.client();
    sender.join_presence("presence-room", r#"{"user_id":"u1"}"#);
    receiver.join_presence("presence-room", r#"{"user_id":"u2"}"#);
    assert_eq!(sender.recv()["event"], "pusher_internal:member_added");
    sender.send(client_event("presence-room", json!({"typing": true})));
    assert_eq!(
        receiver.recv(),
        json!({"event": "client-typing", "channel": "presence-room", "data": {"typing": true}, "user_id": "u1"})
    );
    assert_quiet(&server, &mut sender, "presence-room");
}

#[test]
fn client_events_cross_shards() {
    let server = Server::start("", 2);
    let (mut zero, mut one) = clients_on_both_shards(&server, 2);
    for client in zero.iter_mut().chain(one.iter_mut()) {
        client.subscribe_private("private-wide");
    }
    zero[0].send(client_event("private-wide", json!({"from": 0})));
    for client in zero.iter_mut().skip(1).chain(one.iter_mut()) {
        assert_eq!(client.recv()["data"], json!({"from": 0}), "shard {}", client.shard(2));
    }
    one[0].send(client_event("private-wide", json!({"from": 1})));
    for client in zero.iter_mut().chain(one.iter_mut().skip(1)) {
        assert_eq!(client.recv()["data"], json!({"from": 1}), "shard {}", client.shard(2));
    }
}

#[test]
fn client_events_are_refused_where_pusher_refuses_them() {
    let server = Server::start("", 1);
    let mut sender = server.client();
    let mut listener = server.client();
    sender.subscribe("public");
    listener.subscribe("public");
    sender.subscribe_private("private-encrypted-e");
    listener.subscribe_private("private-encrypted-e");
    listener.subscribe_private("private-other");
    for channel in ["public", "private-encrypted-e", "private-other", "presence-none"] {
        sender.send(client_event(channel, json!({"x": 1})));
        let error = sender.expect_error();
        assert_eq!(error["code"], json!(null), "{channel}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{channel}: {error}");
    }
    // A client-* event without a channel is an error too.
    sender.send(json!({"event": "client-typing", "data": {}}));
    sender.expect_error();
    for channel in ["public", "private-encrypted-e", "private-other"] {
        assert_quiet(&server, &mut listener, channel);
    }
}

#[test]
fn client_events_after_unsubscribe_are_refused() {
    let server = Server::start("", 1);
    let mut sender = server.client();
    let mut listener = server.client();
    sender.subscribe_private("private-chat");
    listener.subscribe_private("private-chat");
    sender.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "private-chat"}}));
    sender.send(client_event("private-chat", json!("late")));
    sender.expect_error();
    assert_quiet(&server, &mut listener, "private-chat");
}

#[test]
fn client_events_can_be_disabled_per_app() {
    let server = Server::start(&app("enable_client_messages = false\n"), 1);
    let mut sender = server.client();
    let mut listener = server.client();
    sender.subscribe_private("private-chat");
    listener.subscribe_private("private-chat");
    sender.send(client_event("private-chat", json!({})));
    let error = sender.expect_error();
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    assert_quiet(&server, &mut listener, "private-chat");
    sender.sync();
}

#[test]
fn client_events_beyond_the_rate_limit_get_4301_and_the_connection_stays() {
    let server = Server::start(&app("max_client_events_per_second = 3\n"), 1);
    let mut sender = server.client();
    let mut listener = server.client();
    sender.subscribe_private("private-chat");
    listener.subscribe_private("private-chat");
    const SENT: usize = 20;
    for i in 0..SENT {
        sender.send(client_event("private-chat", json!(i)));
    }
    // Every message is either relayed or answered with a 4301, and some are refused.
    let mut refused = 0;
    sender.send(json!({"event": "pusher:ping", "data": {}}));
    loop {
        let got = sender.recv();
        match got["event"].as_str() {
            Some("pusher:pong") => break,
            Some("pusher:error") => {
                assert_eq!(got["data"]["code"], 4301, "{got}");
                refused += 1;
            }
            _ => panic!("unexpected {got}"),
        }
    }
    assert!(refused > 0, "none of {SENT} client events was rate limited");
    server.trigger("private-chat", "control", "end");
    let mut relayed = 0;
    loop {
        let got = listener.recv();
        if got["event"] == "control" {
            break;
        }
        assert_eq!(got["event"], "client-typing", "{got}");
        relayed += 1;
    }
    assert_eq!(relayed + refused, SENT, "relayed {relayed}, refused {refused}");
    assert!(relayed > 0);
    // Still open: a later event (after the window) is relayed.
    sender.sync();
    std::thread::sleep(Duration::from_millis(1100));
    sender.send(client_event("private-chat", json!("after")));
    assert_eq!(listener.recv()["data"], "after");
}
