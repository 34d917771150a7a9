//! Durability: GD messages published before a restart are delivered after it, each once and
//! in order; and `kill -9` in the middle of a burst of GD publications loses none that was
//! acknowledged (repeated a few rounds).

use crate::{
    common::zato::{topics, wait_until, Api, DataDir, ADMIN, USER},
    hook_receiver::{Received, Receiver},
    start,
};
use serde_json::{json, Value};
use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

fn delivered(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .filter(|r| r.status < 300)
        .flat_map(|r| r.json().as_array().cloned().unwrap_or_default())
        .map(|m| m["data"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn restart_between_publish_and_delivery_delivers_every_gd_message_once_in_order() {
    let dir = DataDir::new("restart");
    let tables = "[[zato.topics]]\nname = \"/orders\"\nhas_gd = true\n";
    let server = start(&dir, "", tables);
    let admin = Api::new(&server, ADMIN);
    let receiver = Receiver::start();
    let options = json!({"active_status": "pub-only", "delivery_batch_size": 7});
    let sub_key = admin.notify_sub("/orders", &receiver.url("/n"), options);
    let api = Api::new(&server, USER);
    let expected: Vec<String> = (0..40).map(|i| format!("order {i:02}")).collect();
    for data in &expected {
        api.publish_ok("/orders", data, json!({}));
    }
    let mut server = server;
    assert!(server.terminate().is_some_and(|s| s.success()), "a clean stop");

    let server = start(&dir, "", tables);
    let admin = Api::new(&server, ADMIN);
    let sub = admin.sub(&sub_key);
    assert_eq!(sub["current_depth_gd"], 40, "{sub}");
    admin.set_status(&sub_key, "pub-sub");
    let got = receiver.wait_for(Duration::from_secs(30), |r| delivered(r).len() >= 40);
    assert_eq!(delivered(&got), expected);
    assert!(wait_until(Duration::from_secs(10), || admin.sub(&sub_key)["current_depth_gd"] == 0));
    // Delivered means gone: a second restart delivers nothing again.
    drop(server);
    let server = start(&dir, "", tables);
    assert_eq!(Api::new(&server, ADMIN).sub(&sub_key)["current_depth_gd"], 0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(delivered(&receiver.received()), expected, "nothing delivered twice");
}

const ROUNDS: usize = 3;
const PUBLISHERS: usize = 6;
/// Each publisher stops by itself after this many, should the kill come late.
const MOST: usize = 2000;

#[test]
fn kill_9_during_a_burst_of_gd_publications_loses_no_acknowledged_message() {
    for round in 0..ROUNDS {
        let dir = DataDir::new(&format!("kill9-{round}"));
        let tables = topics(&["/burst"]);
        let server = start(&dir, "", &tables);
        let api = Api::new(&server, USER);
        let sub_key = api.subscribe_ok("/burst");
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let port = server.port;
        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|p| {
                let (acked, stop) = (acked.clone(), stop.clone());
                std::thread::spawn(move || publish_until_stopped(port, p, &acked, &stop))
            })
            .collect();
        let wanted = 100 + 150 * round;
        assert!(wait_until(Duration::from_secs(60), || acked.lock().expect("lock").len() >= wanted));
        let mut server = server;
        server.child.kill().expect("kill -9");
        let _ = server.child.wait();
        stop.store(true, Ordering::SeqCst);
        for publisher in publishers {
            publisher.join().expect("publisher");
        }
        drop(server);

        let server = start(&dir, "", &tables);
        let api = Api::new(&server, USER);
        let mut found = BTreeSet::new();
        loop {
            let batch = api.messages("/burst", &sub_key);
            if batch.is_empty() {
                break;
            }
            for m in batch {
                let data = m["data"].as_str().unwrap_or_default().to_string();
                assert!(found.insert(data.clone()), "round {round}: {data} twice");
            }
        }
        let acked = acked.lock().expect("lock");
        let missing: Vec<&String> = acked.difference(&found).collect();
        assert!(missing.is_empty(), "round {round}: acknowledged but lost: {missing:?}");
        assert!(acked.len() >= wanted);
    }
}

/// Publishes numbered GD messages until told to stop (or the server is gone); records each
/// acknowledged one.
fn publish_until_stopped(
    port: u16,
    publisher: usize,
    acked: &Mutex<BTreeSet<String>>,
    stop: &AtomicBool,
) {
    let agent = crate::common::agent();
    for n in 0..MOST {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let data = format!("p{publisher}-{n:05}");
        let body = json!({"data": data, "has_gd": true}).to_string();
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://127.0.0.1:{port}/zato/pubsub/topic//burst"))
            .header("Authorization", crate::common::zato::basic(USER.0, USER.1))
            .body(body)
            .expect("request");
        let Ok(mut reply) = agent.run(request) else { return };
        let text = reply.body_mut().read_to_string().unwrap_or_default();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if reply.status() == 200 && answer["msg_id"].is_string() {
            acked.lock().expect("lock").insert(data);
        }
    }
}
