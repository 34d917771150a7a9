//! Configuration of outbound hooks: Pusher webhooks per app (`[[apps.webhooks]]`), EMQX-style
//! event hooks (`[[event_hooks]]`), and their delivery defaults (`[hooks]`), which any webhook
//! or event hook may override with the same keys.

use super::{invalid, ConfigError};
use crate::hook::mqtt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Delivery defaults for every hook endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// Events waiting per endpoint; past it new events are dropped and counted. Default 10000.
    pub queue_max: usize,
    /// Events per request; 1 (default) sends each alone. Pusher webhooks may batch.
    pub batch_max: usize,
    /// How long a batch waits for more events after its first, ms. Default 50.
    pub batch_window_ms: u64,
    /// Give up on an event after this long, seconds. Default 300 (Pusher retries 5 minutes).
    pub max_elapsed_secs: u64,
    /// Give up after this many attempts; 0 (default): only `max_elapsed_secs` limits.
    pub max_attempts: u32,
    /// First retry backoff, ms, doubling up to `max_backoff_ms`. Defaults 1000 and 60000.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Pause of an endpoint after a socket-level failure (refused, reset, timeout), ms.
    /// Default 10000, as Zato's subscriptions.
    pub socket_pause_ms: u64,
    /// Pause after any other failure (non-2xx answer), ms. Default 3000.
    pub other_pause_ms: u64,
    /// Connect and whole-request timeouts, ms. Defaults 5000 and 10000.
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// Delay before `channel_vacated` and `member_removed` webhooks, cancelled if the channel
    /// or user comes back meanwhile, ms. Default 3000 (Pusher).
    pub vacate_delay_ms: u64,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            queue_max: 10_000,
            batch_max: 1,
            batch_window_ms: 50,
            max_elapsed_secs: 300,
            max_attempts: 0,
            initial_backoff_ms: 1000,
            max_backoff_ms: 60_000,
            socket_pause_ms: 10_000,
            other_pause_ms: 3000,
            connect_timeout_ms: 5000,
            request_timeout_ms: 10_000,
            vacate_delay_ms: 3000,
        }
    }
}

/// Per-endpoint overrides of [`HooksConfig`]; unset keys take the `[hooks]` value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeliveryOverrides {
    pub queue_max: Option<usize>,
    pub batch_max: Option<usize>,
    pub batch_window_ms: Option<u64>,
    pub max_elapsed_secs: Option<u64>,
    pub max_attempts: Option<u32>,
    pub initial_backoff_ms: Option<u64>,
    pub max_backoff_ms: Option<u64>,
    pub socket_pause_ms: Option<u64>,
    pub other_pause_ms: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
}

impl DeliveryOverrides {
    /// The `[hooks]` defaults with these overrides applied.
    pub fn over(&self, d: &HooksConfig) -> HooksConfig {
        HooksConfig {
            queue_max: self.queue_max.unwrap_or(d.queue_max),
            batch_max: self.batch_max.unwrap_or(d.batch_max),
            batch_window_ms: self.batch_window_ms.unwrap_or(d.batch_window_ms),
            max_elapsed_secs: self.max_elapsed_secs.unwrap_or(d.max_elapsed_secs),
            max_attempts: self.max_attempts.unwrap_or(d.max_attempts),
            initial_backoff_ms: self.initial_backoff_ms.unwrap_or(d.initial_backoff_ms),
            max_backoff_ms: self.max_backoff_ms.unwrap_or(d.max_backoff_ms),
            socket_pause_ms: self.socket_pause_ms.unwrap_or(d.socket_pause_ms),
            other_pause_ms: self.other_pause_ms.unwrap_or(d.other_pause_ms),
            connect_timeout_ms: self.connect_timeout_ms.unwrap_or(d.connect_timeout_ms),
            request_timeout_ms: self.request_timeout_ms.unwrap_or(d.request_timeout_ms),
            vacate_delay_ms: d.vacate_delay_ms,
        }
    }
}

/// The Pusher webhook event names.
pub const PUSHER_EVENTS: [&str; 7] = [
    "channel_occupied",
    "channel_vacated",
    "member_added",
    "member_removed",
    "client_event",
    "cache_miss",
    "subscription_count",
];

/// One Pusher webhook of an app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Which events to send; all of [`PUSHER_EVENTS`] when omitted.
    #[serde(default = "all_pusher_events")]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub filter: ChannelFilter,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(flatten)]
    pub delivery: DeliveryOverrides,
}

fn all_pusher_events() -> Vec<String> {
    PUSHER_EVENTS.iter().map(|s| s.to_string()).collect()
}

/// Channel-name filter of a webhook (soketi's and sockudo's shape).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelFilter {
    pub channel_prefix: Option<String>,
    pub channel_suffix: Option<String>,
}

impl ChannelFilter {
    pub fn admits(&self, channel: &str) -> bool {
        self.channel_prefix.as_ref().is_none_or(|p| channel.starts_with(p.as_str()))
            && self.channel_suffix.as_ref().is_none_or(|s| channel.ends_with(s.as_str()))
    }
}

/// The EMQX 4.x hook points.
pub const EMQX_EVENTS: [&str; 12] = [
    "client.connect",
    "client.connack",
    "client.connected",
    "client.disconnected",
    "client.subscribe",
    "client.unsubscribe",
    "session.subscribed",
    "session.unsubscribed",
    "session.terminated",
    "message.publish",
    "message.delivered",
    "message.acked",
];

/// How `payload` fields of message events are written.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PayloadEncoding {
    #[default]
    Plain,
    Base64,
}

/// One EMQX-style rule: an event, an optional MQTT topic filter, a URL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventHookConfig {
    pub event: String,
    pub topic: Option<String>,
    pub url: String,
    #[serde(default)]
    pub payload_encoding: PayloadEncoding,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(flatten)]
    pub delivery: DeliveryOverrides,
}

fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        // The URL itself is not repeated: it may carry credentials.
        Err(invalid(key, "must start with http:// or https://"))
    }
}

/// Checks an app's webhooks; `at` is the app's key prefix (`apps[0]`).
pub fn check_webhooks(at: &str, hooks: &[WebhookConfig]) -> Result<(), ConfigError> {
    for (i, hook) in hooks.iter().enumerate() {
        let key = format!("{at}.webhooks[{i}]");
        check_url(&format!("{key}.url"), &hook.url)?;
        for name in &hook.event_types {
            if !PUSHER_EVENTS.contains(&name.as_str()) {
                return Err(invalid(
                    format!("{key}.event_types"),
                    format!("unknown event {name:?}"),
                ));
            }
        }
        if hook.delivery.batch_max == Some(0) || hook.delivery.queue_max == Some(0) {
            return Err(invalid(&key, "batch_max and queue_max must be greater than 0"));
        }
    }
    Ok(())
}

/// Checks the EMQX-style rules.
pub fn check_event_hooks(hooks: &[EventHookConfig]) -> Result<(), ConfigError> {
    for (i, hook) in hooks.iter().enumerate() {
        let key = format!("event_hooks[{i}]");
        if !EMQX_EVENTS.contains(&hook.event.as_str()) {
            let known = EMQX_EVENTS.join(", ");
            return Err(invalid(
                format!("{key}.event"),
                format!("{:?} is not one of {known}", hook.event),
            ));
        }
        if let Some(filter) = &hook.topic {
            mqtt::check_filter(filter)
                .map_err(|e| invalid(format!("{key}.topic"), e.to_string()))?;
        }
        check_url(&format!("{key}.url"), &hook.url)?;
    }
    Ok(())
}

/// Checks `[hooks]`.
pub fn check_defaults(h: &HooksConfig) -> Result<(), ConfigError> {
    if h.queue_max == 0 || h.batch_max == 0 {
        return Err(invalid("hooks", "queue_max and batch_max must be greater than 0"));
    }
    if h.connect_timeout_ms == 0 || h.request_timeout_ms == 0 {
        return Err(invalid("hooks", "timeouts must be greater than 0"));
    }
    Ok(())
}
