//! Notify delivery (F002-01..06): subscription defaults, wrapping, batch sizes, delivery
//! counts and the retry limit, pauses after socket and other errors, and blocking on error.

use crate::{
    common::zato::{topics, wait_until, Api, DataDir, ADMIN, USER},
    hook_receiver::{Received, Receiver},
    start,
};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The JSON bodies received at `path` with a 2xx answer.
fn accepted(received: &[Received], path: &str) -> Vec<Value> {
    received.iter().filter(|r| r.path == path && r.status < 300).map(Received::json).collect()
}

/// The `data` of every message in the accepted bodies at `path`, in arrival order.
fn data_at(received: &[Received], path: &str) -> Vec<String> {
    accepted(received, path)
        .iter()
        .flat_map(|body| match body {
            Value::Array(list) => list.clone(),
            single => vec![single.clone()],
        })
        .map(|m| m["data"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
/// Feature line F002-01 (../shared/reference/seed-systems.md).
fn f002_01_subscription_defaults_are_zatos() {
    let dir = DataDir::new("f01");
    let tables = "[[zato.topics]]\nname = \"/gd\"\nhas_gd = true\n".to_string() + &topics(&["/t"]);
    let server = start(&dir, "", &tables);
    let admin = Api::new(&server, ADMIN);
    let receiver = Receiver::start();
    let sub_key = admin.notify_sub("/t", &receiver.url("/n"), json!({}));
    let sub = admin.sub(&sub_key);
    assert_eq!(sub["delivery_method"], "notify");
    assert_eq!(sub["delivery_batch_size"], 500);
    assert_eq!(sub["wrap_one_msg_in_list"], true);
    assert_eq!(sub["delivery_max_retry"], 123_456_789);
    assert_eq!(sub["wait_sock_err"], 10.0);
    assert_eq!(sub["wait_non_sock_err"], 3.0);
    assert_eq!(sub["delivery_err_should_block"], true);
    assert_eq!(sub["active_status"], "pub-sub");
    assert_eq!(sub["out_http_method"], "POST");
    assert_eq!(sub["has_gd"], Value::Null, "has_gd follows the topic unless set");

    // has_gd from the topic: a message to the GD topic is GD, to the other is not.
    let gd_key = admin.notify_sub("/gd", &receiver.url("/g"), json!({}));
    assert_eq!(admin.sub(&gd_key)["has_gd"], Value::Null);
    let api = Api::new(&server, USER);
    api.publish_ok("/gd", "durable", json!({}));
    api.publish_ok("/t", "in ram", json!({}));
    let got = receiver.wait_for(WAIT, |r| accepted(r, "/g").len() + accepted(r, "/n").len() >= 2);
    assert_eq!(accepted(&got, "/g")[0][0]["has_gd"], true);
    assert_eq!(accepted(&got, "/n")[0][0]["has_gd"], false);
}

#[test]
/// Feature line F002-02 (../shared/reference/seed-systems.md).
fn f002_02_a_batch_of_one_is_bare_unless_wrapped_and_larger_batches_are_lists() {
    let dir = DataDir::new("f02");
    let server = start(&dir, "", &topics(&["/t"]));
    let admin = Api::new(&server, ADMIN);
    let receiver = Receiver::start();
    let one = json!({"delivery_batch_size": 1, "wrap_one_msg_in_list": false});
    admin.notify_sub("/t", &receiver.url("/bare"), one);
    let wrapped = json!({"delivery_batch_size": 1, "wrap_one_msg_in_list": true, "endpoint": "n1"});
    admin.notify_sub("/t", &receiver.url("/wrapped"), wrapped);
    let many = json!({"delivery_batch_size": 5, "wrap_one_msg_in_list": false, "endpoint": "n2"});
    admin.notify_sub("/t", &receiver.url("/many"), many);
    Api::new(&server, USER).publish_ok("/t", "hello", json!({}));
    let got = receiver.wait_for(WAIT, |r| r.iter().filter(|r| r.status < 300).count() >= 3);
    let bare = &accepted(&got, "/bare")[0];
    assert!(bare.is_object() && bare["data"] == "hello", "{bare}");
    let wrapped = &accepted(&got, "/wrapped")[0];
    assert!(wrapped.is_array() && wrapped[0]["data"] == "hello", "{wrapped}");
    let many = &accepted(&got, "/many")[0];
    assert!(many.is_array() && many.as_array().map(Vec::len) == Some(1), "{many}");
}

#[test]
/// Feature line F002-03 (../shared/reference/seed-systems.md).
fn f002_03_a_delivery_carries_at_most_batch_size_messages() {
    let dir = DataDir::new("f03");
    let server = start(&dir, "", &topics(&["/t"]));
    let admin = Api::new(&server, ADMIN);
    let receiver = Receiver::start();
    let options = json!({"delivery_batch_size": 3, "active_status": "pub-only"});
    let sub_key = admin.notify_sub("/t", &receiver.url("/n"), options);
    let api = Api::new(&server, USER);
    for i in 0..7 {
        api.publish_ok("/t", &format!("m{i}"), json!({}));
    }
    assert_eq!(admin.sub(&sub_key)["current_depth_non_gd"], 7, "pub-only holds them");
    admin.set_status(&sub_key, "pub-sub");
    let got = receiver.wait_for(WAIT, |r| data_at(r, "/n").len() >= 7);
    let bodies = accepted(&got, "/n");
    assert!(bodies.iter().all(|b| b.as_array().is_some_and(|l| l.len() <= 3)), "{bodies:?}");
    assert!(bodies.len() >= 3, "7 messages in batches of 3 need 3 deliveries");
    let expected: Vec<String> = (0..7).map(|i| format!("m{i}")).collect();
    assert_eq!(data_at(&got, "/n"), expected);
}

#[test]
/// Feature line F002-04 (../shared/reference/seed-systems.md).
fn f002_04_delivery_count_grows_per_attempt_and_max_retry_drops_the_message() {
    let dir = DataDir::new("f04");
    let server = start(&dir, "", &topics(&["/t"]));
    let admin = Api::new(&server, ADMIN);
    let receiver = Receiver::start();
    receiver.script(&[500, 500, 500]);
    let options = json!({"delivery_batch_size": 1, "delivery_max_retry": 3,
                         "wait_non_sock_err": 0.05, "active_status": "pub-only"});
    let sub_key = admin.notify_sub("/t", &receiver.url("/n"), options);
    let api = Api::new(&server, USER);
    api.publish_ok("/t", "doomed", json!({}));
    api.publish_ok("/t", "lucky", json!({}));
    admin.set_status(&sub_key, "pub-sub");
    let got = receiver.wait_for(WAIT, |r| !accepted(r, "/n").is_empty());
    let attempts: Vec<(String, u64, u16)> = got
        .iter()
        .map(|r| {
            let body = r.json();
            let m = if body.is_array() { body[0].clone() } else { body };
            (
                m["data"].as_str().unwrap_or_default().into(),
                m["delivery_count"].as_u64().unwrap_or(0),
                r.status,
            )
        })
        .collect();
    let expected = vec![
        ("doomed".to_string(), 1, 500),
        ("doomed".to_string(), 2, 500),
        ("doomed".to_string(), 3, 500),
        ("lucky".to_string(), 1, 200),
    ];
    assert_eq!(attempts, expected);
    assert!(wait_until(WAIT, || admin.sub(&sub_key)["current_depth_non_gd"] == 0));
}

#[test]
/// Feature line F002-05 (../shared/reference/seed-systems.md).
fn f002_05_socket_errors_pause_wait_sock_err_and_other_errors_wait_non_sock_err() {
    let dir = DataDir::new("f05");
    let server = start(&dir, "", &topics(&["/t", "/u"]));
    let admin = Api::new(&server, ADMIN);
    // Socket level: nothing listens on the port at first.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = free.local_addr().expect("addr").port();
    drop(free);
    let options = json!({"wait_sock_err": 0.2, "wait_non_sock_err": 3600});
    let refused = admin.notify_sub("/t", &format!("http://127.0.0.1:{port}/n"), options);
    // Another error: the endpoint answers 500, then would accept.
    let receiver = Receiver::start();
    receiver.script(&[500]);
    let options = json!({"wait_sock_err": 3600, "wait_non_sock_err": 0.2});
    admin.notify_sub("/u", &receiver.url("/n"), options);
    let api = Api::new(&server, USER);
    api.publish_ok("/t", "to a closed port", json!({}));
    api.publish_ok("/u", "to a failing endpoint", json!({}));
    let failed = |key: &str| {
        let sub = admin.sub(key);
        (!sub["last_delivery_error"].is_null()).then(|| sub["last_delivery_error"].clone())
    };
    assert!(wait_until(WAIT, || failed(&refused).is_some()));
    let error = failed(&refused).expect("socket error");
    assert_eq!((error["kind"].as_str(), error["pause_secs"].as_f64()), (Some("socket"), Some(0.2)));
    // The 500 is an other error; after its short pause the message goes through.
    let got = receiver.wait_for(WAIT, |r| accepted(r, "/n").len() == 1);
    assert_eq!(data_at(&got, "/n"), ["to a failing endpoint"]);
    assert_eq!(got[0].status, 500);
    // Once something listens on the closed port, its short pause lets the message through.
    let late = Receiver::on(std::net::TcpListener::bind(("127.0.0.1", port)).expect("rebind"));
    let got = late.wait_for(WAIT, |r| accepted(r, "/n").len() == 1);
    assert_eq!(data_at(&got, "/n"), ["to a closed port"]);
    assert!(wait_until(WAIT, || admin.sub(&refused)["last_delivery_error"].is_null()));
}

#[test]
/// Feature line F002-05 (../shared/reference/seed-systems.md).
fn f002_05_a_500_pauses_wait_non_sock_err_not_wait_sock_err() {
    let dir = DataDir::new("f05b");
    let server = start(&dir, "", &topics(&["/t"]));
    let admin = Api::new(&server, ADMIN);
    let receiver = Receiver::start();
    receiver.script(&[503]);
    let options = json!({"wait_sock_err": 0.1, "wait_non_sock_err": 7.5});
    let sub_key = admin.notify_sub("/t", &receiver.url("/n"), options);
    Api::new(&server, USER).publish_ok("/t", "x", json!({}));
    assert!(wait_until(WAIT, || !admin.sub(&sub_key)["last_delivery_error"].is_null()));
    let error = admin.sub(&sub_key)["last_delivery_error"].clone();
    assert_eq!(error["kind"], "other", "{error}");
    assert_eq!(error["pause_secs"], 7.5, "{error}");
    assert!(error["details"].as_str().is_some_and(|d| d.contains("503")), "{error}");
}

#[test]
/// Feature line F002-06 (../shared/reference/seed-systems.md).
fn f002_06_with_err_should_block_a_failing_message_holds_back_the_ones_behind_it() {
    let dir = DataDir::new("f06");
    let server = start(&dir, "", &topics(&["/block", "/pass"]));
    let admin = Api::new(&server, ADMIN);
    let api = Api::new(&server, USER);

    // Blocking: the first message fails twice; the second waits behind it.
    let blocking = Receiver::start();
    blocking.script(&[500, 500]);
    let options =
        json!({"delivery_batch_size": 1, "wait_non_sock_err": 0.1, "active_status": "pub-only"});
    let key = admin.notify_sub("/block", &blocking.url("/n"), options);
    api.publish_ok("/block", "first", json!({}));
    api.publish_ok("/block", "second", json!({}));
    admin.set_status(&key, "pub-sub");
    let got = blocking.wait_for(WAIT, |r| accepted(r, "/n").len() >= 2);
    let order: Vec<(String, u16)> = got
        .iter()
        .map(|r| (r.json()[0]["data"].as_str().unwrap_or_default().to_string(), r.status))
        .collect();
    let expected = [("first", 500), ("first", 500), ("first", 200), ("second", 200)];
    assert_eq!(order, expected.map(|(d, s)| (d.to_string(), s)));

    // Not blocking: the failed message waits out its pause while the next one goes.
    let passing = Receiver::start();
    passing.script(&[500]);
    let options = json!({"delivery_batch_size": 1, "wait_non_sock_err": 2.0,
                         "delivery_err_should_block": false, "active_status": "pub-only"});
    let key = admin.notify_sub("/pass", &passing.url("/n"), options);
    api.publish_ok("/pass", "first", json!({}));
    api.publish_ok("/pass", "second", json!({}));
    admin.set_status(&key, "pub-sub");
    let got = passing.wait_for(WAIT, |r| accepted(r, "/n").len() >= 2);
    assert_eq!(data_at(&got, "/n"), ["second", "first"], "the second passed the failed first");
}
