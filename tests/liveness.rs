//! Ping and pong both ways, and the server's 4201 for a client that stops answering.

mod common;

use common::Server;
use serde_json::json;
use std::time::Duration;
use tungstenite::Message;

#[test]
fn pusher_ping_gets_pusher_pong() {
    let server = Server::start("", 1);
    let mut client = server.client();
    client.send(json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(client.recv()["event"], "pusher:pong");
}

#[test]
fn websocket_ping_frame_gets_pong_frame() {
    let server = Server::start("", 1);
    let mut client = server.client();
    client.ws.send(Message::Ping(b"probe".to_vec().into())).expect("ping");
    loop {
        match client.ws.read().expect("read") {
            Message::Pong(payload) => {
                assert_eq!(&payload[..], b"probe");
                break;
            }
            Message::Text(t) => panic!("unexpected text {t}"),
            _ => continue,
        }
    }
}

#[test]
fn silent_client_is_pinged_then_closed_with_4201() {
    let server = Server::start("activity_timeout = 1\npong_timeout = 1\n", 1);
    let mut client = server.client();
    // Silent: the server pings after about a second, then closes about a second later.
    let ping = client.recv();
    assert_eq!(ping["event"], "pusher:ping");
    assert_eq!(client.close_code(), Some(4201));
    assert!(server.metric("pong_timeouts_total") >= 1);
}

#[test]
fn answering_the_ping_keeps_the_connection() {
    let server = Server::start("activity_timeout = 1\npong_timeout = 2\n", 1);
    let mut client = server.client();
    for _ in 0..3 {
        let ping = client.recv();
        assert_eq!(ping["event"], "pusher:ping");
        client.send(json!({"event": "pusher:pong", "data": {}}));
    }
    // Still open and serving.
    client.sync();
    assert_eq!(server.metric("pong_timeouts_total"), 0);
}

#[test]
fn any_frame_counts_as_activity() {
    let server = Server::start("activity_timeout = 2\npong_timeout = 1\n", 1);
    let mut client = server.client();
    // A WebSocket-level pong every half second is activity: no pusher:ping should come.
    for _ in 0..8 {
        client.ws.send(Message::Pong(Vec::new().into())).expect("pong");
        assert!(
            client.try_recv(Duration::from_millis(500)).is_none(),
            "server pinged an active client"
        );
    }
}
