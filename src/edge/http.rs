//! The HTTP/1.1 server on the client port (hyper), for requests that are not WebSocket
//! upgrades: the built-in `/health` and `/metrics`, then the REST route tables the router
//! mounts (a dialect's API), in mount order; anything else is a 404.
//!
//! Every request on a keep-alive connection gets what the first one got: its head within
//! [`HEAD_TIMEOUT`] of its first byte, at most `MAX_HEAD` bytes and `MAX_HEADERS` headers. A
//! watchdog follows the connection's phase (idle, head, busy) and drops it past its deadline;
//! bodies have theirs (`rest_body_timeout_ms`, in `rest::read_body`). REST requests in progress
//! on a shard are capped (503). A connection that ends lingers a moment, so the last answer is
//! not lost to a reset.

use super::{
    gate::Gate,
    io::{Clock, HyperIo, Phase},
    router::Router,
    stream::Stream,
    HEAD_TIMEOUT,
};
use crate::{
    crypto,
    engine::{
        bus::{Answer, Query},
        shard::Shard,
    },
    metrics::Stats,
    rest::{text, ApiError, Reply},
    ws::handshake::{MAX_HEAD, MAX_HEADERS},
};
use hyper::{body::Incoming, header, service::service_fn, Method, Request, StatusCode};
use std::{
    convert::Infallible,
    rc::Rc,
    time::{Duration, Instant},
};

/// Serves HTTP/1.1 (keep-alive) on a connection whose first request head was already read.
pub async fn serve(
    shard: Rc<Shard>,
    router: Rc<Router>,
    gate: Rc<Gate>,
    stream: Stream,
    head: Vec<u8>,
) {
    let idle_limit = Duration::from_secs(shard.config.http_idle_timeout_secs);
    let clock = Clock::new();
    let service = {
        let clock = clock.clone();
        service_fn(move |request| {
            let (shard, router, gate) = (shard.clone(), router.clone(), gate.clone());
            let busy = Busy::enter(clock.clone());
            async move {
                let reply = route(shard, router, gate, request).await;
                drop(busy);
                Ok::<_, Infallible>(reply)
            }
        })
    };
    // hyper's own header timeout needs a Send timer, which glommio's are not; the watchdog
    // below does the same job for every request.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None).max_header_size(MAX_HEAD).max_headers(MAX_HEADERS);
    let io = HyperIo::new(stream, head, clock.clone());
    let connection = async {
        match builder.serve_connection(io, service).without_shutdown().await {
            Ok(parts) => Some(parts.io.into_stream()),
            Err(e) => {
                tracing::debug!("http connection ended: {e}");
                None
            }
        }
    };
    let cut = async {
        watch(&clock, idle_limit).await;
        None
    };
    if let Some(stream) = futures_lite::future::or(connection, cut).await {
        stream.close().await;
    }
}

/// Marks the connection busy while a request is served, idle again after.
struct Busy(Rc<Clock>);

impl Busy {
    fn enter(clock: Rc<Clock>) -> Busy {
        clock.phase.set(Phase::Busy);
        Busy(clock)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.phase.set(Phase::Idle);
        self.0.last_io.set(Instant::now());
    }
}

/// Returns when the connection has passed its phase's deadline.
async fn watch(clock: &Clock, idle: Duration) {
    loop {
        let now = Instant::now();
        let deadline = match clock.phase.get() {
            Phase::Idle => clock.last_io.get() + idle,
            Phase::Head(since) => since + HEAD_TIMEOUT,
            Phase::Busy => now + Duration::from_secs(1),
        };
        if now >= deadline {
            return;
        }
        glommio::timer::sleep(deadline - now).await;
    }
}

async fn route(
    shard: Rc<Shard>,
    router: Rc<Router>,
    gate: Rc<Gate>,
    request: Request<Incoming>,
) -> Reply {
    let path = request.uri().path().to_string();
    match (request.method(), path.as_str()) {
        (&Method::GET | &Method::HEAD, "/" | "/health" | "/ready") => {
            return text(StatusCode::OK, "OK")
        }
        #[cfg(feature = "heap-profile")]
        (&Method::GET, "/debug/heap") => {
            return text(StatusCode::OK, crate::heap_profile::report());
        }
        (&Method::GET, "/metrics") => return metrics(&shard, &router, &request).await,
        _ => {}
    }
    let Some(routes) = router.rest_for(&path) else {
        return ApiError::new(StatusCode::NOT_FOUND, format!("Not found: {path}")).reply();
    };
    let Some(_permit) = gate.rest_permit() else {
        let busy = ApiError::closing(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many requests in progress (max_concurrent_rest_requests); retry",
        );
        let mut reply = busy.reply();
        reply.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return reply;
    };
    routes.call(shard, request).await
}

/// The engine's counters summed over shards, the hook shard's, the cluster's, then what each
/// mounted route table's dialect adds; behind `metrics_token` when one is set.
async fn metrics(shard: &Rc<Shard>, router: &Router, request: &Request<Incoming>) -> Reply {
    if !authorized(&shard.config.metrics_token, request) {
        let mut reply = text(StatusCode::UNAUTHORIZED, "metrics need a bearer token\n");
        let challenge = header::HeaderValue::from_static("Bearer realm=\"pushgate metrics\"");
        reply.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        return reply;
    }
    let stats = shard
        .ask_all(|| Query::Stats)
        .await
        .into_iter()
        .filter_map(|a| match a {
            Answer::Stats(s) => Some(s),
            Answer::Dialect(_) => None,
        })
        .sum::<Stats>();
    let mut body = stats.render(shard.nr_shards()) + &shard.hooks.board.render();
    if let Some(link) = &shard.cluster {
        body += &link.board().render(link.node());
    }
    for routes in router.rest_tables() {
        body += &routes.metrics(shard.clone()).await;
    }
    text(StatusCode::OK, body)
}

/// Whether `request` carries `Authorization: Bearer <token>` (any request when no token is set).
fn authorized(token: &str, request: &Request<Incoming>) -> bool {
    if token.is_empty() {
        return true;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|given| crypto::same(given.trim(), token))
}
