//! Limits on what one client or one app may make the server hold (issue 8, defect 9):
//! subscriptions per connection, channels per app, and channel listings that do not stall a
//! shard however many channels there are.

mod common;

use common::{
    clients_on_both_shards, now,
    raw::{connect, read_head, read_reply, Launch},
    sign_with, Client, APP_ID,
};
use serde_json::{json, Value};
use std::{
    io::{Read, Write},
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
/// that serves it: the listing is produced in slices, the shard serving its other connections
/// between them, and stays complete (the Pusher API has no pagination).
///
/// Checked by order, not by time: a client on the same shard pings in a loop while the listing
/// is asked for; pongs must come back between the moment the request was written and the
/// moment its answer begins. A shard that builds the listing in one go answers next to nothing
/// in between (measured: 1 or 2, the pongs already on their way when the request arrived); one
/// that slices it answers between slices (measured: about 900). Three listings, at least two
/// must show 10 or more (a test thread descheduled through a whole listing on a busy machine is
/// not the server's doing).
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
    let answered: Vec<usize> = listings.iter().map(|l| l.pongs_while_building(&pongs)).collect();
    let interleaved = answered.iter().filter(|n| **n >= 10).count();
    assert!(
        interleaved >= 2,
        "while a listing of 200,000 channels was built, a client on the same shard got this many \
         pongs per listing: {answered:?} (expected 10 or more in two listings of three: the \
         shard serves its other connections between slices of the listing)"
    );
}

/// One channel listing: when it was asked, when its answer began, how many channels.
struct Listing {
    sent: Instant,
    answered: Instant,
    channels: Option<usize>,
}

impl Listing {
    /// Pongs that came back after the request was written and before its answer began.
    fn pongs_while_building(&self, pongs: &[Instant]) -> usize {
        pongs.iter().filter(|t| self.sent < **t && **t < self.answered).count()
    }
}

/// `GET /apps/app-id/channels` on a kept-alive connection.
fn list_channels(stream: &mut TcpStream) -> Listing {
    let path = format!("/apps/{APP_ID}/channels");
    let query = sign_with("GET", &path, "", &[], now());
    let request = format!("GET {path}?{query} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("request");
    let sent = Instant::now();
    let head = read_head(stream).expect("listing head");
    let answered = Instant::now();
    let len: usize = head.header("content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).expect("listing body");
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    Listing { sent, answered, channels: body["channels"].as_object().map(|c| c.len()) }
}
