//! The IM dialect over a cluster (a real nats-server, three nodes on 127.0.0.1): the push API
//! on any node reaches, kicks and lists the matching connections on every node, reports as
//! failed only users no node has, and the duplicate-device rule holds across nodes (the newer
//! connection stays). Skipped (with a message) where nats-server is not installed. No timing
//! is asserted.

mod common;

use base64::{engine::general_purpose::STANDARD, Engine};
use common::{
    cluster::{nats_binary, start_nodes, start_slow_to_forget, wait_until, Nats},
    im::{Frame, ImClient},
    Server,
};
use serde_json::{json, Value};

fn nats() -> Option<Nats> {
    if nats_binary().is_none() {
        eprintln!("SKIPPED: nats-server is not installed");
        return None;
    }
    Some(Nats::start())
}

/// The device ids of a JSON list of `ConnParam`s, sorted.
fn devices(list: &Value) -> Vec<String> {
    let mut devices: Vec<String> = list
        .as_array()
        .map(|l| l.iter().filter_map(|p| p["deviceId"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    devices.sort();
    devices
}

fn conns(node: &Server, filter: Value) -> Vec<String> {
    let (status, answer) = node.im_post("/im/getUserConn", &filter);
    assert_eq!(status, 200, "{answer}");
    devices(&answer["connParams"])
}

/// The data of the next push, which must be a message push (event 0).
fn pushed(client: &mut ImClient) -> Vec<u8> {
    match client.recv() {
        Frame::Push { event: 0, data } => data,
        other => panic!("expected a message push, got {other:?}"),
    }
}

#[test]
/// Feature line F001-15 (../shared/reference/seed-systems.md).
fn f001_15_send_msg_kick_and_get_user_conn_reach_every_node_and_merge_the_answers() {
    let Some(nats) = nats() else { return };
    let nodes = start_nodes(&nats, 3, 1, "");
    let mut a_ios = ImClient::connect(&nodes[0], "a", "ios", "d1");
    let mut a_web = ImClient::connect(&nodes[1], "a", "web", "d2");
    let mut b_ios = ImClient::connect(&nodes[2], "b", "ios", "d3");
    // Each node lists every connection of the cluster.
    for node in &nodes {
        let all = || conns(node, json!({"userIds": ["a", "b"]})) == ["d1", "d2", "d3"];
        wait_until(all);
    }

    let data = STANDARD.encode(b"hello");
    let body = json!({"userIds": ["a", "b", "nobody"], "event": 0, "data": data});
    let (status, answer) = nodes[1].im_post("/im/sendMsg", &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(devices(&answer["successConnParams"]), ["d1", "d2", "d3"]);
    let failed: Vec<&str> = answer["failedConnParams"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|p| p["userId"].as_str())
        .collect();
    assert_eq!(failed, ["nobody"], "only a user no node has is failed");
    for client in [&mut a_ios, &mut a_web, &mut b_ios] {
        assert_eq!(pushed(client), b"hello");
        assert_eq!(client.try_recv(300), None, "one push per matching connection");
    }

    // onlyFailed counts the successes of every node.
    let body = json!({"userIds": ["a"], "platforms": ["web"], "event": 0, "data": data,
                      "onlyFailed": true});
    let (_, answer) = nodes[0].im_post("/im/sendMsg", &body);
    assert_eq!(answer["successCount"], 1, "{answer}");
    assert_eq!(pushed(&mut a_web), b"hello");

    // A kick through node 2 closes user a's web connection on node 1.
    let (status, answer) =
        nodes[2].im_post("/im/kickUserConn", &json!({"userIds": ["a"], "platforms": ["web"]}));
    assert_eq!((status, &answer["kicked"]), (200, &json!(1)), "{answer}");
    assert_eq!(a_web.closed(), (1001, "kick".to_string()));
    wait_until(|| conns(&nodes[0], json!({"userIds": ["a"]})) == ["d1"]);
}

#[test]
/// Feature line F001-04 (../shared/reference/seed-systems.md).
fn f001_04_a_second_connection_of_a_device_on_another_node_closes_the_first() {
    let Some(nats) = nats() else { return };
    let nodes = start_nodes(&nats, 3, 2, "");
    let mut first = ImClient::connect(&nodes[0], "c", "android", "phone");
    wait_until(|| conns(&nodes[2], json!({"userIds": ["c"]})) == ["phone"]);
    let mut second = ImClient::connect(&nodes[1], "c", "android", "phone");
    assert_eq!(first.closed(), (1000, "duplicate connection".to_string()));
    // The newer one stays, and is the only one any node lists or pushes to.
    for node in &nodes {
        wait_until(|| conns(node, json!({"userIds": ["c"]})) == ["phone"]);
    }
    let body = json!({"userIds": ["c"], "event": 0, "data": STANDARD.encode(b"x")});
    let (_, answer) = nodes[2].im_post("/im/sendMsg", &body);
    assert_eq!(devices(&answer["successConnParams"]), ["phone"], "{answer}");
    assert_eq!(pushed(&mut second), b"x");
    // Another device of the same user on a third node closes nothing.
    let mut tablet = ImClient::connect(&nodes[2], "c", "android", "tablet");
    assert_eq!(second.try_recv(500), None, "a different device closes nothing");
    assert_eq!(tablet.try_recv(100), None);
}

#[test]
fn an_answer_missing_a_node_says_so_with_x_pushgate_partial() {
    let Some(nats) = nats() else { return };
    // A killed node stays in the live set for a minute here, so the push API still asks it
    // and answers without it after query_timeout_ms.
    let mut nodes = start_slow_to_forget(&nats, 3);
    let _on_1 = ImClient::connect(&nodes[1], "p", "ios", "d1");
    let on_2 = ImClient::connect(&nodes[2], "p", "web", "d2");
    let filter = json!({"userIds": ["p"]});
    wait_until(|| conns_partial(&nodes[0], &filter) == (vec!["d1".into(), "d2".into()], false));
    drop(on_2);
    drop(nodes.remove(2));
    assert_eq!(conns_partial(&nodes[0], &filter), (vec!["d1".to_string()], true));
}

/// The devices `getUserConn` lists on `node`, and whether the answer says it is partial.
fn conns_partial(node: &Server, filter: &Value) -> (Vec<String>, bool) {
    let url = format!("http://127.0.0.1:{}/im/getUserConn", node.port);
    let mut reply = common::agent()
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Authorization", &format!("Bearer {}", common::im::API_KEY))
        .send(filter.to_string())
        .expect("http request");
    let partial = reply.headers().get("x-pushgate-partial").is_some_and(|v| v == "true");
    let text = reply.body_mut().read_to_string().unwrap_or_default();
    let answer: Value = serde_json::from_str(&text).expect("json");
    (devices(&answer["connParams"]), partial)
}
