//! The REST side of the client port under hostile or careless HTTP clients (issue 8): bodies
//! dribbled a byte at a time, slow heads on keep-alive connections, replies that end the
//! connection, `Expect: 100-continue`, and the first-request head rules.

mod common;

use common::{
    now,
    raw::{connect, eventually, read_head, read_reply, request, rss_kib, upgrade_request, Launch},
    sign_with, Server, APP_ID,
};
use std::{
    io::{self, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

/// An unsigned publish head that announces `len` bytes of body.
fn publish_head(len: usize, extra: &str) -> Vec<u8> {
    format!(
        "POST /apps/{APP_ID}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// A complete, signed `GET /apps/app-id/channels`.
fn signed_channels_request() -> Vec<u8> {
    let path = format!("/apps/{APP_ID}/channels");
    let query = sign_with("GET", &path, "", &[], now());
    format!("GET {path}?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes()
}

/// What a non-blocking look at a socket finds.
#[derive(Debug, PartialEq, Eq)]
enum Peek {
    /// Nothing to read yet; the connection is open.
    Quiet,
    /// Bytes are waiting (a reply).
    Data,
    /// EOF or reset: the server has ended the connection.
    Closed,
}

fn peek(stream: &TcpStream) -> Peek {
    let _ = stream.set_nonblocking(true);
    let mut byte = [0u8; 1];
    let got = match stream.peek(&mut byte) {
        Ok(0) => Peek::Closed,
        Ok(_) => Peek::Data,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Peek::Quiet,
        Err(_) => Peek::Closed,
    };
    let _ = stream.set_nonblocking(false);
    got
}

// ---------------------------------------------------------------- defect 3: dribbled bodies

/// Defect 3: unsigned publishes whose bodies arrive one byte per segment. The memory a request
/// holds must follow its bytes, not its segments: today each 1-byte segment pins about 4 KB, so
/// 16 such requests grow the server by hundreds of MB in a few seconds.
#[test]
fn a_body_dribbled_one_byte_per_segment_keeps_memory_bounded() {
    let server = Server::start("", 1);
    let pid = server.child.id();
    let mut streams: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut stream = connect(server.port);
            stream.write_all(&publish_head(160_000, "")).expect("head");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib(pid);
    let mut peak = before;
    let mut sent = 0usize;
    let started = Instant::now();
    // About 6 s of one byte per connection per millisecond (bounded by rounds too).
    for round in 0..6_000 {
        if started.elapsed() > Duration::from_secs(6) || streams.is_empty() {
            break;
        }
        // A write that fails means the server ended that request (a deadline): fine.
        streams.retain_mut(|s| s.write_all(b" ").is_ok());
        sent += streams.len();
        std::thread::sleep(Duration::from_millis(1));
        if round % 100 == 0 {
            peak = peak.max(rss_kib(pid));
        }
    }
    peak = peak.max(rss_kib(pid));
    let grown_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "{sent} body bytes sent one per segment grew the server's RSS by {grown_mib} MiB \
         ({before} KiB -> {peak} KiB); expected memory bounded by the bytes"
    );
}

/// Defect 3: the whole body must arrive within `rest_body_timeout_ms`, however steadily it
/// trickles (each byte resets the idle watchdog today). The server answers 408 with
/// `Connection: close`, or hangs up.
#[test]
fn a_body_must_arrive_within_rest_body_timeout_ms() {
    let (server, _log) = Launch::new("rest_body_timeout_ms = 1000\n").start();
    let mut stream = connect(server.port);
    stream.write_all(&publish_head(1000, "")).expect("head");
    let mut outcome = Peek::Quiet;
    // One byte every 200 ms for up to 10 s.
    for _ in 0..50 {
        if stream.write_all(b" ").is_err() {
            outcome = Peek::Closed;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        outcome = peek(&stream);
        if outcome != Peek::Quiet {
            break;
        }
    }
    assert_ne!(outcome, Peek::Quiet, "a body trickling in for 10 s (limit 1 s) is still read");
    if outcome == Peek::Data {
        let reply = read_head(&mut stream).expect("reply");
        assert_eq!(reply.status, 408, "{reply:?}");
        assert!(reply.closes(), "the 408 must carry Connection: close: {reply:?}");
    }
}

/// Defect 3: at most `max_concurrent_rest_requests` REST requests are in progress at once
/// (this test runs one shard); one more gets 503 until one of them ends.
#[test]
fn rest_requests_in_progress_are_capped_by_max_concurrent_rest_requests() {
    let config = "max_concurrent_rest_requests = 4\nrest_body_timeout_ms = 30000\n";
    let (server, _log) = Launch::new(config).start();
    // Four requests whose bodies have started but not finished.
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut stream = connect(server.port);
            stream.write_all(&publish_head(100, "")).expect("head");
            stream.write_all(b"{\"name\":").expect("part of the body");
            stream
        })
        .collect();
    let mut last = 0;
    let refused = eventually(20, Duration::from_millis(200), || {
        last = request(server.port, &signed_channels_request()).map_or(0, |r| r.status);
        last == 503
    });
    assert!(refused, "a fifth request with four in progress got {last}, expected 503");
    // Finishing one frees its place.
    let mut first = held.remove(0);
    first.write_all(&[b' '; 92]).expect("rest of the body");
    let answered = read_reply(&mut first).expect("reply to the finished request");
    assert_eq!(answered.status, 401, "unsigned: {answered:?}");
    drop(first);
    let admitted = eventually(20, Duration::from_millis(200), || {
        last = request(server.port, &signed_channels_request()).map_or(0, |r| r.status);
        last == 200
    });
    assert!(admitted, "with three in progress a request got {last}, expected 200");
}

// ---------------------------------------------------------------- defect 4: keep-alive heads

/// Defect 4: the second request's head on a keep-alive connection has the same deadline as the
/// first one's. Two connections send a head at one byte per 0.5 s: one as its first request
/// (cut today after 10 s), one after a good request (never cut today).
#[test]
fn a_slow_head_after_a_good_request_is_cut_like_a_first_one() {
    let server = Server::start("http_idle_timeout_secs = 2\n", 1);
    let mut first = connect(server.port);
    let mut second = connect(server.port);
    second.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").expect("good request");
    assert_eq!(read_reply(&mut second).expect("reply").status, 200);
    let head = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: {}", "a".repeat(200));
    let (mut first_open, mut second_open) = (true, true);
    let started = Instant::now();
    let mut first_cut = None;
    // Up to 25 s, one byte per 0.5 s to each connection still open.
    for byte in head.bytes().take(50) {
        for (stream, open) in [(&mut first, &mut first_open), (&mut second, &mut second_open)] {
            if *open && (stream.write_all(&[byte]).is_err() || peek(stream) == Peek::Closed) {
                *open = false;
            }
        }
        if !first_open && first_cut.is_none() {
            first_cut = Some(started.elapsed().as_secs());
        }
        if !first_open && !second_open {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(!first_open, "control: a first request's head trickling for 25 s was not cut");
    assert!(
        !second_open,
        "a second request's head trickling in for 25 s is still being read (the first request's \
         was cut after about {first_cut:?} s)"
    );
}

/// Defect 4: the second request's head has the first one's byte limit (8 KiB).
#[test]
fn a_second_request_head_has_the_first_requests_size_limit() {
    let server = Server::start("", 1);
    let big = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(9000));
    let first = request(server.port, big.as_bytes()).expect("reply to a big first head");
    assert!(matches!(first.status, 400 | 431), "control, first request: {first:?}");
    let mut stream = connect(server.port);
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").expect("good request");
    assert_eq!(read_reply(&mut stream).expect("reply").status, 200);
    stream.write_all(big.as_bytes()).expect("big second head");
    let second = read_reply(&mut stream).expect("reply to a big second head");
    assert!(
        matches!(second.status, 400 | 431),
        "a 9 KB head as the second request got {} (the first request's limit is 8 KiB)",
        second.status
    );
    assert!(second.closes(), "the refusal ends the connection: {second:?}");
}

// ---------------------------------------------------------------- defect 5: Connection: close

/// Defect 5: a 413 for an oversized body ends the connection, and says so.
#[test]
fn a_413_for_an_oversized_body_carries_connection_close() {
    let server = Server::start("", 1);
    let mut stream = connect(server.port);
    stream.write_all(&publish_head(1_000_000, "")).expect("head");
    // More than the limit (167,936 bytes by default), less than declared.
    let _ = stream.write_all(&vec![b' '; 200_000]);
    let reply = read_reply(&mut stream).expect("a reply before the connection ends");
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(reply.closes(), "413 without Connection: close: {:?}", reply.headers);
}

/// Defect 5: a 400 for a malformed chunked body ends the connection, and says so.
#[test]
fn a_400_for_a_bad_chunk_size_carries_connection_close() {
    let server = Server::start("", 1);
    let mut stream = connect(server.port);
    let head = format!(
        "POST /apps/{APP_ID}/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("request");
    let reply = read_reply(&mut stream).expect("a reply before the connection ends");
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(reply.closes(), "400 without Connection: close: {:?}", reply.headers);
}

/// Defect 5: `Expect: 100-continue` with a declared body over the limit gets the 413 at once,
/// not a 100 inviting the client to send a megabyte that will be refused.
#[test]
fn expect_100_continue_with_an_oversized_content_length_gets_413_not_100() {
    let server = Server::start("", 1);
    let mut stream = connect(server.port);
    stream.write_all(&publish_head(1_048_576, "Expect: 100-continue\r\n")).expect("head");
    let reply = read_head(&mut stream).expect("an answer to the head");
    assert_eq!(reply.status, 413, "answered {} to a 1 MB Expect: 100-continue", reply.status);
    assert!(reply.closes(), "413 without Connection: close: {:?}", reply.headers);
}

// ---------------------------------------------------------------- lesser items

/// Lesser item: `HEAD /health` answers like `GET /health`, without a body.
#[test]
fn head_health_answers_like_get() {
    let server = Server::start("", 1);
    let mut stream = connect(server.port);
    stream.write_all(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let reply = read_head(&mut stream).expect("reply");
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// Lesser item: refusing an unsupported WebSocket version names the one we speak (RFC 6455
/// section 4.4).
#[test]
fn an_unsupported_websocket_version_gets_400_naming_version_13() {
    let server = Server::start("", 1);
    let upgrade = String::from_utf8(upgrade_request("")).expect("ascii");
    let old = upgrade.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    let reply = request(server.port, old.as_bytes()).expect("reply");
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.header("sec-websocket-version"), Some("13"), "{:?}", reply.headers);
}

/// Lesser item: upgrades through proxies carry many headers; 40 extra small ones (about
/// 1.5 KB) must not be refused, on an upgrade or a REST call.
#[test]
fn requests_with_forty_extra_headers_are_served() {
    let server = Server::start("", 1);
    let extra: String = (0..40).map(|i| format!("X-Proxy-Hop-{i}: 10.0.0.{i}\r\n")).collect();
    let reply = request(server.port, &upgrade_request(&extra)).expect("reply");
    assert_eq!(reply.status, 101, "upgrade with 46 headers: {reply:?}");
    let rest = format!("GET /health HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    let reply = request(server.port, rest.as_bytes()).expect("reply");
    assert_eq!(reply.status, 200, "GET /health with 41 headers: {reply:?}");
}

/// Lesser item: a head refused for its number of headers says so, rather than claiming it is
/// larger than 8192 bytes. 1,600 headers of 5 bytes stay under 8 KiB.
#[test]
fn too_many_headers_are_refused_for_that_reason() {
    let server = Server::start("", 1);
    let extra = "a:1\r\n".repeat(1600);
    let head = format!("GET /health HTTP/1.1\r\n{extra}\r\n");
    assert!(head.len() < 8192);
    let reply = request(server.port, head.as_bytes()).expect("reply");
    assert!(matches!(reply.status, 400 | 431), "{reply:?}");
    let text = reply.text().to_lowercase();
    assert!(
        text.contains("too many headers") && !text.contains("larger than"),
        "refused with the wrong reason: {:?}",
        reply.text()
    );
}
