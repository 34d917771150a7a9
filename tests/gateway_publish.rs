//! The gateway's publish side end to end (reference §1.5-1.6; F000-20, 21, 26, 27): push
//! frames, order per connection, `sig_<sid>` across shards, `/list/topics`, the publish key,
//! and the real grpcio client publishing through `pushserverpb.Push/Msg`.

mod common;

use common::gateway::{routes, start, GwClient, Mock, PUBLISH_KEY, REGISTER, SUB_ADD};
use common::Server;
use serde_json::json;
use std::{
    path::Path,
    process::Command,
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[test]
/// Feature line F000-20 (../shared/reference/seed-systems.md).
fn f000_20_push_frames_have_the_original_shape_and_apisix_ts() {
    let mock = Mock::tcp();
    let routes = routes("", "tcp", mock.port, "");
    let server = Server::start(&routes, 1);
    let mut c = GwClient::connect(&server);
    let topic = format!("sig_{}", c.register(REGISTER));
    let before = now_ms();
    let (status, reply) = server.gw_publish(&topic, "1234", "q123");
    let after = now_ms();
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"topic": topic, "msgId": "1234"}));
    let push = c.recv();
    assert_eq!(push["status"], 200);
    let body = &push["body"];
    assert_eq!(
        (body["topic"].as_str(), body["msgId"].as_str()),
        (Some(topic.as_str()), Some("1234"))
    );
    assert_eq!((body["resultData"].as_str(), body["code"].as_str()), (Some("q123"), Some("0")));
    let ts = body["apisix_ts"].as_u64().expect("apisix_ts in ms");
    assert!(before <= ts && ts <= after, "{before} <= {ts} <= {after}");
    assert_eq!(server.gw_publish("nobody", "1", "x").0, 200, "no subscriber is not an error");

    let server = Server::start(&format!("[gateway]\napisix_ts_disabled = true\n{routes}"), 1);
    let mut c = GwClient::connect(&server);
    let sid = c.register(REGISTER);
    server.gw_publish(&format!("sig_{sid}"), "1", "x");
    let push = c.recv();
    assert_eq!(push["body"]["resultData"], "x");
    assert!(push["body"].get("apisix_ts").is_none(), "{push}");
}

#[test]
/// Feature line F000-21 (../shared/reference/seed-systems.md).
fn f000_21_pushes_to_one_connection_arrive_in_publish_order() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 2);
    let mut c = GwClient::connect(&server);
    let sid = c.register(REGISTER);
    c.sub_add(SUB_ADD, &["a", "b"]);
    let p = server.gw_publisher();
    let sig = format!("sig_{sid}");
    let topics = ["a", "b", sig.as_str()];
    for i in 0..150 {
        p.publish(topics[i % 3], &i.to_string(), &format!("n{i}"));
    }
    for i in 0..150 {
        assert_eq!(c.push(), (topics[i % 3].to_string(), format!("n{i}")), "push {i}");
    }
}

#[test]
fn sig_sid_reaches_its_connection_on_either_of_two_shards() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 2);
    // Connections until one is on each shard (the kernel spreads them).
    let mut by_shard: [Option<(GwClient, String)>; 2] = [None, None];
    let mut spare = Vec::new();
    for _ in 0..200 {
        if by_shard.iter().all(Option::is_some) {
            break;
        }
        let mut c = GwClient::connect(&server);
        let sid = c.register(REGISTER);
        c.sub_add(SUB_ADD, &["all"]);
        let shard = GwClient::shard_of(&sid);
        if by_shard[shard].is_none() {
            by_shard[shard] = Some((c, sid));
        } else {
            spare.push(c);
        }
    }
    let [Some((mut a, sid_a)), Some((mut b, sid_b))] = by_shard else {
        panic!("connections did not spread over both shards");
    };
    assert_ne!(GwClient::shard_of(&sid_a), GwClient::shard_of(&sid_b));
    // Several publishers, so publishes come in on both shards.
    for round in 0..4 {
        let p = server.gw_publisher();
        p.publish(&format!("sig_{sid_a}"), "1", &format!("a{round}"));
        p.publish(&format!("sig_{sid_b}"), "2", &format!("b{round}"));
        p.publish("all", "3", &format!("all{round}"));
        assert_eq!(a.push(), (format!("sig_{sid_a}"), format!("a{round}")));
        assert_eq!(a.push(), ("all".into(), format!("all{round}")));
        assert_eq!(b.push(), (format!("sig_{sid_b}"), format!("b{round}")));
        assert_eq!(b.push(), ("all".into(), format!("all{round}")));
        for other in &mut spare {
            assert_eq!(
                other.push(),
                ("all".into(), format!("all{round}")),
                "no sig push for others"
            );
        }
    }
    // A sig_ of a connection that has gone reaches nobody, and breaks nothing.
    drop(a);
    let (status, _) = server.gw_publish(&format!("sig_{sid_a}"), "4", "late");
    assert_eq!(status, 200);
    server.gw_publish(&format!("sig_{sid_b}"), "5", "still");
    assert_eq!(b.push(), (format!("sig_{sid_b}"), "still".into()));
}

#[test]
/// Feature line F000-27 (../shared/reference/seed-systems.md).
fn f000_27_list_topics_after_register_and_after_the_last_disconnect() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 2);
    assert!(server.list_topics().is_empty());
    let mut c = GwClient::connect(&server);
    let sid = c.register(REGISTER);
    assert_eq!(server.list_topics(), [format!("sig_{sid}")], "1 after register");
    c.sub_add(SUB_ADD, &["hq_100001_129", "hq_100001_126"]);
    assert_eq!(server.list_topics().len(), 3);
    c.ws.close(None).expect("close");
    c.close_frame();
    for _ in 0..250 {
        if server.list_topics().is_empty() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("topics left after the last disconnect: {:?}", server.list_topics());
}

#[test]
fn publishing_needs_the_publish_key_and_a_topic() {
    let server = Server::start("[gateway]\nlist_topics_public = false\n", 1);
    let body = json!({"topic": "t", "msgId": "1", "body": "x"});
    assert_eq!(server.gw_publish_as(None, &body).0, 401);
    assert_eq!(server.gw_publish_as(Some("wrong"), &body).0, 401);
    assert_eq!(server.gw_publish_as(Some(PUBLISH_KEY), &body).0, 200);
    assert_eq!(server.gw_publish_as(Some(PUBLISH_KEY), &json!({"msgId": "1"})).0, 400);
    assert_eq!(server.gw_publish_as(Some(PUBLISH_KEY), &json!([1])).0, 400);
    let long = json!({"topic": "t".repeat(300), "body": "x"});
    assert_eq!(server.gw_publish_as(Some(PUBLISH_KEY), &long).0, 400);
    assert_eq!(server.get("/list/topics").0, 401, "list_topics_public = false asks for the key");
    // A JSON body that is not a string is pushed as its JSON text.
    let json_body = json!({"topic": "t", "body": {"price": 1}});
    assert_eq!(server.gw_publish_as(Some(PUBLISH_KEY), &json_body).0, 200);
}

/// Exit status of run.sh when python3, venv or pip is missing.
const SKIP: i32 = 77;

#[test]
/// Feature line F000-26 (../shared/reference/seed-systems.md).
fn f000_26_grpcio_publishes_through_push_msg_with_topic_and_msgid() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 2);
    let mut c = GwClient::connect(&server);
    c.sub_add(SUB_ADD, &["hq_100001_123"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpc/run.sh");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("grpc-venv");
    let output = Command::new("timeout")
        .args(["300", "bash"])
        .arg(&script)
        .args([&server.port.to_string(), "gateway_msg.py", "hq_100001_123", PUBLISH_KEY])
        .env("GRPC_VENV", &venv)
        .output()
        .expect("run tests/grpc/run.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(SKIP) {
        eprintln!("SKIPPED: the grpcio test needs python3 with venv and pip: {stderr}");
        return;
    }
    assert!(
        output.status.success(),
        "grpcio client failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("Msg: OK, msgId 1234"), "{stdout}");
    assert!(stdout.contains("Msg without key: UNAUTHENTICATED"), "{stdout}");
    let push = c.recv();
    assert_eq!(push["body"]["topic"], "hq_100001_123");
    assert_eq!(push["body"]["msgId"], "1234");
    assert_eq!(push["body"]["resultData"], "q123", "the body bytes as a string");
    assert_eq!(push["body"]["code"], "0");
}
