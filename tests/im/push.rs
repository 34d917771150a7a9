//! The push API: `SendMsg` (AND filter, one frame per matching connection, failed users),
//! across shards, over JSON and gRPC; `GetUserConn`; the key; message and notice list pushes.

use crate::common::{
    im::{Frame, ImClient, API_KEY},
    Server,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use glommio::{LocalExecutorBuilder, Placement};
use prost::Message;
use pushgate::{
    dialect::im::pb::{
        GetUserConnReq, GetUserConnResp, MsgData, MsgDataList, NoticeData, NoticeDataList,
        SendMsgReq, SendMsgResp,
    },
    upstream::grpc::{Code, GrpcClient, GrpcConfig, GrpcReply},
};
use serde_json::json;

/// One gRPC call to the server's client port.
fn grpc(server: &Server, path: &str, message: Vec<u8>, key: Option<&str>) -> GrpcReply {
    let url = format!("http://127.0.0.1:{}", server.port);
    let (path, key) = (path.to_string(), key.map(|k| format!("Bearer {k}")));
    // On a thread of its own: the executor's signals must not interrupt this thread's reads.
    std::thread::spawn(move || {
        let executor = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(256 * 1024)
            .make()
            .expect("glommio executor");
        executor.run(async move {
            let client = GrpcClient::new(&url, GrpcConfig::default()).expect("client");
            let metadata: Vec<(String, String)> =
                key.into_iter().map(|k| ("authorization".to_string(), k)).collect();
            client.call(&path, &message, &metadata).await.expect("an answer")
        })
    })
    .join()
    .expect("the gRPC thread")
}

fn msg_list(text: &str) -> Vec<u8> {
    let msg = MsgData {
        conv_id: "single:a-b".into(),
        content: text.as_bytes().to_vec().into(),
        ..MsgData::default()
    };
    MsgDataList { msg_data_list: vec![msg] }.encode_to_vec()
}

#[test]
/// Feature line F001-14 (../shared/reference/seed-systems.md).
fn f001_14_send_msg_pushes_to_the_matching_connections_and_lists_the_failed_users() {
    let server = Server::start("", 1);
    let mut a_ios = ImClient::connect(&server, "a", "ios", "d1");
    let mut a_web = ImClient::connect(&server, "a", "web", "d2");
    let mut b_ios = ImClient::connect(&server, "b", "ios", "d3");
    let data = STANDARD.encode(msg_list("hi"));
    let body =
        json!({"userIds": ["a", "b", "nobody"], "platforms": ["ios"], "event": 0, "data": data});
    let (status, answer) = server.im_post("/im/sendMsg", &body);
    assert_eq!(status, 200, "{answer}");
    let mut success: Vec<&str> = answer["successConnParams"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["deviceId"].as_str())
        .collect();
    success.sort();
    assert_eq!(success, ["d1", "d3"]);
    assert_eq!(
        answer["failedConnParams"],
        json!([{"userId": "nobody", "token": "", "deviceId": "",
        "platform": "", "ips": "", "networkUsed": "", "headers": {}, "podIp": "", "deviceModel": "",
        "osVersion": "", "appVersion": "", "language": ""}])
    );
    for client in [&mut a_ios, &mut b_ios] {
        let Frame::Push { event: 0, data } = client.recv() else { panic!("a message push") };
        let list = MsgDataList::decode(&data[..]).expect("MsgDataList");
        assert_eq!(&list.msg_data_list[0].content[..], b"hi");
    }
    assert_eq!(a_web.try_recv(300), None, "the platform filter left it out");
    let counted =
        json!({"userIds": ["a", "ghost"], "platforms": ["ios"], "data": data, "onlyFailed": true});
    let (_, answer) = server.im_post("/im/sendMsg", &counted);
    assert_eq!(answer["successCount"], 1, "{answer}");
    assert_eq!(answer["failedConnParams"][0]["userId"], "ghost");
    assert!(answer.get("successConnParams").is_none());
    assert!(matches!(a_ios.recv(), Frame::Push { event: 0, .. }));
    let (_, all) = server.im_post("/im/sendMsg", &json!({"devices": ["d2"], "data": ""}));
    assert_eq!(all["successConnParams"].as_array().map(Vec::len), Some(1));
    assert!(matches!(a_web.recv(), Frame::Push { event: 0, .. }));
}

#[test]
/// Feature line F001-15 (../shared/reference/seed-systems.md).
fn f001_15_a_push_reaches_connections_on_every_shard_and_the_answers_merge() {
    let server = Server::start("", 2);
    let users: Vec<String> = (0..16).map(|i| format!("user{i}")).collect();
    let mut clients: Vec<ImClient> =
        users.iter().map(|u| ImClient::connect(&server, u, "ios", "d")).collect();
    let body = json!({"userIds": users, "event": "PushMsgDataList", "data": STANDARD.encode(msg_list("all"))});
    let (_, answer) = server.im_post("/im/sendMsg", &body);
    assert_eq!(answer["successConnParams"].as_array().map(Vec::len), Some(16), "{answer}");
    for client in &mut clients {
        assert!(matches!(client.recv(), Frame::Push { event: 0, .. }));
    }
    let (_, everyone) = server.im_post("/im/getUserConn", &json!({}));
    assert_eq!(everyone["connParams"].as_array().map(Vec::len), Some(16), "no filter: every shard");
}

#[test]
/// Feature line F001-14 (../shared/reference/seed-systems.md).
fn f001_14_send_msg_and_get_user_conn_over_grpc_with_the_key() {
    let server = Server::start("", 2);
    let mut client = ImClient::connect(&server, "g1", "ios", "d");
    let request = SendMsgReq {
        get_user_conn_req: Some(GetUserConnReq {
            user_ids: vec!["g1".into(), "g2".into()],
            ..Default::default()
        }),
        event: 0,
        data: msg_list("grpc").into(),
    };
    let reply = grpc(&server, "/pb.connService/SendMsg", request.encode_to_vec(), Some(API_KEY));
    assert_eq!(reply.status, Code::OK, "{}", reply.message);
    let resp = SendMsgResp::decode(reply.body).expect("SendMsgResp");
    assert_eq!(resp.success_conn_params.len(), 1);
    assert_eq!(resp.failed_conn_params[0].user_id, "g2");
    assert!(matches!(client.recv(), Frame::Push { event: 0, .. }));
    let list = GetUserConnReq { user_ids: vec!["g1".into()], ..Default::default() };
    let reply = grpc(&server, "/pb.imService/GetUserConn", list.encode_to_vec(), Some(API_KEY));
    let conns = GetUserConnResp::decode(reply.body).expect("GetUserConnResp").conn_params;
    assert_eq!(conns[0].device_id, "d");
    let refused = grpc(&server, "/pb.connService/SendMsg", request.encode_to_vec(), None);
    assert_eq!(refused.status, Code::UNAUTHENTICATED);
}

#[test]
fn push_api_refuses_requests_without_the_key() {
    let server = Server::start("[im]\napi_key = \"k2\"\n", 1);
    let (status, _) = server.im_post("/im/getUserConn", &json!({}));
    assert_eq!(status, 401);
    let url = format!("http://127.0.0.1:{}/im/getUserConn", server.port);
    let reply = crate::common::agent()
        .post(&url)
        .header("Authorization", "Bearer k2")
        .send("{}")
        .expect("request");
    assert_eq!(reply.status().as_u16(), 200);
}

#[test]
/// Feature line F001-16 (../shared/reference/seed-systems.md).
fn f001_16_message_lists_and_notice_lists_travel_in_their_push_events() {
    let server = Server::start("", 1);
    let mut client = ImClient::connect(&server, "p16", "ios", "d");
    let notice =
        NoticeData { conv_id: "notice:x".into(), notice_id: "n".into(), ..Default::default() };
    let notices = NoticeDataList { notice_data_list: vec![notice] }.encode_to_vec();
    let body = json!({"userIds": ["p16"], "event": 1, "data": STANDARD.encode(notices)});
    server.im_post("/im/sendMsg", &body);
    let list = client.recv().notices();
    assert_eq!(list.notice_data_list[0].notice_id, "n");
    let body = json!({"userIds": ["p16"], "event": 0, "data": STANDARD.encode(msg_list("m"))});
    server.im_post("/im/sendMsg", &body);
    let Frame::Push { event: 0, data } = client.recv() else { panic!("message list") };
    assert_eq!(MsgDataList::decode(&data[..]).expect("list").msg_data_list.len(), 1);
}
