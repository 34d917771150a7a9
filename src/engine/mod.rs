//! The engine: shards, connections, topics, fan-out, home shards and the rings between shards.
//! It knows no protocol. A connection carries a namespace and a dialect tag; everything a
//! protocol adds (session state, cross-shard questions, close codes, keepalive frames) lives in
//! the dialects, reached through the [`seam::Dialect`] trait. The engine never imports a
//! dialect; the edge builds the dialects and hands them to each shard.
//!
//! A message from socket to socket: `conn::driver` reads and decodes a frame -> the
//! connection's dialect (`seam::Dialect::on_message`) turns it into an operation ->
//! `fanout::publish` queues the encoded frame on local subscribers and sends it by reference
//! over `bus` -> each shard's `rings` task runs `fanout::deliver_local` -> each subscriber's
//! driver writes its queue with one `sendmsg`. A dialect that needs an upstream's answer
//! awaits `Shard::call` (`calls`): the hook shard makes the request and answers on a ring.

pub mod addr;
pub mod bus;
pub mod calls;
pub mod conn;
pub mod fanout;
pub mod home;
pub mod remote;
pub mod rings;
pub mod seam;
pub mod shard;
pub mod sweep;
pub mod topics;

use glommio::channels::channel_mesh::Receivers;
use shard::Shard;
use std::{
    rc::Rc,
    time::{Duration, Instant},
};

/// Starts a shard's engine tasks (the ring listeners and the liveness sweep), then its
/// dialects' own (`seam::Dialect::start`).
pub fn start(shard: &Rc<Shard>, receivers: Receivers<bus::ShardMsg>) {
    rings::listen(shard, receivers);
    sweep::start(shard);
    shard.start_dialects();
}

/// Lets the shard's other tasks and sockets run before carrying on: long work (a listing of
/// every channel) calls it between slices. glommio's own yield runs the same task queue again
/// without looking at sockets until its 100 ms preemption timer fires; waiting on a short timer
/// makes the executor go through the reactor (sockets, rings) first.
pub async fn breathe() {
    glommio::timer::sleep(Duration::from_micros(50)).await;
}

/// Closes every connection with its dialect's shutdown close and waits until they are gone or
/// the grace period ends.
pub async fn drain(shard: &Shard) {
    shard.shutting_down.set(true);
    for (_, conn) in shard.state.borrow_mut().conns.iter_mut() {
        let close = shard
            .policy(conn.tag)
            .map_or(conn::Close::fixed(1001, "Going away"), |p| p.shutdown.clone());
        conn.close(close);
    }
    let deadline = Instant::now() + Duration::from_millis(shard.config.shutdown_grace_ms);
    while !shard.state.borrow().conns.is_empty() && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}
