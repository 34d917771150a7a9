//! F001-24: a client no one here wrote. `interop/run.sh` installs protobufjs, ws and
//! @grpc/grpc-js from npm and runs `interop/client.mjs`, which loads `interop/xxim.proto`
//! (written from the reference's definitions) and speaks to pushgate over WebSocket, gRPC and
//! the JSON API. The MsgData it sends is then read with pushgate's own prost types: the two
//! agree on every field number.

use crate::{
    backend::Mock,
    common::{
        im::{token, API_KEY},
        Server,
    },
    config, store_dir, store_toml,
};
use prost::Message;
use pushgate::dialect::im::pb::SendMsgListReq;
use std::process::Command;

/// `run.sh`'s exit code when node or npm is missing.
const SKIP: i32 = 77;

#[test]
/// Feature line F001-24 (../shared/reference/seed-systems.md).
fn f001_24_protobufjs_and_grpc_js_clients_interoperate_field_for_field() {
    let (mock, dir) = (Mock::grpc(), store_dir());
    let server = Server::start(&config(&mock, "durable = true", &store_toml(&dir)), 2);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/im/interop/run.sh");
    let output = Command::new("timeout")
        .args([
            "600",
            "bash",
            script,
            &server.port.to_string(),
            &token("js", "web", "js1", 3600),
            API_KEY,
        ])
        .output()
        .expect("run the interop script");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if output.status.code() == Some(SKIP) {
        eprintln!("SKIPPED: the IM interop test needs node and npm: {stderr}");
        return;
    }
    assert!(output.status.success() && stdout.contains("ok"), "stdout: {stdout}\nstderr: {stderr}");
    let calls = mock.calls("/pb.msgService/SendMsgListAsync");
    let sent = SendMsgListReq::decode(&calls[0].body[..]).expect("SendMsgListReq");
    assert_eq!(sent.common_req.as_ref().map(|c| c.device_model.as_str()), Some("node"));
    let msg = &sent.msg_data_list[0];
    assert_eq!((msg.client_msg_id.as_str(), msg.server_msg_id.as_str()), ("c1", "s1"));
    assert_eq!((msg.client_time.as_str(), msg.server_time.as_str()), ("1", "2"));
    assert_eq!((msg.sender_id.as_str(), &msg.sender_info[..]), ("js", &[1u8, 2][..]));
    assert_eq!(
        (msg.conv_id.as_str(), &msg.at_users[..]),
        ("single:js-x", &["x".to_string(), "all".into()][..])
    );
    assert_eq!((msg.content_type, &msg.content[..], msg.seq.as_str()), (11, &b"hello"[..], "9"));
    let options = msg.options.clone().expect("options");
    assert!(options.storage_for_server && options.offline_push && options.update_unread_count);
    assert!(!options.storage_for_client && !options.need_decrypt && !options.update_conv_msg);
    let push = msg.offline_push.clone().expect("offlinePush");
    assert_eq!(
        (push.title.as_str(), push.content.as_str(), push.payload.as_str()),
        ("t", "c", "p")
    );
    assert_eq!(&msg.ext[..], &[7u8]);
}
