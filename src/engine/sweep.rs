//! Liveness: once a second, ping connections silent for their dialect's idle time, close those
//! that stayed silent after the ping, check dialect deadlines, and drop closing connections
//! whose peer does not take the close. One scan per shard per second costs less memory than a
//! timer per connection.

use super::shard::{enqueue, Shard, ShardState};
use std::{rc::Rc, time::Duration};

/// Seconds a closing connection may take to flush its close frame before it is dropped.
const CLOSE_PATIENCE: u32 = 3;

pub fn start(shard: &Rc<Shard>) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        while !shard.shutting_down.get() {
            glommio::timer::sleep(Duration::from_secs(1)).await;
            sweep(&shard);
        }
    })
    .detach();
}

fn sweep(shard: &Shard) {
    let now = shard.now();
    let limit = shard.config.outbound_queue_bytes;
    let mut state = shard.state.borrow_mut();
    let ShardState { conns, stats, .. } = &mut *state;
    for (index, conn) in conns.iter_mut() {
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
        let Some(policy) = shard.policy(conn.tag) else { continue };
        if policy.deadlines {
            let key = super::conn::ConnKey::new(index, conn.generation);
            let expired = shard.dialect(conn.tag).and_then(|d| d.deadline(key, conn, now));
            if let Some(close) = expired {
                conn.close(close);
                continue;
            }
        }
        if conn.ping_sent != 0 {
            if now.saturating_sub(conn.ping_sent) >= policy.pong_secs {
                conn.close(policy.timeout.clone());
                stats.pong_timeouts += 1;
            }
        } else if policy.idle_secs > 0 && now.saturating_sub(conn.last_seen) >= policy.idle_secs {
            conn.ping_sent = now;
            enqueue(conn, policy.ping.clone(), limit, stats, &policy.over_capacity);
        }
    }
}
