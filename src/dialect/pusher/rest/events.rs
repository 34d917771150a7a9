//! `POST /apps/{id}/events` and `POST /apps/{id}/batch_events`: validate, encode each channel's
//! frame once, publish on every shard.

use super::channels::{self, Info};
use crate::{
    config::AppConfig,
    dialect::pusher::{channel, messages::Tell, outbound, socket_id::SocketId, Pusher},
    engine::{
        bus::{PubItem, Publication},
        fanout,
        shard::Shard,
    },
    hook::event::{EmqxEvent, EmqxKind},
    rest::{json, ApiError, Reply},
    ws::frame,
};
use bytes::Bytes;
use hyper::StatusCode;
use simd_json::{prelude::*, BorrowedValue};
use std::rc::Rc;

/// One event to publish, validated.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
    pub channels: Vec<String>,
    pub socket_id: Option<SocketId>,
    /// Attributes to report back per channel (`user_count,subscription_count`).
    pub info: Option<String>,
}

/// Handles a trigger body.
pub async fn trigger(
    pusher: &Pusher,
    shard: &Rc<Shard>,
    app: u16,
    body: &mut [u8],
) -> Result<Reply, ApiError> {
    let config = pusher.app(app);
    let value = parse_json(body)?;
    let event = parse_event(&value, config, shard.config.max_channel_name_len, true)?;
    cluster_check(shard)?;
    let events = publish(pusher, shard, app, vec![event]).await;
    let Some(info) = events[0].info.as_deref() else {
        return Ok(json(StatusCode::OK, "{}"));
    };
    let info = Info::parse(Some(info))?;
    let mut per_channel = serde_json::Map::new();
    for name in &events[0].channels {
        let attributes = channels::publish_info(pusher, shard, app, name, &info).await;
        per_channel.insert(name.clone(), attributes);
    }
    Ok(json(StatusCode::OK, serde_json::json!({ "channels": per_channel }).to_string()))
}

/// Handles a batch body: `{"batch": [event, ...]}`.
pub async fn batch(
    pusher: &Pusher,
    shard: &Rc<Shard>,
    app: u16,
    body: &mut [u8],
) -> Result<Reply, ApiError> {
    let config = pusher.app(app);
    let value = parse_json(body)?;
    let items = value
        .get("batch")
        .and_then(|b| b.as_array())
        .ok_or_else(|| ApiError::bad_request("Body must be {\"batch\": [events]}"))?;
    if items.len() > config.max_batch_size {
        let message = format!("Batch too large: at most {} events", config.max_batch_size);
        return Err(ApiError::bad_request(message));
    }
    let max_name = shard.config.max_channel_name_len;
    let events = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            parse_event(item, config, max_name, false)
                .map_err(|e| ApiError::new(e.status, format!("batch[{i}]: {}", e.message)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    cluster_check(shard)?;
    let events = publish(pusher, shard, app, events).await;
    if events.iter().all(|e| e.info.is_none()) {
        return Ok(json(StatusCode::OK, "{}"));
    }
    let mut batch = Vec::with_capacity(events.len());
    for event in &events {
        let info = Info::parse(event.info.as_deref())?;
        batch.push(channels::publish_info(pusher, shard, app, &event.channels[0], &info).await);
    }
    Ok(json(StatusCode::OK, serde_json::json!({ "batch": batch }).to_string()))
}

fn parse_json(body: &mut [u8]) -> Result<BorrowedValue<'_>, ApiError> {
    simd_json::to_borrowed_value(body).map_err(|_| ApiError::bad_request("Invalid JSON body"))
}

/// Validates one event object. `many_channels`: `channels` is allowed (not in batches).
pub fn parse_event(
    value: &BorrowedValue<'_>,
    app: &AppConfig,
    max_channel_name: usize,
    many_channels: bool,
) -> Result<Event, ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_request("An event must be a JSON object"));
    }
    let name = value.get_str("name").ok_or_else(|| ApiError::bad_request("name is required"))?;
    if name.is_empty() || name.len() > app.max_event_name_len {
        let message = format!("name must be 1 to {} characters", app.max_event_name_len);
        return Err(ApiError::bad_request(message));
    }
    let data = match value.get("data") {
        None => return Err(ApiError::bad_request("data is required")),
        Some(d) => d.as_str().map_or_else(|| d.encode(), str::to_string),
    };
    if data.len() > app.max_event_payload_bytes {
        let message = format!("data larger than {} bytes", app.max_event_payload_bytes);
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message));
    }
    let channels = channel_list(value, app, many_channels)?;
    for name in &channels {
        channel::check_name(name, max_channel_name)
            .map_err(|e| ApiError::bad_request(format!("{e}: {name}")))?;
    }
    let socket_id = match value.get("socket_id") {
        None => None,
        Some(v) if v.is_null() => None,
        Some(v) => Some(
            v.as_str()
                .and_then(SocketId::parse)
                .ok_or_else(|| ApiError::bad_request("socket_id must look like 123.456"))?,
        ),
    };
    let info = value.get_str("info").map(str::to_string);
    Info::parse(info.as_deref())?;
    Ok(Event { name: name.to_string(), data, channels, socket_id, info })
}

fn channel_list(
    value: &BorrowedValue<'_>,
    app: &AppConfig,
    many: bool,
) -> Result<Vec<String>, ApiError> {
    if let Some(one) = value.get("channel") {
        let one = one.as_str().ok_or_else(|| ApiError::bad_request("channel must be a string"))?;
        return Ok(vec![one.to_string()]);
    }
    let list = value.get("channels").filter(|_| many).ok_or_else(|| {
        ApiError::bad_request(if many {
            "channel or channels is required"
        } else {
            "channel is required"
        })
    })?;
    let list = list.as_array().ok_or_else(|| ApiError::bad_request("channels must be an array"))?;
    if list.is_empty() || list.len() > app.max_event_channels {
        let message = format!("channels must name 1 to {} channels", app.max_event_channels);
        return Err(ApiError::bad_request(message));
    }
    list.iter()
        .map(|c| c.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::bad_request("channels must be strings"))
}

/// Encodes each (event, channel) frame once and publishes them as one publication; cache
/// channels also hand their event to their home shard. Returns the events.
/// Refuses a publish while the cluster link is down, when the cluster is configured to.
fn cluster_check(shard: &Shard) -> Result<(), ApiError> {
    if shard.cluster.as_ref().is_some_and(|link| link.refuses_publishes()) {
        let message = "Cluster link down: the publish would reach this node only; retry";
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message));
    }
    Ok(())
}

async fn publish(pusher: &Pusher, shard: &Rc<Shard>, app: u16, events: Vec<Event>) -> Vec<Event> {
    let mut items = Vec::new();
    for event in &events {
        for name in &event.channels {
            shard.hooks.emqx(EmqxKind::MessagePublish, Some(name), || EmqxEvent {
                from_client_id: Some("http_api".into()),
                topic: Some(name.clone()),
                payload: Some(event.data.clone()),
                ..EmqxEvent::new(EmqxKind::MessagePublish, "http_api")
            });
            if channel::is_cache(name) {
                let tell = Tell::CacheSet {
                    app,
                    channel: name.clone(),
                    event: event.name.clone(),
                    data: event.data.clone(),
                };
                pusher.tell(shard, shard.home_of(app, name), tell);
            }
            let text = outbound::channel_event(&event.name, name, &event.data);
            let exclude = event.socket_id.and_then(|s| pusher.addr_of(s));
            let elsewhere = event.socket_id.filter(|_| exclude.is_none());
            items.push(PubItem {
                topic: name.as_str().into(),
                frame: Bytes::from(frame::text(&text)),
                exclude,
                exclude_elsewhere: elsewhere.map(|s| s.to_string().into()),
                report: shard.hooks.wants_emqx(EmqxKind::MessageDelivered, Some(name)),
            });
        }
    }
    shard.state.borrow_mut().stats.events_published += items.len() as u64;
    fanout::publish(shard, Publication { ns: app, items }).await;
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str, many: bool) -> Result<Event, ApiError> {
        let mut bytes = body.as_bytes().to_vec();
        let value = simd_json::to_borrowed_value(&mut bytes).expect("json");
        parse_event(&value, &AppConfig::default(), 164, many)
    }

    #[test]
    fn one_or_many_channels() {
        let e = parse(r#"{"name":"n","data":"d","channel":"a"}"#, true).expect("ok");
        assert_eq!(e.channels, vec!["a"]);
        let e = parse(r#"{"name":"n","data":"d","channels":["a","b"],"socket_id":"1.2"}"#, true)
            .expect("ok");
        assert_eq!(e.channels, vec!["a", "b"]);
        assert_eq!(e.socket_id, Some(SocketId { high: 1, low: 2 }));
        let batch_many = parse(r#"{"name":"n","data":"d","channels":["a"]}"#, false);
        assert_eq!(
            batch_many.expect_err("batch events name one channel").status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn object_data_is_sent_as_its_json_text() {
        let e = parse(r#"{"name":"n","data":{"x":1},"channel":"a"}"#, true).expect("ok");
        assert_eq!(e.data, r#"{"x":1}"#);
    }

    #[test]
    fn limits_and_errors() {
        let big = format!(r#"{{"name":"n","data":"{}","channel":"a"}}"#, "x".repeat(10241));
        assert_eq!(parse(&big, true).expect_err("too big").status, StatusCode::PAYLOAD_TOO_LARGE);
        let fits = format!(r#"{{"name":"n","data":"{}","channel":"a"}}"#, "x".repeat(10240));
        assert!(parse(&fits, true).is_ok());
        let many: Vec<String> = (0..101).map(|i| format!("\"c{i}\"")).collect();
        let body = format!(r#"{{"name":"n","data":"d","channels":[{}]}}"#, many.join(","));
        assert_eq!(parse(&body, true).expect_err("101").status, StatusCode::BAD_REQUEST);
        for bad in [
            r#"{"data":"d","channel":"a"}"#,
            r#"{"name":"n","channel":"a"}"#,
            r#"{"name":"n","data":"d"}"#,
            r#"{"name":"n","data":"d","channel":"bad name"}"#,
            r#"{"name":"n","data":"d","channels":[]}"#,
            r#"{"name":"n","data":"d","channel":"a","socket_id":"abc"}"#,
            r#"{"name":"","data":"d","channel":"a"}"#,
            r#"[1]"#,
        ] {
            assert_eq!(parse(bad, true).expect_err(bad).status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
