//! The HTTP/1.1 server on the client port (hyper), for requests that are not WebSocket
//! upgrades: the built-in `/health` and `/metrics`, then the REST route tables the router
//! mounts (a dialect's API), in mount order; anything else is a 404.

use super::{io::HyperIo, router::Router};
use crate::{
    engine::{
        bus::{Answer, Query},
        shard::Shard,
    },
    metrics::Stats,
    rest::{text, ApiError, Reply},
};
use glommio::net::TcpStream;
use hyper::{body::Incoming, service::service_fn, Method, Request, StatusCode};
use std::{
    cell::Cell,
    convert::Infallible,
    rc::Rc,
    time::{Duration, Instant},
};

/// Serves HTTP/1.1 (keep-alive) on a connection whose first bytes were already read.
pub async fn serve(shard: Rc<Shard>, router: Rc<Router>, stream: TcpStream, head: Vec<u8>) {
    let idle_limit = Duration::from_secs(shard.config.http_idle_timeout_secs);
    let service = service_fn(move |request| {
        let (shard, router) = (shard.clone(), router.clone());
        async move { Ok::<_, Infallible>(route(shard, router, request).await) }
    });
    // hyper's own header timeout needs a Send timer, which glommio's are not; a watchdog that
    // drops the connection after `http_idle_timeout_secs` without traffic does the same job.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None);
    let activity = Rc::new(Cell::new(Instant::now()));

    let io = HyperIo::new(stream, head, activity.clone());
    let connection = async {
        if let Err(e) = builder.serve_connection(io, service).await {
            tracing::debug!("http connection ended: {e}");
        }
    };
    let watchdog = async {
        while activity.get().elapsed() < idle_limit {
            glommio::timer::sleep(idle_limit.min(Duration::from_secs(5))).await;
        }
    };
    futures_lite::future::or(connection, watchdog).await;
}

async fn route(shard: Rc<Shard>, router: Rc<Router>, request: Request<Incoming>) -> Reply {
    let path = request.uri().path().to_string();
    match (request.method(), path.as_str()) {
        (&Method::GET, "/" | "/health" | "/ready") => return text(StatusCode::OK, "OK"),
        #[cfg(feature = "heap-profile")]
        (&Method::GET, "/debug/heap") => {
            return text(StatusCode::OK, crate::heap_profile::report());
        }
        (&Method::GET, "/metrics") => return metrics(&shard).await,
        _ => {}
    }
    match router.rest_for(&path) {
        Some(routes) => routes.call(shard, request).await,
        None => ApiError::new(StatusCode::NOT_FOUND, format!("Not found: {path}")).reply(),
    }
}

/// The engine's counters summed over shards, then the hook shard's.
async fn metrics(shard: &Rc<Shard>) -> Reply {
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
    text(StatusCode::OK, body)
}
