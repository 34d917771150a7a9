//! Queues (F002-07..11, F002-18..21): order, priorities, expiry, active states, deleting a
//! subscription, topic states and depth limits, the backlog of a topic with no subscription,
//! `on_no_subs_pub = drop`, and recipients fixed at publication.

use crate::{
    common::zato::{topics, wait_until, Api, DataDir, ADMIN, USER},
    hook_receiver::Receiver,
    start,
};
use serde_json::{json, Value};
use std::time::Duration;

fn data(messages: &[Value]) -> Vec<&str> {
    messages.iter().map(|m| m["data"].as_str().unwrap_or_default()).collect()
}

#[test]
/// Feature line F002-07 (../shared/reference/seed-systems.md).
fn f002_07_queue_order_is_priority_then_ext_pub_time_then_pub_time() {
    let dir = DataDir::new("f07");
    let server = start(&dir, "", &topics(&["/t", "/ext"]));
    let api = Api::new(&server, USER);
    let sub_key = api.subscribe_ok("/t");
    api.publish_ok("/t", "low", json!({"priority": 3}));
    api.publish_ok("/t", "high-1", json!({"priority": 8}));
    api.publish_ok("/t", "mid-1", json!({}));
    api.publish_ok("/t", "high-2", json!({"priority": 8}));
    api.publish_ok("/t", "mid-2", json!({"priority": 5}));
    let got = api.messages("/t", &sub_key);
    assert_eq!(data(&got), ["high-1", "high-2", "mid-1", "mid-2", "low"]);

    // Within a priority, the publisher's own times order the queue when given.
    let sub_key = api.subscribe_ok("/ext");
    api.publish_ok("/ext", "late", json!({"ext_pub_time": "2030-01-01T00:00:02"}));
    api.publish_ok("/ext", "early", json!({"ext_pub_time": "2030-01-01T00:00:01"}));
    api.publish_ok("/ext", "urgent", json!({"ext_pub_time": "2030-01-01T00:00:03", "priority": 9}));
    let got = api.messages("/ext", &sub_key);
    assert_eq!(data(&got), ["urgent", "early", "late"]);
    assert_eq!(got[1]["ext_pub_time_iso"], "2030-01-01T00:00:01.000000");
}

#[test]
/// Feature line F002-08 (../shared/reference/seed-systems.md).
fn f002_08_priority_outside_1_to_9_is_refused_and_defaults_to_5() {
    let dir = DataDir::new("f08");
    let server = start(&dir, "", &topics(&["/t"]));
    let api = Api::new(&server, USER);
    let sub_key = api.subscribe_ok("/t");
    for bad in [json!(0), json!(10), json!(-3), json!("high")] {
        let (status, answer, _) = api.publish("/t", &json!({"data": "x", "priority": bad}));
        assert_eq!(status, 400, "{bad}: {answer}");
        assert_eq!(answer["zato_env"]["result"], "ZATO_ERROR");
    }
    let (_, answer, _) = api.publish("/t", &json!({"data": "x", "priority": 10}));
    assert_eq!(answer["zato_env"]["details"], "Priority `10` outside of allowed range 1-9");
    api.publish_ok("/t", "plain", json!({}));
    api.publish_ok("/t", "one", json!({"priority": 1}));
    let got = api.messages("/t", &sub_key);
    assert_eq!(data(&got), ["plain", "one"], "only the valid publications were queued");
    assert_eq!(got[0]["priority"], 5);
    assert_eq!(got[1]["priority"], 1);
}

#[test]
/// Feature line F002-09 (../shared/reference/seed-systems.md).
fn f002_09_expired_messages_are_never_delivered() {
    let dir = DataDir::new("f09");
    let server = start(&dir, "cleanup_interval_secs = 1", &topics(&["/t", "/n"]));
    let api = Api::new(&server, USER);
    let admin = Api::new(&server, ADMIN);
    let pull = api.subscribe_ok("/t");
    let receiver = Receiver::start();
    let notify = admin.notify_sub("/n", &receiver.url("/n"), json!({"active_status": "pub-only"}));
    api.publish_ok("/t", "short-lived", json!({"expiration": 1}));
    api.publish_ok("/n", "short-lived", json!({"expiration": 1, "has_gd": true}));
    api.publish_ok("/t", "long-lived", json!({"expiration": 3600}));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(data(&api.messages("/t", &pull)), ["long-lived"]);
    // The sweep drops it from the notify queue too; a later message is delivered alone.
    assert!(wait_until(Duration::from_secs(10), || admin.sub(&notify)["current_depth_gd"] == 0));
    api.publish_ok("/n", "sentinel", json!({}));
    admin.set_status(&notify, "pub-sub");
    let got = receiver.wait_for(Duration::from_secs(20), |r| !r.is_empty());
    let bodies: Vec<Value> = got.iter().map(|r| r.json()).collect();
    assert_eq!(bodies.len(), 1);
    assert_eq!(data(bodies[0].as_array().expect("list")), ["sentinel"]);
}

#[test]
/// Feature line F002-10 (../shared/reference/seed-systems.md).
fn f002_10_pub_only_queues_without_consuming_sub_only_consumes_without_queueing_disabled_neither() {
    let dir = DataDir::new("f10");
    let server = start(&dir, "", &topics(&["/t"]));
    let api = Api::new(&server, USER);
    let admin = Api::new(&server, ADMIN);
    let key = api.subscribe_ok("/t");
    api.publish_ok("/t", "m0", json!({}));

    admin.set_status(&key, "pub-only");
    api.publish_ok("/t", "m1", json!({}));
    assert_eq!(admin.sub(&key)["current_depth_non_gd"], 2, "pub-only enqueues");
    let (status, answer, _) = api.get_messages("/t", &key);
    assert_eq!(status, 403, "pub-only may not consume: {answer}");

    admin.set_status(&key, "sub-only");
    api.publish_ok("/t", "m2", json!({}));
    assert_eq!(admin.sub(&key)["current_depth_non_gd"], 2, "sub-only does not enqueue");
    assert_eq!(data(&api.messages("/t", &key)), ["m0", "m1"], "sub-only consumes");

    admin.set_status(&key, "pub-sub");
    api.publish_ok("/t", "m3", json!({}));
    admin.set_status(&key, "disabled");
    api.publish_ok("/t", "m4", json!({}));
    assert_eq!(admin.sub(&key)["current_depth_non_gd"], 1, "disabled does not enqueue");
    assert_eq!(api.get_messages("/t", &key).0, 403, "disabled does not consume");
    admin.set_status(&key, "pub-sub");
    assert_eq!(data(&api.messages("/t", &key)), ["m3"]);
}

#[test]
/// Feature line F002-11 (../shared/reference/seed-systems.md).
fn f002_11_deleting_a_subscription_drops_its_gd_and_ram_messages_and_stops_delivery() {
    let dir = DataDir::new("f11");
    let config_tables = topics(&["/t", "/n"]);
    let server = start(&dir, "", &config_tables);
    let api = Api::new(&server, USER);
    let admin = Api::new(&server, ADMIN);
    let key = api.subscribe_ok("/t");
    api.publish_ok("/t", "gd", json!({"has_gd": true}));
    api.publish_ok("/t", "ram", json!({}));
    let sub = admin.sub(&key);
    assert_eq!(
        (sub["current_depth_gd"].as_u64(), sub["current_depth_non_gd"].as_u64()),
        (Some(1), Some(1))
    );
    admin.admin("DELETE", &format!("subscriptions?sub_key={key}"), None);
    assert_eq!(api.get_messages("/t", &key).0, 403, "the sub_key is gone");
    let topic = admin.admin("GET", "topics?name=/t", None);
    assert_eq!((topic["depth_gd"].as_u64(), topic["depth_non_gd"].as_u64()), (Some(0), Some(0)));

    // A notify subscription stops delivering.
    let receiver = Receiver::start();
    let notify = admin.notify_sub("/n", &receiver.url("/n"), json!({"active_status": "pub-only"}));
    api.publish_ok("/n", "never", json!({"has_gd": true}));
    admin.admin("DELETE", &format!("subscriptions?sub_key={notify}"), None);
    // Nothing comes back after a restart either.
    drop(server);
    let server = start(&dir, "", &config_tables);
    let admin = Api::new(&server, ADMIN);
    let subs = admin.admin("GET", "subscriptions", None);
    assert_eq!(subs, json!([]), "no subscription survives its deletion");
    let topic = admin.admin("GET", "topics?name=/t", None);
    assert_eq!(topic["depth_gd"], 0);
    std::thread::sleep(Duration::from_millis(500));
    assert!(receiver.received().is_empty(), "nothing was delivered");
}

#[test]
/// Feature line F002-18 (../shared/reference/seed-systems.md).
fn f002_18_an_inactive_topic_refuses_publications_and_so_does_a_full_one() {
    let dir = DataDir::new("f18");
    let tables = "[[zato.topics]]\nname = \"/off\"\nactive = false\n\
                  [[zato.topics]]\nname = \"/small\"\nmax_depth_non_gd = 2\ndepth_check_freq = 1\n\
                  [[zato.topics]]\nname = \"/small-gd\"\nhas_gd = true\nmax_depth_gd = 2\ndepth_check_freq = 1\n\
                  [[zato.topics]]\nname = \"/sampled\"\nmax_depth_non_gd = 2\ndepth_check_freq = 3\n";
    let server = start(&dir, "", tables);
    let api = Api::new(&server, USER);
    let (status, answer, _) = api.publish("/off", &json!({"data": "x"}));
    assert_eq!(status, 503);
    assert_eq!(answer["zato_env"]["details"], "Topic is inactive `/off`");

    for (topic, kind) in [("/small", "non-GD"), ("/small-gd", "GD")] {
        let key = api.subscribe_ok(topic);
        api.publish_ok(topic, "1", json!({}));
        api.publish_ok(topic, "2", json!({}));
        let (status, answer, _) = api.publish(topic, &json!({"data": "3"}));
        assert_eq!(status, 503, "{answer}");
        let expected =
            format!("Publication rejected - would exceed {kind} max depth for `{topic}`");
        assert_eq!(answer["zato_env"]["details"], expected.as_str());
        assert_eq!(data(&api.messages(topic, &key)), ["1", "2"]);
        api.publish_ok(topic, "room again", json!({}));
    }

    // Checked on one publication in three: the topic overshoots until the check comes.
    api.subscribe_ok("/sampled");
    let statuses: Vec<u16> =
        (0..6).map(|i| api.publish("/sampled", &json!({"data": i.to_string()})).0).collect();
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503]);
}

#[test]
/// Feature line F002-19 (../shared/reference/seed-systems.md).
fn f002_19_a_topic_without_subscriptions_keeps_messages_as_gd_for_its_first_subscriber() {
    let dir = DataDir::new("f19");
    let tables = topics(&["/t"]);
    let server = start(&dir, "", &tables);
    let api = Api::new(&server, USER);
    for i in 0..3 {
        api.publish_ok("/t", &format!("early {i}"), json!({"has_gd": false}));
    }
    let admin = Api::new(&server, ADMIN);
    let topic = admin.admin("GET", "topics?name=/t", None);
    assert_eq!((topic["backlog"].as_u64(), topic["depth_gd"].as_u64()), (Some(3), Some(3)));
    // Kept on disk: a restart keeps them.
    drop(server);
    let server = start(&dir, "", &tables);
    let api = Api::new(&server, USER);
    let (status, answer, _) = api.subscribe("/t", None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["queue_depth"], 3);
    let key = answer["sub_key"].as_str().expect("sub_key");
    let got = api.messages("/t", key);
    assert_eq!(data(&got), ["early 0", "early 1", "early 2"]);
    assert!(got.iter().all(|m| m["has_gd"] == true));
    assert_eq!(api.messages("/t", key), Vec::<Value>::new(), "taken and removed");
}

#[test]
/// Feature line F002-20 (../shared/reference/seed-systems.md).
fn f002_20_with_on_no_subs_pub_drop_a_message_nobody_subscribed_to_is_discarded() {
    let dir = DataDir::new("f20");
    let tables = "[[zato.topics]]\nname = \"/t\"\non_no_subs_pub = \"drop\"\n";
    let server = start(&dir, "", tables);
    let api = Api::new(&server, USER);
    let (status, answer, _) = api.publish("/t", &json!({"data": "nobody listens"}));
    assert_eq!(status, 200);
    assert_eq!(answer["msg_id"], Value::Null, "dropped: no message id");
    let (_, answer, _) = api.subscribe("/t", None);
    assert_eq!(answer["queue_depth"], 0);
    let key = answer["sub_key"].as_str().expect("sub_key");
    api.publish_ok("/t", "heard", json!({}));
    assert_eq!(data(&api.messages("/t", key)), ["heard"]);
}

#[test]
/// Feature line F002-21 (../shared/reference/seed-systems.md).
fn f002_21_recipients_are_fixed_when_a_message_is_published() {
    let dir = DataDir::new("f21");
    let server = start(&dir, "", &topics(&["/t"]));
    let api = Api::new(&server, USER);
    let admin = Api::new(&server, ADMIN);
    let first = api.subscribe_ok("/t");
    api.publish_ok("/t", "m1", json!({"has_gd": true}));
    let body = json!({"topic_name": "/t", "endpoint": "other", "delivery_method": "pull"});
    let second = admin.admin("POST", "subscriptions", Some(body))["sub_key"]
        .as_str()
        .expect("sub_key")
        .to_string();
    api.publish_ok("/t", "m2", json!({}));
    assert_eq!(data(&api.messages("/t", &first)), ["m1", "m2"]);
    let browse = admin.admin("GET", &format!("queue?sub_key={second}"), None);
    let later: Vec<&str> = browse["messages"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["data_prefix_short"].as_str())
        .collect();
    assert_eq!(later, ["m2"], "the later subscriber did not get m1");
}
