//! Cluster mode with a real nats-server and several pushgate nodes on 127.0.0.1: publications
//! cross nodes exactly once and in order, a node hears only the topics it follows, and the link
//! recovers when NATS restarts. Skipped (with a message) where nats-server is not installed;
//! `.ci/run` installs it.

mod common;

use common::{
    cluster::{cluster_toml, nats_binary, start_nodes, wait_until, Nats},
    Client, Server,
};
use serde_json::json;
use std::time::Duration;

fn nats() -> Option<Nats> {
    if nats_binary().is_none() {
        eprintln!("SKIPPED: nats-server is not installed");
        return None;
    }
    Some(Nats::start())
}

/// Subscribes `client` to `channel` and waits until `node` follows it on NATS.
fn follow(node: &Server, client: &mut Client, channel: &str, before: u64) {
    client.subscribe(channel);
    wait_until(|| node.cluster_metric("interest") > before);
}

#[test]
/// Feature line F003-25 (../shared/reference/seed-systems.md).
fn f003_25_a_publish_on_one_node_reaches_every_node_once_and_in_order() {
    let Some(nats) = nats() else { return };
    let nodes = start_nodes(&nats, 3, 2, "");
    let mut clients: Vec<Client> = Vec::new();
    for node in &nodes {
        for _ in 0..2 {
            let mut client = node.client();
            let before = node.cluster_metric("interest");
            if before == 0 {
                follow(node, &mut client, "news", 0);
            } else {
                client.subscribe("news");
            }
            clients.push(client);
        }
    }
    for i in 0..20 {
        nodes[0].trigger("news", "seq", &i.to_string());
    }
    for client in &mut clients {
        for i in 0..20 {
            let got = client.recv();
            assert_eq!(got, json!({"event": "seq", "channel": "news", "data": i.to_string()}));
        }
        assert!(client.try_recv(Duration::from_millis(200)).is_none(), "a duplicate arrived");
    }
    assert_eq!(nodes[1].cluster_metric("received_total"), 20);
    assert_eq!(nodes[0].cluster_metric("published_total"), 20);
}

#[test]
fn a_node_hears_only_the_topics_it_follows() {
    let Some(nats) = nats() else { return };
    let nodes = start_nodes(&nats, 2, 1, "");
    let mut here = nodes[0].client();
    here.subscribe("lonely");
    nodes[0].trigger("lonely", "e", "1");
    assert_eq!(here.recv()["data"], "1");
    assert_eq!(nodes[1].cluster_metric("received_total"), 0, "node-1 follows nothing");
    let mut there = nodes[1].client();
    follow(&nodes[1], &mut there, "lonely", 0);
    nodes[0].trigger("lonely", "e", "2");
    assert_eq!(there.recv()["data"], "2");
    assert_eq!(nodes[1].cluster_metric("received_total"), 1);
    drop(there);
    wait_until(|| nodes[1].cluster_metric("interest") == 0);
}

#[test]
fn the_link_recovers_when_nats_restarts_and_publishes_meanwhile_stay_local() {
    let Some(mut nats) = nats() else { return };
    let nodes = start_nodes(&nats, 2, 1, "");
    let (mut local, mut remote) = (nodes[0].client(), nodes[1].client());
    local.subscribe("c");
    follow(&nodes[1], &mut remote, "c", 0);
    nats.stop();
    wait_until(|| nodes.iter().all(|n| n.cluster_metric("link_up") == 0));
    nodes[0].trigger("c", "e", "while-down");
    assert_eq!(local.recv()["data"], "while-down", "delivered on its own node");
    wait_until(|| nodes[0].cluster_metric("missed_while_down_total") == 1);
    nats.restart();
    wait_until(|| nodes.iter().all(|n| n.cluster_metric("link_up") == 1));
    assert!(nodes[0].cluster_metric("reconnects_total") >= 1);
    nodes[0].trigger("c", "e", "after");
    assert_eq!(local.recv()["data"], "after");
    assert_eq!(remote.recv()["data"], "after", "the subscription came back with the link");
}

#[test]
fn with_when_down_refuse_a_publish_gets_503_while_the_link_is_down() {
    let Some(mut nats) = nats() else { return };
    let config = cluster_toml(&nats, "solo", "when_down = \"refuse\"");
    let node = Server::start(&config, 1);
    wait_until(|| node.cluster_metric("link_up") == 1);
    nats.stop();
    wait_until(|| node.cluster_metric("link_up") == 0);
    let (status, body) = node.post("events", &json!({"name": "e", "channel": "c", "data": "x"}));
    assert_eq!(status, 503, "{body}");
    nats.restart();
    wait_until(|| node.cluster_metric("link_up") == 1);
    let (status, _) = node.post("events", &json!({"name": "e", "channel": "c", "data": "x"}));
    assert_eq!(status, 200);
}

#[test]
/// Feature line F003-15 (../shared/reference/seed-systems.md).
fn f003_15_a_socket_id_excludes_its_connection_when_the_publish_goes_through_another_node() {
    let Some(nats) = nats() else { return };
    let nodes = start_nodes(&nats, 2, 2, "");
    let mut sender = nodes[1].client();
    let mut other = nodes[1].client();
    follow(&nodes[1], &mut sender, "room", 0);
    other.subscribe("room");
    let body = |data: &str| json!({"name": "said", "channel": "room", "data": data, "socket_id": sender.socket_id});
    // The first publishes may go before node 0 knows node 1 follows: repeat until one crosses.
    let mut crossed = false;
    for n in 0..100 {
        let (status, answer) = nodes[0].post("events", &body(&format!("warm-{n}")));
        assert_eq!(status, 200, "{answer}");
        if other.try_recv(Duration::from_millis(200)).is_some() {
            crossed = true;
            break;
        }
    }
    assert!(crossed, "no publish crossed to node 1");
    let (status, _) = nodes[0].post("events", &body("checked"));
    assert_eq!(status, 200);
    loop {
        let got = other.recv();
        if got["data"] == "checked" {
            break;
        }
    }
    assert!(
        sender.try_recv(Duration::from_millis(300)).is_none(),
        "the excluded connection got the publication"
    );
}

#[test]
fn a_cache_channel_replays_the_newest_event_published_on_any_node() {
    let Some(nats) = nats() else { return };
    let nodes = start_nodes(&nats, 3, 2, "");
    nodes[0].trigger("cache-news", "update", "old");
    nodes[2].trigger("cache-news", "update", "new");
    // A subscriber on node 1, where nothing was published, gets the newest of the cluster.
    let mut client = nodes[1].client();
    client.subscribe("cache-news");
    assert_eq!(client.recv(), json!({"event": "update", "channel": "cache-news", "data": "new"}));
    // The channel's info says the same on every node.
    for node in &nodes {
        let (status, info) = node.get_signed("channels/cache-news", &[("info", "cache")]);
        assert_eq!(status, 200, "{info}");
        assert_eq!(info["cache"]["data"], "new", "{info}");
    }
}
