//! The gateway dialect over a cluster (a real nats-server, two nodes on 127.0.0.1): a publish
//! through one node's `POST /gateway/publish` reaches a topic's subscribers and a connection's
//! `sig_<sid>` on the other node, once and in publish order; `GET /list/topics` on any node
//! lists the topics of every node. Skipped (with a message) where
//! nats-server is not installed. No timing is asserted: the first publishes are repeated until
//! one arrives (the other node's interest reaches NATS on its own time), then the checked ones
//! follow.

mod common;

use common::{
    cluster::{nats_binary, start_nodes, wait_until, Nats},
    gateway::{routes, GwClient, Mock, REGISTER, SUB_ADD},
};
use std::time::Duration;
use tungstenite::stream::MaybeTlsStream;

fn nats() -> Option<Nats> {
    if nats_binary().is_none() {
        eprintln!("SKIPPED: nats-server is not installed");
        return None;
    }
    Some(Nats::start())
}

/// The next push's resultData, or None when nothing comes within `wait`.
fn try_push(client: &mut GwClient, wait: Duration) -> Option<String> {
    if let MaybeTlsStream::Plain(stream) = client.ws.get_ref() {
        stream.set_read_timeout(Some(wait)).expect("read timeout");
    }
    let got = match client.ws.read() {
        Ok(tungstenite::Message::Text(text)) => {
            let v: serde_json::Value = serde_json::from_str(&text).expect("json");
            v["body"]["resultData"].as_str().map(str::to_string)
        }
        Ok(other) => panic!("unexpected message {other:?}"),
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("read: {e}"),
    };
    if let MaybeTlsStream::Plain(stream) = client.ws.get_ref() {
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    }
    got
}

/// Publishes `warm-<n>` to `topic` through `publish` until one reaches `client`, then `0..5` in
/// order, and checks the client gets each of those once and in that order after the warm-ups.
fn check_crosses(client: &mut GwClient, topic: &str, publish: impl Fn(&str, &str)) {
    let mut warmed = false;
    for n in 0..100 {
        publish(topic, &format!("warm-{n}"));
        if try_push(client, Duration::from_millis(200)).is_some() {
            warmed = true;
            break;
        }
    }
    assert!(warmed, "no publish to {topic} crossed to the other node");
    for i in 0..5 {
        publish(topic, &i.to_string());
    }
    let mut got = Vec::new();
    while got.len() < 5 {
        let data = try_push(client, Duration::from_secs(10)).expect("a push");
        if !data.starts_with("warm-") {
            got.push(data);
        }
    }
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    assert_eq!(try_push(client, Duration::from_millis(300)), None, "a push came twice");
}

#[test]
fn gateway_topics_and_sig_sid_pushes_cross_nodes_once_and_in_order() {
    let Some(nats) = nats() else { return };
    let mock = Mock::tcp();
    let nodes = start_nodes(&nats, 2, 2, &routes("", "tcp", mock.port, ""));
    let mut client = GwClient::connect(&nodes[1]);
    let sid = client.register(REGISTER);
    client.sub_add(SUB_ADD, &["cluster-news"]);
    let publisher = nodes[0].gw_publisher();
    let publish = |topic: &str, data: &str| publisher.publish(topic, "1", data);
    check_crosses(&mut client, "cluster-news", publish);
    check_crosses(&mut client, &format!("sig_{sid}"), publish);
}

#[test]
/// Feature line F000-27 (../shared/reference/seed-systems.md).
fn f000_27_list_topics_on_any_node_lists_the_topics_subscribed_on_every_node() {
    let Some(nats) = nats() else { return };
    let mock = Mock::tcp();
    let nodes = start_nodes(&nats, 3, 1, &routes("", "tcp", mock.port, ""));
    let mut client = GwClient::connect(&nodes[1]);
    let sid = client.register(REGISTER);
    client.sub_add(SUB_ADD, &["cluster-news"]);
    let mut expected = vec!["cluster-news".to_string(), format!("sig_{sid}")];
    expected.sort();
    for node in &nodes {
        wait_until(|| node.list_topics() == expected);
    }
    drop(client);
    for node in &nodes {
        wait_until(|| node.list_topics().is_empty());
    }
}
