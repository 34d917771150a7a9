//! Pusher's REST API on the client port: `/[prefix]/apps/{app_id}/{action}`, and
//! `/[prefix]/users/{id}/terminate_connections` without the app in the path (the official
//! Python SDK calls that; the app is the one whose key signed the request). This file finds
//! the app, reads the body, checks the signature and routes; the handlers are in `events` and
//! `channels`, the signing rules in `sign`.

pub mod channels;
pub mod events;
pub mod sign;

use super::Pusher;
use crate::{
    config::AppConfig,
    engine::shard::Shard,
    rest::{read_body, ApiError, Reply},
};
use hyper::{body::Incoming, Method, Request, StatusCode};
use std::rc::Rc;

/// Serves one request whose path contains `/apps/`.
pub async fn call(pusher: &Rc<Pusher>, shard: &Rc<Shard>, request: Request<Incoming>) -> Reply {
    let path = request.uri().path().to_string();
    match api(pusher, shard, request, &path).await {
        Ok(reply) => reply,
        Err(e) => e.reply(),
    }
}

/// Whether `path` is one of the Pusher API's: `[prefix]/apps/...`, or the user termination
/// the Python SDK sends without `/apps/{id}`.
pub fn serves(path: &str) -> bool {
    path.contains("/apps/")
        || (path.contains("/users/") && path.ends_with("/terminate_connections"))
}

/// The app a request is for, with its index, the action part of the path, and where the
/// unprefixed path starts: from `/apps/{id}/`, or for `/users/...` from `auth_key`.
fn locate<'a>(
    pusher: &'a Pusher,
    path: &'a str,
    query: &str,
) -> Result<(u16, &'a AppConfig, &'a str, usize), ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("Not found: {path}"));
    if let Some(at) = path.find("/apps/") {
        let (app_id, action) = path[at + 6..].split_once('/').ok_or_else(not_found)?;
        let (app, config) = pusher.config.app_by_id(app_id).ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("Unknown app id {app_id}"))
        })?;
        return Ok((app, config, action, at));
    }
    let at = path.find("/users/").ok_or_else(not_found)?;
    let key = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("auth_key"))
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let (app, config) = pusher
        .config
        .app_by_key(&key)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "Unknown auth_key"))?;
    Ok((app, config, &path[at + 1..], at))
}

/// `/[prefix]/apps/{app_id}/{action}`: find the app, read the body, check the signature.
async fn api(
    pusher: &Rc<Pusher>,
    shard: &Rc<Shard>,
    request: Request<Incoming>,
    path: &str,
) -> Result<Reply, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("Not found: {path}"));
    let query = request.uri().query().unwrap_or("").to_string();
    let (app, config, action, at) = locate(pusher, path, &query)?;
    let method = request.method().clone();
    let limit = config.max_event_payload_bytes * config.max_batch_size.max(1) + 64 * 1024;
    let mut body = read_body(shard, request.into_body(), limit).await?;
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
        (Method::POST, ["events"]) => events::trigger(pusher, shard, app, &mut body).await,
        (Method::POST, ["batch_events"]) => events::batch(pusher, shard, app, &mut body).await,
        (Method::GET, ["channels"]) => {
            let info = channels::Info::parse(param("info").as_deref())?;
            let prefix = param("filter_by_prefix").unwrap_or_default();
            channels::list(pusher, shard, app, &prefix, &info).await
        }
        (Method::GET, ["channels", name]) => {
            let info = channels::Info::parse(param("info").as_deref())?;
            channels::show(pusher, shard, app, name, &info).await
        }
        (Method::GET, ["channels", name, "users"]) => {
            channels::users(pusher, shard, app, name).await
        }
        (Method::POST, ["users", user_id, "terminate_connections"]) => {
            Ok(channels::terminate(pusher, shard, app, user_id))
        }
        _ => Err(not_found()),
    }
}
