//! Server-to-client Pusher messages as JSON text. `data` is double-encoded (a JSON string holding
//! JSON) where Pusher does so; pusher-js needs it for `connection_established`.

use serde::Serialize;

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain structs of strings and numbers into a Vec cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

#[derive(Serialize)]
struct Envelope<'a> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    data: &'a str,
}

/// `pusher:connection_established` with `data` as a JSON string.
pub fn connection_established(socket_id: &str, activity_timeout: u64) -> Vec<u8> {
    #[derive(Serialize)]
    struct Data<'a> {
        socket_id: &'a str,
        activity_timeout: u64,
    }
    let data =
        String::from_utf8(to_json(&Data { socket_id, activity_timeout })).unwrap_or_default();
    to_json(&Envelope { event: "pusher:connection_established", channel: None, data: &data })
}

/// `pusher:error`; `code` is `null` for errors that do not close the connection.
pub fn error(code: Option<u16>, message: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Data<'a> {
        code: Option<u16>,
        message: &'a str,
    }
    #[derive(Serialize)]
    struct Error<'a> {
        event: &'static str,
        data: Data<'a>,
    }
    to_json(&Error { event: "pusher:error", data: Data { code, message } })
}

/// `pusher:pong` (and `pusher:ping` when the server probes a silent client).
pub fn ping_pong(event: &'static str) -> Vec<u8> {
    format!(r#"{{"event":"{event}","data":{{}}}}"#).into_bytes()
}

/// `pusher_internal:subscription_succeeded` for a non-presence channel.
pub fn subscription_succeeded(channel: &str) -> Vec<u8> {
    channel_event("pusher_internal:subscription_succeeded", channel, "{}")
}

/// `pusher_internal:unsubscription_succeeded`, webman-push-server's answer to an unsubscribe
/// (not a Pusher message), with `data` an empty object as webman sends it.
pub fn unsubscription_succeeded(channel: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Reply<'a> {
        event: &'static str,
        channel: &'a str,
        data: Empty,
    }
    #[derive(Serialize)]
    struct Empty {}
    let event = "pusher_internal:unsubscription_succeeded";
    to_json(&Reply { event, channel, data: Empty {} })
}

/// A channel event: `{"event","channel","data"}` with `data` already a string.
pub fn channel_event(event: &str, channel: &str, data: &str) -> Vec<u8> {
    to_json(&Envelope { event, channel: Some(channel), data })
}

/// `pusher_internal:subscription_succeeded` for a presence channel, with the member snapshot.
pub fn presence_succeeded(channel: &str, snapshot: &str) -> Vec<u8> {
    channel_event("pusher_internal:subscription_succeeded", channel, snapshot)
}

/// `pusher:cache_miss` for a cache channel with nothing cached (soketi's and Reverb's shape).
pub fn cache_miss(channel: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Miss<'a> {
        event: &'static str,
        channel: &'a str,
    }
    to_json(&Miss { event: "pusher:cache_miss", channel })
}

/// `pusher:signin_success`, echoing the signed `user_data` string.
pub fn signin_success(user_data: &str) -> Vec<u8> {
    serde_json::json!({"event": "pusher:signin_success", "data": {"user_data": user_data}})
        .to_string()
        .into_bytes()
}

/// `pusher_internal:watchlist_events`: `data` (a JSON string) holds `events`, one
/// `{name, user_ids}` per non-empty list, as pusher-js's watchlist reads them.
pub fn watchlist_events(lists: &[(&str, &[String])]) -> Vec<u8> {
    let events: Vec<_> = lists
        .iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(name, ids)| serde_json::json!({"name": name, "user_ids": ids}))
        .collect();
    let data = serde_json::json!({ "events": events }).to_string();
    to_json(&Envelope { event: "pusher_internal:watchlist_events", channel: None, data: &data })
}

/// A relayed client event: `data` is the JSON the client sent (object or string), kept as is;
/// `user_id` is added on presence channels.
pub fn client_event(event: &str, channel: &str, data_json: &str, user_id: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + event.len() + channel.len() + data_json.len());
    out.extend_from_slice(b"{\"event\":");
    out.extend_from_slice(&to_json(&event));
    out.extend_from_slice(b",\"channel\":");
    out.extend_from_slice(&to_json(&channel));
    out.extend_from_slice(b",\"data\":");
    out.extend_from_slice(data_json.as_bytes());
    if let Some(user_id) = user_id {
        out.extend_from_slice(b",\"user_id\":");
        out.extend_from_slice(&to_json(&user_id));
    }
    out.push(b'}');
    out
}

/// The `data` of an encoded channel-event frame, read back for a hook's payload (only when a
/// message.delivered rule asks for it).
pub fn event_data(frame: &[u8]) -> Option<String> {
    let start = frame.iter().position(|&b| b == b'{')?;
    let value: serde_json::Value = serde_json::from_slice(&frame[start..]).ok()?;
    match value.get("data")? {
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_established_double_encodes() {
        let text = connection_established("123.456", 120);
        assert_eq!(
            std::str::from_utf8(&text).expect("utf8"),
            r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}"#
        );
    }

    #[test]
    fn client_events_keep_data_and_add_user_id() {
        let text = client_event("client-typing", "presence-r", r#"{"a":1}"#, Some("u\"1"));
        let v: serde_json::Value = serde_json::from_slice(&text).expect("valid JSON");
        assert_eq!(
            v,
            serde_json::json!({"event": "client-typing", "channel": "presence-r", "data": {"a": 1}, "user_id": "u\"1"})
        );
        let text = client_event("client-x", "private-r", r#""hi""#, None);
        assert_eq!(text, br#"{"event":"client-x","channel":"private-r","data":"hi"}"#);
        assert_eq!(cache_miss("cache-x"), br#"{"event":"pusher:cache_miss","channel":"cache-x"}"#);
        let v: serde_json::Value =
            serde_json::from_slice(&signin_success(r#"{"id":"1"}"#)).expect("json");
        assert_eq!(v["data"]["user_data"], r#"{"id":"1"}"#);
    }

    #[test]
    fn errors_and_events() {
        assert_eq!(
            error(None, "Invalid JSON"),
            br#"{"event":"pusher:error","data":{"code":null,"message":"Invalid JSON"}}"#
        );
        assert_eq!(ping_pong("pusher:pong"), br#"{"event":"pusher:pong","data":{}}"#);
        assert_eq!(
            unsubscription_succeeded("news"),
            br#"{"event":"pusher_internal:unsubscription_succeeded","channel":"news","data":{}}"#
        );
        assert_eq!(
            subscription_succeeded("news"),
            br#"{"event":"pusher_internal:subscription_succeeded","channel":"news","data":"{}"}"#
        );
        assert_eq!(
            channel_event("e", "c", "say \"hi\""),
            br#"{"event":"e","channel":"c","data":"say \"hi\""}"#
        );
    }
}
