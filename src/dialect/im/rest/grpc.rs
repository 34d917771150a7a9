//! The push API as xxim's gRPC methods, on the client port (h2c): `pb.connService` and
//! `pb.imService` `SendMsg`, `KickUserConn`, `GetUserConn`, and `pb.noticeService`
//! `SendNoticeData`. The key travels as metadata `authorization: Bearer <key>` (or
//! `x-api-key`); without it the answer is UNAUTHENTICATED.

use super::{authorized, target};
use crate::{
    dialect::im::{
        messages::Filter,
        messages::Format,
        notice,
        pb::{ConnParam, GetUserConnReq, KickUserConnReq, SendMsgReq, SendNoticeDataReq},
        push, Im,
    },
    engine::shard::Shard,
    upstream::grpc::{Code, GrpcResponse, H2Reply, H2Request},
};
use prost::Message;
use std::rc::Rc;

const SERVICES: [&str; 2] = ["/pb.connService/", "/pb.imService/"];
const CONN_METHODS: [&str; 3] = ["SendMsg", "KickUserConn", "GetUserConn"];
const SEND_NOTICE: &str = "/pb.noticeService/SendNoticeData";

/// Whether `path` is one of the methods served here.
pub fn serves(path: &str) -> bool {
    path == SEND_NOTICE || method(path).is_some()
}

/// The connService method a path names.
fn method(path: &str) -> Option<&str> {
    let rest = SERVICES.iter().find_map(|s| path.strip_prefix(s))?;
    CONN_METHODS.contains(&rest).then_some(rest)
}

/// Serves one gRPC call.
pub async fn call(im: &Rc<Im>, shard: &Rc<Shard>, request: H2Request) -> H2Reply {
    H2Reply::Grpc(answer(im, shard, request).await)
}

async fn answer(im: &Rc<Im>, shard: &Rc<Shard>, request: H2Request) -> GrpcResponse {
    if !request.grpc {
        return GrpcResponse::error(Code::UNIMPLEMENTED, "gRPC only (application/grpc)");
    }
    if !authorized(im, &request.headers) {
        return GrpcResponse::error(
            Code::UNAUTHENTICATED,
            "metadata authorization: Bearer <key> needed",
        );
    }
    let body = request.body.clone();
    let invalid = |what: &str| GrpcResponse::error(Code::INVALID_ARGUMENT, format!("bad {what}"));
    // Field 1, an empty `CommonResp` (code 0), opens every answer.
    let mut reply = vec![0x0a, 0x00];
    let mut partial = false;
    match (request.path.as_str(), method(&request.path)) {
        (_, Some("SendMsg")) => {
            let Ok(req) = SendMsgReq::decode(body) else { return invalid("SendMsgReq") };
            let filter = filter(req.get_user_conn_req);
            let listed =
                push::send_msg(im, shard, filter, req.event, req.data, Format::Proto).await;
            partial = listed.partial;
            reply.extend_from_slice(&listed.list);
            for user_id in listed.missing {
                let param = ConnParam { user_id, ..ConnParam::default() };
                prost::encoding::message::encode(3, &param, &mut reply);
            }
        }
        (_, Some("KickUserConn")) => {
            let Ok(req) = KickUserConnReq::decode(body) else { return invalid("KickUserConnReq") };
            partial = push::kick(im, shard, filter(req.get_user_conn_req)).await.partial;
        }
        (_, Some(_)) => {
            let Ok(req) = GetUserConnReq::decode(body) else { return invalid("GetUserConnReq") };
            let listed = push::get_user_conn(im, shard, filter(Some(req)), Format::Proto).await;
            partial = listed.partial;
            reply.extend_from_slice(&listed.list);
        }
        (SEND_NOTICE, None) => {
            let Ok(req) = SendNoticeDataReq::decode(body) else {
                return invalid("SendNoticeDataReq");
            };
            let Some(notice) = req.notice_data else { return invalid("noticeData") };
            let user = match target(req.user_id, req.is_broadcast) {
                Ok(user) => user,
                Err(e) => return GrpcResponse::error(Code::INVALID_ARGUMENT, e),
            };
            if let Err(e) = notice::add::send(im, shard, notice, user).await {
                return GrpcResponse::error(Code::INVALID_ARGUMENT, e);
            }
        }
        _ => {
            return GrpcResponse::error(
                Code::UNIMPLEMENTED,
                format!("unknown method {}", request.path),
            )
        }
    };
    GrpcResponse { partial, ..GrpcResponse::ok(reply.into()) }
}

fn filter(req: Option<GetUserConnReq>) -> Filter {
    let req = req.unwrap_or_default();
    Filter { user_ids: req.user_ids, platforms: req.platforms, devices: req.devices }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxim_methods_are_served() {
        assert!(serves("/pb.connService/SendMsg"));
        assert!(serves("/pb.imService/GetUserConn"));
        assert!(serves("/pb.noticeService/SendNoticeData"));
        assert!(!serves("/pb.connService/Other"));
        assert!(!serves("/pushserverpb.Push/Msg"));
    }
}
