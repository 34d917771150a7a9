//! Requests: `RequestBody` -> backend -> `PushBody{2, ResponseBody}`, routing by event and by
//! method, the codes for failures, anonymous connections, text frames, concurrency, and the
//! `CommonReq` stamped from the connection.

use crate::{
    backend::{echoed, Behavior, Mock},
    common::{
        im::{Frame, ImClient},
        Server,
    },
    config,
};
use prost::Message;
use pushgate::dialect::im::pb::CommonReq;

/// Data of a request message with a forged `CommonReq` and one more field.
fn forged() -> Vec<u8> {
    let mut data = forged_common();
    prost::encoding::string::encode(2, &"payload".to_string(), &mut data);
    data
}

/// Data with only a forged `CommonReq` (a valid SendMsgListReq too).
fn forged_common() -> Vec<u8> {
    let forged =
        CommonReq { user_id: "mallory".into(), token: "stolen".into(), ..CommonReq::default() };
    let mut data = Vec::new();
    prost::encoding::message::encode(1, &forged, &mut data);
    data
}

/// What field 1 of a request says.
#[derive(Clone, PartialEq, prost::Message)]
struct Stamped {
    #[prost(message, optional, tag = "1")]
    common: Option<CommonReq>,
}

#[test]
/// Feature line F001-06 (../shared/reference/seed-systems.md).
fn f001_06_a_request_is_answered_with_a_response_body_echoing_its_req_id() {
    let mock = Mock::grpc();
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut client = ImClient::connect(&server, "u1", "ios", "d");
    client.request(1, "req-1", &[]);
    let frame = client.recv();
    let Frame::Push { event, .. } = &frame else { panic!("{frame:?}") };
    assert_eq!(*event, 2, "PushResponseBody");
    let resp = frame.response();
    assert_eq!((resp.event, resp.req_id.as_str(), resp.code), (1, "req-1", 0));
}

#[test]
/// Feature line F001-07 (../shared/reference/seed-systems.md).
fn f001_07_events_0_to_4_reach_their_backends_and_data_is_the_reply() {
    let mock = Mock::grpc();
    mock.set("/pb.msgService/GetMsgById", Behavior::Answer(5));
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut client = ImClient::connect(&server, "u1", "ios", "d");
    let paths = [
        "/pb.msgService/SendMsgListAsync",
        "/pb.msgService/BatchGetConvSeq",
        "/pb.msgService/BatchGetMsgListByConvId",
        "/pb.noticeService/AckNoticeData",
        "/pb.msgService/GetMsgById",
    ];
    for (event, path) in paths.iter().enumerate() {
        let data = if event == 0 { forged_common() } else { forged() };
        client.request(event as i32, &format!("r{event}"), &data);
        let resp = client.response();
        assert_eq!(resp.req_id, format!("r{event}"));
        assert_eq!(mock.calls(path).len(), 1, "{path}");
        let sent = &mock.calls(path)[0].body;
        assert_eq!(&echoed(&resp.data), sent, "data is the backend's reply");
        let expected = if event == 4 { 5 } else { 0 };
        assert_eq!(resp.code, expected, "CommonResp.code becomes the code");
    }
}

#[test]
/// Feature line F001-07 (../shared/reference/seed-systems.md).
fn f001_07_http_backends_get_a_protobuf_post() {
    let mock = Mock::http();
    let toml = format!(
        "[[im.routes]]\nevent = 1\nurl = \"{}\"\npath = \"/msg/batchGetConvSeq\"\nprotocol = \"http\"\n",
        mock.url()
    );
    let server = Server::start(&toml, 1);
    let mut client = ImClient::connect(&server, "u1", "ios", "d");
    client.request(1, "h", &forged());
    let resp = client.response();
    assert_eq!(resp.code, 0);
    let calls = mock.calls("/msg/batchGetConvSeq");
    assert_eq!(echoed(&resp.data), calls[0].body);
    let common = Stamped::decode(&calls[0].body[..]).expect("decodes").common;
    assert_eq!(common.map(|c| c.user_id), Some("u1".into()));
    mock.set("/msg/batchGetConvSeq", Behavior::Status(500));
    client.request(1, "h2", &[]);
    assert_eq!(client.response().code, 2);
}

#[test]
/// Feature line F001-08 (../shared/reference/seed-systems.md).
fn f001_08_custom_requests_route_by_method_and_unknown_ones_get_3() {
    let mock = Mock::grpc();
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut client = ImClient::connect(&server, "u1", "ios", "d");
    client.custom("/v1/test/echo", "c1", &forged());
    let resp = client.response();
    assert_eq!((resp.event, resp.req_id.as_str(), resp.code), (100, "c1", 0));
    assert_eq!(mock.calls("/test.Svc/Echo").len(), 1);
    client.custom("/v1/nobody/here", "c2", &[]);
    let resp = client.response();
    assert_eq!((resp.event, resp.req_id.as_str(), resp.code), (100, "c2", 3));
    assert!(resp.data.is_empty());
}

#[test]
/// Feature line F001-09 (../shared/reference/seed-systems.md).
fn f001_09_undecodable_data_or_a_failing_backend_gives_2_with_empty_data() {
    let mock = Mock::grpc();
    mock.set("/test.Svc/Fail", Behavior::Status(13));
    mock.set("/test.Svc/Garbage", Behavior::Garbage);
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut client = ImClient::connect(&server, "u1", "ios", "d");
    // RequestBody.data that is not a message.
    client.request(2, "bad-data", &[0x0a, 0x7f]);
    let resp = client.response();
    assert_eq!((resp.req_id.as_str(), resp.code, resp.data.is_empty()), ("bad-data", 2, true));
    // CustomRequestBody that is not one.
    client.request(100, "bad-custom", &[0xff, 0xff, 0xff]);
    assert_eq!(client.response().code, 2);
    client.custom("/v1/test/fail", "fail", &[]);
    let resp = client.response();
    assert_eq!((resp.code, resp.data.is_empty()), (2, true));
    client.custom("/v1/test/garbage", "garbage", &[]);
    assert_eq!(client.response().code, 2, "a reply that is not protobuf");
}

#[test]
/// Feature line F001-10 (../shared/reference/seed-systems.md).
fn f001_10_without_user_and_token_only_white_methods_work() {
    let mock = Mock::grpc();
    let server = Server::start(&config(&mock, "allow_anonymous = true", ""), 1);
    let mut client = ImClient::open(&server, "/ws?platform=web&deviceId=anon").expect("upgrade");
    client.custom("/v1/user/white/login", "login", &[]);
    let first = client.recv();
    assert_ne!(first, Frame::Text("connected".into()), "an anonymous connection is not greeted");
    assert_eq!(first.response().code, 0);
    client.custom("/v1/test/echo", "echo", &[]);
    let resp = client.response();
    assert_eq!((resp.event, resp.code), (100, 4), "AuthError, event CustomRequest");
    client.request(1, "event", &[]);
    assert_eq!(client.response().code, 4);
    assert!(mock.calls("/test.Svc/Echo").is_empty());
}

#[test]
/// Feature line F001-11 (../shared/reference/seed-systems.md).
fn f001_11_text_frames_are_ignored_without_reply_or_disconnect() {
    let mock = Mock::grpc();
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut client = ImClient::connect(&server, "u1", "ios", "d");
    client.ws.send(tungstenite::Message::text("hello")).expect("send text");
    assert_eq!(client.try_recv(300), None);
    client.request(1, "after", &[]);
    assert_eq!(client.response().req_id, "after", "still served");
}

#[test]
/// Feature line F001-12 (../shared/reference/seed-systems.md).
fn f001_12_requests_run_concurrently_and_are_matched_by_req_id() {
    let mock = Mock::grpc();
    mock.set("/test.Svc/Slow", Behavior::Slow(800));
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut client = ImClient::connect(&server, "u1", "ios", "d");
    client.custom("/v1/test/slow", "slow", &[]);
    client.custom("/v1/test/echo", "fast", &[]);
    assert_eq!(client.response().req_id, "fast", "the slow one does not hold the fast one");
    assert_eq!(client.response().req_id, "slow");
}

#[test]
/// Feature line F001-13 (../shared/reference/seed-systems.md).
fn f001_13_backends_get_common_req_from_the_connection_not_the_client() {
    let mock = Mock::grpc();
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut client = ImClient::connect(&server, "u13", "android", "dev13");
    client.custom("/v1/test/echo", "c", &forged());
    assert_eq!(client.response().code, 0);
    let body = &mock.calls("/test.Svc/Echo")[0].body;
    #[derive(Clone, PartialEq, prost::Message)]
    struct Seen {
        #[prost(message, optional, tag = "1")]
        common: Option<CommonReq>,
        #[prost(string, tag = "2")]
        payload: String,
    }
    let seen = Seen::decode(&body[..]).expect("decodes");
    let common = seen.common.expect("CommonReq");
    assert_eq!((common.user_id.as_str(), common.device_id.as_str()), ("u13", "dev13"));
    assert_eq!((common.platform.as_str(), common.device_model.as_str()), ("android", "m"));
    assert_eq!((common.os_version.as_str(), common.app_version.as_str()), ("1", "2"));
    assert_eq!((common.language.as_str(), common.ip.as_str()), ("zh", "127.0.0.1"));
    assert!(common.token.starts_with("ey"), "the connection's token");
    assert_eq!(seen.payload, "payload", "the rest of the request is kept");
}
