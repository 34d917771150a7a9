//! Client-to-server Pusher messages, parsed with simd-json into the requests the engine acts on.

use simd_json::{prelude::*, BorrowedValue};

/// One understood client message.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Ping,
    Pong,
    Subscribe(Subscribe),
    Unsubscribe {
        channel: String,
    },
    Signin {
        auth: String,
        user_data: String,
    },
    /// A `client-*` event; `data` is the JSON text to relay (a string stays a JSON string).
    ClientEvent {
        event: String,
        channel: String,
        data: String,
    },
    /// A well-formed message with an event name we do not handle.
    Unknown {
        event: String,
    },
}

/// `pusher:subscribe` data.
#[derive(Debug, PartialEq, Eq)]
pub struct Subscribe {
    pub channel: String,
    pub auth: Option<String>,
    pub channel_data: Option<String>,
}

/// Why a client message is refused; the connection lives on after a `pusher:error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("Invalid JSON")]
    InvalidJson,
    #[error("Message must be a JSON object with a string `event`")]
    MissingEvent,
    #[error("`{0}` needs `data.channel` as a string")]
    MissingChannel(String),
    #[error("`{0}` needs `data.{1}` as a string")]
    MissingField(String, &'static str),
}

/// Parses one text message. `text` is used as simd-json's scratch space and is clobbered.
pub fn parse(text: &mut [u8]) -> Result<Request, InboundError> {
    let value = simd_json::to_borrowed_value(text).map_err(|_| InboundError::InvalidJson)?;
    let event = value.get_str("event").ok_or(InboundError::MissingEvent)?;
    let data = value.get("data");
    Ok(match event {
        "pusher:ping" => Request::Ping,
        "pusher:pong" => Request::Pong,
        "pusher:subscribe" => {
            let data = data_object(data);
            let field = |name| data.as_ref().and_then(|d| d.get_str(name)).map(str::to_string);
            let channel = field("channel").ok_or_else(|| missing_channel(event))?;
            Request::Subscribe(Subscribe {
                channel,
                auth: field("auth").filter(|a| !a.is_empty()),
                channel_data: field("channel_data"),
            })
        }
        "pusher:unsubscribe" => {
            let data = data_object(data);
            let channel = data.as_ref().and_then(|d| d.get_str("channel"));
            let channel = channel.ok_or_else(|| missing_channel(event))?.to_string();
            Request::Unsubscribe { channel }
        }
        "pusher:signin" => {
            let data = data_object(data);
            let field = |name| data.as_ref().and_then(|d| d.get_str(name)).map(str::to_string);
            let auth = field("auth").ok_or(InboundError::MissingField(event.into(), "auth"))?;
            let user_data =
                field("user_data").ok_or(InboundError::MissingField(event.into(), "user_data"))?;
            Request::Signin { auth, user_data }
        }
        client if client.starts_with("client-") => {
            let channel = value.get_str("channel").ok_or_else(|| missing_channel(event))?;
            let data = match data {
                Some(d) => d.encode(),
                None => "null".to_string(),
            };
            Request::ClientEvent { event: client.into(), channel: channel.into(), data }
        }
        other => Request::Unknown { event: other.into() },
    })
}

fn missing_channel(event: &str) -> InboundError {
    InboundError::MissingChannel(event.to_string())
}

/// `data` as an object: some clients send it as a JSON string holding the object.
fn data_object(data: Option<&BorrowedValue<'_>>) -> Option<simd_json::OwnedValue> {
    let data = data?;
    if let Some(text) = data.as_str() {
        let mut bytes = text.as_bytes().to_vec();
        return simd_json::to_owned_value(&mut bytes).ok().filter(|v| v.is_object());
    }
    data.is_object().then(|| data.clone().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Request, InboundError> {
        parse(&mut s.as_bytes().to_vec())
    }

    #[test]
    fn ping_and_pong() {
        assert_eq!(p(r#"{"event":"pusher:ping","data":{}}"#), Ok(Request::Ping));
        assert_eq!(p(r#"{"event":"pusher:pong"}"#), Ok(Request::Pong));
    }

    #[test]
    fn subscribe_as_pusher_js_sends_it() {
        let got = p(r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"news"}}"#);
        let want = Subscribe { channel: "news".into(), auth: None, channel_data: None };
        assert_eq!(got, Ok(Request::Subscribe(want)));
        let got = p(
            r#"{"event":"pusher:subscribe","data":{"auth":"k:s","channel":"presence-r","channel_data":"{\"user_id\":\"1\"}"}}"#,
        );
        let want = Subscribe {
            channel: "presence-r".into(),
            auth: Some("k:s".into()),
            channel_data: Some(r#"{"user_id":"1"}"#.into()),
        };
        assert_eq!(got, Ok(Request::Subscribe(want)));
    }

    #[test]
    fn data_given_as_a_json_string() {
        let got = p(r#"{"event":"pusher:unsubscribe","data":"{\"channel\":\"news\"}"}"#);
        assert_eq!(got, Ok(Request::Unsubscribe { channel: "news".into() }));
    }

    #[test]
    fn client_events_keep_their_data() {
        let got = p(r#"{"event":"client-typing","channel":"private-c","data":{"a":[1,2]}}"#);
        assert_eq!(
            got,
            Ok(Request::ClientEvent {
                event: "client-typing".into(),
                channel: "private-c".into(),
                data: r#"{"a":[1,2]}"#.into()
            })
        );
        let got = p(r#"{"event":"client-x","channel":"private-c","data":"hi \"there\""}"#);
        let Ok(Request::ClientEvent { data, .. }) = got else { panic!("{got:?}") };
        assert_eq!(data, r#""hi \"there\"""#);
    }

    #[test]
    fn errors() {
        assert_eq!(p("{not json"), Err(InboundError::InvalidJson));
        assert_eq!(p(""), Err(InboundError::InvalidJson));
        assert_eq!(p("[1,2]"), Err(InboundError::MissingEvent));
        assert_eq!(p(r#"{"event":5}"#), Err(InboundError::MissingEvent));
        assert!(matches!(
            p(r#"{"event":"pusher:subscribe","data":{}}"#),
            Err(InboundError::MissingChannel(_))
        ));
        assert!(matches!(
            p(r#"{"event":"pusher:subscribe","data":{"channel":7}}"#),
            Err(InboundError::MissingChannel(_))
        ));
        assert!(matches!(
            p(r#"{"event":"client-x","data":{}}"#),
            Err(InboundError::MissingChannel(_))
        ));
        assert_eq!(p(r#"{"event":"nope"}"#), Ok(Request::Unknown { event: "nope".into() }));
    }
}
