//! An IM connection on its shard: what it said on connect, its requests in flight, and what
//! happens when it opens (the `connected` frame, registration with the user's home, the
//! AfterConnect call), receives a message (binary: a request; text: ignored, as xxim), and
//! goes (leaving the home, the AfterDisconnect call).

use super::{frames, hooks, messages::Tell, params::Params, request, Im};
use crate::{
    engine::{
        addr::ConnAddr,
        conn::{queue::Frame, Close, ConnKey},
        seam::Gone,
        shard::Shard,
    },
    hook::event::now_ms,
    ws::{frame, frame::Message, handshake::Upgrade},
};
use std::{net::SocketAddr, rc::Rc};

/// One IM connection's state on its shard.
#[derive(Debug)]
pub struct ConnState {
    pub params: Rc<Params>,
    /// Wall clock at connect, in ms (AfterConnect's and AfterDisconnect's `connectedAt`).
    pub connected_ms: u64,
    pub anonymous: bool,
    /// The reqIds of requests waiting for an answer (its length is the count).
    pub in_flight: Vec<String>,
}

/// The 101 is written: remember the connection, greet it and register it with its home.
pub fn open(im: &Rc<Im>, shard: &Rc<Shard>, key: ConnKey, up: &Upgrade, peer: Option<SocketAddr>) {
    let params = Rc::new(Params::of(up, peer));
    let anonymous = params.is_anonymous();
    let connected_ms = now_ms();
    let state =
        ConnState { params: params.clone(), connected_ms, anonymous, in_flight: Vec::new() };
    im.conns.borrow_mut().insert(key, state);
    if anonymous {
        return;
    }
    shard.send(key, frames::connected());
    let addr = ConnAddr::new(shard.id(), key);
    let param = Box::new(params.conn_param(&im.im().pod_ip));
    let tell = Tell::Register { user: params.user_id.clone(), addr, param, connected_ms };
    im.tell(shard, im.home_of(shard, &params.user_id), tell);
    hooks::after_connect(im, shard, key, &params, connected_ms);
}

/// One complete client message.
pub fn on_message(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    key: ConnKey,
    message: Message<'_>,
) -> Result<(), Close> {
    match message {
        Message::Binary(bytes) => {
            shard.state.borrow_mut().stats.messages_in += 1;
            request::on_binary(im, shard, key, bytes);
        }
        Message::Text(_) => tracing::debug!("im: a text frame ignored (only binary is handled)"),
        Message::Ping(payload) => shard.send(key, Frame::new(frame::pong(payload))),
        Message::Pong => {}
        Message::Close(_) => return Err(Close::NORMAL),
    }
    Ok(())
}

/// The connection is going: leave the home, tell the backend.
pub fn on_close(im: &Rc<Im>, shard: &Rc<Shard>, key: ConnKey, _gone: &Gone) {
    let Some(state) = im.conns.borrow_mut().remove(&key) else { return };
    if state.anonymous {
        return;
    }
    let addr = ConnAddr::new(shard.id(), key);
    let user = state.params.user_id.clone();
    im.tell(shard, im.home_of(shard, &user), Tell::Unregister { user, addr });
    hooks::after_disconnect(im, shard, &state.params, state.connected_ms);
}
