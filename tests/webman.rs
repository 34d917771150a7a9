//! webman-push-server compatibility end to end (reference section 4, feature lines F003-10 and
//! F003-20..24): webhooks in webman's format checked by a receiver that verifies `sign` as
//! webman's sample receiver does, and the `pusher_internal:unsubscription_succeeded` reply.
//! Each test is named after the feature line it checks.

mod common;
mod hook_receiver;
mod webman_receiver;

use common::{channel_auth, Client, Server, SECRET};
use hook_receiver::{Received, Receiver};
use serde_json::{json, Value};
use std::{
    net::TcpListener,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use webman_receiver::{events, names};

const WAIT: Duration = Duration::from_secs(15);
/// The vacate / member_removed delay in these tests (Pusher's and so pushgate's default is 3 s).
const DELAY_MS: u64 = 200;
const PATH: &str = "/webhook";

/// A config with one app (`app_extra` among its keys) and `webhooks` (`[[apps.webhooks]]`
/// tables), retrying fast.
fn config(app_extra: &str, webhooks: &str) -> String {
    format!(
        "[hooks]\nvacate_delay_ms = {DELAY_MS}\ninitial_backoff_ms = 50\nother_pause_ms = 50\n\
         socket_pause_ms = 300\n\n\
         [[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\n{app_extra}\n{webhooks}"
    )
}

/// A webman-format webhook to `url` with `extra` keys.
fn webman_hook(url: &str, extra: &str) -> String {
    format!("[[apps.webhooks]]\nurl = \"{url}\"\nformat = \"webman\"\n{extra}\n")
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64()
}

/// Waits for `n` accepted events at [`PATH`]. The wait counts `"name":` in the bodies
/// rather than parsing them all again on every request.
fn wait_events(receiver: &Receiver, n: usize) -> Vec<Value> {
    let count = |r: &Received| r.body.windows(7).filter(|w| w == b"\"name\":").count();
    let accepted = |r: &&Received| r.status == 200 && r.path.split('?').next() == Some(PATH);
    let got = receiver.wait_for(WAIT, |r| r.iter().filter(accepted).map(count).sum::<usize>() >= n);
    events(&got, PATH)
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

/// An `id`: a UUID, 8-4-4-4-12 hex digits.
fn is_uuid(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let groups: Vec<usize> = s.split('-').map(str::len).collect();
    groups == [8, 4, 4, 4, 12] && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

/// A time in seconds within a minute of now.
fn is_now(v: &Value) -> bool {
    let t = v.as_f64().or_else(|| v.as_str()?.parse().ok());
    t.is_some_and(|t| (t - now_secs()).abs() < 60.0)
}

/// Sends subscribes to `channels` without waiting, then reads their replies.
fn subscribe_all(client: &mut Client, channels: &[String]) {
    for channel in channels {
        client.send(json!({"event": "pusher:subscribe", "data": {"channel": channel}}));
    }
    for _ in channels {
        let reply = client.recv();
        assert_eq!(reply["event"], "pusher_internal:subscription_succeeded", "{reply}");
    }
}

fn reserved_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn query_of(request: &Received) -> &str {
    request.path.split_once('?').map_or("", |(_, q)| q)
}

#[test]
/// Feature line F003-20 (../shared/reference/seed-systems.md).
fn f003_20_channel_occupied_then_vacated_in_webmans_shape() {
    let receiver = webman_receiver::start(PATH, SECRET);
    let extra = "event_types = [\"channel_occupied\", \"channel_vacated\"]";
    let server = Server::start(&config("", &webman_hook(&receiver.url(PATH), extra)), 2);
    let mut client = server.client();
    client.subscribe("orders");
    let got = wait_events(&receiver, 1);
    assert_eq!(names(&got), ["channel_occupied"]);
    let occupied = &got[0];
    assert_eq!(keys(occupied), ["data", "name", "payload", "time"], "{occupied}");
    assert!(occupied["data"].is_string() && is_now(&occupied["time"]), "{occupied}");
    let payload = &occupied["payload"];
    assert_eq!(keys(payload), ["app_key", "channel", "id", "time_ms"]);
    assert_eq!(
        (payload["app_key"].as_str(), payload["channel"].as_str()),
        (Some("app-key"), Some("orders"))
    );
    assert!(is_uuid(&payload["id"]) && is_now(&payload["time_ms"]), "{payload}");

    client.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "orders"}}));
    let got = wait_events(&receiver, 2);
    assert_eq!(names(&got), ["channel_occupied", "channel_vacated"]);
    assert_eq!(got[1]["payload"]["channel"], "orders");
    assert_ne!(got[0]["payload"]["id"], got[1]["payload"]["id"], "an id per event");
}

#[test]
/// Feature line F003-21 (../shared/reference/seed-systems.md).
fn f003_21_requests_carry_an_id_and_a_sign_webmans_receiver_accepts() {
    // Own secret and a URL with a query of its own: the query is signed sorted by key.
    let own = webman_receiver::start("/in", "whsec");
    // No secret: the app secret signs.
    let app = webman_receiver::start(PATH, SECRET);
    // Negative control: a receiver expecting another secret refuses.
    let other = webman_receiver::start(PATH, "not-the-secret");
    let hooks = [
        webman_hook(&own.url("/in?z=1&token=a%20b"), "secret = \"whsec\""),
        webman_hook(&app.url(PATH), ""),
        webman_hook(&other.url(PATH), ""),
    ];
    let server = Server::start(&config("", &hooks.concat()), 1);
    let mut client = server.client();
    client.subscribe("news");

    let got = own.wait_for(WAIT, |r| r.iter().any(|r| r.status == 200));
    let request = &got[0];
    assert_eq!(request.status, 200, "webman's check accepts the sign");
    let (path, query) = request.path.split_once('?').expect("a query");
    assert_eq!(path, "/in");
    let id = query.strip_prefix("id=").and_then(|q| q.strip_suffix("&token=a+b&z=1"));
    assert!(id.is_some_and(|id| is_uuid(&json!(id))), "sorted query with a uuid id: {query}");
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(keys(&body), ["events", "time_ms"]);
    assert!(body["time_ms"].is_f64() && is_now(&body["time_ms"]), "time_ms in seconds: {body}");
    let event = &body["events"][0];
    assert_eq!(keys(event), ["data", "name", "time"]);
    assert_eq!(event["name"], "channel_occupied");

    let got = app.wait_for(WAIT, |r| r.iter().any(|r| r.status == 200));
    assert_eq!(got[0].status, 200, "signed with the app secret");
    let got = other.wait_for(WAIT, |r| r.len() >= 2);
    assert!(got.iter().all(|r| r.status == 403), "a wrong secret fails the check");
    assert_ne!(query_of(&got[0]), query_of(&got[1]), "a new id on every attempt");
}

#[test]
/// Feature line F003-21 (../shared/reference/seed-systems.md).
fn f003_21_member_added_and_removed_carry_id_app_key_user_and_time() {
    let receiver = webman_receiver::start(PATH, SECRET);
    let extra = "event_types = [\"member_added\", \"member_removed\"]";
    let server = Server::start(&config("", &webman_hook(&receiver.url(PATH), extra)), 2);
    let mut ann = server.client();
    let data = json!({"user_id": "ann", "user_info": {"name": "Ann"}}).to_string();
    ann.join_presence("presence-team", &data);
    let got = wait_events(&receiver, 1);
    assert_eq!(names(&got), ["member_added"]);
    let added = &got[0]["payload"];
    assert_eq!(keys(added), ["app_key", "channel", "id", "time_ms", "user_id", "user_info"]);
    assert_eq!(
        (&added["app_key"], &added["channel"], &added["user_id"], &added["user_info"]),
        (&json!("app-key"), &json!("presence-team"), &json!("ann"), &json!({"name": "Ann"}))
    );
    assert!(is_uuid(&added["id"]) && is_now(&added["time_ms"]));

    drop(ann);
    let got = wait_events(&receiver, 2);
    assert_eq!(names(&got), ["member_added", "member_removed"]);
    let removed = &got[1]["payload"];
    assert_eq!(keys(removed), ["app_key", "channel", "id", "time_ms", "user_id"]);
    assert_eq!(
        (&removed["channel"], &removed["user_id"]),
        (&json!("presence-team"), &json!("ann"))
    );
}

#[test]
/// Feature line F003-21 (../shared/reference/seed-systems.md).
fn f003_21_client_event_carries_the_request_with_id_and_app_key() {
    let receiver = webman_receiver::start(PATH, SECRET);
    let extra = "event_types = [\"client_event\"]";
    let server = Server::start(&config("", &webman_hook(&receiver.url(PATH), extra)), 1);
    let mut sender = server.client();
    let mut other = server.client();
    sender.subscribe_private("private-chat");
    other.subscribe_private("private-chat");
    sender.send(json!({"event": "client-typing", "channel": "private-chat", "data": {"n": 1}}));
    assert_eq!(other.recv()["event"], "client-typing");
    let got = wait_events(&receiver, 1);
    assert_eq!(names(&got), ["client_event"]);
    let payload = &got[0]["payload"];
    assert_eq!(keys(payload), ["app_key", "channel", "data", "event", "id"]);
    assert_eq!(
        (&payload["event"], &payload["channel"], &payload["data"], &payload["app_key"]),
        (&json!("client-typing"), &json!("private-chat"), &json!({"n": 1}), &json!("app-key"))
    );
    assert!(is_uuid(&payload["id"]));
}

#[test]
/// Feature line F003-21 (../shared/reference/seed-systems.md).
fn f003_21_server_event_reports_pusher_frames_sent_and_nothing_else() {
    let receiver = webman_receiver::start(PATH, SECRET);
    let extra = "event_types = [\"server_event\"]\nbatch_window_ms = 10";
    let server = Server::start(&config("", &webman_hook(&receiver.url(PATH), extra)), 1);
    let mut client = server.client();
    client.subscribe("news");
    server.trigger("news", "hello", "hi");
    assert_eq!(client.recv()["event"], "hello");
    client.send(json!({"event": "client-x", "channel": "news", "data": {}}));
    assert_eq!(client.recv()["event"], "pusher:error");
    client.sync();
    let got = wait_events(&receiver, 4);
    let sent: Vec<&str> =
        got.iter().map(|e| e["payload"]["event"].as_str().unwrap_or("?")).collect();
    assert_eq!(
        sent,
        [
            "pusher:connection_established",
            "pusher_internal:subscription_succeeded",
            "pusher:error",
            "pusher:pong"
        ],
        "API-published events are not server events"
    );
    assert!(names(&got).iter().all(|n| *n == "server_event"));
    let succeeded = &got[1]["payload"];
    assert_eq!(keys(succeeded), ["channel", "data", "event", "id", "time_ms"]);
    assert_eq!((&succeeded["channel"], &succeeded["data"]), (&json!("news"), &json!("{}")));
    let pong = &got[3]["payload"];
    assert_eq!(keys(pong), ["data", "event", "id", "time_ms"]);
    assert_eq!(pong["data"], json!({}));
    assert!(got[2]["payload"]["data"]["message"].is_string());
    assert!(is_uuid(&pong["id"]) && is_now(&pong["time_ms"]));
}

#[test]
/// Feature line F003-22 (../shared/reference/seed-systems.md).
fn f003_22_answers_other_than_200_are_retried_with_failed_count() {
    let receiver = webman_receiver::start(PATH, SECRET);
    receiver.script(&[500, 503]);
    let extra = "event_types = [\"channel_occupied\"]";
    let server = Server::start(&config("", &webman_hook(&receiver.url(PATH), extra)), 1);
    let mut client = server.client();
    client.subscribe("c1");
    let got = receiver.wait_for(WAIT, |r| r.iter().any(|r| r.status == 200));
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 503, 200]);
    assert!(
        got.iter().all(|r| webman_receiver::status(r, PATH, SECRET) == 200),
        "each attempt is signed"
    );
    let counts: Vec<Value> =
        got.iter().map(|r| r.json()["events"][0]["failed_count"].clone()).collect();
    assert_eq!(counts, [Value::Null, json!("1"), json!("2")]);
    let ids: Vec<&str> = got.iter().map(query_of).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "a new id per attempt: {ids:?}");
    let payloads: Vec<Value> = got.iter().map(|r| r.json()["events"][0]["data"].clone()).collect();
    assert!(payloads.windows(2).all(|w| w[0] == w[1]), "the same event each time");
}

#[test]
/// Feature line F003-22 (../shared/reference/seed-systems.md).
fn f003_22_transport_errors_are_retried_with_error_count() {
    let port = reserved_port();
    let url = format!("http://127.0.0.1:{port}{PATH}");
    let extra = "event_types = [\"channel_occupied\"]";
    let server = Server::start(&config("", &webman_hook(&url, extra)), 1);
    let mut client = server.client();
    client.subscribe("late");
    std::thread::sleep(Duration::from_millis(400));
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("rebind");
    let receiver = webman_receiver::start_on(listener, PATH, SECRET);
    let got = wait_events(&receiver, 1);
    assert_eq!(names(&got), ["channel_occupied"]);
    let errors: u32 = got[0]["error_count"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(errors >= 1, "{}", got[0]);
    assert!(got[0].get("failed_count").is_none());
}

#[test]
/// Feature line F003-23 (../shared/reference/seed-systems.md).
fn f003_23_the_queue_holds_4096_events_and_drops_newer_ones() {
    let port = reserved_port();
    let url = format!("http://127.0.0.1:{port}{PATH}");
    // A ring to the hook shard large enough for the burst: only the endpoint's queue drops.
    let hook = webman_hook(&url, "event_types = [\"channel_occupied\"]");
    let limits = "ring_capacity = 8192\nmax_subscriptions_per_connection = 5000";
    let server = Server::start(&format!("{limits}\n{}", config("", &hook)), 1);
    let mut client = server.client();
    let channels: Vec<String> = (0..4200).map(|i| format!("q{i}")).collect();
    subscribe_all(&mut client, &channels);
    // Time for every event to reach the endpoint while it is down.
    std::thread::sleep(Duration::from_millis(1500));
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("rebind");
    let receiver = webman_receiver::start_on(listener, PATH, SECRET);
    wait_events(&receiver, 4097);
    // Counters are published once a second; by then the last requests are in too.
    std::thread::sleep(Duration::from_millis(1200));
    let got = events(&receiver.received(), PATH);
    // 4096 queued, plus the batch (up to 5) that was being retried when the queue filled.
    assert!((4097..=4101).contains(&got.len()), "{} delivered", got.len());
    let first: Vec<&str> =
        got[..3].iter().map(|e| e["payload"]["channel"].as_str().unwrap_or("?")).collect();
    assert_eq!(first, ["q0", "q1", "q2"], "the oldest are kept");
    assert_eq!(server.metric("hook_ring_dropped_total"), 0);
    let (_, metrics) = server.get("/metrics");
    let dropped = metrics
        .lines()
        .find(|l| l.starts_with("pushgate_hook_dropped_total{"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<usize>().ok());
    assert_eq!(dropped, Some(4200 - got.len()), "every event delivered or dropped: {metrics}");
}

#[test]
/// Feature line F003-24 (../shared/reference/seed-systems.md).
fn f003_24_events_are_sent_in_batches_of_5() {
    let receiver = webman_receiver::start(PATH, SECRET);
    let extra = "event_types = [\"channel_occupied\"]\nbatch_window_ms = 300";
    let server = Server::start(&config("", &webman_hook(&receiver.url(PATH), extra)), 1);
    let mut client = server.client();
    let channels: Vec<String> = (0..12).map(|i| format!("b{i}")).collect();
    subscribe_all(&mut client, &channels);
    let got = receiver.wait_for(WAIT, |r| events(r, PATH).len() >= 12);
    let sizes: Vec<usize> =
        got.iter().map(|r| r.json()["events"].as_array().map_or(0, Vec::len)).collect();
    assert_eq!(sizes, [5, 5, 2]);
    let order: Vec<String> = events(&got, PATH)
        .iter()
        .map(|e| e["payload"]["channel"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(order, channels);
}

#[test]
/// Feature line F003-10 (../shared/reference/seed-systems.md).
fn f003_10_unsubscribe_is_answered_when_the_app_asks_for_it() {
    let server = Server::start(&config("unsubscription_replies = true", ""), 1);
    let mut client = server.client();
    client.subscribe("news");
    let auth = channel_auth(&client.socket_id, "private-x", None);
    client
        .send(json!({"event": "pusher:subscribe", "data": {"channel": "private-x", "auth": auth}}));
    assert_eq!(client.recv()["event"], "pusher_internal:subscription_succeeded");
    for channel in ["news", "private-x"] {
        client.send(json!({"event": "pusher:unsubscribe", "data": {"channel": channel}}));
        assert_eq!(
            client.recv(),
            json!({"event": "pusher_internal:unsubscription_succeeded", "channel": channel, "data": {}})
        );
    }
    server.trigger("news", "late", "x");
    client.send(json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(client.recv()["event"], "pusher:pong", "unsubscribed: nothing before the pong");
}

#[test]
/// Feature line F003-10 (../shared/reference/seed-systems.md).
fn f003_10_unsubscribe_is_not_answered_by_default() {
    let server = Server::start(&config("", ""), 1);
    let mut client = server.client();
    client.subscribe("news");
    client.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}}));
    client.send(json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(client.recv()["event"], "pusher:pong", "nothing before the pong");
}
