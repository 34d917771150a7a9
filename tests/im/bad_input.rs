//! Bad input: bytes that are not protobuf, truncated varints, a 64 MB length (in a protobuf
//! field and in a WebSocket frame header), unknown events, a reqId reused in flight, a request
//! flood faster than the backend answers, a hanging backend. None of it disturbs another
//! connection. (A token for another device: `connect`.)

use crate::{
    backend::{Behavior, Mock},
    common::{
        im::{query, Frame, ImClient},
        Server,
    },
    config,
};
use std::io::{Read, Write};

/// Another connection is still served.
fn still_served(server: &Server, user: &str) {
    let mut other = ImClient::connect(server, user, "ios", "other");
    other.custom("/v1/test/echo", "ok", &[]);
    assert_eq!(other.response().code, 0);
}

#[test]
fn bad_input_bytes_that_are_not_protobuf_get_code_2_and_the_connection_stays() {
    let mock = Mock::grpc();
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut client = ImClient::connect(&server, "b1", "ios", "d");
    let inputs: [&[u8]; 5] = [
        b"\xff\xff\xff\xff",                                 // a tag that is no tag
        b"\x08\xff", // RequestBody.event: a truncated varint
        b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", // a varint over 10 bytes
        b"\x1a\x80\x80\x80\x20abc", // RequestBody.data announcing 64 MiB
        b"\x12\x05ab", // reqId shorter than its length
    ];
    for input in inputs {
        client.send_binary(input.to_vec());
        let resp = client.response();
        assert_eq!((resp.code, resp.req_id.as_str()), (2, ""), "{input:?}");
    }
    client.request(1, "fine", &[]);
    assert_eq!(client.response().req_id, "fine");
    still_served(&server, "b1x");
}

#[test]
fn bad_input_a_64_mb_frame_header_closes_that_connection_with_1009_only() {
    let mock = Mock::grpc();
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    let head = format!(
        "GET /ws?{} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        query("b2", "ios", "d")
    );
    stream.write_all(head.as_bytes()).expect("write");
    // A masked binary frame announcing 64 MiB, and only its first bytes.
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&(64u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0, 0]);
    stream.write_all(&frame).expect("write frame");
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    let close = [0x88u8, 0x11, 0x03, 0xf1]; // close, 1009
    assert!(got.windows(4).any(|w| w == close), "1009 close in {got:?}");
    still_served(&server, "b2x");
}

#[test]
fn bad_input_unknown_events_get_code_3() {
    let mock = Mock::grpc();
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut client = ImClient::connect(&server, "b3", "ios", "d");
    for (event, id) in [(7, "seven"), (-1, "minus"), (99, "ninety-nine")] {
        client.request(event, id, &[]);
        let resp = client.response();
        assert_eq!((resp.event, resp.req_id.as_str(), resp.code), (event, id, 3));
    }
}

#[test]
fn bad_input_a_req_id_reused_while_in_flight_gets_code_3() {
    let mock = Mock::grpc();
    mock.set("/test.Svc/Slow", Behavior::Slow(800));
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut client = ImClient::connect(&server, "b4", "ios", "d");
    client.custom("/v1/test/slow", "same", &[]);
    client.custom("/v1/test/slow", "same", &[]);
    let first = client.response();
    assert_eq!((first.req_id.as_str(), first.code), ("same", 3), "the second is refused at once");
    let second = client.response();
    assert_eq!((second.req_id.as_str(), second.code), ("same", 0), "the first completes");
    assert_eq!(mock.calls("/test.Svc/Slow").len(), 1);
    client.custom("/v1/test/slow", "same", &[]);
    assert_eq!(client.response().code, 0, "free again once answered");
}

#[test]
fn bad_input_a_flood_faster_than_the_backend_is_bounded_with_retry_error() {
    let mock = Mock::grpc();
    mock.set("/test.Svc/Slow", Behavior::Slow(1000));
    let server = Server::start(&config(&mock, "max_requests_per_conn = 4", ""), 1);
    let mut client = ImClient::connect(&server, "b5", "ios", "d");
    for i in 0..20 {
        client.custom("/v1/test/slow", &format!("r{i}"), &[]);
    }
    let mut codes = Vec::new();
    for _ in 0..20 {
        codes.push(client.response().code);
    }
    assert_eq!(codes.iter().filter(|&&c| c == 8).count(), 16, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 4, "{codes:?}");
    assert!(mock.calls("/test.Svc/Slow").len() <= 4, "no more than the bound reached the backend");
    still_served(&server, "b5x");
}

#[test]
fn bad_input_a_hanging_backend_gives_code_2_and_holds_no_one_else() {
    let mock = Mock::grpc();
    mock.set("/test.Svc/Hang", Behavior::Hang);
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut client = ImClient::connect(&server, "b6", "ios", "d");
    client.custom("/v1/test/hang", "hung", &[]);
    still_served(&server, "b6x");
    client.custom("/v1/test/echo", "meanwhile", &[]);
    assert_eq!(client.response().req_id, "meanwhile");
    let resp = client.response();
    assert_eq!((resp.req_id.as_str(), resp.code), ("hung", 2), "after the route's timeout");
    assert!(matches!(client.try_recv(100), None | Some(Frame::Push { .. })));
}
