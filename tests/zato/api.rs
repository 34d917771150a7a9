//! The REST API (F002-12..17, F002-25): identifiers, duplicate subscriptions, publish,
//! subscribe, get-messages and unsubscribe with Zato's answers and errors, the external form
//! of messages, and `pub=`/`sub=` permissions.

use crate::{
    common::zato::{topics, Api, DataDir, Wsx, ADMIN, OTHER, USER},
    start,
};
use serde_json::{json, Value};

fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
/// Feature line F002-12 (../shared/reference/seed-systems.md).
fn f002_12_sub_keys_are_zpsk_type_random_and_msg_ids_zpsm_random() {
    let dir = DataDir::new("f12");
    let server = start(&dir, "", &topics(&["/t", "/w"]));
    let api = Api::new(&server, USER);
    let key = api.subscribe_ok("/t");
    let random = key.strip_prefix("zpsk.rest.").expect("zpsk.rest. prefix");
    assert!(is_hex(random) && random.len() == 24, "{key}");
    let msg_id = api.publish_ok("/t", "x", json!({}));
    let random = msg_id.strip_prefix("zpsm").expect("zpsm prefix");
    assert!(is_hex(random) && random.len() == 24, "{msg_id}");
    // A WSX client's key names its type and its client id.
    let mut wsx = Wsx::session(&server, USER);
    let key = wsx.subscribe("/w", json!({}));
    let random = key.strip_prefix("zpsk.websockets.test-client.").expect("wsx prefix");
    assert!(is_hex(random) && random.len() == 24, "{key}");
    // A publisher's own msg_id is kept.
    assert_eq!(api.publish_ok("/t", "y", json!({"msg_id": "my-own-id"})), "my-own-id");
}

#[test]
/// Feature line F002-13 (../shared/reference/seed-systems.md).
fn f002_13_a_rest_endpoint_cannot_subscribe_twice_but_a_wsx_client_may() {
    let dir = DataDir::new("f13");
    let server = start(&dir, "", &topics(&["/zato/demo/sample"]));
    let api = Api::new(&server, USER);
    api.subscribe_ok("/zato/demo/sample");
    let (status, answer, cid) = api.subscribe("/zato/demo/sample", None);
    assert_eq!(status, 400);
    let env = &answer["zato_env"];
    assert_eq!(env["details"], "Subscription to topic `/zato/demo/sample` already exists");
    assert_eq!(env["result"], "ZATO_ERROR");
    assert_eq!(env["cid"].as_str(), cid.as_deref());
    let mut wsx = Wsx::session(&server, USER);
    let first = wsx.subscribe("/zato/demo/sample", json!({}));
    let again = wsx.subscribe("/zato/demo/sample", json!({}));
    assert_eq!(first, again, "the same connection gets its subscription back");
}

#[test]
/// Feature line F002-14 (../shared/reference/seed-systems.md).
fn f002_14_publish_answers_a_msg_id_and_no_data_is_a_zato_env_error() {
    let dir = DataDir::new("f14");
    let server = start(&dir, "", &topics(&["/t"]));
    let api = Api::new(&server, USER);
    let (status, answer, cid) = api.publish("/t", &json!({"data": "hello", "priority": 2}));
    assert_eq!(status, 200);
    assert!(answer["msg_id"].as_str().is_some_and(|id| id.starts_with("zpsm")), "{answer}");
    assert!(cid.as_deref().is_some_and(is_hex), "X-Zato-CID on every answer");
    for body in [None, Some("{}"), Some("{\"data\": \"\"}"), Some("{\"priority\": 3}")] {
        let (status, answer, cid) = api.request("POST", "/zato/pubsub/topic//t", body);
        assert_eq!(status, 400, "{body:?}");
        assert_eq!(
            answer,
            json!({"zato_env": {"details": "No data sent on input", "result": "ZATO_ERROR", "cid": cid}})
        );
    }
}

#[test]
/// Feature line F002-15 (../shared/reference/seed-systems.md).
fn f002_15_subscribe_get_messages_and_unsubscribe_answer_as_zato() {
    let dir = DataDir::new("f15");
    let server = start(&dir, "", &topics(&["/t"]));
    let api = Api::new(&server, USER);
    let (status, answer, _) = api.subscribe("/t", None);
    assert_eq!(status, 200);
    assert_eq!(answer["queue_depth"], 0);
    let key = answer["sub_key"].as_str().expect("sub_key").to_string();
    api.publish_ok("/t", "one", json!({}));
    api.publish_ok("/t", "two", json!({"has_gd": true}));
    let got = api.messages("/t", &key);
    assert_eq!(got.len(), 2);
    assert_eq!(api.messages("/t", &key), Vec::<Value>::new(), "taken away: [] when empty");
    // sub_key in the body works as in the query string; PATCH as POST.
    api.publish_ok("/t", "three", json!({}));
    let body = json!({ "sub_key": key }).to_string();
    let (status, answer, _) = api.request("PATCH", "/zato/pubsub/topic//t", Some(&body));
    assert_eq!(status, 200);
    assert_eq!(answer[0]["data"], "three");
    let (status, answer, _) = api.unsubscribe("/t", &key);
    assert_eq!((status, answer), (200, json!({})));
    assert_eq!(api.get_messages("/t", &key).0, 403, "unsubscribed");
}

#[test]
/// Feature line F002-16 (../shared/reference/seed-systems.md).
fn f002_16_a_wrong_sub_key_is_not_allowed_to_access_this_resource() {
    let dir = DataDir::new("f16");
    let server = start(&dir, "", &topics(&["/t", "/allowed/x"]));
    let api = Api::new(&server, USER);
    let mine = api.subscribe_ok("/t");
    let others = Api::new(&server, OTHER).subscribe_ok("/allowed/x");
    let not_allowed = "You are not allowed to access this resource";
    for (topic, key) in [
        ("/t", "invalid"),
        ("/t", "zpsk.rest.000000000000000000000000"),
        ("/allowed/x", others.as_str()),
        ("/allowed/x", mine.as_str()),
    ] {
        let (status, answer, _) = api.get_messages(topic, key);
        assert_eq!(status, 403, "{topic} {key}");
        assert_eq!(answer["zato_env"]["details"], not_allowed);
        let (status, answer, _) = api.unsubscribe(topic, key);
        assert_eq!((status, answer["zato_env"]["details"].as_str()), (403, Some(not_allowed)));
    }
}

#[test]
/// Feature line F002-17 (../shared/reference/seed-systems.md).
fn f002_17_messages_carry_zatos_external_fields() {
    let dir = DataDir::new("f17");
    let server = start(&dir, "", &topics(&["/t"]));
    let api = Api::new(&server, USER);
    let key = api.subscribe_ok("/t");
    let fields = json!({"priority": 7, "expiration": 600, "correl_id": "corr-1", "in_reply_to": "zpsm-earlier",
                        "ext_client_id": "CLIENT-EXT-1", "mime_type": "text/plain", "has_gd": true});
    let msg_id = api.publish_ok("/t", "Zürich sample", fields);
    let got = api.messages("/t", &key);
    let m = &got[0];
    assert_eq!(m["data"], "Zürich sample");
    assert_eq!(m["msg_id"], msg_id.as_str());
    assert_eq!(m["correl_id"], "corr-1");
    assert_eq!(m["in_reply_to"], "zpsm-earlier");
    assert_eq!(m["ext_client_id"], "CLIENT-EXT-1");
    assert_eq!(m["priority"], 7);
    assert_eq!(m["mime_type"], "text/plain");
    assert_eq!(m["size"], 14, "UTF-8 bytes");
    assert_eq!(m["expiration"], 600);
    assert_eq!(m["delivery_count"], 1);
    assert_eq!(m["has_gd"], true);
    assert_eq!(m["sub_key"], key.as_str());
    assert_eq!(m["topic_name"], "/t");
    let pub_time = m["pub_time_iso"].as_str().expect("pub_time_iso");
    let expires = m["expiration_time_iso"].as_str().expect("expiration_time_iso");
    assert_eq!(pub_time.len(), "2018-07-04T17:16:07.347820".len(), "{pub_time}");
    assert!(expires > pub_time, "{expires} after {pub_time}");
}

#[test]
/// Feature line F002-25 (../shared/reference/seed-systems.md).
fn f002_25_pub_and_sub_patterns_gate_publishing_and_subscribing() {
    let dir = DataDir::new("f25");
    let server = start(&dir, "", &topics(&["/t", "/allowed/x", "/allowed/x/deeper"]));
    let other = Api::new(&server, OTHER);
    let not_allowed = "You are not allowed to access this resource";
    let (status, answer, _) = other.publish("/t", &json!({"data": "x"}));
    assert_eq!((status, answer["zato_env"]["details"].as_str()), (403, Some(not_allowed)));
    let (status, _, _) = other.publish("/allowed/x/deeper", &json!({"data": "x"}));
    assert_eq!(status, 403, "`*` stays within one segment");
    assert_eq!(other.subscribe("/t", None).0, 403);
    let key = other.subscribe_ok("/allowed/x");
    other.publish_ok("/allowed/x", "fine", json!({}));
    assert_eq!(other.messages("/allowed/x", &key).len(), 1);
    // Bad credentials, no credentials, and the admin's credentials on the pub/sub API.
    for bad in [("other", "wrong"), ("nobody", "x"), ADMIN] {
        assert_eq!(Api::new(&server, bad).publish("/allowed/x", &json!({"data": "x"})).0, 403);
    }
    // Over WSX as well.
    let mut wsx = Wsx::session(&server, OTHER);
    let answer =
        wsx.invoke("zato.pubsub.pubapi.publish-message", json!({"topic_name": "/t", "data": "x"}));
    assert_eq!(answer["meta"]["msg_type"], "zwsx.rsperr");
    assert_eq!(answer["meta"]["status"], 403);
    let answer = wsx.invoke("zato.pubsub.pubapi.subscribe", json!({"topic_name": "/t"}));
    assert_eq!(answer["meta"]["status"], 403);
    // And the admin API refuses endpoints.
    let (status, _, _) = Api::new(&server, USER).request("GET", "/zato/pubsub/admin/topics", None);
    assert_eq!(status, 403);
}
