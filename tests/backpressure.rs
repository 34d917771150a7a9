//! A client that reads slower than we publish is closed with 4100 and counted, while the other
//! clients keep receiving everything.

mod common;

use common::{Client, Server, KEY};
use serde_json::json;
use socket2::{Domain, Socket, Type};
use std::net::SocketAddr;

const EVENTS: usize = 400;

fn small_buffer_client(server: &Server) -> Client {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().expect("addr");
    socket.connect(&addr.into()).expect("connect");
    Client::over(server, &format!("/app/{KEY}?protocol=7"), socket.into()).expect("handshake")
}

#[test]
fn slow_consumer_is_closed_with_4100_and_others_keep_receiving() {
    let server = Server::start("outbound_queue_bytes = 65536\nsocket_send_buffer = 4096\n", 2);
    let mut slow = small_buffer_client(&server);
    slow.subscribe("feed");
    let mut fast = server.client();
    fast.subscribe("feed");
    // The publisher waits for the fast client to have each batch before sending the next, so
    // the fast client's queue never holds more than a batch whatever the kernel's ACK timing
    // (with 4 KiB send buffers a burst waits for the reader's delayed ACK), while the slow
    // client's keeps growing.
    let (progress, batches_read) = std::sync::mpsc::channel::<usize>();
    let reader = std::thread::spawn(move || {
        let mut received = Vec::new();
        for i in 0..EVENTS {
            received.push(fast.recv()["data"].as_str().map(str::to_string));
            if i % 10 == 9 {
                let _ = progress.send(i / 10);
            }
        }
        received
    });
    let payload = "x".repeat(1000);
    for batch in 0..EVENTS / 10 {
        let events: Vec<_> = (0..10)
            .map(|i| json!({"name": "tick", "channel": "feed", "data": format!("{}:{payload}", batch * 10 + i)}))
            .collect();
        let (status, body) = server.post("batch_events", &json!({ "batch": events }));
        assert_eq!(status, 200, "{body}");
        let read = batches_read.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(read, Ok(batch), "the fast client did not get batch {batch}");
    }
    let received = reader.join().expect("fast reader");
    let expected: Vec<_> = (0..EVENTS).map(|i| Some(format!("{i}:{payload}"))).collect();
    assert_eq!(received, expected, "the fast client lost or reordered events");
    // The slow client finds, after what reached its socket, the 4100 close.
    assert_eq!(slow.close_code(), Some(4100));
    assert_eq!(server.metric("slow_consumers_closed_total"), 1);
}

#[test]
fn queued_frames_leave_in_fewer_writes_than_frames() {
    let server = Server::start("", 1);
    let mut client = server.client();
    client.subscribe("burst");
    let events: Vec<_> =
        (0..10).map(|i| json!({"name": "e", "channel": "burst", "data": i.to_string()})).collect();
    let before_writes = server.metric("writes_total");
    let before_frames = server.metric("frames_out_total");
    assert_eq!(server.post("batch_events", &json!({ "batch": events })).0, 200);
    for i in 0..10 {
        assert_eq!(client.recv()["data"], i.to_string());
    }
    let frames = server.metric("frames_out_total") - before_frames;
    let writes = server.metric("writes_total") - before_writes;
    assert_eq!(frames, 10);
    assert!(writes < frames, "{frames} frames took {writes} writes");
}
