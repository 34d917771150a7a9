//! Client frames as the network delivers them: cut anywhere by TCP, fragmented into
//! continuation frames with a control frame between, or arriving in the same packet as the
//! upgrade request. Each must decode to the same message.

mod common;

use common::{Client, Server};
use pushgate::ws::frame::client_frame;
use serde_json::Value;
use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const PING: u8 = 0x9;

/// One client frame, masked as RFC 6455 requires.
fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    client_frame(if fin { 0x80 } else { 0 } | opcode, payload)
}

fn subscribe(channel: &str) -> Vec<u8> {
    format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"{channel}"}}}}"#).into_bytes()
}

fn raw(client: &mut Client) -> &mut TcpStream {
    match client.ws.get_mut() {
        tungstenite::stream::MaybeTlsStream::Plain(s) => s,
        _ => panic!("plain TCP expected"),
    }
}

fn assert_subscribed(client: &mut Client, channel: &str) {
    let reply = client.recv();
    assert_eq!(reply["event"], "pusher_internal:subscription_succeeded", "{reply}");
    assert_eq!(reply["channel"], channel);
}

#[test]
fn a_frame_cut_into_single_bytes_is_one_message() {
    let server = Server::start("", 1);
    let mut client = server.client();
    let stream = raw(&mut client);
    stream.set_nodelay(true).expect("nodelay");
    for byte in masked(TEXT, true, &subscribe("bytewise")) {
        stream.write_all(&[byte]).expect("write");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_subscribed(&mut client, "bytewise");
    // The connection carries on normally afterwards.
    server.trigger("bytewise", "e", "after");
    assert_eq!(client.recv()["data"], "after");
}

#[test]
fn a_fragmented_message_with_a_ping_between_is_reassembled() {
    let server = Server::start("", 1);
    let mut client = server.client();
    let message = subscribe("pieces");
    let (first, rest) = message.split_at(10);
    let (second, third) = rest.split_at(15);
    let stream = raw(&mut client);
    stream.set_nodelay(true).expect("nodelay");
    stream.write_all(&masked(TEXT, false, first)).expect("write");
    std::thread::sleep(Duration::from_millis(20));
    stream.write_all(&masked(PING, true, b"mid")).expect("write");
    stream.write_all(&masked(CONTINUATION, false, second)).expect("write");
    std::thread::sleep(Duration::from_millis(20));
    // The last fragment and the start of the next message in one write, cut mid-frame.
    let mut tail = masked(CONTINUATION, true, third);
    let next = masked(TEXT, true, &subscribe("after-pieces"));
    tail.extend_from_slice(&next[..7]);
    stream.write_all(&tail).expect("write");
    std::thread::sleep(Duration::from_millis(20));
    stream.write_all(&next[7..]).expect("write");
    // The ping is answered (tungstenite reads the pong) and both messages decode.
    assert_subscribed(&mut client, "pieces");
    assert_subscribed(&mut client, "after-pieces");
}

/// Reads one unmasked server frame's payload (text frames under 64 KiB).
fn read_server_frame(stream: &mut TcpStream) -> Value {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).expect("frame head");
    assert_eq!(head[0], 0x81, "a final text frame");
    let len = match head[1] {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).expect("length");
            u16::from_be_bytes(ext) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).expect("payload");
    serde_json::from_slice(&payload).expect("json")
}

#[test]
fn a_frame_that_starts_in_the_upgrade_packet_is_read_whole() {
    let server = Server::start("", 1);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    let frame = masked(TEXT, true, &subscribe("early"));
    let mut first = b"GET /app/app-key?protocol=7 HTTP/1.1\r\nHost: localhost\r\n\
        Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        .to_vec();
    first.extend_from_slice(&frame[..9]);
    stream.write_all(&first).expect("write");
    std::thread::sleep(Duration::from_millis(30));
    stream.write_all(&frame[9..]).expect("write");
    // The 101 answer, byte by byte up to the blank line.
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).expect("response");
        response.push(byte[0]);
    }
    assert!(response.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&response));
    assert_eq!(read_server_frame(&mut stream)["event"], "pusher:connection_established");
    let reply = read_server_frame(&mut stream);
    assert_eq!(reply["event"], "pusher_internal:subscription_succeeded", "{reply}");
    assert_eq!(reply["channel"], "early");
}

fn padded_ping(pad: usize) -> Vec<u8> {
    format!(r#"{{"event":"pusher:ping","data":{{"pad":"{}"}}}}"#, "x".repeat(pad)).into_bytes()
}

#[test]
fn a_message_larger_than_a_read_is_reassembled_and_one_over_the_limit_closes_1009() {
    let server = Server::start("max_message_bytes = 300000\n", 1);
    let mut client = server.client();
    // 200 KB: several reads of the shard's 64 KiB buffer, in two fragments.
    let message = padded_ping(200_000);
    let (first, rest) = message.split_at(90_000);
    let stream = raw(&mut client);
    stream.write_all(&masked(TEXT, false, first)).expect("write");
    stream.write_all(&masked(CONTINUATION, true, rest)).expect("write");
    assert_eq!(client.recv()["event"], "pusher:pong");
    // Over the limit, in fragments that are each under it: closed with 1009, as RFC 6455 says.
    let big = padded_ping(350_000);
    let (first, rest) = big.split_at(200_000);
    let stream = raw(&mut client);
    stream.write_all(&masked(TEXT, false, first)).expect("write");
    // The server may close before reading it all; a failed write is fine.
    let _ = stream.write_all(&masked(CONTINUATION, true, rest));
    assert_eq!(client.close_code(), Some(1009));
    // Other clients are untouched.
    let mut other = server.client();
    other.sync();
}
