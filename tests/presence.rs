//! Presence channels: signed channel_data, member snapshots, member_added / member_removed per
//! user (not per connection), limits, and member state kept on the channel's home shard.

mod common;

use common::{assert_quiet, channel_auth, clients_on_both_shards, Client, Server};
use serde_json::{json, Value};
use std::{collections::BTreeSet, time::Duration};

const QUIET: Duration = Duration::from_millis(300);

fn app(extra: &str) -> String {
    format!("[[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\n{extra}")
}

/// The member ids of a presence snapshot.
fn ids(presence: &Value) -> BTreeSet<String> {
    let ids = presence["ids"].as_array().expect("ids array");
    ids.iter().map(|v| v.as_str().expect("string id").to_string()).collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn join_returns_the_members_and_tells_the_others() {
    let server = Server::start("", 1);
    let mut a = server.client();
    let first = a.join_presence("presence-room", r#"{"user_id":"u1","user_info":{"name":"A"}}"#);
    assert_eq!(first, json!({"ids": ["u1"], "hash": {"u1": {"name": "A"}}, "count": 1}));
    let mut b = server.client();
    let second = b.join_presence("presence-room", r#"{"user_id":"u2","user_info":{"name":"B"}}"#);
    assert_eq!(second["count"], 2);
    assert_eq!(ids(&second), set(&["u1", "u2"]));
    assert_eq!(second["hash"], json!({"u1": {"name": "A"}, "u2": {"name": "B"}}));
    let added = a.recv_data("pusher_internal:member_added", "presence-room");
    assert_eq!(added, json!({"user_id": "u2", "user_info": {"name": "B"}}));
    // The joiner is not told about itself.
    assert_quiet(&server, &mut b, "presence-room");
}

#[test]
fn numeric_user_ids_are_accepted() {
    let server = Server::start("", 1);
    let mut a = server.client();
    let presence = a.join_presence("presence-n", r#"{"user_id":7,"user_info":{"n":1}}"#);
    assert_eq!(presence["count"], 1);
    assert_eq!(presence["ids"], json!(["7"]));
    assert_eq!(presence["hash"], json!({"7": {"n": 1}}));
}

#[test]
fn members_are_users_not_connections() {
    let server = Server::start("", 2);
    let mut observer = server.client();
    observer.join_presence("presence-room", r#"{"user_id":"obs"}"#);
    let data = r#"{"user_id":"u1","user_info":{"name":"A"}}"#;
    let mut first = server.client();
    first.join_presence("presence-room", data);
    let added = observer.recv_data("pusher_internal:member_added", "presence-room");
    assert_eq!(added["user_id"], "u1");
    // The same user's second connection: no member_added, and u1 is listed once.
    let mut second = server.client();
    let presence = second.join_presence("presence-room", data);
    assert_eq!(presence["count"], 2, "{presence}");
    assert_quiet(&server, &mut observer, "presence-room");
    // One of two connections leaves: u1 is still present.
    first.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}}));
    first.sync();
    assert_quiet(&server, &mut observer, "presence-room");
    // The last connection disconnects: now u1 leaves.
    drop(second);
    let removed = observer.recv_data("pusher_internal:member_removed", "presence-room");
    assert_eq!(removed, json!({"user_id": "u1"}));
}

#[test]
fn unsubscribe_of_the_only_connection_removes_the_member() {
    let server = Server::start("", 1);
    let mut observer = server.client();
    observer.join_presence("presence-room", r#"{"user_id":"obs"}"#);
    let mut leaver = server.client();
    leaver.join_presence("presence-room", r#"{"user_id":"bye"}"#);
    observer.recv_data("pusher_internal:member_added", "presence-room");
    leaver.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}}));
    let removed = observer.recv_data("pusher_internal:member_removed", "presence-room");
    assert_eq!(removed, json!({"user_id": "bye"}));
    // And the next joiner no longer sees it.
    let mut late = server.client();
    assert_eq!(late.join_presence("presence-room", r#"{"user_id":"late"}"#)["count"], 2);
}

#[test]
fn bad_presence_subscriptions_are_refused_and_leave_no_member() {
    let server = Server::start(&app("max_user_id_len = 8\nmax_presence_user_info_bytes = 32\n"), 1);
    let mut observer = server.client();
    observer.join_presence("presence-room", r#"{"user_id":"obs"}"#);
    let mut client = server.client();
    client.subscribe("control");
    let sid = client.socket_id.clone();
    let ch = "presence-room";
    let signed = |data: &str| channel_auth(&sid, ch, Some(data));
    let good = r#"{"user_id":"u1"}"#;
    let long_id = r#"{"user_id":"123456789"}"#;
    let big_info = format!(r#"{{"user_id":"u2","user_info":{{"x":"{}"}}}}"#, "y".repeat(40));
    let cases: Vec<(&str, Option<String>, Option<String>)> = vec![
        ("no channel_data", Some(signed(good)), None),
        ("no auth", None, Some(good.into())),
        ("auth without channel_data", Some(channel_auth(&sid, ch, None)), Some(good.into())),
        ("tampered channel_data", Some(signed(good)), Some(r#"{"user_id":"admin"}"#.into())),
        ("no user_id", Some(signed(r#"{"user_info":{}}"#)), Some(r#"{"user_info":{}}"#.into())),
        ("empty user_id", Some(signed(r#"{"user_id":""}"#)), Some(r#"{"user_id":""}"#.into())),
        ("not JSON", Some(signed("nope")), Some("nope".into())),
        ("user_id too long", Some(signed(long_id)), Some(long_id.into())),
        ("user_info too big", Some(signed(&big_info)), Some(big_info.clone())),
    ];
    for (why, auth, data) in &cases {
        client.send_subscribe(ch, auth.as_deref(), data.as_deref());
        let error = client.expect_error();
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{why}: {error}");
    }
    // No member was added, and the refused connection gets nothing from the channel.
    assert_quiet(&server, &mut observer, ch);
    server.trigger(ch, "leak", "must not arrive");
    server.trigger("control", "control", "ok");
    assert_eq!(client.recv()["channel"], "control");
    let (status, users) = server.get_signed(&format!("channels/{ch}/users"), &[]);
    assert_eq!((status, users), (200, json!({"users": [{"id": "obs"}]})));
}

#[test]
fn a_second_join_on_one_connection_is_refused() {
    let server = Server::start("", 1);
    let mut client = server.client();
    client.join_presence("presence-room", r#"{"user_id":"u1"}"#);
    let data = r#"{"user_id":"u2"}"#;
    let auth = channel_auth(&client.socket_id, "presence-room", Some(data));
    client.send_subscribe("presence-room", Some(&auth), Some(data));
    let error = client.expect_error();
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("Existing subscription"), "{error}");
    let (_, users) = server.get_signed("channels/presence-room/users", &[]);
    assert_eq!(users, json!({"users": [{"id": "u1"}]}));
}

#[test]
fn the_member_limit_counts_users() {
    let server = Server::start(&app("max_presence_members = 2\n"), 2);
    let mut a = server.client();
    a.join_presence("presence-small", r#"{"user_id":"a"}"#);
    let mut b = server.client();
    b.join_presence("presence-small", r#"{"user_id":"b"}"#);
    let mut c = server.client();
    let data = r#"{"user_id":"c"}"#;
    let auth = channel_auth(&c.socket_id, "presence-small", Some(data));
    c.send_subscribe("presence-small", Some(&auth), Some(data));
    let error = c.expect_error();
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    // Refused means not subscribed.
    server.trigger("presence-small", "e", "members only");
    assert_eq!(a.recv_data("pusher_internal:member_added", "presence-small")["user_id"], "b");
    assert_eq!(a.recv()["data"], "members only");
    assert!(c.try_recv(QUIET).is_none());
    // Another connection of an existing user still fits.
    let mut a2 = server.client();
    assert_eq!(a2.join_presence("presence-small", r#"{"user_id":"a"}"#)["count"], 2);
}

/// Applies each client's member events to what it already knew (`known`) until it knows exactly
/// `target`, then publishes a control event and checks that nothing else came first. A client's
/// TCP close and a REST publish race each other, so waiting for the end state (a missing event
/// fails on the read timeout) is what keeps this exact rather than lucky.
fn members_reach(
    server: &Server,
    clients: &mut [Client],
    known: &[Value],
    target: &BTreeSet<String>,
) {
    for (i, (client, snapshot)) in clients.iter_mut().zip(known).enumerate() {
        let mut ids = ids(snapshot);
        while &ids != target {
            let got = client.recv();
            let data = || -> Value {
                serde_json::from_str(got["data"].as_str().expect("s")).expect("json")
            };
            match got["event"].as_str() {
                Some("pusher_internal:member_added") => {
                    assert!(ids.insert(data()["user_id"].as_str().expect("id").into()), "{got}")
                }
                Some("pusher_internal:member_removed") => {
                    assert!(ids.remove(data()["user_id"].as_str().expect("id")), "{got}")
                }
                _ => panic!("client {i}: unexpected {got}"),
            }
        }
    }
    server.trigger("presence-all", "control", "end");
    for (i, client) in clients.iter_mut().enumerate() {
        let got = client.recv();
        assert_eq!(got["event"], "control", "client {i} on shard {}: {got}", client.shard(2));
    }
}

#[test]
fn members_are_complete_from_every_shard() {
    let server = Server::start("", 2);
    let (zero, one) = clients_on_both_shards(&server, 3);
    let mut clients: Vec<Client> = zero.into_iter().chain(one).collect();
    let mut snapshots = Vec::new();
    for (i, client) in clients.iter_mut().enumerate() {
        let data = format!(r#"{{"user_id":"u{i}","user_info":{{"i":{i}}}}}"#);
        let snapshot = client.join_presence("presence-all", &data);
        assert_eq!(snapshot["count"], i + 1, "joiner {i} on shard {}", client.shard(2));
        assert_eq!(snapshot["hash"][format!("u{i}")], json!({"i": i}));
        snapshots.push(snapshot);
    }
    let all: BTreeSet<String> = (0..6).map(|i| format!("u{i}")).collect();
    members_reach(&server, &mut clients, &snapshots, &all);
    let (_, users) = server.get_signed("channels/presence-all/users", &[]);
    let listed: BTreeSet<String> = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(listed, all);
    // A member on shard 1 and one on shard 0 disconnect: everyone left sees both go.
    let gone_one = clients.remove(5);
    let gone_zero = clients.remove(0);
    assert_eq!((gone_zero.shard(2), gone_one.shard(2)), (0, 1));
    drop((gone_zero, gone_one));
    // Each remaining client, knowing all six, sees u0 and u5 leave and nothing else.
    let known = vec![json!({"ids": all}); clients.len()];
    members_reach(&server, &mut clients, &known, &set(&["u1", "u2", "u3", "u4"]));
    let (_, count) = server.get_signed("channels/presence-all", &[("info", "user_count")]);
    assert_eq!(count["user_count"], 4, "{count}");
}
