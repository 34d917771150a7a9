//! A Pusher connection's requests applied to its shard: subscriptions change the topic index,
//! replies and errors are queued on the connection. No I/O: the driver does that.

use super::{
    channel::{self, ChannelKind},
    inbound::{self, Request, Subscribe},
    outbound,
};
use crate::{
    conn::{queue::Frame, ConnKey},
    error::CloseCode,
    shard::Shard,
    ws::frame::{self, Message},
};

/// Queues `connection_established` for a new connection.
pub fn open(shard: &Shard, key: ConnKey, socket_id: &str) {
    let text = outbound::connection_established(socket_id, shard.config.activity_timeout);
    reply(shard, key, &text);
}

/// Handles one complete client message. `Err` closes the connection with that code.
pub fn on_message(shard: &Shard, key: ConnKey, message: Message<'_>) -> Result<(), CloseCode> {
    match message {
        Message::Text(text) => {
            shard.state.borrow_mut().stats.messages_in += 1;
            on_text(shard, key, text);
        }
        Message::Binary(_) => {
            error(
                shard,
                key,
                "Binary frames are not supported; send JSON text frames",
            );
        }
        Message::Ping(payload) => shard.send(key, Frame::new(frame::pong(payload))),
        Message::Pong => {}
        Message::Close(_) => return Err(CloseCode::Normal),
    }
    Ok(())
}

fn on_text(shard: &Shard, key: ConnKey, text: &mut [u8]) {
    match inbound::parse(text) {
        Ok(Request::Ping) => reply(shard, key, &outbound::ping_pong("pusher:pong")),
        Ok(Request::Pong) => {}
        Ok(Request::Subscribe(request)) => subscribe(shard, key, request),
        Ok(Request::Unsubscribe { channel }) => {
            shard.unsubscribe(key, &channel);
        }
        Ok(Request::Signin { .. }) => error(shard, key, "User sign-in is not supported yet"),
        Ok(Request::ClientEvent { .. }) => error(shard, key, "Client events are not supported yet"),
        Ok(Request::Unknown { event }) => error(shard, key, &format!("Unknown event: {event}")),
        Err(e) => error(shard, key, &e.to_string()),
    }
}

fn subscribe(shard: &Shard, key: ConnKey, request: Subscribe) {
    let name = &request.channel;
    if let Err(e) = channel::check_name(name, shard.config.max_channel_name_len) {
        return error(shard, key, &format!("{e}: {name}"));
    }
    match ChannelKind::of(name) {
        ChannelKind::Public => {
            shard.subscribe(key, name);
            reply(shard, key, &outbound::subscription_succeeded(name));
        }
        kind => {
            let what = match kind {
                ChannelKind::Presence => "Presence",
                ChannelKind::ServerToUser => "User",
                _ => "Private",
            };
            error(
                shard,
                key,
                &format!("{what} channels are not supported yet: {name}"),
            );
        }
    }
}

fn reply(shard: &Shard, key: ConnKey, text: &[u8]) {
    shard.send(key, Frame::new(frame::text(text)));
}

fn error(shard: &Shard, key: ConnKey, message: &str) {
    reply(shard, key, &outbound::error(None, message));
}
