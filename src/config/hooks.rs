//! Configuration of outbound hooks: webhooks per app (`[[apps.webhooks]]`, in Pusher's format
//! or webman-push-server's), EMQX-style event hooks (`[[event_hooks]]`), and their delivery
//! defaults (`[hooks]`), which any webhook or event hook may override with the same keys.

use super::{invalid, ConfigError};
use crate::mqtt;
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
    /// Give up on an event after this long, seconds; 0: never (retry until delivered, as
    /// webman-push-server does). Default 300 (Pusher retries 5 minutes).
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

/// The webman-push-server webhook event names (its `hook-server.events`).
pub const WEBMAN_EVENTS: [&str; 6] = [
    "member_added",
    "member_removed",
    "client_event",
    "server_event",
    "channel_occupied",
    "channel_vacated",
];

/// What a webman-format webhook sends when `event_types` is omitted: every event but
/// `server_event`, which reports every `pusher:*` frame sent (each pong, each error) and so is
/// asked for by name.
const WEBMAN_DEFAULT_EVENTS: [&str; 5] =
    ["member_added", "member_removed", "client_event", "channel_occupied", "channel_vacated"];

/// webman-push-server's `hook-server` settings, the defaults of a webman-format webhook:
/// `prefetch_count` (events per request), `queue_limit`, and retries without end.
pub const WEBMAN_BATCH_MAX: usize = 5;
pub const WEBMAN_QUEUE_MAX: usize = 4096;

/// The request format of a webhook.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// Pusher's: `{"time_ms","events"}` signed with the app secret in `X-Pusher-Signature`.
    #[default]
    Pusher,
    /// webman-push-server 0.2.0's: `POST url?id=<uuid>`, `{"time_ms","events":[{name,data,time}]}`
    /// signed in a `sign` header (see `crate::hook::webman`).
    Webman,
}

impl WebhookFormat {
    /// The event names this format knows.
    pub fn events(self) -> &'static [&'static str] {
        match self {
            WebhookFormat::Pusher => &PUSHER_EVENTS,
            WebhookFormat::Webman => &WEBMAN_EVENTS,
        }
    }

    fn default_events(self) -> &'static [&'static str] {
        match self {
            WebhookFormat::Pusher => &PUSHER_EVENTS,
            WebhookFormat::Webman => &WEBMAN_DEFAULT_EVENTS,
        }
    }
}

/// One webhook of an app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// `pusher` (default) or `webman`.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Which events to send. Omitted: all of [`PUSHER_EVENTS`] for the Pusher format; for
    /// webman, all of [`WEBMAN_EVENTS`] but `server_event`.
    pub event_types: Option<Vec<String>>,
    /// The key of webman's `sign` header (its `webhook_secret`); default: the app secret. Not
    /// for the Pusher format, whose signature the SDKs check with the app secret.
    pub secret: Option<String>,
    #[serde(default)]
    pub filter: ChannelFilter,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(flatten)]
    pub delivery: DeliveryOverrides,
}

impl WebhookConfig {
    /// Whether this webhook sends event `name`.
    pub fn wants(&self, name: &str) -> bool {
        match &self.event_types {
            Some(types) => types.iter().any(|t| t == name),
            None => self.format.default_events().contains(&name),
        }
    }

    /// Its delivery settings: its own keys, else (for the webman format) webman's batch of 5,
    /// queue of 4096 and retries until delivered, else `[hooks]`.
    pub fn delivery(&self, defaults: &HooksConfig) -> HooksConfig {
        match self.format {
            WebhookFormat::Pusher => self.delivery.over(defaults),
            WebhookFormat::Webman => self.delivery.over(&HooksConfig {
                batch_max: WEBMAN_BATCH_MAX,
                queue_max: WEBMAN_QUEUE_MAX,
                max_elapsed_secs: 0,
                max_attempts: 0,
                ..defaults.clone()
            }),
        }
    }
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
        let known = hook.format.events();
        for name in hook.event_types.iter().flatten() {
            if !known.contains(&name.as_str()) {
                return Err(invalid(
                    format!("{key}.event_types"),
                    format!("unknown event {name:?} (this format has {})", known.join(", ")),
                ));
            }
        }
        match (&hook.secret, hook.format) {
            (Some(_), WebhookFormat::Pusher) => {
                return Err(invalid(
                    format!("{key}.secret"),
                    "only for format = \"webman\"; Pusher webhooks are signed with the app secret",
                ))
            }
            (Some(secret), _) if secret.is_empty() => {
                return Err(invalid(format!("{key}.secret"), "must not be empty"))
            }
            _ => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(toml_text: &str) -> WebhookConfig {
        toml::from_str(toml_text).expect("parses")
    }

    #[test]
    fn webman_format_takes_webmans_delivery_defaults_unless_set() {
        let hooks = HooksConfig { batch_max: 50, connect_timeout_ms: 7, ..HooksConfig::default() };
        let hook = webhook("url = \"http://h/webhook\"\nformat = \"webman\"\n");
        let d = hook.delivery(&hooks);
        assert_eq!((d.batch_max, d.queue_max, d.max_elapsed_secs), (5, 4096, 0));
        assert_eq!(d.connect_timeout_ms, 7, "other keys come from [hooks]");
        let hook = webhook("url = \"http://h\"\nformat = \"webman\"\nbatch_max = 2\n");
        assert_eq!(hook.delivery(&hooks).batch_max, 2);
        let pusher = webhook("url = \"http://h\"\n");
        assert_eq!(pusher.format, WebhookFormat::Pusher);
        assert_eq!(pusher.delivery(&hooks).batch_max, 50);
    }

    #[test]
    fn default_event_types_follow_the_format() {
        let pusher = webhook("url = \"http://h\"\n");
        assert!(PUSHER_EVENTS.iter().all(|e| pusher.wants(e)) && !pusher.wants("server_event"));
        let webman = webhook("url = \"http://h\"\nformat = \"webman\"\n");
        assert!(webman.wants("client_event") && !webman.wants("server_event"));
        assert!(!webman.wants("cache_miss"));
        let listed =
            webhook("url = \"http://h\"\nformat = \"webman\"\nevent_types = [\"server_event\"]\n");
        assert!(listed.wants("server_event") && !listed.wants("client_event"));
    }

    #[test]
    fn bad_webhooks_name_their_key() {
        let check = |text: &str| {
            check_webhooks("apps[0]", &[webhook(text)]).expect_err("invalid").to_string()
        };
        let e = check("url = \"http://h\"\nevent_types = [\"server_event\"]\n");
        assert!(e.contains("apps[0].webhooks[0].event_types") && e.contains("server_event"), "{e}");
        let e = check("url = \"http://h\"\nformat = \"webman\"\nevent_types = [\"cache_miss\"]\n");
        assert!(e.contains("event_types"), "{e}");
        let e = check("url = \"http://h\"\nsecret = \"s\"\n");
        assert!(e.contains("apps[0].webhooks[0].secret") && e.contains("webman"), "{e}");
        let e = check("url = \"http://h\"\nformat = \"webman\"\nsecret = \"\"\n");
        assert!(e.contains("must not be empty"), "{e}");
        assert!(
            toml::from_str::<WebhookConfig>("url = \"http://h\"\nformat = \"soketi\"\n").is_err()
        );
        let ok = webhook("url = \"http://h\"\nformat = \"webman\"\nsecret = \"s\"\n");
        check_webhooks("apps[0]", &[ok]).expect("valid");
    }
}
