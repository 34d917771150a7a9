//! The REST queries: channel lists, one channel's info, presence users, terminating a user's
//! connections, and `info` in publish answers. Counts must be exact over two shards.

mod common;

use common::{clients_on_both_shards, Client, Server, APP_ID};
use serde_json::json;
use std::time::Duration;

/// `n` clients in the presence channel as users u0..u{n-1}, with connections on both shards.
fn presence_members(server: &Server, channel: &str, n: usize) -> Vec<Client> {
    let (zero, one) = clients_on_both_shards(server, n.div_ceil(2));
    let mut clients: Vec<Client> = zero.into_iter().chain(one).collect();
    clients.truncate(n);
    for (i, client) in clients.iter_mut().enumerate() {
        client.join_presence(channel, &format!(r#"{{"user_id":"u{i}"}}"#));
    }
    clients
}

#[test]
fn listing_presence_channels_counts_users_over_all_shards() {
    let server = Server::start("", 2);
    let _room = presence_members(&server, "presence-room", 5);
    let mut second = server.client();
    second.join_presence("presence-room", r#"{"user_id":"u0"}"#);
    let _lobby = presence_members(&server, "presence-lobby", 2);
    let mut other = server.client();
    other.subscribe("news");
    other.join_presence("presence-emptied", r#"{"user_id":"x"}"#);
    other.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-emptied"}}));
    other.sync();
    let (status, body) =
        server.get_signed("channels", &[("filter_by_prefix", "presence-"), ("info", "user_count")]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"channels": {
            "presence-lobby": {"user_count": 2},
            "presence-room": {"user_count": 5},
        }})
    );
}

#[test]
fn listing_channels_shows_occupied_channels_only() {
    let server = Server::start("", 2);
    let (mut zero, mut one) = clients_on_both_shards(&server, 1);
    zero[0].subscribe("alpha");
    one[0].subscribe("beta");
    zero[0].subscribe("gone");
    zero[0].send(json!({"event": "pusher:unsubscribe", "data": {"channel": "gone"}}));
    zero[0].sync();
    server.trigger("never-subscribed", "e", "x");
    let (status, body) = server.get_signed("channels", &[]);
    assert_eq!((status, body), (200, json!({"channels": {"alpha": {}, "beta": {}}})));
    let (status, body) = server.get_signed("channels", &[("filter_by_prefix", "be")]);
    assert_eq!((status, body), (200, json!({"channels": {"beta": {}}})));
}

#[test]
fn listing_refuses_user_count_without_the_presence_prefix() {
    let server = Server::start("", 1);
    assert_eq!(server.get_signed("channels", &[("info", "user_count")]).0, 400);
    let params = [("filter_by_prefix", "private-"), ("info", "user_count")];
    assert_eq!(server.get_signed("channels", &params).0, 400);
    assert_eq!(server.get_signed("channels", &[("info", "bogus")]).0, 400);
}

#[test]
fn one_channel_reports_exact_counts() {
    let server = Server::start("", 2);
    let (mut zero, mut one) = clients_on_both_shards(&server, 3);
    for client in zero.iter_mut().chain(one.iter_mut()) {
        client.subscribe("busy");
    }
    let (status, body) = server.get_signed("channels/busy", &[("info", "subscription_count")]);
    assert_eq!((status, body), (200, json!({"occupied": true, "subscription_count": 6})));
    one[0].send(json!({"event": "pusher:unsubscribe", "data": {"channel": "busy"}}));
    one[0].sync();
    drop(zero.pop());
    // The close is processed asynchronously; poll until the count settles.
    let mut last = json!(null);
    for _ in 0..50 {
        last = server.get_signed("channels/busy", &[("info", "subscription_count")]).1;
        if last["subscription_count"] == 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(last, json!({"occupied": true, "subscription_count": 4}));
    let (status, body) = server.get_signed("channels/empty", &[("info", "subscription_count")]);
    assert_eq!((status, body), (200, json!({"occupied": false, "subscription_count": 0})));
    assert_eq!(server.get_signed("channels/empty", &[]).1, json!({"occupied": false}));
}

#[test]
fn one_presence_channel_reports_user_count() {
    let server = Server::start("", 2);
    let _members = presence_members(&server, "presence-room", 4);
    let mut again = server.client();
    again.join_presence("presence-room", r#"{"user_id":"u1"}"#);
    let params = [("info", "user_count,subscription_count")];
    let (status, body) = server.get_signed("channels/presence-room", &params);
    assert_eq!(
        (status, body),
        (200, json!({"occupied": true, "user_count": 4, "subscription_count": 5}))
    );
}

#[test]
fn channel_info_refuses_attributes_that_do_not_fit_the_channel() {
    let server = Server::start("", 1);
    let mut client = server.client();
    client.subscribe("news");
    assert_eq!(server.get_signed("channels/news", &[("info", "user_count")]).0, 400);
    assert_eq!(server.get_signed("channels/private-x", &[("info", "user_count")]).0, 400);
    assert_eq!(server.get_signed("channels/news", &[("info", "cache")]).0, 400);
    assert_eq!(server.get_signed("channels/presence-x", &[("info", "cache")]).0, 400);
    assert_eq!(server.get_signed("channels/news", &[("info", "nope")]).0, 400);
}

#[test]
fn cache_channel_info_shows_the_cached_event() {
    let server = Server::start("", 2);
    let (status, body) = server.get_signed("channels/cache-x", &[("info", "cache")]);
    assert_eq!((status, body), (200, json!({"occupied": false})));
    server.trigger("cache-x", "e", "cached data");
    let (status, body) = server.get_signed("channels/cache-x", &[("info", "cache")]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cache"]["data"], "cached data", "{body}");
    assert!(body["cache"]["ttl"].as_u64().is_some_and(|t| t > 0 && t <= 1800), "{body}");
}

#[test]
fn users_of_a_presence_channel_over_all_shards() {
    let server = Server::start("", 2);
    let _members = presence_members(&server, "presence-room", 6);
    let (status, body) = server.get_signed("channels/presence-room/users", &[]);
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<String> = body["users"]
        .as_array()
        .expect("users array")
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, (0..6).map(|i| format!("u{i}")).collect::<Vec<_>>());
    let (status, body) = server.get_signed("channels/presence-empty/users", &[]);
    assert_eq!((status, body), (200, json!({"users": []})));
    assert_eq!(server.get_signed("channels/news/users", &[]).0, 400);
    assert_eq!(server.get_signed("channels/private-x/users", &[]).0, 400);
}

#[test]
fn queries_must_be_signed() {
    let server = Server::start("", 1);
    let (status, _) = server.get(&format!("/apps/{APP_ID}/channels"));
    assert_eq!(status, 401);
    let (status, _) = server.get(&format!(
        "/apps/{APP_ID}/channels?auth_key=app-key&auth_timestamp={}&auth_version=1.0&auth_signature={}",
        common::now(),
        "0".repeat(64)
    ));
    assert_eq!(status, 401);
    // Signed for one query, sent with another parameter added.
    let path = format!("/apps/{APP_ID}/channels");
    let query = common::sign_with("GET", &path, "", &[], common::now());
    assert_eq!(server.get(&format!("{path}?{query}&filter_by_prefix=x")).0, 401);
}

#[test]
fn terminate_connections_closes_every_connection_of_the_user() {
    let server = Server::start("", 2);
    let (zero, one) = clients_on_both_shards(&server, 2);
    let mut clients: Vec<Client> = zero.into_iter().chain(one).collect();
    // u7 on both shards (clients 0 and 2), u8 on shard 0, an anonymous one on shard 1.
    clients[0].sign_in(r#"{"id":"u7"}"#);
    clients[2].sign_in(r#"{"id":"u7"}"#);
    clients[1].sign_in(r#"{"id":"u8"}"#);
    let (status, body) = server.post("users/u7/terminate_connections", &json!({}));
    assert_eq!((status, body), (200, json!({})));
    assert_eq!(clients[0].close_code(), Some(4009));
    assert_eq!(clients[2].close_code(), Some(4009));
    clients[1].sync();
    clients[3].sync();
    // Unknown users are fine.
    let (status, body) = server.post("users/nobody/terminate_connections", &json!({}));
    assert_eq!((status, body), (200, json!({})));
}

#[test]
fn publish_info_returns_exact_counts() {
    let server = Server::start("", 2);
    let (mut zero, mut one) = clients_on_both_shards(&server, 2);
    for client in zero.iter_mut().chain(one.iter_mut()) {
        client.subscribe("room");
    }
    let _members = presence_members(&server, "presence-p", 3);
    let body = json!({"name": "e", "channels": ["room", "nobody-here"], "data": "x", "info": "subscription_count"});
    let (status, reply) = server.post("events", &body);
    assert_eq!(
        (status, reply),
        (
            200,
            json!({"channels": {"room": {"subscription_count": 4}, "nobody-here": {"subscription_count": 0}}})
        )
    );
    let body = json!({"name": "e", "channel": "presence-p", "data": "x", "info": "user_count"});
    let (status, reply) = server.post("events", &body);
    assert_eq!((status, reply), (200, json!({"channels": {"presence-p": {"user_count": 3}}})));
    for client in zero.iter_mut().chain(one.iter_mut()) {
        assert_eq!(client.recv()["channel"], "room");
    }
}
