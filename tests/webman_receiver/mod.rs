//! A webhook receiver that checks requests as webman-push-server 0.2.0's sample `/webhook`
//! route does (reference section 4.4): it reads the query with `parse_str`, sorts it by key
//! (`ksort`), writes it back with `http_build_query` and expects header `sign` = hex
//! HMAC-SHA256(webhook_secret, "POST\n<path of webhook_url>\n<query>\n<raw body>"); a wrong
//! `sign` gets 403, a body without `time_ms` or `events` 400, anything else 200. Written from
//! the reference, not from pushgate's code, so that the two meet only in the format.

#![allow(dead_code)]

use crate::hook_receiver::{Received, Receiver};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::net::TcpListener;

/// A receiver at `path` that checks signatures made with `secret`.
pub fn start(path: &str, secret: &str) -> Receiver {
    let (path, secret) = (path.to_string(), secret.to_string());
    Receiver::checking(move |r| status(r, &path, &secret))
}

/// [`start`] on a listener bound already.
pub fn start_on(listener: TcpListener, path: &str, secret: &str) -> Receiver {
    let (path, secret) = (path.to_string(), secret.to_string());
    Receiver::checking_on(listener, move |r| status(r, &path, &secret))
}

/// The status webman's sample receiver answers `request` with.
pub fn status(request: &Received, path: &str, secret: &str) -> u16 {
    let query = request.path.split_once('?').map_or("", |(_, q)| q);
    let mut params = parse_str(query);
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let body = String::from_utf8_lossy(&request.body);
    let expected =
        hmac_hex(secret, &format!("POST\n{path}\n{}\n{body}", http_build_query(&params)));
    if request.header("sign") != Some(expected.as_str()) {
        return 403;
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else { return 400 };
    let truthy = |v: Option<&Value>| match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty() && s != "0",
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    };
    if !truthy(body.get("time_ms")) || !truthy(body.get("events")) {
        return 400;
    }
    200
}

/// The events of the requests to `path` (query aside) answered 200, in arrival order, each
/// with its `data` string decoded into `payload`.
pub fn events(received: &[Received], path: &str) -> Vec<Value> {
    received
        .iter()
        .filter(|r| r.status == 200 && r.path.split('?').next() == Some(path))
        .flat_map(|r| r.json()["events"].as_array().cloned().unwrap_or_default())
        .map(|mut e| {
            let payload = e["data"].as_str().and_then(|d| serde_json::from_str(d).ok());
            e["payload"] = payload.unwrap_or(Value::Null);
            e
        })
        .collect()
}

/// The event names of [`events`].
pub fn names(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["name"].as_str().unwrap_or("?")).collect()
}

/// PHP's `parse_str` for flat keys: `+` and `%XX` decoded, a repeated key keeps its last value.
fn parse_str(query: &str) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match params.iter_mut().find(|(k, _)| *k == key) {
            Some(param) => param.1 = value.into_owned(),
            None => params.push((key.into_owned(), value.into_owned())),
        }
    }
    params
}

/// PHP's `http_build_query` (RFC 1738: `urlencode` on keys and values).
fn http_build_query(params: &[(String, String)]) -> String {
    let pairs: Vec<String> =
        params.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect();
    pairs.join("&")
}

/// PHP's `urlencode`: letters, digits and `-_.` kept, space as `+`, the rest `%XX`.
fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
