//! WSX WebSocket subscribers (F002-22..24): the `zwsx.psrq` delivery frame, the keepalive and
//! its 4002 close, and what a closing connection does to its subscriptions.

use crate::{
    common::{
        zato::{topics, wait_until, Api, DataDir, Wsx, ADMIN, OTHER, USER},
        Server,
    },
    start,
};
use serde_json::json;
use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

const WAIT: Duration = Duration::from_secs(10);

#[test]
/// Feature line F002-22 (../shared/reference/seed-systems.md).
fn f002_22_wsx_deliveries_are_zwsx_psrq_messages_with_one_message_or_a_list() {
    let dir = DataDir::new("f22");
    let server = start(&dir, "", &topics(&["/t"]));
    let api = Api::new(&server, USER);
    let mut wsx = Wsx::session(&server, USER);
    let key = wsx.subscribe("/t", json!({}));
    let msg_id = api.publish_ok("/t", "one", json!({}));
    let got = wsx.delivery(WAIT).expect("a delivery");
    assert_eq!(got["meta"]["msg_type"], "zwsx.psrq");
    assert_eq!(got["meta"]["id"], msg_id.as_str(), "one message: its id is the message's");
    assert!(got["meta"]["timestamp"].as_str().is_some_and(|t| t.contains('T')));
    assert!(got["meta"].get("in_reply_to").is_none(), "a request, not a response");
    assert_eq!(got["data"]["data"], "one");
    assert_eq!(got["data"]["sub_key"], key.as_str());

    // Several waiting messages go out as one list.
    let admin = Api::new(&server, ADMIN);
    admin.set_status(&key, "pub-only");
    for data in ["a", "b", "c"] {
        api.publish_ok("/t", data, json!({}));
    }
    admin.set_status(&key, "pub-sub");
    let got = wsx.delivery(WAIT).expect("a list");
    let list = got["data"].as_array().expect("data is a list");
    let data: Vec<&str> = list.iter().filter_map(|m| m["data"].as_str()).collect();
    assert_eq!(data, ["a", "b", "c"]);
    assert_ne!(got["meta"]["id"], list[0]["msg_id"]);
    // Fire-and-forget: the queue is empty without any reply from the client.
    assert!(wait_until(WAIT, || admin.sub(&key)["current_depth_non_gd"] == 0));
}

/// Reads one server frame: (opcode, payload).
fn read_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).ok()?;
    let mut len = u64::from(head[1] & 0x7f);
    if len == 126 {
        let mut ext = [0u8; 2];
        stream.read_exact(&mut ext).ok()?;
        len = u64::from(u16::from_be_bytes(ext));
    } else if len == 127 {
        let mut ext = [0u8; 8];
        stream.read_exact(&mut ext).ok()?;
        len = u64::from_be_bytes(ext);
    }
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    stream.read_exact(&mut payload).ok()?;
    Some((head[0] & 0x0f, payload))
}

/// A raw WebSocket that never answers pings, with a session.
fn silent_client(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let request = format!(
        "GET /zato/wsx HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.port
    );
    stream.write_all(request.as_bytes()).expect("upgrade");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("101");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    let session = json!({"meta": {"action": "create-session", "id": "1", "timestamp": "t",
                                   "username": USER.0, "secret": USER.1}, "data": {}});
    let frame = pushgate::ws::frame::client_frame(0x81, session.to_string().as_bytes());
    stream.write_all(&frame).expect("session");
    let (opcode, payload) = read_frame(&mut stream).expect("session answer");
    assert_eq!(opcode, 1);
    let answer: serde_json::Value = serde_json::from_slice(&payload).expect("json");
    assert_eq!(answer["meta"]["msg_type"], "zwsx.rspa");
    stream
}

#[test]
/// Feature line F002-23 (../shared/reference/seed-systems.md).
fn f002_23_the_server_pings_and_closes_4002_pings_missed_after_two_unanswered() {
    let dir = DataDir::new("f23");
    let server =
        start(&dir, "ping_interval_secs = 1\npings_missed_threshold = 2", &topics(&["/t"]));
    let mut stream = silent_client(&server);
    let mut pinged = false;
    let close = loop {
        let (opcode, payload) = read_frame(&mut stream).expect("a ping, then the close");
        match opcode {
            9 => {
                pinged = true;
                let ping: serde_json::Value = serde_json::from_slice(&payload).expect("json ping");
                assert_eq!(ping["meta"]["msg_type"], "zwsx.rqc");
            }
            8 => break payload,
            other => panic!("unexpected opcode {other}"),
        }
    };
    assert!(pinged, "pinged before the close");
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 4002);
    assert_eq!(&close[2..], b"Pings missed");

    // A client that answers pings (tungstenite does) stays.
    let mut wsx = Wsx::session(&server, USER);
    assert!(wsx.recv(Duration::from_secs(5)).is_none(), "nothing but pings came");
    let key = wsx.subscribe("/t", json!({}));
    assert!(key.starts_with("zpsk.websockets."));
}

#[test]
/// Feature line F002-24 (../shared/reference/seed-systems.md).
fn f002_24_a_closed_wsx_connection_unsubscribes_or_keeps_its_messages_for_a_resume() {
    let dir = DataDir::new("f24");
    let server = start(&dir, "", &topics(&["/t", "/kept"]));
    let api = Api::new(&server, USER);
    let admin = Api::new(&server, ADMIN);

    // unsub_on_wsx_close (the default): the subscription goes with the connection.
    let mut wsx = Wsx::session(&server, USER);
    wsx.subscribe("/t", json!({}));
    assert_eq!(
        admin.admin("GET", "subscriptions?topic=/t", None).as_array().map(Vec::len),
        Some(1)
    );
    drop(wsx);
    let listed = || admin.admin("GET", "subscriptions?topic=/t", None);
    assert!(wait_until(WAIT, || listed() == json!([])), "{}", listed());

    // Kept: messages wait (as GD) for a connection that resumes it by sub_key.
    let mut wsx = Wsx::session(&server, USER);
    let key = wsx.subscribe("/kept", json!({"unsub_on_wsx_close": false}));
    drop(wsx);
    assert!(wait_until(WAIT, || admin.sub(&key)["is_connected"] == false));
    api.publish_ok("/kept", "while away 1", json!({"has_gd": false}));
    api.publish_ok("/kept", "while away 2", json!({}));
    let sub = admin.sub(&key);
    assert_eq!(sub["current_depth_gd"], 2, "forced to GD: {sub}");

    // Another endpoint may not take it.
    let mut thief = Wsx::session(&server, OTHER);
    let answer = thief.invoke("zato.pubsub.resume-wsx-subscription", json!({"sub_key": key}));
    assert_eq!(answer["meta"]["status"], 403, "{answer}");

    let mut back = Wsx::session(&server, USER);
    let answer = back.invoke("zato.pubsub.resume-wsx-subscription", json!({"sub_key": key}));
    assert_eq!(answer["meta"]["msg_type"], "zwsx.rspok", "{answer}");
    assert_eq!(answer["data"]["topic_name"], "/kept");
    let mut data = Vec::new();
    while data.len() < 2 {
        let got = back.delivery(WAIT).expect("the waiting messages");
        match got["data"].as_array() {
            Some(list) => data.extend(list.iter().map(|m| m["data"].clone())),
            None => data.push(got["data"]["data"].clone()),
        }
    }
    assert_eq!(data, [json!("while away 1"), json!("while away 2")]);
    api.publish_ok("/kept", "now", json!({}));
    assert_eq!(back.delivery(WAIT).expect("live again")["data"]["data"], "now");
}
