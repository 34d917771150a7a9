//! Gateway frames end to end (reference §1.6; F000-01..08, 22..24): routing by uri, the
//! gateway's own errors, what reaches the upstream (framing, patched header), pings and closes.

mod common;

use common::gateway::{
    start, GwClient, Mock, DISCONNECT, PROXY, REGISTER, SUB_ADD, SUB_DELETE, SUB_PUT,
};
use common::Server;
use serde_json::{json, Value};
use tungstenite::Message;

#[test]
/// Feature line F000-01 (../shared/reference/seed-systems.md).
fn f000_01_a_frame_is_routed_to_the_route_of_its_uri() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let mut c = GwClient::connect(&server);
    let answer = c.request(PROXY, json!({"q": 1}));
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["body"]["message"], "upstream success");
    let answer = c.request(&format!("/h{PROXY}"), json!({"q": 2}));
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(tcp.requests_to(PROXY)[0]["body"], json!({"q": 1}));
    assert_eq!(http.requests_to(&format!("/h{PROXY}"))[0]["body"], json!({"q": 2}));
    assert!(
        http.requests_to(PROXY).is_empty() && tcp.requests_to(&format!("/h{PROXY}")).is_empty()
    );
}

#[test]
/// Feature line F000-02 (../shared/reference/seed-systems.md).
fn f000_02_a_frame_without_a_string_uri_gets_4001() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let mut c = GwClient::connect(&server);
    for frame in [
        json!({"uri": null, "header": {"ts": 132132132, "msgId": "1"}}),
        json!({"uri": 1.1, "header": {"ts": 132132132, "msgId": "1"}}),
        json!({"header": {"msgId": "1"}}),
    ] {
        c.send(&frame);
        assert_eq!(
            c.recv(),
            json!({"status": 400, "body": {"code": "4001", "message": "400 Invalid URI", "msgId": "1"}}),
            "{frame}"
        );
    }
    c.send(&json!({"uri": 5}));
    assert_eq!(c.recv()["body"]["msgId"], "", "no msgId: empty");
    assert!(tcp.requests().is_empty());
}

#[test]
/// Feature line F000-03 (../shared/reference/seed-systems.md).
fn f000_03_an_unmatched_uri_gets_4041() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let mut c = GwClient::connect(&server);
    let answer = c.request("/60150/ormp/no/such/route", json!({}));
    assert_eq!(answer["status"], 404);
    assert_eq!(answer["body"]["code"], "4041");
    assert_eq!(answer["body"]["message"], "404 Route Not Found");
    assert!(tcp.requests().is_empty());
}

#[test]
/// Feature line F000-04 (../shared/reference/seed-systems.md).
fn f000_04_a_non_json_frame_gets_400_and_the_connection_stays_open() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let mut c = GwClient::connect(&server);
    c.send_text("none-json");
    let answer = c.recv();
    assert_eq!(answer["status"], 400);
    assert_eq!(
        (answer["body"]["msgId"].as_str(), answer["body"]["code"].as_str()),
        (Some(""), Some(""))
    );
    let message = answer["body"]["message"].as_str().expect("message");
    assert!(message.starts_with("failed to decode websocket frame, err: "), "{message}");
    assert_eq!(c.request(PROXY, json!({}))["status"], 200, "still open");
}

#[test]
/// Feature line F000-05 (../shared/reference/seed-systems.md).
fn f000_05_tcp_requests_and_answers_are_b7_00_le_length_prefixed_json() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let mut c = GwClient::connect(&server);
    for _ in 0..3 {
        assert_eq!(c.request(PROXY, json!({"a": [1, 2]}))["status"], 200);
    }
    let seen = tcp.requests();
    assert_eq!(seen.len(), 3);
    assert!(*tcp.framing_ok.lock().expect("lock"), "every frame had 0xB7 0x00 and its LE length");
    assert_eq!(seen[0]["uri"], PROXY);
    assert_eq!(seen[0]["body"], json!({"a": [1, 2]}));
    assert!(seen[0]["header"].is_object());
}

#[test]
/// Feature line F000-06 (../shared/reference/seed-systems.md).
fn f000_06_sid_uuid_msgid_and_gateway_metadata_are_added() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let mut c = GwClient::connect(&server);
    let sid = c.register(REGISTER);
    c.send(&json!({"uri": PROXY, "header": {"sid": "forged", "ts": 1}, "body": {}}));
    let answer = c.recv();
    let seen = tcp.requests_to(PROXY);
    let header = &seen[0]["header"];
    assert_eq!(header["sid"], sid.as_str(), "the gateway's sid wins");
    let uuid = header["_uuid"].as_str().expect("_uuid");
    assert!(uuid.starts_with(&format!("{sid}_")), "{uuid}");
    assert_eq!(header["msgId"], uuid, "msgId defaults to _uuid");
    assert_eq!(answer["body"]["msgId"], uuid);
    assert_eq!(header["gateway-metadata"]["sid"], sid.as_str());
    assert_eq!(header["gateway-metadata"]["GatewayIP"], "127.0.0.1");
    assert_eq!(header["gateway-metadata"]["SourceIP"], "127.0.0.1");
    assert_eq!(header["ts"], 1);
    // Over HTTP the same header travels as request headers.
    c.request(&format!("/h{PROXY}"), json!({}));
    let header = &http.requests_to(&format!("/h{PROXY}"))[0]["header"];
    assert_eq!(header["sid"], sid.as_str());
    let metadata: Value =
        serde_json::from_str(header["gateway-metadata"].as_str().expect("text")).expect("json");
    assert_eq!(metadata["SourceIP"], "127.0.0.1");
}

#[test]
/// Feature line F000-07 (../shared/reference/seed-systems.md).
fn f000_07_route_headers_add_set_and_remove() {
    let tcp = Mock::tcp();
    let config = format!(
        "[[gateway.routes]]\nuri = \"/h\"\naction = \"proxy\"\n\
         headers = {{ add = {{ _url_segment = \"3\", ts = \"0\" }}, set = {{ appId = \"9\" }}, remove = [\"Content-Type\"] }}\n\
         upstream = {{ nodes = [{{ host = \"127.0.0.1\", port = {}, weight = 1 }}] }}\n",
        tcp.port
    );
    let server = Server::start(&config, 1);
    let mut c = GwClient::connect(&server);
    assert_eq!(c.request_with("/h", json!({}), json!({"appId": "1"}))["status"], 200);
    let header = &tcp.requests()[0]["header"];
    assert_eq!(header["_url_segment"], "3", "add where absent");
    assert_eq!(header["ts"], 132132132, "add does not overwrite");
    assert_eq!(header["appId"], "9", "set overwrites");
    assert!(header.get("Content-Type").is_none(), "remove");
}

#[test]
/// Feature line F000-08 (../shared/reference/seed-systems.md).
fn f000_08_sub_actions_without_a_topics_array_get_4002_and_no_call() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let mut c = GwClient::connect(&server);
    for uri in [SUB_ADD, SUB_PUT, SUB_DELETE] {
        for body in
            [json!(null), json!(1.1), json!({}), json!({"topic": 1.1}), json!({"topics": "a"})]
        {
            let answer = c.request(uri, body.clone());
            assert_eq!(answer["status"], 400, "{uri} {body}");
            assert_eq!(answer["body"]["code"], "4002");
            assert_eq!(answer["body"]["message"], "invalid body");
        }
    }
    assert!(tcp.requests().is_empty(), "no upstream call");
    // A register or disconnect needs no topics.
    assert_eq!(c.request(REGISTER, json!("khkh"))["status"], 200);
    assert_eq!(c.request(DISCONNECT, json!(null))["status"], 200);
}

#[test]
/// Feature line F000-22 (../shared/reference/seed-systems.md).
fn f000_22_a_ws_ping_with_json_gets_a_pong_with_uri_api_pong() {
    let server = Server::start("", 1);
    let mut c = GwClient::connect(&server);
    c.ws.send(Message::Ping(br#"{"msgId":"123"}"#.to_vec().into())).expect("ping");
    match c.recv_message() {
        Message::Pong(payload) => {
            let v: Value = serde_json::from_slice(&payload).expect("json");
            assert_eq!(v, json!({"msgId": "123", "uri": "/api/pong"}));
        }
        other => panic!("expected a pong, got {other:?}"),
    }
    c.ws.send(Message::Ping(b"plain".to_vec().into())).expect("ping");
    match c.recv_message() {
        Message::Pong(payload) => assert_eq!(&payload[..], b"plain", "other pings are echoed"),
        other => panic!("expected a pong, got {other:?}"),
    }
}

#[test]
/// Feature line F000-23 (../shared/reference/seed-systems.md).
fn f000_23_a_text_api_ping_is_echoed_as_api_pong() {
    let server = Server::start("", 1);
    let mut c = GwClient::connect(&server);
    c.send(&json!({"uri": "/api/ping", "header": {"ts": 132132132, "msgId": "01321312"}}));
    assert_eq!(
        c.recv(),
        json!({"uri": "/api/pong", "header": {"ts": 132132132, "msgId": "01321312"}})
    );
}

#[test]
/// Feature line F000-24 (../shared/reference/seed-systems.md).
fn f000_24_a_client_close_gets_1000_connection_closed_by_server() {
    let server = Server::start("", 1);
    let mut c = GwClient::connect(&server);
    c.ws.close(None).expect("close");
    let (code, reason) = c.close_frame().expect("close frame");
    assert_eq!(code, 1000);
    assert_eq!(reason, r#"{"message": "connection closed by server"}"#);
}

#[test]
fn binary_requests_are_answered_in_binary() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let mut c = GwClient::connect(&server);
    let frame = json!({"uri": PROXY, "header": {"msgId": "b1"}, "body": {}}).to_string();
    c.ws.send(Message::Binary(frame.into_bytes().into())).expect("send");
    match c.recv_message() {
        Message::Binary(bytes) => {
            let v: Value = serde_json::from_slice(&bytes).expect("json");
            assert_eq!(
                (v["status"].as_u64(), v["body"]["msgId"].as_str()),
                (Some(200), Some("b1"))
            );
        }
        other => panic!("expected a binary answer, got {other:?}"),
    }
}

#[test]
fn unknown_websocket_paths_still_reach_pusher() {
    let server = Server::start("", 1);
    let client = common::Client::connect(&server, "/app/app-key?protocol=7");
    assert!(client.is_ok(), "Pusher is untouched");
    let other = GwClient::connect_path(&server, "/msg-pub-not");
    assert!(other.is_ok(), "an unknown path still gets Pusher's fallback, not a 404");
}
