//! Zato pub/sub over a cluster (a real nats-server, three nodes on 127.0.0.1, a data directory
//! each): a publication on one node, over REST or WSX, reaches the WSX subscribers of its topic
//! on every node, once each and in publication order, and a node keeps no backlog for a topic
//! another node has subscribers of. Skipped (with a message) where nats-server is not
//! installed. No timing is asserted: the first publications are repeated until one arrives
//! (the subscriber's node follows the topic on its own time), then the checked ones follow.

mod common;

use common::{
    cluster::{nats_binary, start_nodes_with, Nats},
    zato::{config, topics, Api, DataDir, Wsx, USER},
};
use serde_json::{json, Value};
use std::time::Duration;

fn nats() -> Option<Nats> {
    if nats_binary().is_none() {
        eprintln!("SKIPPED: nats-server is not installed");
        return None;
    }
    Some(Nats::start())
}

/// The data of every message in the next delivery (one message or a list), or none in `wait`.
fn delivered(wsx: &mut Wsx, wait: Duration) -> Vec<String> {
    let Some(got) = wsx.delivery(wait) else { return Vec::new() };
    let data = |m: &Value| m["data"].as_str().map(String::from);
    match &got["data"] {
        Value::Array(list) => list.iter().filter_map(data).collect(),
        one => data(one).into_iter().collect(),
    }
}

/// Publishes `warm-<n>` through `publish` until one reaches `wsx`, then `0..5`; checks `wsx`
/// gets each of those once and in order after the warm-ups.
fn check_crosses(wsx: &mut Wsx, publish: impl Fn(&str)) {
    let mut warmed = false;
    for n in 0..100 {
        publish(&format!("warm-{n}"));
        if !delivered(wsx, Duration::from_millis(200)).is_empty() {
            warmed = true;
            break;
        }
    }
    assert!(warmed, "no publication crossed to the subscriber's node");
    for i in 0..5 {
        publish(&i.to_string());
    }
    let mut got = Vec::new();
    while got.len() < 5 {
        let data = delivered(wsx, Duration::from_secs(10));
        assert!(!data.is_empty(), "a delivery came in time; got {got:?}");
        got.extend(data.into_iter().filter(|d| !d.starts_with("warm-")));
    }
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    assert!(delivered(wsx, Duration::from_millis(300)).is_empty(), "a message came twice");
}

#[test]
/// Feature line F002-22 (../shared/reference/seed-systems.md).
fn f002_22_wsx_subscribers_on_every_node_get_a_publication_made_on_any_node_once_and_in_order() {
    let Some(nats) = nats() else { return };
    let dirs: Vec<DataDir> = (0..3).map(|i| DataDir::new(&format!("cluster-{i}"))).collect();
    let nodes = start_nodes_with(&nats, 3, 2, |i| config(&dirs[i], "", &topics(&["/t"])));

    // REST on node 0, a WSX subscriber on node 1.
    let mut on_1 = Wsx::session(&nodes[1], USER);
    on_1.subscribe("/t", json!({}));
    let rest = Api::new(&nodes[0], USER);
    check_crosses(&mut on_1, |data| {
        rest.publish_ok("/t", data, json!({}));
    });

    // Node 0 kept no backlog of what node 1's subscriber took: a first subscription there
    // starts empty (warm-ups racing node 1's first subscription may have been kept).
    let pull = rest.subscribe_ok("/t");
    let kept: Vec<Value> = rest.messages("/t", &pull);
    let checked = kept.iter().filter(|m| !m["data"].as_str().unwrap_or("").starts_with("warm-"));
    assert_eq!(checked.count(), 0, "node 0 kept {kept:?}");

    // A WSX publisher on node 2 reaches subscribers on nodes 0 and 1, not itself twice.
    let mut on_0 = Wsx::session(&nodes[0], USER);
    on_0.subscribe("/t", json!({}));
    let publisher = std::cell::RefCell::new(Wsx::session(&nodes[2], USER));
    let publish = |data: &str| {
        let request = json!({"topic_name": "/t", "data": data});
        let answer = publisher.borrow_mut().invoke("zato.pubsub.pubapi.publish-message", request);
        assert_eq!(answer["meta"]["msg_type"], "zwsx.rspok", "{answer}");
    };
    check_crosses(&mut on_0, publish);
    let mut on_1_got = Vec::new();
    while on_1_got.len() < 5 {
        let data = delivered(&mut on_1, Duration::from_secs(10));
        assert!(!data.is_empty(), "node 1's subscriber got node 2's publications");
        on_1_got.extend(data.into_iter().filter(|d| !d.starts_with("warm-")));
    }
    assert_eq!(on_1_got, ["0", "1", "2", "3", "4"]);
    // Node 0's pull subscription got them too, once each.
    let pulled: Vec<String> = rest
        .messages("/t", &pull)
        .iter()
        .filter_map(|m| m["data"].as_str().map(String::from))
        .filter(|d| !d.starts_with("warm-"))
        .collect();
    assert_eq!(pulled, ["0", "1", "2", "3", "4"]);
}

#[test]
fn after_nats_restarts_the_nodes_follow_their_topics_again_and_publications_cross() {
    let Some(mut nats) = nats() else { return };
    let dirs: Vec<DataDir> = (0..2).map(|i| DataDir::new(&format!("restart-{i}"))).collect();
    let nodes = start_nodes_with(&nats, 2, 1, |i| config(&dirs[i], "", &topics(&["/t"])));
    let mut on_1 = Wsx::session(&nodes[1], USER);
    on_1.subscribe("/t", json!({}));
    let rest = Api::new(&nodes[0], USER);
    let publish = |data: &str| {
        rest.publish_ok("/t", data, json!({}));
    };
    check_crosses(&mut on_1, publish);
    nats.stop();
    nats.restart();
    // Node 1 follows /t again once its link is back (the interest it held is resent).
    check_crosses(&mut on_1, publish);
}

#[test]
/// Feature line F002-15 (../shared/reference/seed-systems.md).
fn f002_15_get_messages_and_unsubscribe_reach_the_node_that_holds_the_sub_key() {
    let Some(nats) = nats() else { return };
    let dirs: Vec<DataDir> = (0..2).map(|i| DataDir::new(&format!("pull-{i}"))).collect();
    let nodes = start_nodes_with(&nats, 2, 1, |i| config(&dirs[i], "", &topics(&["/t"])));
    let on_0 = Api::new(&nodes[0], USER);
    let on_1 = Api::new(&nodes[1], USER);
    let key = on_0.subscribe_ok("/t");
    on_0.publish_ok("/t", "a", json!({}));
    on_0.publish_ok("/t", "b", json!({}));
    // Through the other node, as a load balancer may send it.
    let data: Vec<String> = on_1
        .messages("/t", &key)
        .iter()
        .filter_map(|m| m["data"].as_str().map(String::from))
        .collect();
    assert_eq!(data, ["a", "b"]);
    assert!(on_0.messages("/t", &key).is_empty(), "taken once, on the node that holds them");
    let (status, answer, _) = on_1.unsubscribe("/t", &key);
    assert_eq!(status, 200, "{answer}");
    let (status, _, _) = on_0.get_messages("/t", &key);
    assert_eq!(status, 403, "the subscription is gone");
    // A sub_key no node holds is refused as before.
    let (status, _, _) = on_1.get_messages("/t", "zpsk.rest.nobody");
    assert_eq!(status, 403);
}
