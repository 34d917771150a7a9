//! Pusher webhooks and EMQX-style event hooks, end to end: the real binary, real clients, and a
//! recording HTTP receiver standing in for the backend.

mod common;
mod hook_receiver;

use common::{Client, Server, KEY, SECRET};
use hmac::{Hmac, Mac};
use hook_receiver::{accepted_events, Receiver};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
/// The vacate / member_removed delay used in these tests (Pusher's is 3 s).
const DELAY_MS: u64 = 400;

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn app_with_webhook(url: &str, extra: &str) -> String {
    format!(
        "[hooks]\nvacate_delay_ms = {DELAY_MS}\ninitial_backoff_ms = 50\nother_pause_ms = 50\nsocket_pause_ms = 300\n\n\
         [[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\n\n\
         [[apps.webhooks]]\nurl = \"{url}\"\n{extra}\n"
    )
}

fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["name"].as_str().unwrap_or("?"),
                e["channel"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn subscribe_presence(client: &mut Client, channel: &str, user: &str) {
    let data = json!({"user_id": user}).to_string();
    let auth =
        format!("{KEY}:{}", hmac_hex(SECRET, &format!("{}:{channel}:{data}", client.socket_id)));
    client.send(json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth, "channel_data": data}}));
    loop {
        let v = client.recv();
        if v["event"] == "pusher_internal:subscription_succeeded" {
            return;
        }
        assert_ne!(v["event"], "pusher:error", "{v}");
    }
}

fn subscribe_private(client: &mut Client, channel: &str) {
    let auth = format!("{KEY}:{}", hmac_hex(SECRET, &format!("{}:{channel}", client.socket_id)));
    client.send(json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}}));
    let v = client.recv();
    assert_eq!(v["event"], "pusher_internal:subscription_succeeded", "{v}");
}

#[test]
fn occupied_then_vacated_after_the_delay_signed_as_pusher_does() {
    let receiver = Receiver::start();
    let extra = "event_types = [\"channel_occupied\", \"channel_vacated\"]";
    let server = Server::start(&app_with_webhook(&receiver.url("/pusher"), extra), 2);
    let mut client = server.client();
    client.subscribe("orders");
    let got = receiver.wait_for(WAIT, |r| !accepted_events(r, "/pusher").is_empty());
    let request = &got[0];
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-pusher-key"), Some(KEY));
    let body = String::from_utf8(request.body.clone()).expect("utf8");
    assert_eq!(request.header("x-pusher-signature"), Some(hmac_hex(SECRET, &body).as_str()));
    assert!(request.json()["time_ms"].as_u64().is_some());
    assert_eq!(names(&receiver.pusher_events("/pusher")), vec!["channel_occupied:orders"]);

    client.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "orders"}}));
    let got = receiver.wait_for(WAIT, |r| accepted_events(r, "/pusher").len() >= 2);
    assert_eq!(
        names(&accepted_events(&got, "/pusher")),
        vec!["channel_occupied:orders", "channel_vacated:orders"]
    );
}

#[test]
fn a_quick_return_cancels_vacated() {
    let receiver = Receiver::start();
    let extra = "event_types = [\"channel_occupied\", \"channel_vacated\"]";
    let server = Server::start(&app_with_webhook(&receiver.url("/pusher"), extra), 2);
    let mut a = server.client();
    a.subscribe("room");
    receiver.wait_for(WAIT, |r| !accepted_events(r, "/pusher").is_empty());
    // Leave and come back on another connection well inside the delay.
    drop(a);
    let mut b = server.client();
    b.subscribe("room");
    std::thread::sleep(Duration::from_millis(DELAY_MS * 3));
    assert_eq!(
        names(&receiver.pusher_events("/pusher")),
        vec!["channel_occupied:room"],
        "no vacate, no second occupy"
    );
    // Positive control: a real departure is reported.
    b.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "room"}}));
    let got = receiver.wait_for(WAIT, |r| accepted_events(r, "/pusher").len() >= 2);
    assert_eq!(
        names(&accepted_events(&got, "/pusher")),
        vec!["channel_occupied:room", "channel_vacated:room"]
    );
}

#[test]
fn member_events_are_per_user() {
    let receiver = Receiver::start();
    let extra = "event_types = [\"member_added\", \"member_removed\"]";
    let server = Server::start(&app_with_webhook(&receiver.url("/pusher"), extra), 2);
    let mut first = server.client();
    let mut second = server.client();
    subscribe_presence(&mut first, "presence-team", "ann");
    subscribe_presence(&mut second, "presence-team", "ann");
    receiver.wait_for(WAIT, |r| !accepted_events(r, "/pusher").is_empty());
    drop(first);
    std::thread::sleep(Duration::from_millis(DELAY_MS * 3));
    let events = receiver.pusher_events("/pusher");
    assert_eq!(events.len(), 1, "one member_added for two connections, no removal yet: {events:?}");
    assert_eq!(
        (events[0]["name"].as_str(), events[0]["user_id"].as_str()),
        (Some("member_added"), Some("ann"))
    );
    drop(second);
    let got = receiver.wait_for(WAIT, |r| accepted_events(r, "/pusher").len() >= 2);
    let events = accepted_events(&got, "/pusher");
    assert_eq!(
        (events[1]["name"].as_str(), events[1]["user_id"].as_str()),
        (Some("member_removed"), Some("ann"))
    );
}

#[test]
fn client_events_are_reported_and_batched() {
    let receiver = Receiver::start();
    let extra = "event_types = [\"client_event\"]\nbatch_max = 10\nbatch_window_ms = 300";
    let server = Server::start(&app_with_webhook(&receiver.url("/pusher"), extra), 1);
    let mut sender = server.client();
    let mut other = server.client();
    subscribe_private(&mut sender, "private-chat");
    subscribe_private(&mut other, "private-chat");
    for i in 0..5 {
        sender.send(json!({"event": "client-typing", "channel": "private-chat", "data": {"n": i}}));
    }
    for _ in 0..5 {
        other.recv();
    }
    let got = receiver.wait_for(WAIT, |r| accepted_events(r, "/pusher").len() >= 5);
    let events = accepted_events(&got, "/pusher");
    assert_eq!(events.len(), 5);
    assert!(got.len() < 5, "5 events within the window took {} requests", got.len());
    assert_eq!(events[0]["name"], "client_event");
    assert_eq!(events[0]["event"], "client-typing");
    assert_eq!(events[0]["socket_id"], sender.socket_id.as_str());
    let order: Vec<Value> = events.iter().map(|e| e["data"].clone()).collect();
    let expected: Vec<Value> = (0..5).map(|i| Value::String(json!({"n": i}).to_string())).collect();
    assert_eq!(order, expected);
}

#[test]
fn failed_deliveries_are_retried_in_order() {
    let receiver = Receiver::start();
    receiver.script(&[500, 500, 503]);
    let extra = "event_types = [\"channel_occupied\"]";
    let server = Server::start(&app_with_webhook(&receiver.url("/pusher"), extra), 1);
    let mut client = server.client();
    for channel in ["c1", "c2", "c3"] {
        client.subscribe(channel);
    }
    let got = receiver.wait_for(WAIT, |r| accepted_events(r, "/pusher").len() >= 3);
    assert_eq!(
        names(&accepted_events(&got, "/pusher")),
        vec!["channel_occupied:c1", "channel_occupied:c2", "channel_occupied:c3"]
    );
    let failed: Vec<u16> = got.iter().map(|r| r.status).filter(|s| *s >= 300).collect();
    assert_eq!(failed, vec![500, 500, 503]);
    // The three failures were all the first event, retried before anything behind it.
    assert!(got[..4]
        .iter()
        .all(|r| names(&r.json()["events"].as_array().cloned().unwrap_or_default())
            == vec!["channel_occupied:c1"]));
}

#[test]
fn a_refused_endpoint_pauses_then_delivers() {
    // Reserve a port, close it: the first attempts are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}/pusher");
    let server = Server::start(&app_with_webhook(&url, "event_types = [\"channel_occupied\"]"), 1);
    let mut client = server.client();
    client.subscribe("late");
    std::thread::sleep(Duration::from_millis(200));
    let receiver = Receiver::on(std::net::TcpListener::bind(("127.0.0.1", port)).expect("rebind"));
    let got = receiver.wait_for(WAIT, |r| !accepted_events(r, "/pusher").is_empty());
    assert_eq!(names(&accepted_events(&got, "/pusher")), vec!["channel_occupied:late"]);
    // Counters are published once a second.
    std::thread::sleep(Duration::from_millis(1200));
    let (_, metrics) = server.get("/metrics");
    let retried = metrics
        .lines()
        .find(|l| l.starts_with("pushgate_hook_retried_total{"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
    assert!(retried.is_some_and(|n| n >= 1), "{metrics}");
}

#[test]
fn a_full_queue_drops_and_counts_without_stalling_publishing() {
    // An endpoint that is down, with a tiny queue and a long pause: events pile up and drop.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let toml = format!(
        "[[event_hooks]]\nevent = \"message.publish\"\nurl = \"http://127.0.0.1:{port}/emqx\"\n\
         queue_max = 5\nsocket_pause_ms = 60000\n"
    );
    let server = Server::start(&toml, 1);
    let mut client = server.client();
    client.subscribe("feed");
    for i in 0..50 {
        server.trigger("feed", "tick", &i.to_string());
    }
    for i in 0..50 {
        assert_eq!(
            client.recv()["data"],
            i.to_string(),
            "publishing went on while the hook was down"
        );
    }
    std::thread::sleep(Duration::from_millis(1200));
    let (_, metrics) = server.get("/metrics");
    let dropped = metrics
        .lines()
        .find(|l| l.starts_with("pushgate_hook_dropped_total{"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .expect("hook_dropped_total");
    assert!(dropped >= 40, "only {dropped} dropped: {metrics}");
}

#[test]
fn emqx_rules_match_topics_and_bodies_follow_emqx() {
    let receiver = Receiver::start();
    let toml = format!(
        "[[event_hooks]]\nevent = \"client.connected\"\nurl = \"{0}\"\n\n\
         [[event_hooks]]\nevent = \"session.subscribed\"\ntopic = \"orders\"\nurl = \"{1}\"\n\n\
         [[event_hooks]]\nevent = \"session.subscribed\"\ntopic = \"+\"\nurl = \"{2}\"\n\n\
         [[event_hooks]]\nevent = \"message.publish\"\ntopic = \"#\"\nurl = \"{3}\"\npayload_encoding = \"base64\"\n\n\
         [[event_hooks]]\nevent = \"client.disconnected\"\nurl = \"{0}\"\n",
        receiver.url("/connected"),
        receiver.url("/orders-only"),
        receiver.url("/any"),
        receiver.url("/publish"),
    );
    let server = Server::start(&toml, 1);
    let mut client = server.client();
    client.subscribe("orders");
    client.subscribe("orders2");
    server.trigger("orders", "created", "hi");
    client.recv();
    drop(client);
    // Requests to different URLs may arrive in any order: wait for what each URL expects.
    let expected = [("/connected", 2), ("/orders-only", 1), ("/any", 2), ("/publish", 1)];
    let got = receiver.wait_for(WAIT, |r| {
        expected.iter().all(|(path, n)| r.iter().filter(|r| r.path == *path).count() >= *n)
    });
    let at =
        |path: &str| got.iter().filter(|r| r.path == path).map(|r| r.json()).collect::<Vec<_>>();
    let connected = at("/connected");
    assert_eq!(connected[0]["action"], "client_connected");
    assert_eq!(connected[0]["username"], Value::Null);
    assert!(connected[0]["node"].as_str().is_some_and(|n| n.starts_with("pushgate@")));
    let topics =
        |path| at(path).iter().map(|b| b["topic"].as_str().map(str::to_string)).collect::<Vec<_>>();
    assert_eq!(
        topics("/orders-only"),
        vec![Some("orders".into())],
        "filter `orders` does not match orders2"
    );
    assert_eq!(
        topics("/any"),
        vec![Some("orders".into()), Some("orders2".into())],
        "two rules, two requests"
    );
    let publish = &at("/publish")[0];
    assert_eq!(publish["action"], "message_publish");
    assert_eq!(publish["payload"], "aGk=", "base64 of `hi`");
    assert_eq!(publish["from_client_id"], "http_api");
    // Two rules with one URL share its queue: the disconnect comes after the connect.
    let disconnected = at("/connected");
    assert_eq!(disconnected[1]["action"], "client_disconnected");
    assert_eq!(disconnected[1]["reason"], "tcp_closed");
}
