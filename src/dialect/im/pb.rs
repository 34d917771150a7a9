//! The xxim protobuf messages the IM dialect speaks, as prost derive types (no protoc, no build
//! script). Field numbers are exactly those of xxim-server's `common/pb/{sdk,common,conn,im,
//! msg,notice}.proto` at 5250ab4 and of the seed, so existing SDKs and backends interoperate.
//! `CustomRequestBody` follows the seed (`method = 1, data = 2`); README's IM section notes the
//! layout conn.proto briefly had at that commit.

use std::collections::HashMap;

/// `PushBody.event`: what a server frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PushEvent {
    PushMsgDataList = 0,
    PushNoticeDataList = 1,
    PushResponseBody = 2,
}

/// `RequestBody.event`: what a client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ActiveEvent {
    SendMsgList = 0,
    SyncConvSeq = 1,
    SyncMsgList = 2,
    AckNotice = 3,
    GetMsgById = 4,
    CustomRequest = 100,
}

/// `ResponseBody.code` and `CommonResp.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Code {
    Success = 0,
    UnknownError = 1,
    InternalError = 2,
    RequestError = 3,
    AuthError = 4,
    ToastError = 5,
    AlertError = 7,
    RetryError = 8,
}

/// Every binary frame the server sends.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushBody {
    #[prost(enumeration = "PushEvent", tag = "1")]
    pub event: i32,
    #[prost(bytes = "bytes", tag = "2")]
    pub data: bytes::Bytes,
}

/// Every binary frame a client sends.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestBody {
    #[prost(enumeration = "ActiveEvent", tag = "1")]
    pub event: i32,
    #[prost(string, tag = "2")]
    pub req_id: String,
    #[prost(bytes = "bytes", tag = "3")]
    pub data: bytes::Bytes,
}

/// `RequestBody.data` of event 100.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CustomRequestBody {
    #[prost(string, tag = "1")]
    pub method: String,
    #[prost(bytes = "bytes", tag = "2")]
    pub data: bytes::Bytes,
}

/// The answer to one request, inside a `PushBody` of event 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseBody {
    #[prost(enumeration = "ActiveEvent", tag = "1")]
    pub event: i32,
    #[prost(string, tag = "2")]
    pub req_id: String,
    #[prost(enumeration = "Code", tag = "3")]
    pub code: i32,
    #[prost(bytes = "bytes", tag = "4")]
    pub data: bytes::Bytes,
}

/// One chat message (sdk.proto and msg.proto agree on it).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MsgData {
    #[prost(string, tag = "1")]
    pub client_msg_id: String,
    #[prost(string, tag = "2")]
    pub server_msg_id: String,
    #[prost(string, tag = "3")]
    pub client_time: String,
    #[prost(string, tag = "4")]
    pub server_time: String,
    #[prost(string, tag = "11")]
    pub sender_id: String,
    #[prost(bytes = "bytes", tag = "12")]
    pub sender_info: bytes::Bytes,
    #[prost(string, tag = "21")]
    pub conv_id: String,
    #[prost(string, repeated, tag = "22")]
    pub at_users: Vec<String>,
    #[prost(int32, tag = "31")]
    pub content_type: i32,
    #[prost(bytes = "bytes", tag = "32")]
    pub content: bytes::Bytes,
    #[prost(string, tag = "33")]
    pub seq: String,
    #[prost(message, optional, tag = "41")]
    pub options: Option<msg_data::Options>,
    #[prost(message, optional, tag = "42")]
    pub offline_push: Option<msg_data::OfflinePush>,
    #[prost(bytes = "bytes", tag = "100")]
    pub ext: bytes::Bytes,
}

pub mod msg_data {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OfflinePush {
        #[prost(string, tag = "1")]
        pub title: String,
        #[prost(string, tag = "2")]
        pub content: String,
        #[prost(string, tag = "3")]
        pub payload: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Options {
        #[prost(bool, tag = "1")]
        pub storage_for_server: bool,
        #[prost(bool, tag = "2")]
        pub storage_for_client: bool,
        #[prost(bool, tag = "3")]
        pub need_decrypt: bool,
        #[prost(bool, tag = "4")]
        pub offline_push: bool,
        #[prost(bool, tag = "5")]
        pub update_conv_msg: bool,
        #[prost(bool, tag = "6")]
        pub update_unread_count: bool,
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MsgDataList {
    #[prost(message, repeated, tag = "1")]
    pub msg_data_list: Vec<MsgData>,
}

/// One notice (sdk.proto and notice.proto agree on it).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NoticeData {
    #[prost(string, tag = "1")]
    pub conv_id: String,
    #[prost(int32, tag = "2")]
    pub unread_count: i32,
    #[prost(bool, tag = "3")]
    pub unread_absolute: bool,
    #[prost(string, tag = "11")]
    pub notice_id: String,
    #[prost(string, tag = "12")]
    pub create_time: String,
    #[prost(string, tag = "13")]
    pub title: String,
    #[prost(int32, tag = "14")]
    pub content_type: i32,
    #[prost(bytes = "bytes", tag = "15")]
    pub content: bytes::Bytes,
    #[prost(message, optional, tag = "21")]
    pub options: Option<notice_data::Options>,
    #[prost(bytes = "bytes", tag = "31")]
    pub ext: bytes::Bytes,
}

pub mod notice_data {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Options {
        #[prost(bool, tag = "1")]
        pub storage_for_client: bool,
        #[prost(bool, tag = "2")]
        pub update_conv_msg: bool,
        #[prost(bool, tag = "3")]
        pub online_push_once: bool,
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NoticeDataList {
    #[prost(message, repeated, tag = "1")]
    pub notice_data_list: Vec<NoticeData>,
}

/// The request of event 0, as msg.proto has it (the seed's omits `commonReq = 1`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SendMsgListReq {
    #[prost(message, optional, tag = "1")]
    pub common_req: Option<CommonReq>,
    #[prost(message, repeated, tag = "2")]
    pub msg_data_list: Vec<MsgData>,
    #[prost(int32, optional, tag = "11")]
    pub deliver_after: Option<i32>,
}

/// The request of event 3, as notice.proto has it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AckNoticeDataReq {
    #[prost(message, optional, tag = "1")]
    pub common_req: Option<CommonReq>,
    #[prost(string, tag = "2")]
    pub notice_id: String,
    #[prost(string, tag = "3")]
    pub conv_id: String,
}

/// What the gateway stamps on every request (field 1 of each request message).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CommonReq {
    #[prost(string, tag = "1")]
    pub user_id: String,
    #[prost(string, tag = "2")]
    pub token: String,
    #[prost(string, tag = "11")]
    pub device_model: String,
    #[prost(string, tag = "12")]
    pub device_id: String,
    #[prost(string, tag = "13")]
    pub os_version: String,
    #[prost(string, tag = "14")]
    pub platform: String,
    #[prost(string, tag = "21")]
    pub app_version: String,
    #[prost(string, tag = "22")]
    pub language: String,
    #[prost(bytes = "bytes", tag = "31")]
    pub data: bytes::Bytes,
    #[prost(string, tag = "41")]
    pub ip: String,
    #[prost(string, tag = "42")]
    pub user_agent: String,
}

/// Field 1 of every answer; its code becomes `ResponseBody.code`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CommonResp {
    #[prost(enumeration = "Code", tag = "1")]
    pub code: i32,
    #[prost(string, optional, tag = "2")]
    pub msg: Option<String>,
    #[prost(bytes = "bytes", tag = "3")]
    pub data: bytes::Bytes,
}

/// A connection as conn.proto describes it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnParam {
    #[prost(string, tag = "1")]
    pub user_id: String,
    #[prost(string, tag = "2")]
    pub token: String,
    #[prost(string, tag = "3")]
    pub device_id: String,
    #[prost(string, tag = "4")]
    pub platform: String,
    #[prost(string, tag = "5")]
    pub ips: String,
    #[prost(string, tag = "6")]
    pub network_used: String,
    #[prost(map = "string, string", tag = "7")]
    pub headers: HashMap<String, String>,
    #[prost(string, tag = "8")]
    pub pod_ip: String,
    #[prost(string, tag = "9")]
    pub device_model: String,
    #[prost(string, tag = "10")]
    pub os_version: String,
    #[prost(string, tag = "11")]
    pub app_version: String,
    #[prost(string, tag = "12")]
    pub language: String,
}

/// Which connections: the AND of the non-empty lists.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetUserConnReq {
    #[prost(string, repeated, tag = "1")]
    pub user_ids: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub platforms: Vec<String>,
    #[prost(string, repeated, tag = "3")]
    pub devices: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetUserConnResp {
    #[prost(message, optional, tag = "1")]
    pub common_resp: Option<CommonResp>,
    #[prost(message, repeated, tag = "2")]
    pub conn_params: Vec<ConnParam>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KickUserConnReq {
    #[prost(message, optional, tag = "1")]
    pub get_user_conn_req: Option<GetUserConnReq>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KickUserConnResp {
    #[prost(message, optional, tag = "1")]
    pub common_resp: Option<CommonResp>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SendMsgReq {
    #[prost(message, optional, tag = "1")]
    pub get_user_conn_req: Option<GetUserConnReq>,
    #[prost(enumeration = "PushEvent", tag = "2")]
    pub event: i32,
    #[prost(bytes = "bytes", tag = "3")]
    pub data: bytes::Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SendMsgResp {
    #[prost(message, optional, tag = "1")]
    pub common_resp: Option<CommonResp>,
    #[prost(message, repeated, tag = "2")]
    pub success_conn_params: Vec<ConnParam>,
    #[prost(message, repeated, tag = "3")]
    pub failed_conn_params: Vec<ConnParam>,
}

/// im.proto: the token check an upstream may make before a connection is kept.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BeforeConnectReq {
    #[prost(message, optional, tag = "1")]
    pub conn_param: Option<ConnParam>,
}

/// A non-empty `msg` refuses the connection (close 3000 with it as the reason).
#[derive(Clone, PartialEq, prost::Message)]
pub struct BeforeConnectResp {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub msg: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AfterConnectReq {
    #[prost(message, optional, tag = "1")]
    pub conn_param: Option<ConnParam>,
    #[prost(string, tag = "2")]
    pub connected_at: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AfterDisconnectReq {
    #[prost(message, optional, tag = "1")]
    pub conn_param: Option<ConnParam>,
    #[prost(string, tag = "2")]
    pub connected_at: String,
    #[prost(string, tag = "3")]
    pub disconnected_at: String,
}

/// notice.proto: a backend adds a notice (to `userId`, or to the conversation's members).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SendNoticeDataReq {
    #[prost(message, optional, tag = "1")]
    pub common_req: Option<CommonReq>,
    #[prost(message, optional, tag = "2")]
    pub notice_data: Option<NoticeData>,
    #[prost(string, optional, tag = "3")]
    pub user_id: Option<String>,
    #[prost(bool, optional, tag = "4")]
    pub is_broadcast: Option<bool>,
    #[prost(bool, optional, tag = "5")]
    pub inserted: Option<bool>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SendNoticeDataResp {
    #[prost(message, optional, tag = "1")]
    pub common_resp: Option<CommonResp>,
}

/// An answer with only a `CommonResp` (AckNoticeDataResp, SendMsgListResp of msg.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CommonOnlyResp {
    #[prost(message, optional, tag = "1")]
    pub common_resp: Option<CommonResp>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Bytes a Go client built from the reference .proto sends (field numbers by hand).
    #[test]
    fn request_body_fields_are_numbered_as_the_reference() {
        let body = RequestBody {
            event: ActiveEvent::CustomRequest as i32,
            req_id: "r".into(),
            data: bytes::Bytes::from_static(b"\x01"),
        };
        assert_eq!(body.encode_to_vec(), b"\x08\x64\x12\x01r\x1a\x01\x01");
        let push = PushBody { event: 2, data: bytes::Bytes::from_static(b"x") };
        assert_eq!(push.encode_to_vec(), b"\x08\x02\x12\x01x");
    }

    #[test]
    fn msg_data_uses_the_high_field_numbers() {
        let msg = MsgData {
            conv_id: "c".into(),
            seq: "1".into(),
            ext: bytes::Bytes::from_static(b"e"),
            ..MsgData::default()
        };
        // convId = 21 (0xaa 0x01), seq = 33 (0x8a 0x02), ext = 100 (0xa2 0x06).
        assert_eq!(msg.encode_to_vec(), b"\xaa\x01\x01c\x8a\x02\x011\xa2\x06\x01e");
    }

    #[test]
    fn notice_options_are_field_21() {
        let notice = NoticeData {
            options: Some(notice_data::Options { online_push_once: true, ..Default::default() }),
            ..NoticeData::default()
        };
        assert_eq!(notice.encode_to_vec(), b"\xaa\x01\x02\x18\x01");
    }
}
