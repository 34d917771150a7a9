//! Notices and delayed delivery, with pushgate as the store (`[im] durable = true`): one notice
//! at a time, re-sent on reconnect and after a restart until acknowledged, new devices start at
//! connect time, `onlinePushOnce`, broadcasts to members, retries, and `deliverAfter` (also
//! across a restart).

use crate::{
    backend::{Behavior, Mock},
    common::{im::ImClient, Server},
    config, store_dir, store_toml,
};
use prost::Message;
use pushgate::dialect::im::pb::{AckNoticeDataReq, SendMsgListReq};
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A durable server on `dir` with `mock` as every backend.
fn durable(mock: &Mock, dir: &std::path::Path, shards: usize) -> Server {
    Server::start(&config(mock, "durable = true", &store_toml(dir)), shards)
}

/// Adds a notice to `user` (created at `at` ms, or now when 0).
fn notice(server: &Server, user: &str, conv: &str, id: &str, at: u64, once: bool) {
    let at = if at == 0 { String::new() } else { at.to_string() };
    let body = json!({"userId": user, "noticeData": {"convId": conv, "noticeId": id, "createTime": at,
        "title": format!("title {id}"), "options": {"onlinePushOnce": once}}});
    let (status, answer) = server.im_post("/im/sendNoticeData", &body);
    assert_eq!(status, 200, "{answer}");
}

/// The id of the one notice in the next push.
fn next_notice(client: &mut ImClient) -> String {
    let list = client.recv().notices();
    assert_eq!(list.notice_data_list.len(), 1, "one notice at a time");
    list.notice_data_list[0].notice_id.clone()
}

fn ack(client: &mut ImClient, conv: &str, id: &str) {
    let ack = AckNoticeDataReq { notice_id: id.into(), conv_id: conv.into(), ..Default::default() };
    client.request(3, &format!("ack-{id}"), &ack.encode_to_vec());
    let resp = client.response();
    assert_eq!((resp.event, resp.code), (3, 0), "ack answered by the gateway");
}

#[test]
/// Feature line F001-17 (../shared/reference/seed-systems.md).
fn f001_17_an_unacked_notice_is_sent_again_on_reconnect_and_an_ack_brings_the_next() {
    let (mock, dir) = (Mock::grpc(), store_dir());
    let server = durable(&mock, &dir, 2);
    // Added out of order, before the device first connects (they are newer than its start).
    let t = now_ms() + 60_000;
    notice(&server, "n1", "notice:sys", "second", t + 1, false);
    notice(&server, "n1", "notice:sys", "first", t, false);
    notice(&server, "n1", "notice:other", "third", t + 2, false);
    let mut client = ImClient::connect(&server, "n1", "ios", "d");
    assert_eq!(next_notice(&mut client), "first", "oldest first");
    assert_eq!(client.try_recv(300), None, "nothing more until acknowledged");
    drop(client);
    let mut client = ImClient::connect(&server, "n1", "ios", "d");
    assert_eq!(next_notice(&mut client), "first", "again after a reconnect");
    ack(&mut client, "notice:sys", "first");
    assert_eq!(next_notice(&mut client), "second");
    ack(&mut client, "notice:sys", "first");
    assert_eq!(client.try_recv(300), None, "an ack that moves nothing pushes nothing");
    ack(&mut client, "notice:sys", "second");
    assert_eq!(next_notice(&mut client), "third", "across conversations, in time order");
    ack(&mut client, "notice:other", "third");
    assert_eq!(client.try_recv(300), None);
    assert!(mock.calls("/pb.noticeService/AckNoticeData").is_empty(), "the gateway is the store");
}

#[test]
/// Feature line F001-17 (../shared/reference/seed-systems.md).
fn f001_17_notices_and_cursors_survive_a_server_restart() {
    let (mock, dir) = (Mock::grpc(), store_dir());
    let server = durable(&mock, &dir, 1);
    let mut client = ImClient::connect(&server, "n2", "web", "d");
    let t = now_ms() + 60_000;
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        notice(&server, "n2", "notice:sys", id, t + i as u64, false);
    }
    assert_eq!(next_notice(&mut client), "a");
    ack(&mut client, "notice:sys", "a");
    assert_eq!(next_notice(&mut client), "b");
    drop(client);
    drop(server); // killed: no clean shutdown
    let server = durable(&mock, &dir, 2);
    let mut client = ImClient::connect(&server, "n2", "web", "d");
    assert_eq!(next_notice(&mut client), "b", "unacked, pushed again after the restart");
    ack(&mut client, "notice:sys", "b");
    assert_eq!(next_notice(&mut client), "c");
}

#[test]
/// Feature line F001-18 (../shared/reference/seed-systems.md).
fn f001_18_a_new_devices_cursor_starts_at_its_first_connect() {
    let (mock, dir) = (Mock::grpc(), store_dir());
    let server = durable(&mock, &dir, 1);
    let mut old = ImClient::connect(&server, "n3", "ios", "old");
    std::thread::sleep(Duration::from_millis(20));
    notice(&server, "n3", "notice:sys", "before", 0, false);
    assert_eq!(next_notice(&mut old), "before");
    std::thread::sleep(Duration::from_millis(20));
    let mut new = ImClient::connect(&server, "n3", "ios", "new");
    assert_eq!(new.try_recv(300), None, "older than the device: not replayed");
    notice(&server, "n3", "notice:sys", "after", 0, false);
    assert_eq!(next_notice(&mut new), "after");
    assert_eq!(old.try_recv(200), None, "the old device still waits for its ack of `before`");
}

#[test]
/// Feature line F001-19 (../shared/reference/seed-systems.md).
fn f001_19_an_online_push_once_notice_is_pushed_at_most_once() {
    let (mock, dir) = (Mock::grpc(), store_dir());
    let server = durable(&mock, &dir, 1);
    let mut client = ImClient::connect(&server, "n4", "ios", "d");
    let t = now_ms() + 60_000;
    notice(&server, "n4", "notice:sys", "once", t, true);
    notice(&server, "n4", "notice:sys", "kept", t + 1, false);
    let first = client.recv().notices();
    assert_eq!(first.notice_data_list[0].notice_id, "once");
    assert_eq!(first.notice_data_list[0].options.as_ref().map(|o| o.online_push_once), Some(true));
    drop(client);
    let mut client = ImClient::connect(&server, "n4", "ios", "d");
    assert_eq!(next_notice(&mut client), "kept", "the spent one is skipped");
}

#[test]
/// Feature line F001-17 (../shared/reference/seed-systems.md).
fn f001_17_a_broadcast_notice_reaches_the_members_of_its_conversation() {
    let (mock, dir) = (Mock::grpc(), store_dir());
    let server = durable(&mock, &dir, 2);
    let mut members: Vec<ImClient> =
        ["m1", "m2"].iter().map(|u| ImClient::connect(&server, u, "ios", "d")).collect();
    let mut outsider = ImClient::connect(&server, "m3", "ios", "d");
    let (status, _) = server.im_post(
        "/im/convMembers",
        &json!({"convId": "group:g", "add": ["m1", "m2", "m3"], "remove": ["m3"]}),
    );
    assert_eq!(status, 200);
    let body = json!({"isBroadcast": true, "noticeData": {"convId": "group:g", "noticeId": "all"}});
    assert_eq!(server.im_post("/im/sendNoticeData", &body).0, 200);
    for member in &mut members {
        assert_eq!(next_notice(member), "all");
    }
    assert_eq!(outsider.try_recv(300), None);
    let both = json!({"userId": "m1", "isBroadcast": true, "noticeData": {"convId": "c", "noticeId": "x"}});
    assert_eq!(server.im_post("/im/sendNoticeData", &both).0, 400);
}

#[test]
/// Feature line F001-20 (../shared/reference/seed-systems.md).
fn f001_20_a_failed_delayed_send_is_retried_until_the_backend_takes_it() {
    let (mock, dir) = (Mock::grpc(), store_dir());
    mock.set("/pb.msgService/SendMsgListAsync", Behavior::FailFirst(2));
    let server = durable(&mock, &dir, 1);
    let mut client = ImClient::connect(&server, "r1", "ios", "d");
    let req = SendMsgListReq { deliver_after: Some(1), ..Default::default() };
    client.request(0, "later", &req.encode_to_vec());
    assert_eq!(client.response().code, 0);
    mock.wait_calls("/pb.msgService/SendMsgListAsync", 3);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(mock.calls("/pb.msgService/SendMsgListAsync").len(), 3, "deleted once taken");
}

#[test]
/// Feature line F001-21 (../shared/reference/seed-systems.md).
fn f001_21_deliver_after_holds_the_request_then_sends_it_without_deliver_after() {
    let (mock, dir) = (Mock::grpc(), store_dir());
    let server = durable(&mock, &dir, 2);
    let mut client = ImClient::connect(&server, "r2", "ios", "d");
    let req = SendMsgListReq { deliver_after: Some(1), ..Default::default() };
    let sent = Instant::now();
    client.request(0, "later", &req.encode_to_vec());
    let resp = client.response();
    assert_eq!((resp.req_id.as_str(), resp.code), ("later", 0), "accepted once on disk");
    let calls = mock.wait_calls("/pb.msgService/SendMsgListAsync", 1);
    assert!(sent.elapsed() >= Duration::from_secs(1), "not before its time");
    let got = SendMsgListReq::decode(&calls[0].body[..]).expect("SendMsgListReq");
    assert_eq!(got.deliver_after, None, "the backend is not asked to delay again");
    assert_eq!(got.common_req.map(|c| c.user_id), Some("r2".into()));
}

#[test]
/// Feature line F001-21 (../shared/reference/seed-systems.md).
fn f001_21_deliver_after_beyond_864000_seconds_is_refused_with_3() {
    let (mock, dir) = (Mock::grpc(), store_dir());
    let server = durable(&mock, &dir, 1);
    let mut client = ImClient::connect(&server, "r3", "ios", "d");
    for (after, code) in [(864_001, 3), (-5, 3)] {
        let req = SendMsgListReq { deliver_after: Some(after), ..Default::default() };
        client.request(0, "x", &req.encode_to_vec());
        assert_eq!(client.response().code, code, "deliverAfter {after}");
    }
    assert!(mock.calls("/pb.msgService/SendMsgListAsync").is_empty());
}

#[test]
/// Feature line F001-21 (../shared/reference/seed-systems.md).
fn f001_21_deliver_after_survives_a_restart() {
    let (mock, dir) = (Mock::grpc(), store_dir());
    let server = durable(&mock, &dir, 1);
    let mut client = ImClient::connect(&server, "r4", "ios", "d");
    let req = SendMsgListReq { deliver_after: Some(2), ..Default::default() };
    client.request(0, "held", &req.encode_to_vec());
    assert_eq!(client.response().code, 0);
    drop(client);
    drop(server); // killed before the request is due
    assert!(mock.calls("/pb.msgService/SendMsgListAsync").is_empty());
    let _server = durable(&mock, &dir, 2);
    let calls = mock.wait_calls("/pb.msgService/SendMsgListAsync", 1);
    let got = SendMsgListReq::decode(&calls[0].body[..]).expect("SendMsgListReq");
    assert_eq!(got.common_req.map(|c| c.user_id), Some("r4".into()));
}

#[test]
/// Feature line F001-21 (../shared/reference/seed-systems.md).
fn f001_21_without_the_store_deliver_after_is_left_for_the_backend() {
    let mock = Mock::grpc();
    let server = Server::start(&config(&mock, "", ""), 1);
    let mut client = ImClient::connect(&server, "r5", "ios", "d");
    let req = SendMsgListReq { deliver_after: Some(30), ..Default::default() };
    client.request(0, "now", &req.encode_to_vec());
    assert_eq!(client.response().code, 0);
    let calls = mock.calls("/pb.msgService/SendMsgListAsync");
    let got = SendMsgListReq::decode(&calls[0].body[..]).expect("SendMsgListReq");
    assert_eq!(got.deliver_after, Some(30));
}
