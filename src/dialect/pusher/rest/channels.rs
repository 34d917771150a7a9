//! Channel and user queries: `GET /channels`, `GET /channels/{name}`, `GET /channels/{name}/users`
//! and `POST /users/{id}/terminate_connections`. Counts are gathered from every shard when asked,
//! so they are exact at the time of the query. In cluster mode subscriber counts and channel
//! lists also ask the other nodes (an answer missing a node says `X-Pushgate-Partial: true`);
//! members come from the channel's home, which holds the other nodes' members already.

use crate::{
    dialect::pusher::{
        channel::{self, ChannelKind},
        cluster,
        home::LISTING_SLICE,
        messages::{Question, Reply as Answered, Tell},
        wire::{Ask, Told},
        Pusher,
    },
    engine::{self, shard::Shard},
    rest::{json, ApiError, Reply},
};
use ahash::AHashMap;
use hyper::StatusCode;
use serde_json::{json, Map, Value};
use std::{collections::BTreeMap, rc::Rc};

/// The `info` attributes a query asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Info {
    pub user_count: bool,
    pub subscription_count: bool,
    pub cache: bool,
}

impl Info {
    /// Parses `info=a,b`; an unknown attribute is a 400.
    pub fn parse(text: Option<&str>) -> Result<Info, ApiError> {
        let mut info = Info::default();
        for attribute in text.unwrap_or("").split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match attribute {
                "user_count" => info.user_count = true,
                "subscription_count" => info.subscription_count = true,
                "cache" => info.cache = true,
                other => {
                    return Err(ApiError::bad_request(format!("Unknown info attribute {other}")))
                }
            }
        }
        Ok(info)
    }

    /// Refuses attributes that do not fit the channel's kind.
    fn check(&self, name: &str) -> Result<(), ApiError> {
        if self.user_count && ChannelKind::of(name) != ChannelKind::Presence {
            return Err(ApiError::bad_request(
                "user_count is only available for presence channels",
            ));
        }
        if self.cache && !channel::is_cache(name) {
            return Err(ApiError::bad_request("cache is only available for cache channels"));
        }
        Ok(())
    }
}

/// `GET /apps/{id}/channels?filter_by_prefix=&info=user_count`: occupied channels only.
pub async fn list(
    pusher: &Pusher,
    shard: &Rc<Shard>,
    app: u16,
    prefix: &str,
    info: &Info,
) -> Result<Reply, ApiError> {
    if info.cache {
        return Err(ApiError::bad_request("cache is not available when listing channels"));
    }
    if info.user_count && !prefix.starts_with("presence-") {
        return Err(ApiError::bad_request("user_count needs filter_by_prefix=presence-"));
    }
    let question = Question::Channels { app, prefix: prefix.to_string() };
    let ask = Ask::Channels { app: pusher.app(app).id.clone(), prefix: prefix.to_string() };
    let (answers, (remote, complete)) = futures_lite::future::zip(
        pusher.ask_all(shard, question),
        cluster::ask_nodes(pusher, shard, &ask),
    )
    .await;
    // Merged and written in slices, the shard serving its other connections between them: a
    // listing of 200,000 channels takes a while, and the Pusher API has no pagination.
    let mut subscribers: BTreeMap<String, u64> = BTreeMap::new();
    let mut users: AHashMap<String, u64> = AHashMap::default();
    let mut done = 0usize;
    for answer in answers {
        if let Answered::Channels { local, presence } = answer {
            for (name, n) in local {
                *subscribers.entry(name).or_default() += n;
                done += 1;
                if done.is_multiple_of(LISTING_SLICE) {
                    engine::breathe().await;
                }
            }
            users.extend(presence);
        }
    }
    for told in remote {
        if let Told::Channels { channels } = told {
            for (name, n) in channels {
                *subscribers.entry(name).or_default() += n;
            }
        }
    }
    let mut body = Vec::with_capacity(32 * subscribers.len() + 16);
    body.extend_from_slice(b"{\"channels\":{");
    let occupied = subscribers.iter().filter(|(_, n)| **n > 0);
    for (i, (name, count)) in occupied.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let mut attributes = Map::new();
        if info.user_count {
            attributes.insert("user_count".into(), json!(users.get(name).copied().unwrap_or(0)));
        }
        if info.subscription_count {
            attributes.insert("subscription_count".into(), json!(count));
        }
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut body, name);
        body.push(b':');
        let _ = serde_json::to_writer(&mut body, &Value::Object(attributes));
        if (i + 1).is_multiple_of(LISTING_SLICE) {
            engine::breathe().await;
        }
    }
    body.extend_from_slice(b"}}");
    Ok(partial(json(StatusCode::OK, body), complete))
}

/// `GET /apps/{id}/channels/{name}?info=...`: `occupied` always, the rest when asked.
pub async fn show(
    pusher: &Pusher,
    shard: &Rc<Shard>,
    app: u16,
    name: &str,
    info: &Info,
) -> Result<Reply, ApiError> {
    info.check(name)?;
    let (subscribers, complete) = subscription_count(pusher, shard, app, name).await;
    let mut body = Map::new();
    body.insert("occupied".into(), json!(subscribers > 0));
    if info.user_count {
        body.insert("user_count".into(), json!(members(pusher, shard, app, name).await.len()));
    }
    if info.subscription_count {
        body.insert("subscription_count".into(), json!(subscribers));
    }
    if info.cache {
        if let Some((_, data, ttl)) = cluster::cached(pusher, shard, app, name).await {
            body.insert("cache".into(), json!({ "data": data, "ttl": ttl }));
        }
    }
    Ok(partial(json(StatusCode::OK, Value::Object(body).to_string()), complete))
}

/// Marks an answer some node did not contribute to.
fn partial(mut reply: Reply, complete: bool) -> Reply {
    if !complete {
        reply
            .headers_mut()
            .insert("x-pushgate-partial", hyper::header::HeaderValue::from_static("true"));
    }
    reply
}

/// `GET /apps/{id}/channels/{name}/users`: presence channels only.
pub async fn users(
    pusher: &Pusher,
    shard: &Rc<Shard>,
    app: u16,
    name: &str,
) -> Result<Reply, ApiError> {
    if ChannelKind::of(name) != ChannelKind::Presence {
        return Err(ApiError::bad_request("users are only available for presence channels"));
    }
    let users: Vec<Value> =
        members(pusher, shard, app, name).await.into_iter().map(|id| json!({ "id": id })).collect();
    Ok(json(StatusCode::OK, json!({ "users": users }).to_string()))
}

/// `POST /apps/{id}/users/{user_id}/terminate_connections`: every shard (of every node) closes
/// that user's signed-in connections.
pub fn terminate(pusher: &Pusher, shard: &Rc<Shard>, app: u16, user_id: &str) -> Reply {
    cluster::terminate(pusher, shard, app, user_id);
    for peer in 0..shard.nr_shards() {
        pusher.tell(shard, peer, Tell::Terminate { app, user_id: user_id.to_string() });
    }
    json(StatusCode::OK, "{}")
}

/// Subscribers of a channel over all shards (and nodes), and whether every node answered.
pub async fn subscription_count(
    pusher: &Pusher,
    shard: &Rc<Shard>,
    app: u16,
    name: &str,
) -> (u64, bool) {
    let question = Question::Subscribers { app, channel: name.to_string() };
    let ask = Ask::Subscribers { app: pusher.app(app).id.clone(), channel: name.to_string() };
    let (here, (remote, complete)) = futures_lite::future::zip(
        pusher.ask_all(shard, question),
        cluster::ask_nodes(pusher, shard, &ask),
    )
    .await;
    let here: u64 = here.into_iter().map(|a| if let Answered::Count(n) = a { n } else { 0 }).sum();
    let there: u64 =
        remote.into_iter().map(|t| if let Told::Count { count } = t { count } else { 0 }).sum();
    (here + there, complete)
}

/// Member ids of a presence channel, from its home shard.
pub async fn members(pusher: &Pusher, shard: &Rc<Shard>, app: u16, name: &str) -> Vec<String> {
    let home = shard.home_of(app, name);
    match pusher.ask(shard, home, Question::Members { app, channel: name.to_string() }).await {
        Some(Answered::Members(ids)) => ids,
        _ => Vec::new(),
    }
}

/// The `info` block of a publish for one channel: `user_count` for presence channels,
/// `subscription_count` for the others (as Pusher documents).
pub async fn publish_info(
    pusher: &Pusher,
    shard: &Rc<Shard>,
    app: u16,
    name: &str,
    info: &Info,
) -> Value {
    let mut attributes = Map::new();
    let presence = ChannelKind::of(name) == ChannelKind::Presence;
    if info.user_count && presence {
        let users = members(pusher, shard, app, name).await.len();
        attributes.insert("user_count".into(), json!(users));
    }
    if info.subscription_count && !presence {
        let (count, _) = subscription_count(pusher, shard, app, name).await;
        attributes.insert("subscription_count".into(), json!(count));
    }
    Value::Object(attributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_attributes() {
        let info = Info::parse(Some("user_count,subscription_count")).expect("ok");
        assert!(info.user_count && info.subscription_count && !info.cache);
        assert_eq!(Info::parse(None).expect("none"), Info::default());
        assert!(Info::parse(Some("bogus")).is_err());
        assert!(info.check("presence-x").is_ok());
        assert!(info.check("public").is_err());
        let cache = Info::parse(Some("cache")).expect("ok");
        assert!(cache.check("cache-x").is_ok());
        assert!(cache.check("private-x").is_err());
    }
}
