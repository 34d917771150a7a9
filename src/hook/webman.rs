//! webman-push-server's webhook format (workbunny/webman-push-server 0.2.0: `HookServer.php`
//! and `Events/*.php`), for teams whose webhook receiver was written for that server.
//!
//! - Each event becomes an entry shaped like webman's Redis-stream entry: `name`, `data` (a JSON
//!   string holding the payload below) and `time` (seconds, a string: stream fields come back
//!   from Redis as strings). A batch sent again carries `failed_count` (attempts answered with
//!   a non-2xx status) or `error_count` (attempts with no answer), as webman's requeued
//!   entries do.
//! - A request is `POST <url path>?<url query + id=<uuid>>` with `Content-Type:
//!   application/json`, body `{"time_ms":<seconds>,"events":[...]}` and header `sign` =
//!   hex(HMAC-SHA256(secret, "POST\n<url path>\n<query sorted by key>\n<body>")), the query
//!   written as PHP's `http_build_query` writes it. The id, `time_ms` and `sign` are new on
//!   every attempt.
//! - Payloads: member_added `{id, app_key, channel, user_id, user_info, time_ms}`,
//!   member_removed `{id, app_key, channel, user_id, time_ms}`, channel_occupied and
//!   channel_vacated `{id, app_key, channel, time_ms}`, client_event `{event, channel, data,
//!   id, app_key}`, server_event `{channel?, event, data?, id, time_ms}` for a `pusher:*` or
//!   `pusher_internal:*` frame sent to a client. `id` is a fresh UUID per event and `time_ms`
//!   is in seconds (PHP's `microtime(true)`), as webman sends it despite its name.

use super::{
    endpoint::{Request, RequestBuilder, Tries},
    event::PusherEvent,
};
use crate::crypto::hmac_hex;
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;
use serde_json::Value;
use std::{
    rc::Rc,
    time::{SystemTime, UNIX_EPOCH},
};

/// One queued event, as webman queues it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub name: &'static str,
    /// The payload as JSON text.
    pub data: Rc<str>,
    /// Seconds since the epoch when the hook shard took the event.
    pub time: f64,
}

/// The entry for `event` of the app whose key is `app_key`, with the channel a webhook's
/// channel filter looks at (a server_event's frame may have none: then ""). `None` for a
/// server_event whose frame is not a `pusher:*` or `pusher_internal:*` event.
pub fn entry(app_key: &str, event: &PusherEvent) -> Option<(String, Entry)> {
    let (id, time_ms) = (uuid(), now_secs());
    let channel = event.channel.as_str();
    let (channel, data) = match event.name {
        "member_added" | "member_removed" => {
            let user_info = (event.name == "member_added").then(|| user_info(event));
            let user_id = event.user_id.as_deref().unwrap_or_default();
            let member = Member { id: &id, app_key, channel, user_id, user_info, time_ms };
            (channel, to_json(&member))
        }
        "client_event" => {
            let data = event.data.as_deref().unwrap_or("null");
            let data = serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.into()));
            let event = event.event.as_deref().unwrap_or_default();
            (channel, to_json(&ClientEvent { event, channel, data, id: &id, app_key }))
        }
        "server_event" => return server_event(event.data.as_deref()?, &id, time_ms),
        _ => (channel, to_json(&Channel { id: &id, app_key, channel, time_ms })),
    };
    let entry = Entry { name: event.name, data: data.into(), time: time_ms };
    Some((channel.to_string(), entry))
}

/// A server_event from the text of the frame sent.
fn server_event(frame: &str, id: &str, time_ms: f64) -> Option<(String, Entry)> {
    let frame: Value = serde_json::from_str(frame).ok()?;
    let event = frame.get("event")?.as_str()?;
    if !event.starts_with("pusher:") && !event.starts_with("pusher_internal:") {
        return None;
    }
    let channel = frame.get("channel").and_then(Value::as_str);
    let data = frame.get("data").filter(|d| !d.is_null());
    let payload = ServerEvent { channel, event, data, id, time_ms };
    let entry = Entry { name: "server_event", data: to_json(&payload).into(), time: time_ms };
    Some((channel.unwrap_or_default().to_string(), entry))
}

/// A member's `user_info` as webman decodes it: webman takes it as a string of JSON; Pusher
/// clients send any JSON value. A string that holds JSON is decoded, anything else kept.
fn user_info(event: &PusherEvent) -> Value {
    let value = event.user_info.as_deref().and_then(|t| serde_json::from_str(t).ok());
    match value {
        Some(Value::String(text)) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Some(value) => value,
        None => Value::Null,
    }
}

#[derive(Serialize)]
struct Member<'a> {
    id: &'a str,
    app_key: &'a str,
    channel: &'a str,
    user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_info: Option<Value>,
    time_ms: f64,
}

#[derive(Serialize)]
struct Channel<'a> {
    id: &'a str,
    app_key: &'a str,
    channel: &'a str,
    time_ms: f64,
}

#[derive(Serialize)]
struct ClientEvent<'a> {
    event: &'a str,
    channel: &'a str,
    data: Value,
    id: &'a str,
    app_key: &'a str,
}

#[derive(Serialize)]
struct ServerEvent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    id: &'a str,
    time_ms: f64,
}

/// The request builder of a webman-format endpoint at `url` (already checked by the HTTP
/// client), signing with `secret`, adding `extra` headers.
pub fn requests(url: &str, secret: String, extra: Vec<(String, String)>) -> RequestBuilder<Entry> {
    let (path, params) = split_url(url);
    let request_path = if path.is_empty() { "/".to_string() } else { path.clone() };
    Box::new(move |entries: &[Entry], tries: Tries| {
        let mut params = params.clone();
        params.push(("id".to_string(), uuid()));
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let query = php_query(&params);
        let body = body(entries, tries, now_secs());
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("sign".to_string(), sign(&secret, &path, &query, &body)),
        ];
        headers.extend(extra.iter().cloned());
        let target = Some(format!("{request_path}?{query}"));
        Request { target, body: Bytes::from(body), headers }
    })
}

/// webman's `sign`: hex HMAC-SHA256 of `POST\n<path>\n<query>\n<body>`.
pub fn sign(secret: &str, path: &str, query: &str, body: &str) -> String {
    hmac_hex(secret, &format!("POST\n{path}\n{query}\n{body}"))
}

/// The request body for a batch.
fn body(entries: &[Entry], tries: Tries, now: f64) -> String {
    #[derive(Serialize)]
    struct Item<'a> {
        name: &'a str,
        data: &'a str,
        time: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        failed_count: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_count: Option<String>,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        time_ms: f64,
        events: Vec<Item<'a>>,
    }
    let count = |n: u32| (n > 0).then(|| n.to_string());
    let events = entries
        .iter()
        .map(|e| Item {
            name: e.name,
            data: &e.data,
            time: php_float(e.time),
            failed_count: count(tries.failed),
            error_count: count(tries.errors),
        })
        .collect();
    to_json(&Body { time_ms: now, events })
}

/// The path of `url` as PHP's `parse_url` gives it ("" when there is none), and its query
/// parameters decoded, without `id` (each request sets its own); a repeated key keeps its
/// last value, as PHP's `parse_str` does.
fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = rest.find('/').map_or("", |at| &rest[at..]);
    let mut params: Vec<(String, String)> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key == "id" {
            continue;
        }
        match params.iter_mut().find(|(k, _)| *k == key) {
            Some(param) => param.1 = value.into_owned(),
            None => params.push((key.into_owned(), value.into_owned())),
        }
    }
    (path.to_string(), params)
}

/// What PHP's `urlencode` leaves as is: letters, digits, `-`, `_`, `.`.
const PHP_URLENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// `http_build_query` of `params` (PHP_QUERY_RFC1738: a space is `+`).
fn php_query(params: &[(String, String)]) -> String {
    let encode = |s: &str| utf8_percent_encode(s, PHP_URLENCODE).to_string().replace("%20", "+");
    let pairs: Vec<String> =
        params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    pairs.join("&")
}

/// A float of seconds as PHP prints one (14 significant digits: 4 decimals for today's time).
fn php_float(secs: f64) -> String {
    let text = format!("{secs:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A random (version 4) UUID, `8-4-4-4-12` lowercase hex.
fn uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing structs of strings, numbers and JSON values cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(entry: &Entry) -> Value {
        serde_json::from_str(&entry.data).expect("data is JSON")
    }

    #[test]
    fn member_added_carries_id_app_key_and_decoded_user_info() {
        let mut event = PusherEvent::new("member_added", "presence-r");
        event.user_id = Some("7".into());
        event.user_info = Some(r#""{\"name\":\"ann\"}""#.into());
        let (channel, added) = entry("key", &event).expect("entry");
        assert_eq!((channel.as_str(), added.name), ("presence-r", "member_added"));
        let d = data(&added);
        assert_eq!(
            (&d["app_key"], &d["channel"], &d["user_id"]),
            (&"key".into(), &"presence-r".into(), &"7".into())
        );
        assert_eq!(
            d["user_info"],
            serde_json::json!({"name": "ann"}),
            "a string of JSON is decoded"
        );
        assert_eq!(d["id"].as_str().map(str::len), Some(36));
        assert!(d["time_ms"].as_f64().is_some_and(|t| t > 1.6e9 && t < 1e10), "seconds: {d}");
        event.user_info = Some(r#"{"name":"bob"}"#.into());
        assert_eq!(data(&entry("key", &event).expect("entry").1)["user_info"]["name"], "bob");
    }

    #[test]
    fn removed_and_channel_events_have_only_their_fields() {
        let mut event = PusherEvent::new("member_removed", "presence-r");
        event.user_id = Some("7".into());
        let d = data(&entry("k", &event).expect("entry").1);
        let keys: Vec<&str> = d.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["app_key", "channel", "id", "time_ms", "user_id"]);
        let d = data(&entry("k", &PusherEvent::new("channel_vacated", "c")).expect("entry").1);
        let keys: Vec<&str> = d.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["app_key", "channel", "id", "time_ms"]);
    }

    #[test]
    fn client_events_keep_the_data_the_client_sent() {
        let mut event = PusherEvent::new("client_event", "private-c");
        event.event = Some("client-typing".into());
        event.data = Some(r#"{"n":1}"#.into());
        let text = entry("k", &event).expect("entry").1.data;
        assert!(
            text.starts_with(
                r#"{"event":"client-typing","channel":"private-c","data":{"n":1},"id":""#
            ),
            "{text}"
        );
        assert!(text.ends_with(r#","app_key":"k"}"#), "{text}");
    }

    #[test]
    fn server_events_only_for_pusher_frames() {
        let frame = |text: &str| {
            let mut event = PusherEvent::new("server_event", "");
            event.data = Some(text.into());
            entry("k", &event)
        };
        let (channel, e) = frame(r#"{"event":"pusher:pong","data":{}}"#).expect("pong");
        assert_eq!(channel, "");
        let d = data(&e);
        assert_eq!((&d["event"], &d["data"]), (&"pusher:pong".into(), &serde_json::json!({})));
        assert!(d.get("channel").is_none() && d.get("app_key").is_none());
        let (channel, e) = frame(
            r#"{"event":"pusher_internal:subscription_succeeded","channel":"c","data":"{}"}"#,
        )
        .expect("succeeded");
        assert_eq!((channel.as_str(), data(&e)["data"].as_str()), ("c", Some("{}")));
        assert!(frame(r#"{"event":"pusher:cache_miss","channel":"cache-x"}"#)
            .is_some_and(|(_, e)| data(&e).get("data").is_none()));
        assert!(frame(r#"{"event":"orders","channel":"c","data":"x"}"#).is_none());
        assert!(frame("not json").is_none());
    }

    #[test]
    fn requests_are_signed_as_webmans_receiver_checks() {
        let build = requests("http://h:1/hooks/webman?b=2&a=x%20y&id=9", "s".into(), vec![]);
        let entry = Entry { name: "channel_occupied", data: "{}".into(), time: 1.5 };
        let request = build(std::slice::from_ref(&entry), Tries { failed: 2, errors: 0 });
        let target = request.target.expect("target");
        let (path, query) = target.split_once('?').expect("query");
        assert_eq!(path, "/hooks/webman");
        assert!(query.starts_with("a=x+y&b=2&id="), "{query}");
        assert_eq!(query.len(), "a=x+y&b=2&id=".len() + 36);
        let body = std::str::from_utf8(&request.body).expect("utf8");
        let sign = request.headers.iter().find(|(k, _)| k == "sign").map(|(_, v)| v.clone());
        assert_eq!(sign, Some(super::sign("s", path, query, body)));
        let v: Value = serde_json::from_str(body).expect("json");
        assert_eq!(
            v["events"],
            serde_json::json!([{"name": "channel_occupied", "data": "{}", "time": "1.5", "failed_count": "2"}])
        );
        let again = build(&[entry], Tries::default());
        assert_ne!(again.target.as_deref(), Some(target.as_str()), "a fresh id per attempt");
    }

    #[test]
    fn php_helpers() {
        assert_eq!(
            split_url("https://h/p?x=1&x=2&id=3#f"),
            ("/p".to_string(), vec![("x".to_string(), "2".to_string())])
        );
        assert_eq!(split_url("http://h:8").0, "");
        assert_eq!(php_query(&[("k~".into(), "a b/ü-_.*".into())]), "k%7E=a+b%2F%C3%BC-_.%2A");
        assert_eq!(php_float(1671500000.123456), "1671500000.1235");
        assert_eq!(php_float(2.0), "2");
        let id = uuid();
        assert_eq!((id.len(), &id[14..15]), (36, "4"));
    }
}
