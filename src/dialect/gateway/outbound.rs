//! What gateway clients receive, as the original writes it: answers `{"status","body"}` in the
//! request's frame type, the gateway's own error bodies `{"code","message","msgId"}`, pushes
//! `{"status":200,"body":{"topic","msgId","resultData","code":"0","apisix_ts"}}`, pongs with
//! `"uri":"/api/pong"`, and the close reasons (JSON, as the original sends them).

use crate::{
    engine::conn::{queue::Frame, Close},
    ws::frame,
};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// The frame type a request came in; its answer goes back in the same type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Binary,
}

impl Kind {
    /// `payload` as a server frame of this type.
    pub fn frame(self, payload: &[u8]) -> Vec<u8> {
        match self {
            Kind::Text => frame::text(payload),
            Kind::Binary => frame::encode(OpCode::Data(Data::Binary), payload),
        }
    }
}

/// `{"status":status,"body":body}`.
pub fn answer(status: u16, body: &Value) -> Vec<u8> {
    json!({ "status": status, "body": body }).to_string().into_bytes()
}

/// The body of an error the gateway answers itself.
pub fn error_body(code: &str, message: &str, msg_id: &Value) -> Value {
    json!({ "code": code, "message": message, "msgId": msg_id })
}

/// An error answer: `{"status":status,"body":{"code","message","msgId"}}`.
pub fn error(status: u16, code: &str, message: &str, msg_id: &Value) -> Vec<u8> {
    answer(status, &error_body(code, message, msg_id))
}

/// The answer to a frame that is not JSON (the connection stays open).
pub fn decode_error(why: &str) -> Vec<u8> {
    let message = format!("failed to decode websocket frame, err: {why}");
    error(400, "", &message, &Value::String(String::new()))
}

/// A request echoed back as its pong: the same JSON with `"uri":"/api/pong"`.
pub fn pong(mut request: Map<String, Value>) -> Vec<u8> {
    request.insert("uri".into(), Value::String("/api/pong".into()));
    Value::Object(request).to_string().into_bytes()
}

/// The pong payload for a WebSocket ping: a JSON object ping gets itself plus
/// `"uri":"/api/pong"` (when that still fits a control frame); anything else is echoed.
pub fn ping_payload(payload: &[u8]) -> Cow<'_, [u8]> {
    if let Ok(Value::Object(request)) = serde_json::from_slice(payload) {
        let pong = pong(request);
        if pong.len() <= 125 {
            return Cow::Owned(pong);
        }
    }
    Cow::Borrowed(payload)
}

/// A push to every subscriber of `topic`, encoded once. `ts` is `apisix_ts` (ms since the
/// epoch), left out when disabled.
pub fn push(topic: &str, msg_id: &str, result_data: &str, ts: Option<u64>) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("topic".into(), Value::String(topic.into()));
    body.insert("msgId".into(), Value::String(msg_id.into()));
    body.insert("resultData".into(), Value::String(result_data.into()));
    body.insert("code".into(), Value::String("0".into()));
    if let Some(ts) = ts {
        body.insert("apisix_ts".into(), Value::from(ts));
    }
    answer(200, &Value::Object(body))
}

/// A WebSocket ping frame (the server's keepalive probe).
pub fn ping() -> Frame {
    Frame::new(frame::encode(OpCode::Control(Control::Ping), b""))
}

/// The answer to a client's close, as the original: 1000 and this JSON.
pub fn client_close() -> Close {
    Close::fixed(1000, r#"{"message": "connection closed by server"}"#)
}

/// A connection whose queue (pushes or answers waiting) passed its limit.
pub fn over_capacity() -> Close {
    Close::fixed(1008, r#"{"message": "over capacity"}"#)
}

/// No answer to the server's ping within `pong_timeout`.
pub fn ping_timeout() -> Close {
    Close::fixed(1001, r#"{"message": "ping timeout"}"#)
}

pub fn shutting_down() -> Close {
    Close::fixed(1001, r#"{"message": "server shutting down"}"#)
}

/// Close reasons hold at most 123 bytes.
const MAX_REASON: usize = 123;

/// How an upstream's 2000-2999 answer ends the connection: the answer as the close frame's
/// payload (code 1000), as the original sends it. An answer longer than a close frame can
/// carry goes first as a frame of its own, and the close carries `{"status":401}` plus the
/// code and msgId when they fit.
pub fn unauthorized(body: &Value) -> (Option<Vec<u8>>, Close) {
    let whole = String::from_utf8(answer(401, body)).unwrap_or_default();
    if whole.len() <= MAX_REASON {
        return (None, Close { code: 1000, reason: Cow::Owned(whole) });
    }
    let short =
        json!({ "status": 401, "body": { "code": body.get("code"), "msgId": body.get("msgId") } })
            .to_string();
    let reason = if short.len() <= MAX_REASON { short } else { r#"{"status":401}"#.to_string() };
    (Some(whole.into_bytes()), Close { code: 1000, reason: Cow::Owned(reason) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("json")
    }

    #[test]
    fn answers_and_errors_have_the_original_shape() {
        let v = parse(&error(404, "4041", "404 Route Not Found", &json!("7")));
        assert_eq!(
            v,
            json!({"status": 404, "body": {"code": "4041", "message": "404 Route Not Found", "msgId": "7"}})
        );
        let v = parse(&decode_error("expected value at line 1 column 1"));
        assert_eq!(v["status"], 400);
        assert_eq!(v["body"]["msgId"], "");
        assert_eq!(v["body"]["code"], "");
        assert_eq!(
            v["body"]["message"],
            "failed to decode websocket frame, err: expected value at line 1 column 1"
        );
    }

    #[test]
    fn pushes_carry_apisix_ts_unless_disabled() {
        let v = parse(&push("hq_1", "1234", "q123", Some(1_708_000_000_123)));
        assert_eq!(
            v,
            json!({"status": 200, "body": {"topic": "hq_1", "msgId": "1234", "resultData": "q123",
                   "code": "0", "apisix_ts": 1_708_000_000_123u64}})
        );
        assert!(parse(&push("t", "", "x", None))["body"].get("apisix_ts").is_none());
    }

    #[test]
    fn pings_with_json_get_the_uri_added() {
        let pong = ping_payload(br#"{"msgId":"123"}"#);
        assert_eq!(parse(&pong), json!({"msgId": "123", "uri": "/api/pong"}));
        assert_eq!(&*ping_payload(b"hello"), b"hello");
        assert_eq!(&*ping_payload(b""), b"");
        let long = format!(r#"{{"x":"{}"}}"#, "a".repeat(110));
        assert_eq!(&*ping_payload(long.as_bytes()), long.as_bytes());
    }

    #[test]
    fn an_unauthorized_answer_is_the_close_payload_when_it_fits() {
        let body = json!({"code": "2001", "message": "denied", "msgId": "11"});
        let (before, close) = unauthorized(&body);
        assert!(before.is_none());
        assert_eq!(close.code, 1000);
        assert_eq!(parse(close.reason.as_bytes()), json!({"status": 401, "body": body}));
        let long = json!({"code": "2001", "message": "x".repeat(200), "msgId": "11"});
        let (before, close) = unauthorized(&long);
        assert_eq!(parse(&before.expect("sent first"))["body"], long);
        assert_eq!(
            parse(close.reason.as_bytes()),
            json!({"status": 401, "body": {"code": "2001", "msgId": "11"}})
        );
    }

    #[test]
    fn binary_requests_get_binary_answers() {
        assert_eq!(Kind::Binary.frame(b"{}"), vec![0x82, 2, b'{', b'}']);
        assert_eq!(Kind::Text.frame(b"{}"), vec![0x81, 2, b'{', b'}']);
    }
}
