//! Limits on what one client or one app may make the server hold (issue 8, defect 9):
//! subscriptions per connection, channels per app, and channel listings that do not stall a
//! shard however many channels there are.

mod common;

use common::{
    clients_on_both_shards, now,
    raw::{connect, read_reply, Launch},
    sign_with, Client, APP_ID,
};
use serde_json::{json, Value};
use std::{
    io::Write,
    net::TcpStream,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tungstenite::Message;

/// Sends a subscribe and returns the reply: `Ok(())` on success, `Err(message)` on a
/// `pusher:error`.
fn try_subscribe(client: &mut Client, channel: &str) -> Result<(), String> {
    client.send(json!({"event": "pusher:subscribe", "data": {"channel": channel}}));
    let reply = client.recv();
    match reply["event"].as_str() {
        Some("pusher_internal:subscription_succeeded") if reply["channel"] == channel => Ok(()),
        Some("pusher:error") => Err(reply["data"]["message"].as_str().unwrap_or("").to_string()),
        _ => panic!("unexpected reply to subscribing {channel}: {reply}"),
    }
}

/// Subscribes to `count` channels named `{prefix}{i}`, 500 requests at a time.
fn subscribe_many(client: &mut Client, prefix: &str, count: usize) {
    for start in (0..count).step_by(500) {
        let end = (start + 500).min(count);
        for i in start..end {
            let frame =
                json!({"event": "pusher:subscribe", "data": {"channel": format!("{prefix}{i}")}});
            client.ws.write(Message::text(frame.to_string())).expect("queue subscribe");
        }
        client.ws.flush().expect("flush");
        for _ in start..end {
            let reply = client.recv();
            assert_eq!(reply["event"], "pusher_internal:subscription_succeeded", "{reply}");
        }
    }
}

/// Defect 9: a connection may hold `max_subscriptions_per_connection` subscriptions; one more
/// gets a `pusher:error` naming the limit, the connection carries on, and leaving a channel
/// makes room.
#[test]
fn subscriptions_per_connection_are_capped_by_max_subscriptions_per_connection() {
    let (server, _log) = Launch::new("max_subscriptions_per_connection = 5\n").start();
    let mut client = server.client();
    for i in 0..5 {
        client.subscribe(&format!("room-{i}"));
    }
    let refused = try_subscribe(&mut client, "room-5");
    let message =
        refused.expect_err("a sixth subscription with max_subscriptions_per_connection = 5");
    let lower = message.to_lowercase();
    assert!(
        lower.contains("subscriptions") && message.contains('5'),
        "the error should say the connection has its 5 subscriptions: {message:?}"
    );
    // Not subscribed: a publish on room-5 does not arrive, one on room-0 does.
    server.trigger("room-5", "e", "not-for-you");
    server.trigger("room-0", "e", "control");
    let got = client.recv();
    assert_eq!((got["channel"].as_str(), got["data"].as_str()), (Some("room-0"), Some("control")));
    client.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "room-0"}}));
    client.subscribe("room-5");
}

/// Defect 9: an app may have `max_channels_per_app` channels with subscribers, over all
/// shards; a subscription that would make one more gets a `pusher:error` naming the limit,
/// while existing channels stay open to anyone, and a vacated channel makes room.
#[test]
fn channels_per_app_are_capped_by_max_channels_per_app() {
    let (server, _log) = Launch::new("max_channels_per_app = 3\n").shards(2).start();
    let (mut zero, mut one) = clients_on_both_shards(&server, 1);
    let (a, b) = (&mut zero[0], &mut one[0]);
    a.subscribe("ch-a");
    a.subscribe("ch-b");
    b.subscribe("ch-c");
    // A round trip through every shard, so each knows of the three channels.
    let (status, listed) = server.get_signed("channels", &[]);
    assert_eq!(status, 200);
    assert_eq!(listed["channels"].as_object().map(|c| c.len()), Some(3), "{listed}");
    for (client, shard) in [(&mut *b, 1), (&mut *a, 0)] {
        let message = try_subscribe(client, &format!("ch-new-{shard}"))
            .expect_err("a fourth channel with max_channels_per_app = 3");
        assert!(
            message.to_lowercase().contains("channels") && message.contains('3'),
            "the error should say the app has its 3 channels: {message:?}"
        );
    }
    // Existing channels are open to more subscribers, from either shard.
    a.subscribe("ch-c");
    b.subscribe("ch-a");
    // ch-b had one subscriber: when it leaves, a new channel fits.
    a.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "ch-b"}}));
    let mut last = String::new();
    let fits = (0..20).any(|_| match try_subscribe(b, "ch-d") {
        Ok(()) => true,
        Err(message) => {
            last = message;
            std::thread::sleep(Duration::from_millis(200));
            false
        }
    });
    assert!(fits, "after ch-b was vacated, a new channel is still refused: {last}");
}

/// Defect 9: listing every channel of an app with 200,000 channels must not stall the shard
/// that serves it: the listing is produced in slices (or streamed), letting the shard's other
/// connections run between them, and stays complete (the Pusher API has no pagination).
/// Measured, without a fixed duration, against the listing itself: a client on the same shard
/// pings in a loop, and the longest stretch without a pong must be under half of the time from
/// the listing's request to its last byte. Today the shard answers nothing from the request to
/// the first byte of the reply, 90% or more of that time.
#[test]
fn a_large_channel_listing_does_not_stall_the_shard() {
    let config = "max_subscriptions_per_connection = 50000\nmax_channels_per_app = 300000\n";
    let (server, _log) = Launch::new(config).start();
    let mut makers: Vec<Client> = (0..4).map(|_| server.client()).collect();
    for (i, maker) in makers.iter_mut().enumerate() {
        subscribe_many(maker, &format!("bulk-{i}-"), 50_000);
    }
    let mut probe = server.client();
    probe.sync();
    let done = Arc::new(AtomicBool::new(false));
    let lister = {
        let (done, port) = (done.clone(), server.port);
        std::thread::spawn(move || {
            // One keep-alive connection, so each listing starts without an accept.
            let mut stream = connect(port);
            stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
            stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
            read_reply(&mut stream).expect("health");
            let listings: Vec<Listing> = (0..3).map(|_| list_channels(&mut stream)).collect();
            done.store(true, Ordering::SeqCst);
            listings
        })
    };
    let mut pongs = Vec::new();
    while !done.load(Ordering::SeqCst) && pongs.len() < 1_000_000 {
        probe.sync();
        pongs.push(Instant::now());
    }
    let listings = lister.join().expect("lister thread");
    let sizes: Vec<Option<usize>> = listings.iter().map(|l| l.channels).collect();
    assert_eq!(sizes, vec![Some(200_000); 3], "each listing has every channel");
    let stalls: Vec<f64> = listings.iter().map(|l| l.longest_silence(&pongs)).collect();
    let stalled = stalls.iter().filter(|s| **s >= 0.5).count();
    assert!(
        stalled <= 1,
        "while a listing of 200,000 channels was served, a client on the same shard went \
         without an answer for this share of each listing's time: {stalls:.2?} (expected under \
         0.5: the shard serves its other connections between slices of the listing)"
    );
}

/// One channel listing: when it was asked, when its reply had arrived, how many channels.
struct Listing {
    sent: Instant,
    read: Instant,
    channels: Option<usize>,
}

impl Listing {
    /// The longest stretch of the listing's time with no pong, as a share of that time.
    fn longest_silence(&self, pongs: &[Instant]) -> f64 {
        let mut marks = vec![self.sent];
        marks.extend(pongs.iter().copied().filter(|t| self.sent < *t && *t < self.read));
        marks.push(self.read);
        let longest = marks.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
        longest.as_secs_f64() / (self.read - self.sent).as_secs_f64().max(1e-9)
    }
}

/// `GET /apps/app-id/channels` on a kept-alive connection.
fn list_channels(stream: &mut TcpStream) -> Listing {
    let path = format!("/apps/{APP_ID}/channels");
    let query = sign_with("GET", &path, "", &[], now());
    let request = format!("GET {path}?{query} HTTP/1.1\r\nHost: x\r\n\r\n");
    let sent = Instant::now();
    stream.write_all(request.as_bytes()).expect("request");
    let reply = read_reply(stream).expect("listing");
    let read = Instant::now();
    let body: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    Listing { sent, read, channels: body["channels"].as_object().map(|c| c.len()) }
}
