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
    let data = String::from_utf8(to_json(&Data {
        socket_id,
        activity_timeout,
    }))
    .unwrap_or_default();
    to_json(&Envelope {
        event: "pusher:connection_established",
        channel: None,
        data: &data,
    })
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
    to_json(&Error {
        event: "pusher:error",
        data: Data { code, message },
    })
}

/// `pusher:pong` (and `pusher:ping` when the server probes a silent client).
pub fn ping_pong(event: &'static str) -> Vec<u8> {
    format!(r#"{{"event":"{event}","data":{{}}}}"#).into_bytes()
}

/// `pusher_internal:subscription_succeeded` for a non-presence channel.
pub fn subscription_succeeded(channel: &str) -> Vec<u8> {
    channel_event("pusher_internal:subscription_succeeded", channel, "{}")
}

/// A channel event: `{"event","channel","data"}` with `data` already a string.
pub fn channel_event(event: &str, channel: &str, data: &str) -> Vec<u8> {
    to_json(&Envelope {
        event,
        channel: Some(channel),
        data,
    })
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
    fn errors_and_events() {
        assert_eq!(
            error(None, "Invalid JSON"),
            br#"{"event":"pusher:error","data":{"code":null,"message":"Invalid JSON"}}"#
        );
        assert_eq!(
            ping_pong("pusher:pong"),
            br#"{"event":"pusher:pong","data":{}}"#
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
