//! A published message: what the publisher sent and what the server added, the order of
//! queues (priority first, then the publisher's `ext_pub_time` when given, then the time we
//! received it), its stored form (JSON, one store entry per message whatever its number of
//! recipients) and its external form (what subscribers and browsers see, Zato's field names).

use super::ids;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::cell::OnceCell;

/// Lowest and highest priority, and the default.
pub const PRIORITY_MIN: u8 = 1;
pub const PRIORITY_MAX: u8 = 9;
pub const PRIORITY_DEFAULT: u8 = 5;

/// How much of the data browsing searches (Zato's `data_prefix_short`).
pub const SEARCH_PREFIX: usize = 64;

/// A message as stored and queued. Shared (`Rc`) by every queue holding it; never changed in
/// place (an update makes a new one).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Msg {
    /// Storage id: the message's key in the store, unique per topic (its publication number).
    pub uid: u64,
    pub msg_id: String,
    pub topic: String,
    /// The data as published: a string, or (when `data_json`) the JSON text of any other
    /// JSON value, delivered as that value.
    pub data: String,
    #[serde(default)]
    pub data_json: bool,
    pub priority: u8,
    /// Seconds after `pub_time` the message expires.
    pub expiration: u64,
    /// When we received it, microseconds since the epoch.
    pub pub_time: u64,
    /// The publisher's own publication time, microseconds since the epoch.
    pub ext_pub_time: Option<u64>,
    /// Order of publication on its topic's home: breaks ties between equal times.
    pub seq: u64,
    pub correl_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub ext_client_id: Option<String>,
    pub group_id: Option<String>,
    pub position_in_group: u64,
    pub mime_type: String,
    pub has_gd: bool,
    /// The endpoint that published it and the pattern that let it.
    pub published_by: String,
    pub pub_pattern: String,
    /// Its external form's JSON without `delivery_count` and `sub_key`, made on the first
    /// delivery and shared by every subscriber's (encode once: a fan-out to 10 notify
    /// subscriptions builds it once, not 10 times). Empty again in an updated copy.
    #[serde(skip)]
    pub external_tail: OnceCell<String>,
}

/// A message's place in a queue: higher priority first, then the earlier time, then the
/// earlier publication. Unique per message (the uid ends the tie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderKey {
    inverted_priority: u8,
    time: u64,
    seq: u64,
    uid: u64,
}

impl Msg {
    /// Its place in queues. Zato compares `ext_pub_time` only when both messages have one and
    /// `pub_time` otherwise, which is no total order; here a message's time is its
    /// `ext_pub_time` when given, else its `pub_time`: the same wherever a topic's publishers
    /// agree on sending one or not.
    pub fn order(&self) -> OrderKey {
        OrderKey {
            inverted_priority: PRIORITY_MAX.saturating_sub(self.priority),
            time: self.ext_pub_time.unwrap_or(self.pub_time),
            seq: self.seq,
            uid: self.uid,
        }
    }

    /// Bytes of the data (Zato's `size`).
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// When it expires, microseconds since the epoch.
    pub fn expiration_time(&self) -> u64 {
        self.pub_time.saturating_add(self.expiration.saturating_mul(1_000_000))
    }

    pub fn expired(&self, now_micros: u64) -> bool {
        now_micros >= self.expiration_time()
    }

    /// The first 64 bytes of the data (cut back to a character boundary).
    pub fn prefix_short(&self) -> &str {
        let mut end = self.data.len().min(SEARCH_PREFIX);
        while !self.data.is_char_boundary(end) {
            end -= 1;
        }
        &self.data[..end]
    }

    /// The data as a JSON value: the string, or the value that was published.
    pub fn data_value(&self) -> Value {
        if self.data_json {
            serde_json::from_str(&self.data).unwrap_or_else(|_| Value::String(self.data.clone()))
        } else {
            Value::String(self.data.clone())
        }
    }

    /// The form subscribers get (Zato's `to_external_dict`) for subscription `sub_key` with
    /// this delivery count.
    pub fn external(&self, sub_key: &str, delivery_count: u32) -> Value {
        let mut out = Map::new();
        out.insert("data".into(), self.data_value());
        out.insert("delivery_count".into(), json!(delivery_count));
        out.insert("expiration".into(), json!(self.expiration));
        out.insert("expiration_time_iso".into(), json!(ids::iso(self.expiration_time())));
        out.insert("ext_client_id".into(), json!(self.ext_client_id.as_deref().unwrap_or("")));
        out.insert("has_gd".into(), json!(self.has_gd));
        out.insert("mime_type".into(), json!(self.mime_type));
        out.insert("msg_id".into(), json!(self.msg_id));
        out.insert("position_in_group".into(), json!(self.position_in_group));
        out.insert("priority".into(), json!(self.priority));
        out.insert("pub_time_iso".into(), json!(ids::iso(self.pub_time)));
        out.insert("size".into(), json!(self.size()));
        out.insert("sub_key".into(), json!(sub_key));
        out.insert("topic_name".into(), json!(self.topic));
        let optional = [
            ("correl_id", &self.correl_id),
            ("in_reply_to", &self.in_reply_to),
            ("group_id", &self.group_id),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                out.insert(name.into(), json!(value));
            }
        }
        if let Some(ext) = self.ext_pub_time {
            out.insert("ext_pub_time_iso".into(), json!(ids::iso(ext)));
        }
        Value::Object(out)
    }

    /// The external form as JSON text, the same as [`Msg::external`] gives.
    pub fn external_json(&self, sub_key: &str, delivery_count: u32) -> String {
        let tail = self.external_tail.get_or_init(|| {
            let mut value = self.external("", 0);
            if let Some(map) = value.as_object_mut() {
                map.remove("sub_key");
                map.remove("delivery_count");
            }
            // `{"data":...}` without its opening brace: at least `data` is always there.
            value.to_string().split_off(1)
        });
        let sub_key = serde_json::to_string(sub_key).unwrap_or_else(|_| "\"\"".into());
        format!("{{\"delivery_count\":{delivery_count},\"sub_key\":{sub_key},{tail}")
    }

    /// The stored form.
    pub fn to_stored(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_stored(bytes: &[u8]) -> Option<Msg> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
pub(crate) fn sample(priority: u8, pub_time: u64, ext_pub_time: Option<u64>, seq: u64) -> Msg {
    Msg {
        uid: seq,
        msg_id: format!("zpsm{seq}"),
        topic: "/t".into(),
        data: format!("data {seq}"),
        data_json: false,
        priority,
        expiration: 60,
        pub_time,
        ext_pub_time,
        seq,
        correl_id: None,
        in_reply_to: None,
        ext_client_id: None,
        group_id: None,
        position_in_group: 1,
        mime_type: "application/json".into(),
        has_gd: false,
        published_by: "e".into(),
        pub_pattern: "/*".into(),
        external_tail: OnceCell::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_priority_then_ext_pub_time_then_pub_time() {
        let low_early = sample(3, 100, None, 1);
        let high_late = sample(8, 900, None, 2);
        assert!(high_late.order() < low_early.order());
        let ext_late = sample(5, 100, Some(500), 3);
        let ext_early = sample(5, 900, Some(200), 4);
        assert!(ext_early.order() < ext_late.order());
        let first = sample(5, 300, None, 5);
        let second = sample(5, 300, None, 6);
        assert!(first.order() < second.order());
    }

    #[test]
    fn external_form_has_zatos_fields() {
        let mut msg = sample(5, 1_530_724_567_347_820, None, 1);
        msg.correl_id = Some("c1".into());
        let value = msg.external("zpsk.rest.x", 2);
        for field in [
            "data",
            "delivery_count",
            "expiration",
            "expiration_time_iso",
            "ext_client_id",
            "mime_type",
            "msg_id",
            "priority",
            "pub_time_iso",
            "size",
            "sub_key",
            "topic_name",
            "correl_id",
        ] {
            assert!(value.get(field).is_some(), "{field} in {value}");
        }
        assert!(value.get("in_reply_to").is_none());
        assert_eq!(value["pub_time_iso"], "2018-07-04T17:16:07.347820");
        assert_eq!(value["expiration_time_iso"], "2018-07-04T17:17:07.347820");
        assert_eq!(value["delivery_count"], 2);
        assert_eq!(Msg::from_stored(&msg.to_stored()).as_ref(), Some(&msg));
        let text: Value = serde_json::from_str(&msg.external_json("zpsk.rest.x", 2)).expect("json");
        assert_eq!(text, value, "the cached form is the same");
        let again: Value =
            serde_json::from_str(&msg.external_json("zpsk.rest.y", 3)).expect("json");
        assert_eq!(
            (again["sub_key"].as_str(), again["delivery_count"].as_u64()),
            (Some("zpsk.rest.y"), Some(3))
        );
    }

    #[test]
    fn json_data_is_delivered_as_json_and_prefixes_cut_at_characters() {
        let mut msg = sample(5, 0, None, 1);
        msg.data = "{\"a\":1}".into();
        msg.data_json = true;
        assert_eq!(msg.external("k", 1)["data"]["a"], 1);
        msg.data = "é".repeat(40);
        assert_eq!(msg.prefix_short().len(), 64);
        msg.data = format!("a{}", "é".repeat(40));
        assert_eq!(msg.prefix_short().len(), 63);
    }
}
