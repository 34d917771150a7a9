//! Connecting: paths, `connected`, token refusals with 3000, the duplicate-device rule (also
//! across two shards), kicks, the connect hooks, CORS, compression declined.

use crate::{
    backend::{Behavior, Mock},
    common::{
        im::{port_on_shard, query, stream_from, token, token_with, Frame, ImClient},
        Server,
    },
};
use prost::Message;
use pushgate::dialect::im::pb::{AfterConnectReq, AfterDisconnectReq, BeforeConnectResp};
use serde_json::json;
use std::io::{Read, Write};

#[test]
/// Feature line F001-01 (../shared/reference/seed-systems.md).
fn f001_01_ws_and_root_upgrade_with_the_query_parameters() {
    let server = Server::start("", 1);
    let mut clients = Vec::new();
    for path in ["/ws", "/"] {
        let device = format!("d{}", path.len());
        let mut client =
            ImClient::open(&server, &format!("{path}?{}", query("u1", "ios", &device)))
                .expect("upgrade");
        assert_eq!(client.recv(), Frame::Text("connected".into()), "on {path}");
        clients.push(client);
    }
    let (status, body) = server.im_post("/im/getUserConn", &json!({"userIds": ["u1"]}));
    assert_eq!(status, 200, "{body}");
    let conns = body["connParams"].as_array().expect("list");
    assert_eq!(conns.len(), 2);
    let conn = &conns[0];
    assert_eq!((conn["platform"].as_str(), conn["deviceModel"].as_str()), (Some("ios"), Some("m")));
    assert_eq!((conn["osVersion"].as_str(), conn["appVersion"].as_str()), (Some("1"), Some("2")));
    assert_eq!(
        (conn["language"].as_str(), conn["networkUsed"].as_str()),
        (Some("zh"), Some("wifi"))
    );
    assert_eq!(conn["ips"].as_str(), Some("127.0.0.1"));
}

#[test]
/// Feature line F001-02 (../shared/reference/seed-systems.md).
fn f001_02_a_valid_token_is_answered_first_with_text_connected() {
    let server = Server::start("", 1);
    let mut client =
        ImClient::open(&server, &format!("/ws?{}", query("u2", "android", "d"))).expect("up");
    assert_eq!(client.recv(), Frame::Text("connected".into()));
    assert_eq!(client.try_recv(300), None, "nothing else unasked");
}

#[test]
/// Feature line F001-03 (../shared/reference/seed-systems.md).
fn f001_03_bad_expired_or_foreign_tokens_close_with_3000_and_the_reason() {
    let server = Server::start("", 1);
    let refused = |q: String| {
        let mut client =
            ImClient::open(&server, &format!("/ws?{q}")).expect("the upgrade succeeds");
        client.closed()
    };
    let base = "platform=ios&deviceId=d1&userId=u1";
    let expired = token("u1", "ios", "d1", -120);
    assert_eq!(refused(format!("{base}&token={expired}")), (3000, "token expired".into()));
    let forged = token_with(
        "not-the-secret",
        json!({"userId":"u1","platform":"ios","deviceId":"d1","exp":9e9}),
    );
    assert_eq!(refused(format!("{base}&token={forged}")).0, 3000);
    let other_device = token("u1", "ios", "d2", 60);
    assert_eq!(
        refused(format!("{base}&token={other_device}")),
        (3000, "token is for another device".into())
    );
    let other_user = token("u9", "ios", "d1", 60);
    assert_eq!(
        refused(format!("{base}&token={other_user}")),
        (3000, "token is for another user".into())
    );
    assert_eq!(refused(format!("{base}&token=garbage")).0, 3000);
    assert_eq!(refused(base.to_string()), (3000, "userId and token are required".into()));
}

#[test]
/// Feature line F001-03 (../shared/reference/seed-systems.md).
fn f001_03_an_upstream_before_connect_refuses_with_its_msg() {
    let mock = Mock::grpc();
    let accepted = BeforeConnectResp::default().encode_to_vec();
    mock.set("/pb.imService/BeforeConnect", Behavior::Raw(accepted));
    let toml =
        format!("[im.auth]\nmode = \"upstream\"\nupstream = {{ url = \"{}\" }}\n", mock.url());
    let server = Server::start(&toml, 1);
    let mut ok = ImClient::open(&server, "/ws?userId=u&token=t&platform=p&deviceId=d").expect("up");
    assert_eq!(ok.recv(), Frame::Text("connected".into()));
    let calls = mock.calls("/pb.imService/BeforeConnect");
    let asked =
        pushgate::dialect::im::pb::BeforeConnectReq::decode(&calls[0].body[..]).expect("req");
    assert_eq!(asked.conn_param.map(|p| p.token), Some("t".into()));
    // A BeforeConnectResp whose msg is set refuses, with the msg as the reason.
    let banned = BeforeConnectResp { code: 4, msg: "banned".into() }.encode_to_vec();
    mock.set("/pb.imService/BeforeConnect", Behavior::Raw(banned));
    let mut refused =
        ImClient::open(&server, "/ws?userId=u&token=t&platform=p&deviceId=d2").expect("up");
    assert_eq!(refused.closed(), (3000, "banned".into()));
    mock.set("/pb.imService/BeforeConnect", Behavior::Status(16));
    let mut failed =
        ImClient::open(&server, "/ws?userId=u&token=t&platform=p&deviceId=d3").expect("up");
    let (code, reason) = failed.closed();
    assert_eq!(code, 3000);
    assert!(reason.starts_with("token check failed"), "{reason}");
}

#[test]
/// Feature line F001-04 (../shared/reference/seed-systems.md).
fn f001_04_a_second_connection_closes_the_first_with_1000() {
    let server = Server::start("", 1);
    let mut first = ImClient::connect(&server, "u4", "ios", "d");
    let mut other_platform = ImClient::connect(&server, "u4", "web", "d");
    let mut second = ImClient::connect(&server, "u4", "ios", "d");
    assert_eq!(first.closed(), (1000, "duplicate connection".into()));
    assert_eq!(second.try_recv(300), None, "the newer one stays");
    assert_eq!(other_platform.try_recv(100), None, "another platform is another device");
}

#[test]
/// Feature line F001-04 (../shared/reference/seed-systems.md).
fn f001_04_the_duplicate_close_is_exact_across_two_shards() {
    let server = Server::start("", 2);
    let (on_zero, on_one) = (port_on_shard(&server, 0), port_on_shard(&server, 1));
    let path = format!("/ws?{}", query("u44", "ios", "d"));
    let mut first = ImClient::over(&server, &path, stream_from(&server, on_zero)).expect("first");
    assert_eq!(first.recv(), Frame::Text("connected".into()));
    let mut second = ImClient::over(&server, &path, stream_from(&server, on_one)).expect("second");
    assert_eq!(second.recv(), Frame::Text("connected".into()));
    assert_eq!(first.closed(), (1000, "duplicate connection".into()));
    drop(first);
    // And back: a newer one on shard 0 closes the one on shard 1.
    let again = port_on_shard(&server, 0);
    let mut third = ImClient::over(&server, &path, stream_from(&server, again)).expect("third");
    assert_eq!(third.recv(), Frame::Text("connected".into()));
    assert_eq!(second.closed(), (1000, "duplicate connection".into()));
    assert_eq!(third.try_recv(300), None);
}

#[test]
/// Feature line F001-05 (../shared/reference/seed-systems.md).
fn f001_05_a_kick_closes_matching_connections_with_1001() {
    let server = Server::start("", 2);
    let mut ios = ImClient::connect(&server, "u5", "ios", "d1");
    let mut web = ImClient::connect(&server, "u5", "web", "d2");
    let mut other = ImClient::connect(&server, "u6", "ios", "d3");
    let (status, body) =
        server.im_post("/im/kickUserConn", &json!({"userIds": ["u5"], "platforms": ["ios"]}));
    assert_eq!((status, &body["kicked"]), (200, &json!(1)), "{body}");
    assert_eq!(ios.closed(), (1001, "kick".into()));
    let (status, _) =
        server.im_post("/im/kickUserConn", &json!({"getUserConnReq": {"userIds": ["u5"]}}));
    assert_eq!(status, 200);
    assert_eq!(web.closed(), (1001, "kick".into()));
    assert_eq!(other.try_recv(200), None);
}

#[test]
fn after_connect_is_retried_and_after_disconnect_carries_both_times() {
    let mock = Mock::grpc();
    mock.set("/pb.imService/AfterConnect", Behavior::FailFirst(2));
    let toml = format!(
        "[im]\nretry_interval_ms = 100\nafter_connect = {{ url = \"{0}\" }}\n\
         after_disconnect = {{ url = \"{0}\" }}\n",
        mock.url()
    );
    let server = Server::start(&toml, 1);
    let client = ImClient::connect(&server, "u7", "ios", "d");
    let calls = mock.wait_calls("/pb.imService/AfterConnect", 3);
    let after = AfterConnectReq::decode(&calls[2].body[..]).expect("AfterConnectReq");
    assert_eq!(after.conn_param.as_ref().map(|p| p.user_id.as_str()), Some("u7"));
    let connected: u64 = after.connected_at.parse().expect("ms");
    drop(client);
    let calls = mock.wait_calls("/pb.imService/AfterDisconnect", 1);
    let gone = AfterDisconnectReq::decode(&calls[0].body[..]).expect("AfterDisconnectReq");
    assert_eq!(gone.connected_at.parse::<u64>().ok(), Some(connected));
    assert!(gone.disconnected_at.parse::<u64>().expect("ms") >= connected);
}

#[test]
/// Feature line F001-22 (../shared/reference/seed-systems.md).
fn f001_22_the_real_ip_a_reverse_proxy_sets_is_the_connection_ip() {
    let server = Server::start("", 1);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let head = format!(
        "GET /ws?{} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         X-Real-IP: 203.0.113.9\r\n\r\n",
        query("u22", "ios", "d")
    );
    stream.write_all(head.as_bytes()).expect("write");
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
    let (_, body) = server.im_post("/im/getUserConn", &json!({"userIds": ["u22"]}));
    assert_eq!(body["connParams"][0]["ips"], "203.0.113.9");
}

#[test]
/// Feature line F001-23 (../shared/reference/seed-systems.md).
fn f001_23_compression_is_declined_and_cors_headers_are_sent() {
    let server = Server::start("", 1);
    for agent in ["Mozilla/5.0 Chrome/120", "Mozilla/5.0 Version/17 Safari/605"] {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        let head = format!(
            "GET /ws?{} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
             User-Agent: {agent}\r\n\r\n",
            query("u23", "web", agent.len().to_string().as_str())
        );
        stream.write_all(head.as_bytes()).expect("write");
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).expect("read");
        let answer = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
        assert!(answer.starts_with("http/1.1 101"), "{answer}");
        assert!(!answer.contains("sec-websocket-extensions"), "declined: {answer}");
        assert!(answer.contains("access-control-allow-origin: *"), "{answer}");
    }
    let url = format!("http://127.0.0.1:{}/ws", server.port);
    let reply = crate::common::agent().options(&url).call().expect("options");
    assert_eq!(reply.status().as_u16(), 200);
    let headers = reply.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(headers["access-control-allow-methods"], "POST, GET, OPTIONS, PUT, DELETE");
    assert_eq!(headers["access-control-allow-credentials"], "true");
}
