//! Socket ids (issue 8, "also in this issue"): both parts vary from one connection to the next,
//! as Pusher's do, even on one shard, and a publish that excludes one still reaches all others.

mod common;

use common::{Client, Server};
use serde_json::json;
use std::collections::HashSet;

fn parts(socket_id: &str) -> (u64, u64) {
    let (high, low) = socket_id.split_once('.').expect("socket id is high.low");
    (high.parse().expect("digits"), low.parse().expect("digits"))
}

/// Publishes one event per client on `channel`, each excluding that client, then an event for
/// all; checks every client gets exactly the others' events, then the last one.
fn assert_each_exclusion_works(server: &Server, clients: &mut [Client], channel: &str) {
    let ids: Vec<String> = clients.iter().map(|c| c.socket_id.clone()).collect();
    for (i, id) in ids.iter().enumerate() {
        let event =
            json!({"name": "e", "channel": channel, "data": format!("not-{i}"), "socket_id": id});
        let (status, body) = server.post("events", &event);
        assert_eq!(status, 200, "{body}");
    }
    server.trigger(channel, "e", "all");
    for (j, client) in clients.iter_mut().enumerate() {
        let expected: Vec<String> = (0..ids.len())
            .filter(|i| *i != j)
            .map(|i| format!("not-{i}"))
            .chain(["all".to_string()])
            .collect();
        let got: Vec<String> = (0..expected.len())
            .map(|_| client.recv()["data"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(got, expected, "client {j} ({})", ids[j]);
    }
}

fn assert_all_parts_differ(clients: &[Client]) {
    let ids: Vec<&str> = clients.iter().map(|c| c.socket_id.as_str()).collect();
    let highs: HashSet<u64> = ids.iter().map(|id| parts(id).0).collect();
    let lows: HashSet<u64> = ids.iter().map(|id| parts(id).1).collect();
    assert_eq!(lows.len(), ids.len(), "the parts after the dot repeat: {ids:?}");
    assert_eq!(highs.len(), ids.len(), "the parts before the dot repeat: {ids:?}");
}

#[test]
fn socket_ids_on_one_shard_differ_in_both_parts() {
    let server = Server::start("", 1);
    let mut clients: Vec<Client> = (0..6).map(|_| server.client()).collect();
    for client in &mut clients {
        client.subscribe("room");
    }
    assert_each_exclusion_works(&server, &mut clients, "room");
    assert_all_parts_differ(&clients);
}

#[test]
fn socket_ids_on_two_shards_differ_in_both_parts_and_exclusion_still_routes() {
    let server = Server::start("", 2);
    let mut clients: Vec<Client> = (0..10).map(|_| server.client()).collect();
    for client in &mut clients {
        client.subscribe("hall");
    }
    assert_each_exclusion_works(&server, &mut clients, "hall");
    assert_all_parts_differ(&clients);
}
