//! A client frame `{"uri","header","body"}` read as the original reads it: decode, the ping
//! echo, the route lookup with its 4001/4041 errors (`read`), then what `ht-msg-sub` does before
//! the upstream call (`prepare`): the header patch (`sid`, `_uuid`, `msgId` default,
//! `gateway-metadata`, then the route's add/set/remove), the body normalised to an object, the
//! `body.topics` check (4002) and, for `register`, `sig_<sid>` appended. Pure: no I/O, no shard.

use super::{
    outbound::{self, Kind},
    table::{Action, Route, RouteTable},
};
use serde_json::{Map, Value};
use std::{net::IpAddr, time::Instant};

/// An answer the gateway gives without an upstream: its JSON, and the HTTP-like status the
/// metrics count (None for pongs, which the original leaves out of them).
#[derive(Debug, Clone, PartialEq)]
pub struct Local {
    pub json: Vec<u8>,
    pub status: Option<u16>,
    /// The route, when one matched (the metrics' `subroute`).
    pub route: Option<usize>,
}

impl Local {
    fn error(
        route: Option<usize>,
        status: u16,
        code: &str,
        message: &str,
        msg_id: &Value,
    ) -> Local {
        let json = outbound::error(status, code, message, msg_id);
        Local { json, status: Some(status), route }
    }
}

/// A frame that matched a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    pub route: usize,
    pub uri: String,
    pub header: Map<String, Value>,
    pub body: Value,
}

/// What a frame asks for before its route runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    Answer(Local),
    Matched(Matched),
}

/// Decodes a frame, answers pings, finds the route.
pub fn read(bytes: &[u8], routes: &RouteTable) -> Read {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => {
            let json = outbound::decode_error(&e.to_string());
            return Read::Answer(Local { json, status: Some(400), route: None });
        }
    };
    let Value::Object(mut request) = value else {
        let msg_id = Value::String(String::new());
        return Read::Answer(Local::error(None, 400, "4001", "400 Invalid URI", &msg_id));
    };
    if request.get("uri").and_then(Value::as_str) == Some("/api/ping") {
        return Read::Answer(Local { json: outbound::pong(request), status: None, route: None });
    }
    let header = match request.remove("header") {
        Some(Value::Object(header)) => header,
        _ => Map::new(),
    };
    let msg_id = header.get("msgId").cloned().unwrap_or_else(|| Value::String(String::new()));
    let Some(Value::String(uri)) = request.remove("uri") else {
        return Read::Answer(Local::error(None, 400, "4001", "400 Invalid URI", &msg_id));
    };
    let Some(route) = routes.find(&uri) else {
        return Read::Answer(Local::error(None, 404, "4041", "404 Route Not Found", &msg_id));
    };
    let body = request.remove("body").unwrap_or(Value::Null);
    Read::Matched(Matched { route, uri, header, body })
}

/// A request ready for its upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub route: usize,
    pub uri: String,
    /// The patched header, as sent upstream.
    pub header: Map<String, Value>,
    /// The body as sent upstream (an object).
    pub body: Map<String, Value>,
    /// `header.msgId` after the patch: echoed in the gateway's own error bodies.
    pub msg_id: Value,
    /// The client's topics (`sub_*`; `register` with `sig_<sid>`), names checked.
    pub topics: Vec<String>,
    pub kind: Kind,
    pub received: Instant,
    /// A disconnect notification made for a connection that has gone: no answer to send.
    pub notify: bool,
}

/// What the gateway knows of the connection a request comes from.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub sid: &'a str,
    /// The `sig_<sid>` topic.
    pub sig: &'a str,
    /// `<sid>_<n>`: the original's `_uuid`.
    pub uuid: String,
    pub gateway_ip: &'a str,
    pub source_ip: Option<IpAddr>,
}

/// Limits applied before the upstream call.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_topics: usize,
    pub max_topic_len: usize,
}

/// Patches the header and checks the body; `Err` is the answer instead of an upstream call.
pub fn prepare(
    matched: Matched,
    route: &Route,
    origin: &Origin<'_>,
    limits: Limits,
    kind: Kind,
) -> Result<Job, Local> {
    let Matched { route: index, uri, mut header, body } = matched;
    patch_header(&mut header, route, origin);
    let msg_id = header.get("msgId").cloned().unwrap_or(Value::Null);
    let mut body = object_body(body);
    let error = |status, code: &str, message: &str| {
        Local::error(Some(index), status, code, message, &msg_id)
    };
    let mut topics = Vec::new();
    if route.action.needs_topics() || route.action == Action::Register {
        let listed = match body.get("topics") {
            Some(Value::Array(items)) => items.iter().map(topic_name).collect(),
            _ if route.action == Action::Register => Some(Vec::new()),
            _ => None,
        };
        topics = listed.ok_or_else(|| error(400, "4002", "invalid body"))?;
        if let Some(long) = topics.iter().find(|t| t.len() > limits.max_topic_len) {
            let message =
                format!("topic longer than {} bytes: {long:.32}...", limits.max_topic_len);
            return Err(error(400, "4006", &message));
        }
        if route.action == Action::Register {
            topics.push(origin.sig.to_string());
            let listed = topics.iter().map(|t| Value::String(t.clone())).collect();
            body.insert("topics".into(), Value::Array(listed));
        }
        if topics.len() > limits.max_topics {
            let message = format!("too many topics: at most {} per connection", limits.max_topics);
            return Err(error(400, "4005", &message));
        }
    }
    Ok(Job {
        route: index,
        uri,
        header,
        body,
        msg_id,
        topics,
        kind,
        received: Instant::now(),
        notify: false,
    })
}

/// A topic given as a string, or a number written as one; anything else makes the body invalid.
fn topic_name(item: &Value) -> Option<String> {
    match item {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The body as an object: an object as is, a string holding a JSON object decoded, anything
/// else `{}` (the original's rule).
fn object_body(body: Value) -> Map<String, Value> {
    match body {
        Value::Object(body) => body,
        Value::String(text) => match serde_json::from_str(&text) {
            Ok(Value::Object(body)) => body,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

/// The original's `patch_header`: the gateway's own keys, then the route's add/set/remove.
fn patch_header(header: &mut Map<String, Value>, route: &Route, origin: &Origin<'_>) {
    header.insert("sid".into(), Value::String(origin.sid.into()));
    header.insert("_uuid".into(), Value::String(origin.uuid.clone()));
    if header.get("msgId").is_none_or(Value::is_null) {
        header.insert("msgId".into(), Value::String(origin.uuid.clone()));
    }
    let source = origin.source_ip.map_or(Value::Null, |ip| Value::String(ip.to_string()));
    let metadata = serde_json::json!({
        "sid": origin.sid,
        "GatewayIP": origin.gateway_ip,
        "SourceIP": source,
    });
    header.insert("gateway-metadata".into(), metadata);
    for (name, value) in &route.headers.add {
        if header.get(name).is_none_or(Value::is_null) {
            header.insert(name.clone(), Value::String(value.clone()));
        }
    }
    for (name, value) in &route.headers.set {
        header.insert(name.clone(), Value::String(value.clone()));
    }
    for name in &route.headers.remove {
        header.remove(name);
    }
}

/// The request a disconnect notification sends through `route` for a connection that has
/// gone: the original's synthetic header, an empty body.
pub fn notification(
    index: usize,
    route: &Route,
    uri: &str,
    origin: &Origin<'_>,
    now: std::time::SystemTime,
) -> Job {
    let secs = now.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let secs = (secs * 1000.0).round() / 1000.0;
    let mut header = Map::new();
    header.insert("msgId".into(), Value::String(secs.to_string()));
    header.insert("ts".into(), Value::from(secs));
    header.insert("appId".into(), Value::String("1".into()));
    header.insert("Content-Type".into(), Value::String("application/json".into()));
    patch_header(&mut header, route, origin);
    let msg_id = header.get("msgId").cloned().unwrap_or(Value::Null);
    Job {
        route: index,
        uri: uri.to_string(),
        header,
        body: Map::new(),
        msg_id,
        topics: Vec::new(),
        kind: Kind::Text,
        received: Instant::now(),
        notify: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::gateway::{GatewayConfig, RouteConfig};
    use serde_json::json;

    fn routes() -> RouteTable {
        let mut disconnect = RouteConfig::new("/d", "disconnect", "tcp", &[("h", 1)]);
        disconnect.headers.add.insert("_url_segment".into(), "3".into());
        disconnect.headers.add.insert("ts".into(), "0".into());
        disconnect.headers.set.insert("appId".into(), "9".into());
        disconnect.headers.remove.push("Content-Type".into());
        let routes = vec![
            RouteConfig::new("/reg", "register", "tcp", &[("h", 1)]),
            RouteConfig::new("/add", "sub_add", "tcp", &[("h", 1)]),
            disconnect,
        ];
        RouteTable::new(&GatewayConfig { routes, ..GatewayConfig::default() })
    }

    fn origin() -> Origin<'static> {
        Origin {
            sid: "10.0.0.1_0_ab",
            sig: "sig_10.0.0.1_0_ab",
            uuid: "10.0.0.1_0_ab_7".into(),
            gateway_ip: "10.0.0.1",
            source_ip: Some([127, 0, 0, 1].into()),
        }
    }

    const LIMITS: Limits = Limits { max_topics: 3, max_topic_len: 8 };

    fn answer(read: Read) -> Value {
        match read {
            Read::Answer(local) => serde_json::from_slice(&local.json).expect("json"),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    fn job(text: &str) -> Result<Job, Value> {
        let table = routes();
        let Read::Matched(matched) = read(text.as_bytes(), &table) else {
            panic!("no route for {text}");
        };
        let route = table.get(matched.route).expect("route").clone();
        prepare(matched, &route, &origin(), LIMITS, Kind::Text)
            .map_err(|l| serde_json::from_slice(&l.json).expect("json"))
    }

    #[test]
    fn frames_without_a_string_uri_or_a_route_are_refused() {
        let t = routes();
        let v = answer(read(br#"{"header":{"msgId":"5"}}"#, &t));
        assert_eq!(
            v,
            json!({"status": 400, "body": {"code": "4001", "message": "400 Invalid URI", "msgId": "5"}})
        );
        assert_eq!(answer(read(br#"{"uri":1.1}"#, &t))["body"]["msgId"], "");
        assert_eq!(answer(read(b"[1,2]", &t))["body"]["code"], "4001");
        let v = answer(read(br#"{"uri":"/nope","header":{"msgId":"6"}}"#, &t));
        assert_eq!(v["status"], 404);
        assert_eq!(v["body"]["code"], "4041");
        assert_eq!(v["body"]["msgId"], "6");
        let v = answer(read(b"none-json", &t));
        assert_eq!(v["status"], 400);
        assert!(v["body"]["message"].as_str().expect("text").starts_with("failed to decode"));
    }

    #[test]
    fn api_ping_is_echoed_as_api_pong() {
        let v = answer(read(br#"{"uri":"/api/ping","header":{"msgId":"1","ts":2}}"#, &routes()));
        assert_eq!(v, json!({"uri": "/api/pong", "header": {"msgId": "1", "ts": 2}}));
    }

    #[test]
    fn the_header_is_patched_as_the_original_does() {
        let patched = job(r#"{"uri":"/d","header":{"ts":1,"appId":"1","Content-Type":"json"}}"#)
            .expect("job");
        let h = &patched.header;
        assert_eq!(h["sid"], "10.0.0.1_0_ab");
        assert_eq!(h["_uuid"], "10.0.0.1_0_ab_7");
        assert_eq!(h["msgId"], "10.0.0.1_0_ab_7", "msgId defaults to _uuid");
        assert_eq!(
            h["gateway-metadata"],
            json!({"sid": "10.0.0.1_0_ab", "GatewayIP": "10.0.0.1", "SourceIP": "127.0.0.1"})
        );
        assert_eq!(h["_url_segment"], "3", "add where absent");
        assert_eq!(h["ts"], 1, "add does not overwrite");
        assert_eq!(h["appId"], "9", "set overwrites");
        assert!(h.get("Content-Type").is_none(), "remove");
        assert_eq!(patched.msg_id, "10.0.0.1_0_ab_7");
        let forged = job(r#"{"uri":"/d","header":{"msgId":"m1","sid":"forged"}}"#).expect("job");
        let h = &forged.header;
        assert_eq!((h["msgId"].as_str(), h["sid"].as_str()), (Some("m1"), Some("10.0.0.1_0_ab")));
    }

    #[test]
    fn sub_bodies_need_a_topics_array() {
        for body in [r#""khkh""#, "null", "1.1", "{}", r#"{"topics":"a"}"#, r#"{"topics":[{}]}"#] {
            let text = format!(r#"{{"uri":"/add","header":{{"msgId":"2"}},"body":{body}}}"#);
            let v = job(&text).expect_err(body);
            assert_eq!(v["status"], 400, "{body}");
            assert_eq!(v["body"], json!({"code": "4002", "message": "invalid body", "msgId": "2"}));
        }
        let ok = job(r#"{"uri":"/add","body":"{\"topics\":[\"a\",7]}"}"#).expect("string body");
        assert_eq!(ok.topics, ["a", "7"]);
    }

    #[test]
    fn register_appends_sig_and_accepts_any_body() {
        let plain = job_with(r#"{"uri":"/reg","body":"khkh"}"#);
        assert_eq!(plain.topics, ["sig_10.0.0.1_0_ab"]);
        assert_eq!(plain.body["topics"], json!(["sig_10.0.0.1_0_ab"]));
        let listed = job_with(r#"{"uri":"/reg","body":{"topics":["a"],"x":1}}"#);
        let expected = json!({"topics": ["a", "sig_10.0.0.1_0_ab"], "x": 1});
        assert_eq!(Value::Object(listed.body), expected);
    }

    fn job_with(text: &str) -> Job {
        job(text).expect("job")
    }

    #[test]
    fn topic_limits_are_checked_before_the_call() {
        let v = job(r#"{"uri":"/add","body":{"topics":["a","b","c","d"]}}"#).expect_err("count");
        assert_eq!(v["body"]["code"], "4005");
        let v = job(r#"{"uri":"/add","body":{"topics":["123456789"]}}"#).expect_err("length");
        assert_eq!(v["body"]["code"], "4006");
        let v = job(r#"{"uri":"/reg","body":{"topics":["a","b","c"]}}"#).expect_err("sig counts");
        assert_eq!(v["body"]["code"], "4005");
    }

    #[test]
    fn notifications_carry_the_original_header() {
        let table = routes();
        let route = table.get(2).expect("route");
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_708_000_000_123);
        let job = notification(2, route, "/d", &origin(), now);
        assert_eq!(job.header["msgId"], "1708000000.123");
        assert_eq!(job.header["appId"], "9");
        assert_eq!(job.header["ts"], 1_708_000_000.123);
        assert!(job.notify && job.body.is_empty());
    }
}
