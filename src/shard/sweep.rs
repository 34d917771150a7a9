//! Liveness: once a second, ping connections silent for `activity_timeout` and close with 4201
//! those that stayed silent `pong_timeout` after the ping. One scan per shard per second costs
//! less memory than a timer per connection.

use super::{enqueue, Shard, ShardState};
use crate::{conn::queue::Frame, dialect::pusher::outbound, error::CloseCode, ws::frame};
use std::{rc::Rc, time::Duration};

/// Seconds a closing connection may take to flush its close frame before it is dropped.
const CLOSE_PATIENCE: u32 = 3;

pub fn start(shard: &Rc<Shard>) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let ping = Frame::new(frame::text(&outbound::ping_pong("pusher:ping")));
        while !shard.shutting_down.get() {
            glommio::timer::sleep(Duration::from_secs(1)).await;
            sweep(&shard, &ping);
        }
    })
    .detach();
}

fn sweep(shard: &Shard, ping: &Frame) {
    let now = shard.now();
    let idle = shard.config.activity_timeout as u32;
    let patience = shard.config.pong_timeout as u32;
    let limit = shard.config.outbound_queue_bytes;
    let mut state = shard.state.borrow_mut();
    let ShardState { conns, stats, .. } = &mut *state;
    for (_, conn) in conns.iter_mut() {
        if conn.closing.is_some() {
            // A closing connection gets a few seconds to take its close frame.
            if conn.close_seen == 0 {
                conn.close_seen = now;
            } else if now.saturating_sub(conn.close_seen) >= CLOSE_PATIENCE && !conn.abandoned {
                conn.abandoned = true;
                conn.wake();
            }
            continue;
        }
        let signin_within =
            shard.config.apps[usize::from(conn.app)].user_authentication_timeout_secs;
        if signin_within > 0
            && !conn.signed_in
            && now.saturating_sub(conn.opened) >= signin_within as u32
        {
            conn.close(CloseCode::Unauthorized);
            continue;
        }
        if conn.ping_sent != 0 {
            if now.saturating_sub(conn.ping_sent) >= patience {
                conn.close(CloseCode::PongTimeout);
                stats.pong_timeouts += 1;
            }
        } else if now.saturating_sub(conn.last_seen) >= idle {
            conn.ping_sent = now;
            enqueue(conn, ping.clone(), limit, stats);
        }
    }
}
