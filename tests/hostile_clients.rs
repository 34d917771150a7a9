//! WebSocket clients that misbehave on purpose (issue 8): a subscriber that stops reading, a
//! slow consumer that never takes its 4100 close, a message or a frame left half-sent, invalid
//! UTF-8 and invalid close codes. Each test asserts an outcome the fix must produce.

mod common;

use common::{
    raw::{cpu_demand, eventually, Launch},
    Client, Opened, Server, KEY,
};
use pushgate::ws::frame::client_frame;
use serde_json::json;
use socket2::{Domain, Socket, Type};
use std::{
    io::Write,
    net::{SocketAddr, TcpStream},
    time::Duration,
};
use tungstenite::Message;

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const FIN: u8 = 0x80;

/// A subscriber with a 4 KiB receive buffer that we never read from after subscribing.
fn stuck_subscriber(server: &Server, channel: &str) -> Client {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().expect("addr");
    socket.connect(&addr.into()).expect("connect");
    let mut client =
        Client::over(server, &format!("/app/{KEY}?protocol=7"), socket.into()).expect("handshake");
    client.subscribe(channel);
    client
}

/// Publishes `events` events of 10,000 bytes each to `channel`, ten per batch.
fn publish_10k_events(server: &Server, channel: &str, events: usize) {
    let payload = "x".repeat(10_000);
    for _ in 0..events / 10 {
        let batch: Vec<_> =
            (0..10).map(|_| json!({"name": "big", "channel": channel, "data": payload})).collect();
        let (status, body) = server.post("batch_events", &json!({ "batch": batch }));
        assert_eq!(status, 200, "{body}");
    }
}

/// Publishes 10,000-byte events one request at a time until a subscriber is closed with 4100
/// (at most 300). One at a time, the connection's task fills the kernel's socket buffers first
/// and the queue passes its limit only once the socket is full: the close frame then waits
/// behind bytes the client never reads.
fn publish_until_4100(server: &Server, channel: &str) {
    let payload = "x".repeat(10_000);
    for i in 0..300 {
        server.trigger(channel, "big", &payload);
        if i % 5 == 4 && server.metric("slow_consumers_closed_total") == 1 {
            return;
        }
    }
    panic!("300 events of 10 KB did not make the slow consumer pass outbound_queue_bytes");
}

fn raw(client: &mut Client) -> &mut TcpStream {
    match client.ws.get_mut() {
        tungstenite::stream::MaybeTlsStream::Plain(s) => s,
        _ => panic!("plain TCP expected"),
    }
}

/// Reads what the server sends, at most `rounds` reads of 500 ms, calling `between` before
/// each: `Ok(code)` once the server has closed (None: without a close frame), `Err(())` if it
/// never did.
fn wait_for_close(
    client: &mut Client,
    rounds: usize,
    mut between: impl FnMut(&mut Client),
) -> Result<Option<u16>, ()> {
    client.set_timeout(Duration::from_millis(500));
    for _ in 0..rounds {
        between(client);
        match client.ws.read() {
            Ok(Message::Close(frame)) => return Ok(frame.map(|f| u16::from(f.code))),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return Ok(None),
        }
    }
    Err(())
}

// ---------------------------------------------------------------- defect 1: the busy shard

/// Defect 1: a subscriber whose socket is full (it stopped reading) while pushgate still has
/// frames queued for it, under `outbound_queue_bytes`. Its task must park until the socket is
/// writable; today it wakes itself after every budget round and the shard spins at 100%.
#[test]
fn a_subscriber_that_stops_reading_leaves_its_shard_idle() {
    let (server, _log) = Launch::new("socket_send_buffer = 4096\n").start();
    let _stuck = stuck_subscriber(&server, "feed");
    // 400 KB: a few KB fit in the two socket buffers, the rest waits in pushgate's queue,
    // well under the default 1 MiB limit, so the connection is not closed.
    publish_10k_events(&server, "feed", 40);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.metric("slow_consumers_closed_total"), 0, "the scenario needs it open");
    let pid = server.child.id();
    let demand = cpu_demand(pid, Duration::from_secs(3));
    assert!(
        demand < 0.5,
        "with no traffic, the server wanted {:.0}% of a core over 3 s while one subscriber's \
         socket was full (expected near 0%: the task must park until the socket is writable)",
        demand * 100.0
    );
    // The shard still answers.
    assert_eq!(server.get("/health").0, 200);
}

// ---------------------------------------------------------------- defect 2: 4100 never dropped

/// Defect 2: a consumer closed with 4100 that never reads cannot take its close frame; the
/// close deadline must still drop it (abort the socket), so the `connections` gauge falls.
#[test]
fn a_slow_consumer_that_never_reads_is_dropped_after_its_4100_close() {
    let config = "outbound_queue_bytes = 65536\nsocket_send_buffer = 4096\n";
    let (server, _log) = Launch::new(config).start();
    let _stuck = stuck_subscriber(&server, "feed");
    publish_until_4100(&server, "feed");
    // The sweeper gives a closing connection 3 s; allow 15 s before calling it kept.
    let dropped = eventually(60, Duration::from_millis(250), || server.metric("connections") == 0);
    assert!(
        dropped,
        "15 s after its 4100 close, the connection of a client that never reads is still open \
         (pushgate_connections = {})",
        server.metric("connections")
    );
}

/// Defect 2, as users see it: with `max_connections = 1`, a slot held by a slow consumer
/// closed with 4100 must come free, so a new client is admitted rather than refused with 4004.
#[test]
fn a_slow_consumer_closed_with_4100_gives_its_connection_slot_back() {
    let config = "outbound_queue_bytes = 65536\nsocket_send_buffer = 4096\n\n\
        [[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\nmax_connections = 1\n";
    let (server, _log) = Launch::new(config).start();
    let _stuck = stuck_subscriber(&server, "feed");
    publish_until_4100(&server, "feed");
    let mut last = String::new();
    let admitted = eventually(30, Duration::from_millis(500), || match server.open(None) {
        Opened::Connected(_) => true,
        Opened::Refused(error, code) => {
            last = format!("{error} then close {code:?}");
            false
        }
    });
    assert!(admitted, "15 s after the 4100 close, new clients are still refused: {last}");
}

// ---------------------------------------------------------------- lesser: half-finished input

/// Lesser item: a fragmented message whose last fragment never comes is closed after
/// `message_assembly_timeout_secs`, with 1008, even if the client keeps pinging.
#[test]
fn a_fragmented_message_never_finished_is_closed_after_message_assembly_timeout_secs() {
    let (server, _log) = Launch::new("message_assembly_timeout_secs = 2\n").start();
    let mut client = server.client();
    let first = format!(r#"{{"event":"pusher:ping","data":{{"pad":"{}"#, "x".repeat(60_000));
    raw(&mut client).write_all(&client_frame(TEXT, first.as_bytes())).expect("first fragment");
    // Pings keep the connection active, so only the unfinished message can end it. One every
    // 500 ms: each is answered at once, so a round lasts as long as the pause before it.
    let closed = wait_for_close(&mut client, 30, |c| {
        std::thread::sleep(Duration::from_millis(500));
        let _ = raw(c).write_all(&client_frame(FIN | PING, b"alive"));
    });
    assert_eq!(
        closed,
        Ok(Some(1008)),
        "a message left unfinished for 15 s (limit 2 s) should be closed with 1008"
    );
}

/// Lesser item: a frame whose payload never fully arrives is closed after
/// `message_assembly_timeout_secs`, with 1008.
#[test]
fn a_frame_never_finished_is_closed_after_message_assembly_timeout_secs() {
    let (server, _log) = Launch::new("message_assembly_timeout_secs = 2\n").start();
    let mut client = server.client();
    let frame = client_frame(FIN | TEXT, &vec![b' '; 60_000]);
    raw(&mut client).write_all(&frame[..200]).expect("the start of a frame");
    let closed = wait_for_close(&mut client, 30, |_| {});
    assert_eq!(
        closed,
        Ok(Some(1008)),
        "a frame left unfinished for 15 s (limit 2 s) should be closed with 1008"
    );
}

// ---------------------------------------------------------------- lesser: close codes

/// Lesser item: invalid UTF-8 in a text message is RFC 6455's 1007, not a protocol error.
#[test]
fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    let server = Server::start("", 1);
    let mut client = server.client();
    raw(&mut client).write_all(&client_frame(FIN | TEXT, b"{\"a\":\"\xff\xfe\"}")).expect("send");
    assert_eq!(client.close_code(), Some(1007));
}

/// Lesser item: a close frame with a code no endpoint may send (or a 1-byte payload) is a
/// protocol error: answered with 1002, not echoed or answered with 1000.
#[test]
fn an_invalid_close_code_is_answered_with_1002() {
    let server = Server::start("", 1);
    let payloads: [(&str, Vec<u8>); 5] = [
        ("code 999", 999u16.to_be_bytes().to_vec()),
        ("code 1005", 1005u16.to_be_bytes().to_vec()),
        ("code 1006", 1006u16.to_be_bytes().to_vec()),
        ("code 2999", 2999u16.to_be_bytes().to_vec()),
        ("a 1-byte payload", vec![3]),
    ];
    for (what, payload) in payloads {
        let mut client = server.client();
        raw(&mut client).write_all(&client_frame(FIN | CLOSE, &payload)).expect("send close");
        assert_eq!(client.close_code(), Some(1002), "close frame with {what}");
    }
    // A valid code is still answered normally.
    let mut client = server.client();
    raw(&mut client).write_all(&client_frame(FIN | CLOSE, &1000u16.to_be_bytes())).expect("send");
    assert_eq!(client.close_code(), Some(1000));
}
