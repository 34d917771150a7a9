//! Admission of a Pusher upgrade: the app its key names, the protocol version, the app's
//! policy (enabled, allowed origins, connection quota). Refusals happen inside the WebSocket,
//! as Pusher clients expect: a `pusher:error` then a close with the code.

use super::{close::CloseCode, outbound, url, Pusher};
use crate::{
    engine::{seam::Admission, shard::Shard},
    ws::{frame, handshake::Upgrade},
};
use std::sync::atomic::Ordering;

/// Admits an upgrade into its app's namespace, counting it against the app's quota.
pub fn admit(pusher: &Pusher, shard: &Shard, up: &Upgrade) -> Admission {
    match check(pusher, shard, up) {
        Ok(app) => Admission::Accept { ns: app, headers: Vec::new() },
        Err(code) => {
            let error = outbound::error(Some(code.code()), code.reason());
            Admission::RefuseInside {
                frames: frame::text(&error),
                close: code.into(),
                why: code.conn_ack(),
            }
        }
    }
}

fn check(pusher: &Pusher, shard: &Shard, up: &Upgrade) -> Result<u16, CloseCode> {
    if shard.shutting_down.get() {
        return Err(CloseCode::Reconnect);
    }
    let key = url::app_key(&up.path).ok_or(CloseCode::PathNotFound)?;
    let (app, config) = pusher.config.app_by_key(key).ok_or(CloseCode::AppNotFound)?;
    url::check_protocol(&up.query)?;
    if !config.enabled {
        return Err(CloseCode::AppDisabled);
    }
    let origins = &config.allowed_origins;
    if !origins.is_empty() && !up.origin.as_ref().is_some_and(|o| origins.contains(o)) {
        return Err(CloseCode::Unauthorized);
    }
    let max = config.max_connections;
    let open = pusher.shared.app_conns[usize::from(app)].fetch_add(1, Ordering::Relaxed);
    if max > 0 && open >= max {
        pusher.shared.app_conns[usize::from(app)].fetch_sub(1, Ordering::Relaxed);
        return Err(CloseCode::OverQuota);
    }
    Ok(app)
}
