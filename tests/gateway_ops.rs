//! Running the gateway: the embedded defaults serve it, `--check-config` refuses bad routes as
//! APISIX does (F000-30), `--print-default-config` shows `[gateway]`, and `/metrics` carries
//! the original's metrics (F000-32).

mod common;

use common::gateway::{start, GwClient, Mock, PUBLISH_KEY, SUB_ADD};
use common::Server;
use serde_json::json;
use std::process::Command;

fn pushgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pushgate")).args(args).output().expect("run pushgate")
}

fn check_config(text: &str) -> (bool, String) {
    let path = std::env::temp_dir().join(format!(
        "pushgate-gw-{}-{}.toml",
        std::process::id(),
        text.len()
    ));
    std::fs::write(&path, text).expect("write");
    let out = pushgate(&["--check-config", "--config", path.to_str().expect("path")]);
    let _ = std::fs::remove_file(&path);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
/// Feature line F000-30 (../shared/reference/seed-systems.md).
fn f000_30_routes_are_checked_with_apisixs_messages() {
    let node = "upstream = { nodes = [{ host = \"127.0.0.1\", port = 1975, weight = 1 }] }";
    let cases = [
        (
            "uri = \"/a\"\naction = \"sub_add\"\n".to_string(),
            "gateway.routes[0].upstream",
            "property \"upstream\" is required",
        ),
        (
            format!("uri = \"/a\"\n{node}\n"),
            "gateway.routes[0].action",
            "property \"action\" is required",
        ),
        (
            format!("uri = \"/a\"\naction = \"sub_patch\"\n{node}\n"),
            "gateway.routes[0].action",
            "matches none of the enum values",
        ),
        (
            format!("action = \"proxy\"\n{node}\n"),
            "gateway.routes[0].uri",
            "property \"uri\" is required",
        ),
    ];
    for (route, key, message) in cases {
        let (ok, stderr) = check_config(&format!("[[gateway.routes]]\n{route}"));
        assert!(!ok, "{route} was accepted");
        assert!(stderr.contains(key) && stderr.contains(message), "{route}: {stderr}");
    }
    // The seed's sub_put route puts `nodes` beside `action`: refused, naming the key.
    let seed = "[[gateway.routes]]\nuri = \"/s\"\naction = \"sub_put\"\nnodes = [{ host = \"h\", port = 1975, weight = 1 }]\n";
    let (ok, stderr) = check_config(seed);
    assert!(!ok && stderr.contains("nodes"), "{stderr}");
    for action in ["sub_put", "sub_add", "sub_delete", "register", "disconnect", "proxy"] {
        let (ok, stderr) = check_config(&format!(
            "[[gateway.routes]]\nuri = \"/{action}\"\naction = \"{action}\"\n{node}\n"
        ));
        assert!(ok, "{action}: {stderr}");
    }
}

#[test]
fn print_default_config_shows_the_gateway_section_and_parses_back() {
    let out = pushgate(&["--print-default-config"]);
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(text.contains("[gateway]"), "{text}");
    assert!(text.contains("path = \"/msg-pub\"") && text.contains("publish_key = \"gateway-key\""));
    let (ok, stderr) = check_config(&text);
    assert!(ok, "{stderr}");
}

#[test]
fn the_embedded_defaults_serve_the_gateway() {
    let server = Server::start("", 1);
    let mut c = GwClient::connect(&server);
    c.send(&json!({"uri": "/api/ping", "header": {"msgId": "1"}}));
    assert_eq!(c.recv()["uri"], "/api/pong");
    let answer = c.request("/60101/ormp/session/channelRegister", json!({}));
    assert_eq!(answer["body"]["code"], "4041", "no routes by default");
    let (status, _) = server.gw_publish_as(Some(PUBLISH_KEY), &json!({"topic": "t", "body": "x"}));
    assert_eq!(status, 200);
    assert!(server.list_topics().is_empty());
}

#[test]
fn the_gateway_can_be_unmounted() {
    let server = Server::start("[gateway]\nenabled = false\n", 1);
    let (status, _) = server.gw_publish("t", "1", "x");
    assert_eq!(status, 404);
    assert_eq!(server.get("/list/topics").0, 404);
}

#[test]
/// Feature line F000-32 (../shared/reference/seed-systems.md).
fn f000_32_metrics_follow_the_originals_names() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let (mut a, mut b) = (GwClient::connect(&server), GwClient::connect(&server));
    a.sub_add(SUB_ADD, &["hq_100001_129"]);
    b.sub_add(SUB_ADD, &["hq_100001_129"]);
    assert_eq!(a.request("/nowhere", json!({}))["status"], 404);
    server.gw_publish("hq_100001_129", "1", "q129");
    a.push();
    b.push();
    let labels = format!("route=\"/msg-pub\",subroute=\"{SUB_ADD}\"");
    let expect = [
        ("ws_current_connections{worker=\"shard-0\"} ".to_string(), 2.0),
        ("ws_topic_count{worker=\"shard-0\"} ".to_string(), 1.0),
        ("ws_pub_total{topic=\"hq_100001_129\"} ".to_string(), 1.0),
        ("ws_received_push_total ".to_string(), 1.0),
        (format!("ws_status{{{labels},status=\"200\"}} "), 2.0),
        ("ws_status{route=\"/msg-pub\",subroute=\"\",status=\"404\"} ".to_string(), 1.0),
        (format!("ws_latency_count{{{labels}}} "), 2.0),
        (format!("ws_upstream_latency_count{{{labels}}} "), 2.0),
        (format!("ws_upstream_latency_bucket{{{labels},le=\"+Inf\"}} "), 2.0),
        ("ws_msg_queue_size{worker=\"shard-0\"} ".to_string(), 0.0),
        ("ws_requests_waiting{worker=\"shard-0\"} ".to_string(), 0.0),
    ];
    for (line, value) in expect {
        assert_eq!(server.metric_line(&line), Some(value), "{line}");
    }
    assert!(server.metric("connections") >= 2, "the engine's own metrics are still there");
}
