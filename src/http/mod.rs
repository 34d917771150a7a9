//! The REST API on the client port, served by hyper on the shard the request landed on:
//! routing, body limits and signing here, the handlers in their own files.

mod channels;
pub mod events;
mod io;
pub mod reply;
pub mod sign;

use crate::shard::Shard;
use bytes::Bytes;
use glommio::net::TcpStream;
use http_body_util::{BodyExt, Limited};
use hyper::{body::Incoming, service::service_fn, Method, Request, StatusCode};
use reply::{text, ApiError, Reply};
use std::{
    cell::Cell,
    convert::Infallible,
    rc::Rc,
    time::{Duration, Instant},
};

/// Serves HTTP/1.1 (keep-alive) on a connection whose first bytes were already read.
pub async fn serve(shard: Rc<Shard>, stream: TcpStream, head: Vec<u8>) {
    let idle_limit = Duration::from_secs(shard.config.http_idle_timeout_secs);
    let service = service_fn(move |request| {
        let shard = shard.clone();
        async move { Ok::<_, Infallible>(route(shard, request).await) }
    });
    // hyper's own header timeout needs a Send timer, which glommio's are not; a watchdog that
    // drops the connection after `http_idle_timeout_secs` without traffic does the same job.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None);
    let activity = Rc::new(Cell::new(Instant::now()));

    let io = io::HyperIo::new(stream, head, activity.clone());
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

async fn route(shard: Rc<Shard>, request: Request<Incoming>) -> Reply {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/" | "/health" | "/ready") => return text(StatusCode::OK, "OK"),
        #[cfg(feature = "heap-profile")]
        (&Method::GET, "/debug/heap") => {
            return text(StatusCode::OK, crate::heap_profile::report());
        }
        (&Method::GET, "/metrics") => {
            let stats = shard
                .ask_all(crate::bus::Query::Stats)
                .await
                .into_iter()
                .filter_map(|a| match a {
                    crate::bus::Answer::Stats(s) => Some(s),
                    _ => None,
                })
                .sum::<crate::metrics::Stats>();
            let body = stats.render(shard.nr_shards()) + &shard.hooks.board.render();
            return text(StatusCode::OK, body);
        }
        _ => {}
    }
    match api(&shard, request, &path).await {
        Ok(reply) => reply,
        Err(e) => e.reply(),
    }
}

/// `/[prefix]/apps/{app_id}/{action}`: find the app, read the body, check the signature.
async fn api(shard: &Rc<Shard>, request: Request<Incoming>, path: &str) -> Result<Reply, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("Not found: {path}"));
    let at = path.find("/apps/").ok_or_else(not_found)?;
    let (app_id, action) = path[at + 6..].split_once('/').ok_or_else(not_found)?;
    let (app, config) = shard
        .config
        .app_by_id(app_id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("Unknown app id {app_id}")))?;
    let method = request.method().clone();
    let query = request.uri().query().unwrap_or("").to_string();
    let limit = config.max_event_payload_bytes * config.max_batch_size.max(1) + 64 * 1024;
    let mut body = read_body(request.into_body(), limit).await?.to_vec();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let paths = [path, &path[at..]];
    sign::verify(config, method.as_str(), &paths, &query, &body, now)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    if !config.enabled {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "Application disabled"));
    }
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let segments: Vec<String> = action
        .split('/')
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method, segments.as_slice()) {
        (Method::POST, ["events"]) => events::trigger(shard, app, &mut body).await,
        (Method::POST, ["batch_events"]) => events::batch(shard, app, &mut body).await,
        (Method::GET, ["channels"]) => {
            let info = channels::Info::parse(param("info").as_deref())?;
            let prefix = param("filter_by_prefix").unwrap_or_default();
            channels::list(shard, app, &prefix, &info).await
        }
        (Method::GET, ["channels", name]) => {
            let info = channels::Info::parse(param("info").as_deref())?;
            channels::show(shard, app, name, &info).await
        }
        (Method::GET, ["channels", name, "users"]) => channels::users(shard, app, name).await,
        (Method::POST, ["users", user_id, "terminate_connections"]) => {
            Ok(channels::terminate(shard, app, user_id))
        }
        _ => Err(not_found()),
    }
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Body larger than {limit} bytes"),
        )),
        Err(e) => Err(ApiError::bad_request(format!("Cannot read body: {e}"))),
    }
}
