//! Server messages of the WSX protocol, as Zato's `ServerMessage` serializes them: a `meta`
//! (id, timestamp, msg_type, and for responses the status and `in_reply_to`) and a `data`.
//! `zwsx.rspa` answers a `create-session` with the token, `zwsx.rspok` and `zwsx.rsperr`
//! answer service calls, `zwsx.merr` reports an error no request asked for, and `zwsx.psrq`
//! carries pub/sub messages (fire-and-forget). Each is a ready WebSocket text frame.

use super::ids;
use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::{Control, OpCode};

fn frame(value: &Value) -> Vec<u8> {
    crate::ws::frame::text(value.to_string().as_bytes())
}

fn meta(msg_type: &str, id: &str) -> serde_json::Map<String, Value> {
    let mut meta = serde_json::Map::new();
    meta.insert("id".into(), json!(id));
    meta.insert("timestamp".into(), json!(ids::iso(ids::now_micros())));
    meta.insert("msg_type".into(), json!(msg_type));
    meta
}

/// A response to client request `in_reply_to` (`None` when the request had no id).
fn response(
    msg_type: &str,
    in_reply_to: Option<&str>,
    status: u16,
) -> serde_json::Map<String, Value> {
    let mut meta = meta(msg_type, &ids::cid());
    meta.insert("status".into(), json!(status));
    if let Some(id) = in_reply_to {
        meta.insert("in_reply_to".into(), json!(id));
    }
    meta
}

/// `zwsx.rspa`: the session is created; `data.token` goes in every later request.
pub fn session(in_reply_to: Option<&str>, token: &str) -> Vec<u8> {
    let meta = response("zwsx.rspa", in_reply_to, 200);
    frame(&json!({"meta": meta, "data": {"token": token}}))
}

/// `zwsx.rspok`: a service call's answer.
pub fn ok(in_reply_to: Option<&str>, data: Value) -> Vec<u8> {
    let meta = response("zwsx.rspok", in_reply_to, 200);
    let mut message = json!({"meta": meta});
    if !data.is_null() {
        message["data"] = data;
    }
    frame(&message)
}

/// `zwsx.rsperr`: a service call failed with `status`.
pub fn error(in_reply_to: Option<&str>, status: u16, message: &str) -> Vec<u8> {
    let mut meta = response("zwsx.rsperr", in_reply_to, status);
    meta.insert("error_message".into(), json!(message));
    let cid = meta.get("id").cloned().unwrap_or(Value::Null);
    frame(&json!({"meta": meta, "data": {"cid": cid}}))
}

/// `zwsx.merr`: the client is not allowed (bad credentials, token); the connection closes.
pub fn forbidden() -> Vec<u8> {
    let mut meta = meta("zwsx.merr", &ids::cid());
    meta.insert("status".into(), json!(403));
    frame(&json!({"meta": meta, "data": super::close::FORBIDDEN.reason}))
}

/// `zwsx.psrq`: pub/sub messages (one external message, or a list) for the client.
pub fn psrq(id: &str, data: Value) -> Vec<u8> {
    frame(&json!({"meta": meta("zwsx.psrq", id), "data": data}))
}

/// The keepalive ping: a WebSocket ping whose payload is a compact `zwsx.rqc` meta, as
/// Zato's (under the 125 bytes a control frame may carry).
pub fn ping() -> Vec<u8> {
    let payload = b"{\"meta\":{\"id\":\"zato-keep-alive-ping\",\"msg_type\":\"zwsx.rqc\"}}";
    crate::ws::frame::encode(OpCode::Control(Control::Ping), payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(frame: &[u8]) -> Value {
        // A short server text frame: two header bytes (or four past 125 bytes), no mask.
        let start = if frame[1] == 126 { 4 } else { 2 };
        serde_json::from_slice(&frame[start..]).expect("json")
    }

    #[test]
    fn messages_have_zatos_meta() {
        let value = parse(&session(Some("zwsxc.auth.1"), "zwsxt.abc"));
        assert_eq!(value["meta"]["msg_type"], "zwsx.rspa");
        assert_eq!(value["meta"]["in_reply_to"], "zwsxc.auth.1");
        assert_eq!(value["meta"]["status"], 200);
        assert_eq!(value["data"]["token"], "zwsxt.abc");
        let value = parse(&psrq("zpsm1", json!({"data": "x"})));
        assert_eq!(value["meta"]["msg_type"], "zwsx.psrq");
        assert_eq!(value["meta"]["id"], "zpsm1");
        assert!(value["meta"]["timestamp"].as_str().is_some_and(|t| t.contains('T')));
        assert!(value["meta"].get("status").is_none(), "a request to the client has no status");
        let value = parse(&error(Some("r1"), 404, "Not found"));
        assert_eq!(value["meta"]["error_message"], "Not found");
        assert!(ping().len() <= 127);
    }
}
