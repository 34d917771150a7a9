//! The publish API of the API7 Push Gateway, `pushserverpb.Push/Msg`, as prost messages written
//! by hand (derive macros only: no `.proto` compilation, no protoc), and the reading of one call.
//!
//! The original is closed source; what is known comes from its tests (reference 1.5): the topic
//! and message id travel as metadata `topic` and `msgid`, the message is `{ bytes body = 1 }`.
//! The reply is our choice: `{ string msgId = 1 }`, the id the push went out with. A client
//! built against an empty reply message decodes it too (protobuf skips unknown fields), so
//! grpcurl and callers written for the original both work. As a `.proto`:
//!
//! ```proto
//! syntax = "proto3";
//! package pushserverpb;
//! service Push { rpc Msg (MsgRequest) returns (MsgReply); }
//! message MsgRequest { bytes body = 1; }
//! message MsgReply { string msgId = 1; }
//! ```

use bytes::Bytes;
use prost::Message;

use super::{
    server::{GrpcResponse, H2Request},
    wire::Code,
};

/// The method's path on the wire.
pub const MSG_PATH: &str = "/pushserverpb.Push/Msg";

/// The request: the payload pushed to the topic's subscribers, as `resultData`.
#[derive(Clone, PartialEq, Message)]
pub struct MsgRequest {
    #[prost(bytes = "bytes", tag = "1")]
    pub body: Bytes,
}

/// The reply: the message id the push was sent with (the `msgid` metadata).
#[derive(Clone, PartialEq, Message)]
pub struct MsgReply {
    #[prost(string, tag = "1")]
    pub msg_id: String,
}

/// One publish, read from a `Msg` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    /// Empty when the caller sent no `msgid`.
    pub msg_id: String,
    pub body: Bytes,
}

impl Publish {
    /// Reads a `Msg` call, or the status to refuse it with: INVALID_ARGUMENT without a
    /// `topic` or with a message that does not decode.
    pub fn from_request(request: &H2Request) -> Result<Publish, GrpcResponse> {
        let topic = request.header("topic").filter(|t| !t.is_empty());
        let topic = topic.ok_or_else(|| invalid("metadata \"topic\" is required"))?;
        let message = MsgRequest::decode(request.body.clone())
            .map_err(|e| invalid(format!("bad MsgRequest: {e}")))?;
        Ok(Publish {
            topic: topic.to_string(),
            msg_id: request.header("msgid").unwrap_or_default().to_string(),
            body: message.body,
        })
    }

    /// The OK answer to this publish.
    pub fn reply(&self) -> GrpcResponse {
        let reply = MsgReply { msg_id: self.msg_id.clone() };
        GrpcResponse::ok(Bytes::from(reply.encode_to_vec()))
    }
}

fn invalid(why: impl Into<String>) -> GrpcResponse {
    GrpcResponse::error(Code::INVALID_ARGUMENT, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg_call(topic: Option<&str>, msg_id: Option<&str>, body: &[u8]) -> H2Request {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [("topic", topic), ("msgid", msg_id)] {
            if let Some(value) = value {
                headers.insert(name, value.parse().expect("header"));
            }
        }
        let path = MSG_PATH.to_string();
        let body = Bytes::copy_from_slice(body);
        H2Request { method: http::Method::POST, path, headers, body, grpc: true }
    }

    #[test]
    fn the_request_is_bytes_body_field_one() {
        // grpcurl -d '{"body":"cTEyMw=="}': field 1, length-delimited, "q123".
        let wire = b"\x0a\x04q123";
        assert_eq!(MsgRequest::decode(&wire[..]).expect("decode").body, "q123");
        let message = MsgRequest { body: Bytes::from_static(b"q123") };
        assert_eq!(message.encode_to_vec(), wire);
    }

    #[test]
    fn a_call_gives_topic_msgid_and_body() {
        let call = msg_call(Some("hq_100001_123"), Some("1234"), b"\x0a\x04q123");
        let publish = Publish::from_request(&call).expect("publish");
        assert_eq!(publish.topic, "hq_100001_123");
        assert_eq!(publish.msg_id, "1234");
        assert_eq!(publish.body, "q123");
        let reply = publish.reply();
        assert_eq!(reply.status, Code::OK);
        assert_eq!(MsgReply::decode(reply.body).expect("reply").msg_id, "1234");
    }

    #[test]
    fn a_call_without_topic_or_with_a_bad_message_is_refused() {
        let no_topic = Publish::from_request(&msg_call(None, Some("1"), b""));
        assert_eq!(no_topic.expect_err("no topic").status, Code::INVALID_ARGUMENT);
        let bad = Publish::from_request(&msg_call(Some("t"), None, b"\x0a\x09short"));
        assert_eq!(bad.expect_err("truncated").status, Code::INVALID_ARGUMENT);
        let empty = Publish::from_request(&msg_call(Some("t"), None, b"")).expect("empty body");
        assert_eq!((empty.msg_id.as_str(), empty.body.len()), ("", 0));
    }
}
