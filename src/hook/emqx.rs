//! EMQX 4.x webhook bodies for pushgate's events: `action`, `node`, `clientid`, `username`
//! (null when not signed in), `ipaddress`, `topic`, `payload` (plain or base64), `ts` in ms.
//! Pusher maps onto MQTT as: client id = socket id, username = signed-in user, topic = channel.

use super::event::{EmqxEvent, EmqxKind};
use crate::config::hooks::PayloadEncoding;
use base64::Engine;
use serde_json::{json, Map, Value};

/// The JSON bodies (as text) for one event: one, or for message.delivered one per receiver.
///
/// A delivered event lists every receiver of a publication on a shard, so its bodies share all
/// fields but `clientid` and `username`: the shared part is serialized once and each body only
/// appends its receiver. Measured: building a `serde_json::Value` per receiver made the hook
/// shard the bottleneck of a 100k deliveries/s fan-out (BENCHMARKS.md, issue 5 row).
pub fn bodies(event: &EmqxEvent, node: &str, encoding: PayloadEncoding) -> Vec<String> {
    let Some(kind) = event.kind else { return Vec::new() };
    if kind != EmqxKind::MessageDelivered {
        return vec![Value::Object(body(kind, event, node, encoding)).to_string()];
    }
    let shared = Value::Object(message_body(kind, event, node, encoding)).to_string();
    let Some(open) = shared.strip_suffix('}') else { return Vec::new() };
    event
        .delivered_to
        .iter()
        .map(|(clientid, username)| {
            let mut text = String::with_capacity(open.len() + clientid.len() + 40);
            text.push_str(open);
            text.push_str(",\"clientid\":");
            text.push_str(&json!(clientid).to_string());
            text.push_str(",\"username\":");
            text.push_str(&json!(username).to_string());
            text.push('}');
            text
        })
        .collect()
}

fn body(
    kind: EmqxKind,
    e: &EmqxEvent,
    node: &str,
    encoding: PayloadEncoding,
) -> Map<String, Value> {
    if matches!(kind, EmqxKind::MessagePublish | EmqxKind::MessageAcked) {
        return message_body(kind, e, node, encoding);
    }
    let mut b = base(kind, node);
    b.insert("clientid".into(), json!(e.clientid));
    b.insert("username".into(), json!(e.username));
    match kind {
        EmqxKind::ClientConnect | EmqxKind::ClientConnack | EmqxKind::ClientConnected => {
            b.insert("ipaddress".into(), json!(e.ipaddress));
            b.insert("proto_ver".into(), json!(7));
            if let Some(ack) = e.conn_ack {
                b.insert("conn_ack".into(), json!(ack));
            }
            if let Some(at) = e.connected_at {
                b.insert("connected_at".into(), json!(at));
            }
        }
        EmqxKind::ClientDisconnected => {
            b.insert("reason".into(), json!(e.reason));
            b.insert("connected_at".into(), json!(e.connected_at));
            b.insert("disconnected_at".into(), json!(e.ts));
        }
        EmqxKind::SessionTerminated => {
            b.insert("reason".into(), json!(e.reason));
        }
        EmqxKind::ClientSubscribe | EmqxKind::ClientUnsubscribe | EmqxKind::SessionSubscribed => {
            b.insert("topic".into(), json!(e.topic));
            b.insert("opts".into(), json!({ "qos": 0 }));
        }
        EmqxKind::SessionUnsubscribed => {
            b.insert("topic".into(), json!(e.topic));
        }
        _ => {}
    }
    b
}

fn message_body(
    kind: EmqxKind,
    e: &EmqxEvent,
    node: &str,
    encoding: PayloadEncoding,
) -> Map<String, Value> {
    let mut b = base(kind, node);
    b.insert("from_client_id".into(), json!(e.from_client_id));
    b.insert("from_username".into(), json!(e.from_username));
    b.insert("topic".into(), json!(e.topic));
    b.insert("qos".into(), json!(0));
    b.insert("retain".into(), json!(false));
    let payload = e.payload.as_deref().unwrap_or("");
    let payload = match encoding {
        PayloadEncoding::Plain => payload.to_string(),
        PayloadEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(payload),
    };
    b.insert("payload".into(), json!(payload));
    b.insert("ts".into(), json!(e.ts));
    b
}

fn base(kind: EmqxKind, node: &str) -> Map<String, Value> {
    let mut b = Map::new();
    b.insert("action".into(), json!(kind.action()));
    b.insert("node".into(), json!(node));
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(e: &EmqxEvent, node: &str, encoding: PayloadEncoding) -> Vec<Value> {
        bodies(e, node, encoding)
            .iter()
            .map(|t| serde_json::from_str(t).expect("valid JSON"))
            .collect()
    }

    #[test]
    fn connect_family() {
        let e = EmqxEvent {
            ipaddress: Some("127.0.0.1".into()),
            conn_ack: Some("success"),
            ..EmqxEvent::new(EmqxKind::ClientConnack, "1.2")
        };
        let b = &parsed(&e, "pushgate@h", PayloadEncoding::Plain)[0];
        assert_eq!(b["action"], "client_connack");
        assert_eq!(b["node"], "pushgate@h");
        assert_eq!(b["clientid"], "1.2");
        assert_eq!(b["username"], Value::Null);
        assert_eq!(b["conn_ack"], "success");
        assert_eq!(b["ipaddress"], "127.0.0.1");
    }

    #[test]
    fn publish_payload_encodings() {
        let e = EmqxEvent {
            from_client_id: Some("http_api".into()),
            topic: Some("orders".into()),
            payload: Some("hello".into()),
            ..EmqxEvent::new(EmqxKind::MessagePublish, "http_api")
        };
        let plain = &parsed(&e, "n", PayloadEncoding::Plain)[0];
        assert_eq!(plain["action"], "message_publish");
        assert_eq!(plain["payload"], "hello");
        assert_eq!(plain["topic"], "orders");
        assert_eq!(plain["retain"], false);
        assert!(plain["ts"].as_u64().is_some_and(|t| t > 1_600_000_000_000), "ms timestamp");
        let b64 = &parsed(&e, "n", PayloadEncoding::Base64)[0];
        assert_eq!(b64["payload"], "aGVsbG8=");
    }

    #[test]
    fn delivered_expands_per_receiver() {
        let e = EmqxEvent {
            topic: Some("t".into()),
            payload: Some("p".into()),
            delivered_to: vec![("1.1".into(), None), ("1.2".into(), Some("u".into()))],
            ..EmqxEvent::new(EmqxKind::MessageDelivered, "")
        };
        let all = parsed(&e, "n", PayloadEncoding::Plain);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0]["clientid"], "1.1");
        assert_eq!(all[1]["username"], "u");
        assert_eq!(all[1]["action"], "message_delivered");
        assert_eq!(all[1]["payload"], "p");
        assert_eq!(all[0]["topic"], "t");
    }

    #[test]
    fn disconnect_and_subscribe() {
        let e = EmqxEvent {
            reason: Some("normal".into()),
            connected_at: Some(5),
            ..EmqxEvent::new(EmqxKind::ClientDisconnected, "1.2")
        };
        let b = &parsed(&e, "n", PayloadEncoding::Plain)[0];
        assert_eq!((b["reason"].as_str(), b["connected_at"].as_u64()), (Some("normal"), Some(5)));
        assert!(b["disconnected_at"].as_u64().is_some());
        let e = EmqxEvent {
            topic: Some("orders".into()),
            ..EmqxEvent::new(EmqxKind::ClientSubscribe, "1.2")
        };
        let b = &parsed(&e, "n", PayloadEncoding::Plain)[0];
        assert_eq!(b["topic"], "orders");
        assert_eq!(b["opts"]["qos"], 0);
    }
}
