//! What the server sends: the text frame `connected`, and binary `PushBody` frames (a response,
//! a message list, a notice list). A push for many connections is encoded once and the same
//! bytes are queued on each.

use super::pb::{ActiveEvent, Code, NoticeData, NoticeDataList, PushBody, PushEvent, ResponseBody};
use crate::{engine::conn::queue::Frame, ws::frame};
use bytes::Bytes;
use prost::Message;
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// The first frame of an authenticated connection.
pub fn connected() -> Frame {
    Frame::new(frame::text(b"connected"))
}

/// A binary WebSocket frame holding `PushBody{event, data}`.
pub fn push(event: i32, data: Bytes) -> Bytes {
    let body = PushBody { event, data }.encode_to_vec();
    Bytes::from(frame::encode(OpCode::Data(Data::Binary), &body))
}

/// The answer to a request: `PushBody{PushResponseBody, ResponseBody{...}}`.
pub fn response(event: i32, req_id: &str, code: Code, data: Bytes) -> Frame {
    let body = ResponseBody { event, req_id: req_id.to_string(), code: code as i32, data };
    Frame::new(push(PushEvent::PushResponseBody as i32, body.encode_to_vec().into()))
}

/// A response with a code from the backend (kept as the number it sent).
pub fn response_code(event: i32, req_id: &str, code: i32, data: Bytes) -> Frame {
    let body = ResponseBody { event, req_id: req_id.to_string(), code, data };
    Frame::new(push(PushEvent::PushResponseBody as i32, body.encode_to_vec().into()))
}

/// An error answer with no data; unauthenticated calls say `CustomRequest`, as xxim does.
pub fn error(event: i32, req_id: &str, code: Code) -> Frame {
    let event = if code == Code::AuthError { ActiveEvent::CustomRequest as i32 } else { event };
    response(event, req_id, code, Bytes::new())
}

/// One notice, alone in a `NoticeDataList` (notices go out one at a time).
pub fn notice(notice: NoticeData) -> Bytes {
    let list = NoticeDataList { notice_data_list: vec![notice] };
    push(PushEvent::PushNoticeDataList as i32, list.encode_to_vec().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_a_binary_push_body() {
        let frame = response(100, "r1", Code::RequestError, Bytes::new());
        let bytes = frame.bytes();
        assert_eq!(bytes[0], 0x82, "final binary frame");
        let body = PushBody::decode(&bytes[2..]).expect("push body");
        assert_eq!(body.event, PushEvent::PushResponseBody as i32);
        let resp = ResponseBody::decode(body.data).expect("response body");
        assert_eq!((resp.event, resp.req_id.as_str(), resp.code), (100, "r1", 3));
    }

    #[test]
    fn auth_errors_name_the_custom_event() {
        let frame = error(0, "r", Code::AuthError);
        let body = PushBody::decode(&frame.bytes()[2..]).expect("push body");
        assert_eq!(ResponseBody::decode(body.data).expect("resp").event, 100);
    }
}
