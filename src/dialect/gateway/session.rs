//! A gateway connection's requests, in order. Each connection has a session in the dialect's
//! side table: its source address, whether the client called a disconnect url itself, and a
//! small queue of what waits its turn. Requests reach their upstream one at a time and in the
//! order sent, as in the original (an upstream may rely on `register` having been answered
//! before `sub_add` arrives); answers the gateway gives itself (errors, `/api/ping`) wait
//! behind the requests sent before them. One task per busy connection works the queue, so a
//! connection waiting on its upstream never holds up its shard, and an idle one holds no task.
//!
//! Bounds: at most `max_requests_in_flight` requests are accepted and unanswered per
//! connection; past it a request is answered, in its turn, with 429 `4291` and never sent.
//! Answers waiting behind a slow request count against `outbound_queue_bytes`, like frames
//! the client does not read: past it, the connection is closed as over capacity.

use super::{
    action::{self, Outcome},
    outbound::{self, Kind},
    request::{self, Job, Local, Read},
    upstream::{self, Failure},
    Gateway,
};
use crate::{
    engine::{
        conn::{queue::Frame, Close, ConnKey},
        shard::Shard,
    },
    ws::frame::{self, Message},
};
use serde_json::Value;
use std::{
    collections::VecDeque,
    net::IpAddr,
    rc::Rc,
    time::{Instant, SystemTime},
};

/// One connection's state beyond the engine's.
#[derive(Debug, Default)]
pub struct Session {
    source_ip: Option<IpAddr>,
    queue: VecDeque<Entry>,
    /// A task is working the queue.
    working: bool,
    /// Requests accepted and not yet answered.
    jobs: usize,
    /// Bytes of the answers waiting in the queue.
    ready_bytes: usize,
    /// The client called one of the disconnect urls: none is called for it when it goes.
    notified: bool,
}

impl Session {
    /// Requests accepted and not yet answered.
    pub fn waiting(&self) -> usize {
        self.jobs
    }
}

#[derive(Debug)]
enum Entry {
    /// An answer the gateway gave itself, waiting for the requests before it.
    Ready {
        frame: Vec<u8>,
        local: Local,
        received: Instant,
    },
    Job(Box<Job>),
}

/// A new connection: its session.
pub fn open(gw: &Gateway, key: ConnKey, peer: Option<std::net::SocketAddr>) {
    let session = Session { source_ip: peer.map(|p| p.ip()), ..Session::default() };
    gw.sessions.borrow_mut().insert(key, session);
}

/// One complete client message. `Err` closes the connection with that close.
pub fn on_message(
    gw: &Rc<Gateway>,
    shard: &Rc<Shard>,
    key: ConnKey,
    message: Message<'_>,
) -> Result<(), Close> {
    match message {
        Message::Text(bytes) => on_frame(gw, shard, key, Kind::Text, bytes),
        Message::Binary(bytes) => on_frame(gw, shard, key, Kind::Binary, bytes),
        Message::Ping(payload) => {
            shard.send(key, Frame::new(frame::pong(&outbound::ping_payload(payload))));
        }
        Message::Pong => {}
        Message::Close(_) => return Err(outbound::client_close()),
    }
    Ok(())
}

fn on_frame(gw: &Rc<Gateway>, shard: &Rc<Shard>, key: ConnKey, kind: Kind, bytes: &[u8]) {
    let received = Instant::now();
    shard.state.borrow_mut().stats.messages_in += 1;
    let matched = match request::read(bytes, &gw.shared.routes) {
        Read::Answer(local) => return push_ready(gw, shard, key, kind, local, received),
        Read::Matched(matched) => matched,
    };
    let config = &gw.config.gateway;
    let (source_ip, jobs) = {
        let mut sessions = gw.sessions.borrow_mut();
        let Some(session) = sessions.get_mut(&key) else { return };
        if config.disconnect_notify_urls.contains(&matched.uri) {
            session.notified = true;
        }
        (session.source_ip, session.jobs)
    };
    if jobs >= config.max_requests_in_flight {
        let msg_id = matched.header.get("msgId").cloned().unwrap_or(Value::String(String::new()));
        let json = outbound::error(429, "4291", "429 Too Many Requests", &msg_id);
        let local = Local { json, status: Some(429), route: Some(matched.route) };
        return push_ready(gw, shard, key, kind, local, received);
    }
    let Some(route) = gw.shared.routes.get(matched.route) else { return };
    let (sid, sig, uuid) = gw.identity(shard, key);
    let origin = request::Origin {
        sid: &sid,
        sig: &sig,
        uuid,
        gateway_ip: &gw.shared.gateway_ip,
        source_ip,
    };
    match request::prepare(matched, route, &origin, gw.limits(), kind) {
        Ok(mut job) => {
            job.received = received;
            push_job(gw, shard, key, job);
        }
        Err(local) => push_ready(gw, shard, key, kind, local, received),
    }
}

/// Sends an answer the gateway gave itself now, or queues it behind the requests before it.
fn push_ready(
    gw: &Rc<Gateway>,
    shard: &Rc<Shard>,
    key: ConnKey,
    kind: Kind,
    local: Local,
    received: Instant,
) {
    let frame = kind.frame(&local.json);
    {
        let mut sessions = gw.sessions.borrow_mut();
        let Some(session) = sessions.get_mut(&key) else { return };
        if session.working {
            if session.ready_bytes + frame.len() > shard.config.outbound_queue_bytes {
                drop(sessions);
                return shard.close(key, outbound::over_capacity());
            }
            session.ready_bytes += frame.len();
            session.queue.push_back(Entry::Ready { frame, local, received });
            return;
        }
    }
    deliver_local(gw, shard, key, frame, &local, received);
}

fn deliver_local(
    gw: &Gateway,
    shard: &Shard,
    key: ConnKey,
    frame: Vec<u8>,
    local: &Local,
    received: Instant,
) {
    shard.send(key, Frame::new(frame));
    if let Some(status) = local.status {
        gw.metrics.borrow_mut().answered(local.route, status, received.elapsed());
    }
}

/// Queues a request and starts the connection's worker if none runs.
fn push_job(gw: &Rc<Gateway>, shard: &Rc<Shard>, key: ConnKey, job: Job) {
    let mut sessions = gw.sessions.borrow_mut();
    let Some(session) = sessions.get_mut(&key) else { return };
    session.jobs += 1;
    session.queue.push_back(Entry::Job(Box::new(job)));
    if session.working {
        return;
    }
    session.working = true;
    // glommio polls a spawned task at once: the session must not be borrowed by then.
    drop(sessions);
    let (gw, shard) = (gw.clone(), shard.clone());
    glommio::spawn_local(async move { work(gw, shard, key).await }).detach();
}

/// Works a connection's queue until it is empty or the connection has gone.
async fn work(gw: Rc<Gateway>, shard: Rc<Shard>, key: ConnKey) {
    loop {
        let entry = {
            let mut sessions = gw.sessions.borrow_mut();
            let Some(session) = sessions.get_mut(&key) else { return };
            match session.queue.pop_front() {
                Some(entry) => {
                    if let Entry::Ready { frame, .. } = &entry {
                        session.ready_bytes = session.ready_bytes.saturating_sub(frame.len());
                    }
                    entry
                }
                None => {
                    session.working = false;
                    return;
                }
            }
        };
        match entry {
            Entry::Ready { frame, local, received } => {
                deliver_local(&gw, &shard, key, frame, &local, received);
            }
            // A connection that is closing (a 2000-2999 answer, over capacity) sends nothing
            // more upstream.
            Entry::Job(_) if !shard.is_open(key) => return,
            Entry::Job(job) => {
                let outcome = run(&gw, &shard, Some(key), &job).await;
                if let Some(session) = gw.sessions.borrow_mut().get_mut(&key) {
                    session.jobs = session.jobs.saturating_sub(1);
                }
                let Some(outcome) = outcome else { return };
                deliver(&gw, &shard, key, &job, outcome);
            }
        }
    }
}

/// Makes a request's upstream call and applies its answer; None if the connection has gone.
async fn run(gw: &Gateway, shard: &Rc<Shard>, key: Option<ConnKey>, job: &Job) -> Option<Outcome> {
    let route = gw.shared.routes.get(job.route)?;
    match upstream::call(gw, shard, key, route, job).await {
        Err(Failure::Gone) => None,
        Err(Failure::Error { status, code, message }) => Some(Outcome {
            status,
            body: outbound::error_body(code, message, &job.msg_id),
            close: false,
        }),
        Ok(answer) => Some(match key {
            Some(key) => action::conclude(gw, shard, key, route.action, job, answer),
            None => {
                Outcome { status: answer.status, body: Value::Object(answer.body), close: false }
            }
        }),
    }
}

/// Sends a request's answer (or, for 2000-2999, closes with it).
fn deliver(gw: &Gateway, shard: &Shard, key: ConnKey, job: &Job, outcome: Outcome) {
    if outcome.close {
        let (first, close) = outbound::unauthorized(&outcome.body);
        if let Some(first) = first {
            shard.send(key, Frame::new(job.kind.frame(&first)));
        }
        shard.close(key, close);
    } else {
        let json = outbound::answer(outcome.status, &outcome.body);
        shard.send(key, Frame::new(job.kind.frame(&json)));
    }
    gw.metrics.borrow_mut().answered(Some(job.route), outcome.status, job.received.elapsed());
}

/// A connection is going: its session goes (waiting requests are dropped; the one at the
/// upstream has its answer dropped), and the disconnect urls are called unless the client
/// called one itself. Its topics are dropped by the engine.
pub fn on_close(gw: &Rc<Gateway>, shard: &Rc<Shard>, key: ConnKey) {
    let Some(session) = gw.sessions.borrow_mut().remove(&key) else { return };
    let urls = &gw.config.gateway.disconnect_notify_urls;
    if session.notified || urls.is_empty() {
        return;
    }
    let (sid, sig, uuid) = gw.identity(shard, key);
    let origin = request::Origin {
        sid: &sid,
        sig: &sig,
        uuid,
        gateway_ip: &gw.shared.gateway_ip,
        source_ip: session.source_ip,
    };
    let now = SystemTime::now();
    let routes = &gw.shared.routes;
    let jobs: Vec<Job> = urls
        .iter()
        .filter_map(|url| {
            let index = routes.find(url)?;
            Some(request::notification(index, routes.get(index)?, url, &origin, now))
        })
        .collect();
    let (gw, shard) = (gw.clone(), shard.clone());
    glommio::spawn_local(async move {
        for job in jobs {
            let outcome = run(&gw, &shard, None, &job).await;
            if let Some(Outcome { status, .. }) = outcome.filter(|o| o.status != 200) {
                tracing::warn!(uri = %job.uri, status, sid = %sid, "disconnect notification failed");
            }
        }
    })
    .detach();
}
