//! One client request, from its binary frame to its `ResponseBody`: decode `RequestBody`
//! (event 100 unwraps `CustomRequestBody`), pick the route (by event number, or method),
//! refuse anonymous calls to non-`/white/` methods, bound the connection's requests in flight
//! (a reqId already in flight is refused), stamp `CommonReq`, and call the backend in a task of
//! its own: requests of one connection run concurrently and the client matches by reqId.
//!
//! Codes: undecodable bytes or a failed backend give InternalError (2), an unknown route or a
//! reused reqId RequestError (3), an unauthenticated call AuthError (4), a connection over its
//! bound (or a shard over `max_calls_in_flight`) RetryError (8); otherwise the backend's
//! `CommonResp.code`.

use super::{
    backend::{self, Failure},
    delay, frames, notice,
    params::Params,
    pb::{ActiveEvent, Code, CustomRequestBody, RequestBody, SendMsgListReq},
    wire, Im,
};
use crate::{
    engine::{
        conn::{queue::Frame, ConnKey},
        shard::Shard,
    },
    hook::call::CallError,
};
use bytes::Bytes;
use prost::Message;
use std::rc::Rc;

/// A decoded request, ready to route.
pub struct Request {
    pub event: i32,
    pub req_id: String,
    /// The event number as text, or the custom method.
    pub route: String,
    pub data: Bytes,
    pub params: Rc<Params>,
}

/// Handles one binary frame: answers at once, or starts the request's task.
pub fn on_binary(im: &Rc<Im>, shard: &Rc<Shard>, key: ConnKey, bytes: &[u8]) {
    let request = match decode(im, key, bytes) {
        Ok(request) => request,
        Err(frame) => return shard.send(key, frame),
    };
    if let Err(code) = begin(im, key, &request.req_id) {
        return shard.send(key, frames::error(request.event, &request.req_id, code));
    }
    let (im, shard) = (im.clone(), shard.clone());
    glommio::spawn_local(async move {
        let answer = handle(&im, &shard, key, &request).await;
        finish(&im, key, &request.req_id);
        if let Some(frame) = answer {
            shard.send(key, frame);
        }
    })
    .detach();
}

/// The request in a frame, or the answer refusing it.
fn decode(im: &Im, key: ConnKey, bytes: &[u8]) -> Result<Request, Frame> {
    let body = RequestBody::decode(bytes).map_err(|_| frames::error(0, "", Code::InternalError))?;
    let (event, req_id) = (body.event, body.req_id);
    let (route, data) = if event == ActiveEvent::CustomRequest as i32 {
        let custom = CustomRequestBody::decode(body.data)
            .map_err(|_| frames::error(event, &req_id, Code::InternalError))?;
        (custom.method, custom.data)
    } else {
        (event.to_string(), body.data)
    };
    let params = im.conns.borrow().get(&key).map(|c| c.params.clone());
    let params = params.ok_or_else(|| frames::error(event, &req_id, Code::InternalError))?;
    if params.is_anonymous() && !route.contains("/white/") {
        return Err(frames::error(event, &req_id, Code::AuthError));
    }
    Ok(Request { event, req_id, route, data, params })
}

/// Counts a request in flight: RetryError past the bound, RequestError for a reqId in flight.
fn begin(im: &Im, key: ConnKey, req_id: &str) -> Result<(), Code> {
    let max = im.im().max_requests_per_conn;
    let mut conns = im.conns.borrow_mut();
    let conn = conns.get_mut(&key).ok_or(Code::InternalError)?;
    if !req_id.is_empty() && conn.in_flight.iter().any(|r| r == req_id) {
        return Err(Code::RequestError);
    }
    if conn.in_flight.len() >= max {
        return Err(Code::RetryError);
    }
    conn.in_flight.push(req_id.to_string());
    Ok(())
}

fn finish(im: &Im, key: ConnKey, req_id: &str) {
    if let Some(conn) = im.conns.borrow_mut().get_mut(&key) {
        if let Some(at) = conn.in_flight.iter().position(|r| r == req_id) {
            conn.in_flight.swap_remove(at);
        }
    }
}

/// The answer to a request (None: the connection is gone).
async fn handle(im: &Rc<Im>, shard: &Rc<Shard>, key: ConnKey, req: &Request) -> Option<Frame> {
    let error = |code| Some(frames::error(req.event, &req.req_id, code));
    if req.event == ActiveEvent::AckNotice as i32 && im.store.is_some() {
        return Some(notice::on_ack(im, shard, req).await);
    }
    let Some(route) = im.routes.get(&req.route) else { return error(Code::RequestError) };
    let Ok(message) = wire::stamp(&req.data, &req.params.common_req()) else {
        return error(Code::InternalError);
    };
    if req.event == ActiveEvent::SendMsgList as i32 {
        let Ok(send) = SendMsgListReq::decode(&message[..]) else {
            return error(Code::InternalError);
        };
        match send.deliver_after {
            Some(n) if n < 0 || n as u32 > im.im().max_deliver_after_secs => {
                return error(Code::RequestError)
            }
            Some(n) if n > 0 && im.store.is_some() => {
                return Some(delay::hold(im, shard, req, message, n as u32).await)
            }
            _ => {}
        }
    }
    let call = backend::request(&route.backend, &route.path, message);
    let answer = match shard.call(key, call).await {
        Err(CallError::Busy(_)) => return error(Code::RetryError),
        answer => answer,
    };
    match backend::outcome(answer, route.backend.protocol) {
        Ok(body) => match wire::answer_code(&body) {
            Ok(code) => Some(frames::response_code(req.event, &req.req_id, code, body)),
            Err(_) => error(Code::InternalError),
        },
        Err(Failure::Gone) => None,
        Err(e) => {
            tracing::debug!(route = %req.route, "im: backend call failed: {e}");
            error(Code::InternalError)
        }
    }
}
