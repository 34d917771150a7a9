//! What the shards tell the hook shard: webhook events (Pusher's, and webman-push-server's
//! `server_event`) and EMQX-style event hooks, and each shard's sending side, which knows which
//! events anyone configured so that nothing is built or sent for events no hook wants.

use crate::config::{
    hooks::{EMQX_EVENTS, PUSHER_EVENTS, WEBMAN_EVENTS},
    Config,
};
use crate::mqtt;
use glommio::channels::channel_mesh::{MeshBuilder, Partial, Senders};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// The mesh from the connection shards (producers) to the hook shard (consumer).
pub type HookMesh = MeshBuilder<HookMsg, Partial>;

/// One message for the hook shard.
#[derive(Debug)]
pub enum HookMsg {
    /// A Pusher webhook event of an app.
    Pusher { app: u16, event: PusherEvent },
    /// An EMQX-style event.
    Emqx(EmqxEvent),
    /// An upstream call for a connection (answered on the reply mesh).
    Call(Box<super::call::Call>),
}

/// A webhook event, serialized as Pusher sends it inside `events`. For webman-format webhooks
/// the hook shard rewrites it (`crate::hook::webman`). A `server_event` (webman only) carries
/// the text of the frame sent in `data` and an empty `channel`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PusherEvent {
    pub name: &'static str,
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_count: Option<u64>,
    /// member_added: the member's `user_info` as JSON text (webman's payload has it; Pusher's
    /// has not).
    #[serde(skip)]
    pub user_info: Option<String>,
}

impl PusherEvent {
    /// An event with only a name and a channel.
    pub fn new(name: &'static str, channel: &str) -> PusherEvent {
        PusherEvent {
            name,
            channel: channel.to_string(),
            user_id: None,
            event: None,
            data: None,
            socket_id: None,
            subscription_count: None,
            user_info: None,
        }
    }
}

/// The EMQX hook points, in the order of [`EMQX_EVENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmqxKind {
    ClientConnect,
    ClientConnack,
    ClientConnected,
    ClientDisconnected,
    ClientSubscribe,
    ClientUnsubscribe,
    SessionSubscribed,
    SessionUnsubscribed,
    SessionTerminated,
    MessagePublish,
    MessageDelivered,
    MessageAcked,
}

const KINDS: [EmqxKind; 12] = [
    EmqxKind::ClientConnect,
    EmqxKind::ClientConnack,
    EmqxKind::ClientConnected,
    EmqxKind::ClientDisconnected,
    EmqxKind::ClientSubscribe,
    EmqxKind::ClientUnsubscribe,
    EmqxKind::SessionSubscribed,
    EmqxKind::SessionUnsubscribed,
    EmqxKind::SessionTerminated,
    EmqxKind::MessagePublish,
    EmqxKind::MessageDelivered,
    EmqxKind::MessageAcked,
];

impl EmqxKind {
    /// The configured name (`client.connect`).
    pub fn name(self) -> &'static str {
        EMQX_EVENTS[self as usize]
    }

    /// The kind a configured name selects.
    pub fn parse(name: &str) -> Option<EmqxKind> {
        EMQX_EVENTS.iter().position(|e| *e == name).map(|i| KINDS[i])
    }

    /// The body's `action` (`client_connect`).
    pub fn action(self) -> String {
        self.name().replace('.', "_")
    }

    /// Events that carry a topic, to which rule topic filters apply.
    pub fn has_topic(self) -> bool {
        (self as usize) >= EmqxKind::ClientSubscribe as usize && self != EmqxKind::SessionTerminated
    }
}

/// An EMQX-style event. Pusher maps onto MQTT as: client id = socket id, username = the
/// signed-in user, topic = channel, payload = event data.
#[derive(Debug, Clone, Default)]
pub struct EmqxEvent {
    pub kind: Option<EmqxKind>,
    pub clientid: String,
    pub username: Option<String>,
    pub ipaddress: Option<String>,
    pub topic: Option<String>,
    pub payload: Option<String>,
    pub reason: Option<String>,
    pub conn_ack: Option<&'static str>,
    pub from_client_id: Option<String>,
    pub from_username: Option<String>,
    pub connected_at: Option<u64>,
    pub ts: u64,
    /// message.delivered: the (client id, username) of every receiver of one publication on
    /// one shard, sent as one event and expanded by the hook shard into batched bodies.
    pub delivered_to: Vec<(String, Option<String>)>,
}

impl EmqxEvent {
    pub fn new(kind: EmqxKind, clientid: impl Into<String>) -> EmqxEvent {
        EmqxEvent {
            kind: Some(kind),
            clientid: clientid.into(),
            ts: now_ms(),
            ..EmqxEvent::default()
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A shard's sending side to the hook shard.
pub struct Hooks {
    senders: Option<Senders<HookMsg>>,
    /// Per app: the webhook events any webhook of the app wants.
    pusher: Vec<Vec<&'static str>>,
    /// Whether any webhook wants `server_event`: the one test on the path of every frame a
    /// Pusher connection is sent.
    server_events: bool,
    /// Per EMQX kind: the topic filters of its rules (`None`: a rule without a filter).
    emqx: Vec<Vec<Option<String>>>,
    /// Events dropped because the ring to the hook shard was full.
    pub dropped: std::cell::Cell<u64>,
    /// The hook shard's endpoint counters, for `/metrics`.
    pub board: std::sync::Arc<super::board::Board>,
}

impl Hooks {
    /// What `config` asks for; `senders` is None when no hook is configured.
    pub fn new(
        config: &Config,
        senders: Option<Senders<HookMsg>>,
        board: std::sync::Arc<super::board::Board>,
    ) -> Hooks {
        let pusher = config
            .apps
            .iter()
            .map(|app| {
                let mut names: Vec<&'static str> = Vec::new();
                for hook in &app.webhooks {
                    for name in PUSHER_EVENTS.into_iter().chain(WEBMAN_EVENTS) {
                        if hook.wants(name) && !names.contains(&name) {
                            names.push(name);
                        }
                    }
                }
                names
            })
            .collect::<Vec<_>>();
        let server_events = pusher.iter().any(|names| names.contains(&"server_event"));
        let mut emqx = vec![Vec::new(); KINDS.len()];
        for rule in &config.event_hooks {
            if let Some(kind) = EmqxKind::parse(&rule.event) {
                emqx[kind as usize].push(rule.topic.clone());
            }
        }
        Hooks { senders, pusher, server_events, emqx, dropped: Default::default(), board }
    }

    /// Whether some webhook of `app` wants Pusher event `name`.
    pub fn wants_pusher(&self, app: u16, name: &str) -> bool {
        self.senders.is_some()
            && self.pusher.get(usize::from(app)).is_some_and(|n| n.contains(&name))
    }

    /// Whether some webhook of some app wants `server_event` (then [`Hooks::server_event`]).
    pub fn any_server_event(&self) -> bool {
        self.server_events && self.senders.is_some()
    }

    /// Reports a frame sent to a connection of `app` (its JSON text) as webman's
    /// `server_event`, if a webhook of the app wants it. The hook shard keeps only
    /// `pusher:*` and `pusher_internal:*` events.
    pub fn server_event(&self, app: u16, frame: &[u8]) {
        if self.any_server_event() && self.wants_pusher(app, "server_event") {
            let mut event = PusherEvent::new("server_event", "");
            event.data = Some(String::from_utf8_lossy(frame).into_owned());
            self.send(HookMsg::Pusher { app, event });
        }
    }

    /// Whether a rule wants `kind` (for `topic`, when the event has one).
    pub fn wants_emqx(&self, kind: EmqxKind, topic: Option<&str>) -> bool {
        if self.senders.is_none() {
            return false;
        }
        let filters = &self.emqx[kind as usize];
        match topic {
            Some(topic) if kind.has_topic() => {
                filters.iter().any(|f| f.as_ref().is_none_or(|f| mqtt::matches(topic, f)))
            }
            _ => !filters.is_empty(),
        }
    }

    /// Hands a message to the hook shard without waiting; a full ring drops it (counted).
    pub fn send(&self, msg: HookMsg) {
        let Some(senders) = &self.senders else { return };
        if senders.try_send_to(0, msg).is_err() {
            self.dropped.set(self.dropped.get() + 1);
        }
    }

    /// Hands an upstream call to the hook shard, waiting while its ring is full (the caller
    /// bounds the calls in flight). False if no hook shard runs.
    pub async fn call(&self, call: super::call::Call) -> bool {
        let Some(senders) = &self.senders else { return false };
        senders.send_to(0, HookMsg::Call(Box::new(call))).await.is_ok()
    }

    /// Sends a Pusher webhook event if anyone wants it.
    pub fn pusher(&self, app: u16, event: PusherEvent) {
        if self.wants_pusher(app, event.name) {
            self.send(HookMsg::Pusher { app, event });
        }
    }

    /// Sends an EMQX event built by `build` if a rule wants it.
    pub fn emqx(&self, kind: EmqxKind, topic: Option<&str>, build: impl FnOnce() -> EmqxEvent) {
        if self.wants_emqx(kind, topic) {
            self.send(HookMsg::Emqx(build()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_names() {
        assert_eq!(EmqxKind::parse("client.connect"), Some(EmqxKind::ClientConnect));
        assert_eq!(EmqxKind::parse("message.acked"), Some(EmqxKind::MessageAcked));
        assert_eq!(EmqxKind::MessageDelivered.name(), "message.delivered");
        assert_eq!(EmqxKind::SessionUnsubscribed.action(), "session_unsubscribed");
        assert!(EmqxKind::ClientSubscribe.has_topic());
        assert!(EmqxKind::MessagePublish.has_topic());
        assert!(!EmqxKind::SessionTerminated.has_topic());
        assert!(!EmqxKind::ClientConnected.has_topic());
    }

    #[test]
    fn server_events_are_watched_for_only_when_a_webhook_lists_them() {
        let hook = |extra: &str| -> crate::config::hooks::WebhookConfig {
            toml::from_str(&format!("url = \"http://h\"\n{extra}")).expect("webhook")
        };
        let mut config = Config::default();
        config.apps[0].webhooks = vec![hook(""), hook("format = \"webman\"")];
        let hooks = Hooks::new(&config, None, Default::default());
        assert!(!hooks.server_events, "not by default, in either format");
        assert!(hooks.pusher[0].contains(&"client_event"));
        config.apps[0].webhooks.push(hook("format = \"webman\"\nevent_types = [\"server_event\"]"));
        let hooks = Hooks::new(&config, None, Default::default());
        assert!(hooks.server_events && hooks.pusher[0].contains(&"server_event"));
        assert!(!hooks.any_server_event(), "and never without a hook shard");
    }

    #[test]
    fn pusher_event_json_shape() {
        let mut e = PusherEvent::new("member_added", "presence-r");
        e.user_id = Some("7".into());
        assert_eq!(
            serde_json::to_value(&e).expect("json"),
            serde_json::json!({"name": "member_added", "channel": "presence-r", "user_id": "7"})
        );
    }
}
