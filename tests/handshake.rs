//! The WebSocket handshake and every connect-time close code, against the real binary.

mod common;

use common::{Client, Server, KEY};

fn refused(server: &Server, path: &str) -> (Option<u16>, serde_json::Value) {
    let stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("tcp");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    let (mut ws, _) = tungstenite::client::client(
        server.url(path),
        tungstenite::stream::MaybeTlsStream::Plain(stream),
    )
    .expect("upgrade is accepted before the close");
    let error = match ws.read().expect("pusher:error") {
        tungstenite::Message::Text(t) => serde_json::from_str(&t).expect("json"),
        other => panic!("expected pusher:error, got {other:?}"),
    };
    let code = loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => break None,
        }
    };
    (code, error)
}

#[test]
fn connection_established_carries_socket_id_and_activity_timeout() {
    let server = Server::start("activity_timeout = 77\n", 1);
    let mut client = Client::connect(&server, &format!("/app/{KEY}?protocol=7")).expect("connect");
    let re = regex_lite::Regex::new(r"^\d+\.\d+$").expect("regex");
    assert!(re.is_match(&client.socket_id), "socket id {}", client.socket_id);
    // The activity timeout is checked through a second raw read of the hello frame.
    let stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("tcp");
    let (mut ws, _) = tungstenite::client::client(
        server.url(&format!("/app/{KEY}?protocol=7")),
        tungstenite::stream::MaybeTlsStream::Plain(stream),
    )
    .expect("upgrade");
    let hello: serde_json::Value = match ws.read().expect("hello") {
        tungstenite::Message::Text(t) => serde_json::from_str(&t).expect("json"),
        other => panic!("{other:?}"),
    };
    let data: serde_json::Value =
        serde_json::from_str(hello["data"].as_str().expect("data is a JSON string")).expect("json");
    assert_eq!(data["activity_timeout"], 77);
    client.sync();
}

#[test]
fn path_prefix_and_unknown_query_parameters_are_tolerated() {
    let server = Server::start("", 1);
    let mut client = Client::connect(
        &server,
        &format!("/some/prefix/app/{KEY}?protocol=7&client=js&version=8.4.0&flash=false"),
    )
    .expect("connect");
    client.sync();
}

#[test]
fn socket_ids_are_unique() {
    let server = Server::start("", 2);
    let mut ids: Vec<String> = (0..20).map(|_| server.client().socket_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
}

#[test]
fn unknown_app_key_closes_4001() {
    let server = Server::start("", 1);
    let (code, error) = refused(&server, "/app/nope?protocol=7");
    assert_eq!(code, Some(4001));
    assert_eq!(error["event"], "pusher:error");
    assert_eq!(error["data"]["code"], 4001);
}

#[test]
fn protocol_problems_close_4006_4007_4008() {
    let server = Server::start("", 1);
    assert_eq!(refused(&server, &format!("/app/{KEY}")).0, Some(4008));
    assert_eq!(refused(&server, &format!("/app/{KEY}?client=js")).0, Some(4008));
    assert_eq!(refused(&server, &format!("/app/{KEY}?protocol=3")).0, Some(4007));
    assert_eq!(refused(&server, &format!("/app/{KEY}?protocol=x")).0, Some(4006));
}

#[test]
fn other_paths_are_404_or_close_4005() {
    let server = Server::start("", 1);
    assert_eq!(refused(&server, "/elsewhere").0, Some(4005));
    let (status, _) = server.get("/elsewhere");
    assert_eq!(status, 404);
    let (status, body) = server.get("/");
    assert_eq!((status, body.as_str()), (200, "OK"));
}

#[test]
fn a_second_app_from_the_config_file_is_served() {
    let server = Server::start(
        "[[apps]]\nid = \"a1\"\nkey = \"k1\"\nsecret = \"s1\"\n\n[[apps]]\nid = \"a2\"\nkey = \"k2\"\nsecret = \"s2\"\n",
        1,
    );
    Client::connect(&server, "/app/k2?protocol=7").expect("second app");
    assert_eq!(
        refused(&server, &format!("/app/{KEY}?protocol=7")).0,
        Some(4001),
        "defaults replaced"
    );
}
