//! One typed `Config`: embedded defaults, a TOML file, environment variables and the command line,
//! merged in that order, then checked so that a bad value fails at start with the key's name.

pub mod cluster;
pub mod gateway;
pub mod hooks;
pub mod im;
pub mod zato;

use crate::store::StoreConfig;
use cluster::ClusterConfig;
use gateway::GatewayConfig;
use hooks::{EventHookConfig, HooksConfig, WebhookConfig};
use serde::{Deserialize, Serialize};
use std::{fmt, path::Path};

/// The whole server configuration. Every field documents its default and its trade-off.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the shards listen on. Default `0.0.0.0`.
    pub host: String,
    /// TCP port for WebSocket clients and the REST API. Default 6001 (soketi and sockudo use it
    /// too, so existing client configs work). 0 picks a free port (tests).
    pub port: u16,
    /// Listen backlog of each shard's socket (the kernel caps it at net.core.somaxconn).
    /// Default 4096: connection bursts wait in the kernel instead of being dropped and retried
    /// after a second.
    pub listen_backlog: i32,
    /// Connection shards, one glommio executor each. 0 (default) = the CPUs this process may run on.
    pub shards: usize,
    /// Pin shard i to CPU i. Default off: unpinned placement lets tests share a small machine.
    pub pin: bool,
    /// Seconds of client silence before the server pings it; sent to clients in
    /// `connection_established`. Default 120 (Pusher's recommendation).
    pub activity_timeout: u64,
    /// Seconds to wait for any frame after a server ping before closing with 4201. Default 30.
    pub pong_timeout: u64,
    /// Largest client WebSocket message (after reassembly) in bytes. Default 65536; Pusher client
    /// messages are small, and a cap keeps a hostile client from growing a buffer.
    pub max_message_bytes: usize,
    /// Bytes a connection may have queued for sending before it is closed with 4100 (over
    /// capacity). Default 1 MiB: large enough for bursts, small enough that 10k slow readers
    /// cannot hold more than 10 GiB.
    pub outbound_queue_bytes: usize,
    /// SO_SNDBUF for client sockets, in bytes. Default 0 = the kernel's autotuning. A small value
    /// saves kernel memory on hosts with a million idle sockets (see tuning/).
    pub socket_send_buffer: usize,
    /// Capacity of each cross-shard ring, in messages. Default 1024. A full ring makes the
    /// publisher wait; it never drops.
    pub ring_capacity: usize,
    /// io_uring submission ring depth per shard (glommio's default is 128). Default 1024: the
    /// kernel sizes the table it searches on every cancel from this (8 buckets at 128, 64 at
    /// 1024, 256 from 4096 up), and glommio cancels and re-arms a timeout on the ring that holds
    /// every idle connection's poll each time the shard wakes. Measured (BENCHMARKS.md, random
    /// channel row, 10,000 idle connections): CPU per publish 103-119 us at 128, 68-69 us at
    /// 1024 with the same memory, 53-60 us at 4096 with about 500 more bytes per connection.
    pub ring_depth: usize,
    /// io_uring registered memory per shard, bytes. Default 512 KiB: locked memory is scarce
    /// (8 MiB per process on small hosts) and pushgate does no storage I/O.
    pub io_memory: usize,
    /// Milliseconds a shutdown waits for clients to take their 4200 close. Default 3000.
    pub shutdown_grace_ms: u64,
    /// Seconds a REST (keep-alive) connection may stay silent before it is closed. Default 60.
    pub http_idle_timeout_secs: u64,
    /// Longest channel name. Default 164, Pusher's documented limit (prefixes included).
    pub max_channel_name_len: usize,
    /// Upstream calls one shard may have waiting for answers at once; past it a call is
    /// refused at once (the dialect answers with its own error). Default 4096: each waiting
    /// call holds its request and a pending slot, so this bounds what a flood of requests to a
    /// slow upstream can hold.
    pub max_calls_in_flight: usize,
    /// Largest request message on an HTTP/2 (gRPC) connection to the client port, in bytes.
    /// Default 1 MiB (below gRPC's usual 4 MiB: what backends publish is pushed to WebSocket
    /// clients, whose limits are far smaller); larger gets RESOURCE_EXHAUSTED (413 for plain).
    pub grpc_max_message_bytes: usize,
    /// Streams one HTTP/2 connection may have open at once. Default 100; with the message cap
    /// it bounds a connection's buffered requests.
    pub grpc_max_concurrent_streams: u32,
    /// Seconds an HTTP/2 connection may stay idle with no stream open before it is shut down.
    /// Default 300: publishers keep their connection; this reaps abandoned ones.
    pub grpc_idle_timeout_secs: u64,
    // ---- What one client, one app or one mistake may make the server hold.
    /// Seconds a client may take to finish a frame or a fragmented message once it has begun
    /// one; then the connection is closed with 1008. Default 10: a message of
    /// `max_message_bytes` (64 KiB) needs at least 6.5 KB/s; shorter frees a stalled client's
    /// partial message (up to `max_message_bytes` each) sooner but cuts off slower links.
    pub message_assembly_timeout_secs: u64,
    /// Subscriptions one connection may hold; one more gets a `pusher:error` naming the limit.
    /// Default 1000: far above what client apps use (a few dozen), low enough that one
    /// connection cannot make hundreds of thousands of channels.
    pub max_subscriptions_per_connection: usize,
    /// Channels with subscribers one app may have, counted over all shards; a subscription
    /// that would make one more gets a `pusher:error` naming the limit (existing channels stay
    /// open to anyone). 0: no limit. Default 100000 (about 35 MB of channel state): raise it
    /// for apps with a private channel per online user. When set, a subscription that opens a
    /// channel on a shard asks the channel's home shard first (one ring round trip).
    pub max_channels_per_app: usize,
    /// Milliseconds a REST request's whole body may take to arrive after its head, however
    /// steadily it trickles; then 408 and the connection closes. Default 10000: a full batch
    /// (170 KB) at 17 KB/s; shorter frees a slow client's request sooner.
    pub rest_body_timeout_ms: u64,
    /// REST requests in progress at once on one shard (`/health` and `/metrics` not counted);
    /// one more gets 503. Default 256: with the largest body (170 KB by default) about 43 MB of
    /// bodies per shard at most.
    pub max_concurrent_rest_requests: usize,
    /// File descriptors kept free below the open-file limit (which pushgate raises to its hard
    /// limit at start). A connection accepted into this reserve may use the REST API (so
    /// `/health` and publishing answer at the limit); a WebSocket upgrade in it is refused with
    /// 503. Default 64; 0 turns the reserve off.
    pub fd_reserve: u64,
    /// Token that `GET /metrics` requires as `Authorization: Bearer <token>` (what Prometheus
    /// sends with `authorization: {credentials: ...}`); others get 401. Empty (default): open.
    /// `PUSHGATE_METRICS_TOKEN` sets it from the environment.
    pub metrics_token: String,
    /// Native TLS on the client port (`[tls]`): every connection is TLS (wss and https).
    /// Absent (default): plain ws and http.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Delivery defaults of every webhook and event hook (`[hooks]`).
    pub hooks: HooksConfig,
    /// EMQX-style event hooks (`[[event_hooks]]`): an event, an optional MQTT topic filter, a URL.
    /// Two matching rules make two requests, as in EMQX. Rules with the same URL, headers and
    /// delivery settings share one queue, so that URL hears events in order.
    pub event_hooks: Vec<EventHookConfig>,
    /// The APISIX/API7-style push gateway dialect (`[gateway]`, `[[gateway.routes]]`).
    pub gateway: GatewayConfig,
    /// The applications this server hosts. Default: one app `app-id` / `app-key` / `app-secret`.
    pub apps: Vec<AppConfig>,
    /// The xxim-style IM dialect (`[im]`, `[[im.routes]]`).
    pub im: im::ImConfig,
    /// Cluster mode (`[cluster]`): off by default.
    pub cluster: ClusterConfig,
    /// The durable store (`[store]`): where durable state lives, started only when a durable
    /// feature needs it (Zato GD topics, IM notices and delayed requests).
    pub store: StoreConfig,
    /// Zato-style publish/subscribe (`[zato]`, `[[zato.topics]]`, `[[zato.endpoints]]`).
    pub zato: zato::ZatoConfig,
}

/// `[tls]`: the server certificate. Both files are read at start and again on SIGHUP (new
/// connections get the new certificate; open ones keep theirs; a file that fails to load keeps
/// the old one and is logged).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file: the certificate, then any intermediates.
    pub cert_file: String,
    /// PEM file: its private key (PKCS#8; PKCS#1 RSA and SEC1 EC keys are read too).
    pub key_file: String,
}

/// One Pusher application: credentials and its limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// The app id in REST paths (`/apps/{id}/events`).
    pub id: String,
    /// The public key clients connect with (`/app/{key}`) and REST requests carry (`auth_key`).
    pub key: String,
    /// The secret that signs REST requests and channel authorizations. Never sent anywhere.
    pub secret: String,
    /// Largest `data` of one published event, in bytes. Default 10240 (Pusher's 10 KB); above it
    /// the REST API answers 413.
    pub max_event_payload_bytes: usize,
    /// Channels one publish may name. Default 100 (Pusher).
    pub max_event_channels: usize,
    /// Events in one `batch_events` call. Default 10 (Pusher).
    pub max_batch_size: usize,
    /// Longest event name. Default 200 (the SDKs' limit).
    pub max_event_name_len: usize,
    /// A disabled app refuses connections (4003) and API calls (403). Default true.
    pub enabled: bool,
    /// Connections at once over all shards; past it, new ones close with 4004. 0 (default):
    /// no limit.
    pub max_connections: u64,
    /// Origins allowed to connect (exact `Origin` header values); empty (default): any.
    pub allowed_origins: Vec<String>,
    /// Relay `client-*` events on private and presence channels. Default true.
    pub enable_client_messages: bool,
    /// Client events one connection may send per second; more get a 4301 `pusher:error`.
    /// Default 10 (Pusher).
    pub max_client_events_per_second: u32,
    /// Users on one presence channel. Default 100 (Pusher).
    pub max_presence_members: usize,
    /// Bytes of one member's `user_info`. Default 1024 (Pusher's 1 KB).
    pub max_presence_user_info_bytes: usize,
    /// Longest presence or signed-in user id. Default 128 (Pusher).
    pub max_user_id_len: usize,
    /// Seconds a cache channel keeps its last event. Default 1800 (Pusher's 30 minutes).
    pub cache_ttl_secs: u64,
    /// Send `pusher_internal:subscription_count` to subscribers of non-presence channels.
    /// Default false: it costs a message to the channel's home shard per (un)subscribe.
    pub enable_subscription_count: bool,
    /// Seconds a connection has to sign in (`pusher:signin`) before it is closed with 4009.
    /// 0 (default): sign-in is optional.
    pub user_authentication_timeout_secs: u64,
    /// Send watchlist events: a signed-in connection hears when users of its sign-in's
    /// `watchlist` (first 100 ids) come online or go offline, starting with their status at
    /// sign-in. Default true (Pusher has it behind a dashboard toggle); false saves a message
    /// to the user's home shard per sign-in and sign-out.
    pub watchlist_events: bool,
    /// Milliseconds a user stays reported online after its last connection goes; a connection
    /// that signs in again within it is never reported offline. Default 1000.
    pub watchlist_offline_delay_ms: u64,
    /// Answer `pusher:unsubscribe` with `pusher_internal:unsubscription_succeeded`, as
    /// webman-push-server does. Default false: Pusher sends nothing, and its clients expect
    /// nothing.
    pub unsubscription_replies: bool,
    /// Webhooks of this app (`[[apps.webhooks]]`), in Pusher's or webman-push-server's format.
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "0.0.0.0".into(),
            port: 6001,
            listen_backlog: 4096,
            shards: 0,
            pin: false,
            activity_timeout: 120,
            pong_timeout: 30,
            max_message_bytes: 64 * 1024,
            outbound_queue_bytes: 1024 * 1024,
            socket_send_buffer: 0,
            ring_capacity: 1024,
            ring_depth: 1024,
            io_memory: 512 * 1024,
            shutdown_grace_ms: 3000,
            http_idle_timeout_secs: 60,
            max_channel_name_len: 164,
            max_calls_in_flight: 4096,
            grpc_max_message_bytes: 1024 * 1024,
            grpc_max_concurrent_streams: 100,
            grpc_idle_timeout_secs: 300,
            message_assembly_timeout_secs: 10,
            max_subscriptions_per_connection: 1000,
            max_channels_per_app: 100_000,
            rest_body_timeout_ms: 10_000,
            max_concurrent_rest_requests: 256,
            fd_reserve: 64,
            metrics_token: String::new(),
            tls: None,
            hooks: HooksConfig::default(),
            event_hooks: Vec::new(),
            gateway: GatewayConfig::default(),
            apps: vec![AppConfig::default()],
            im: im::ImConfig::default(),
            cluster: ClusterConfig::default(),
            store: StoreConfig::default(),
            zato: zato::ZatoConfig::default(),
        }
    }
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            id: "app-id".into(),
            key: "app-key".into(),
            secret: "app-secret".into(),
            max_event_payload_bytes: 10 * 1024,
            max_event_channels: 100,
            max_batch_size: 10,
            max_event_name_len: 200,
            enabled: true,
            max_connections: 0,
            allowed_origins: Vec::new(),
            enable_client_messages: true,
            max_client_events_per_second: 10,
            max_presence_members: 100,
            max_presence_user_info_bytes: 1024,
            max_user_id_len: 128,
            cache_ttl_secs: 1800,
            enable_subscription_count: false,
            user_authentication_timeout_secs: 0,
            watchlist_events: true,
            watchlist_offline_delay_ms: 1000,
            unsubscription_replies: false,
            webhooks: Vec::new(),
        }
    }
}

/// A configuration problem, always naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

pub(crate) fn invalid(key: impl fmt::Display, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), message: message.into() }
}

impl Config {
    /// Reads a TOML file over the embedded defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse { path: shown, message })
    }

    /// Parses TOML text over the embedded defaults.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The embedded defaults as a commented TOML file.
    pub fn default_toml() -> String {
        let body = toml::to_string_pretty(&Config::default()).unwrap_or_default();
        format!(
            "# pushgate configuration: every key is optional; these are the embedded defaults.\n\
             # Environment variables PUSHGATE_<KEY> (e.g. PUSHGATE_PORT) override this file,\n\
             # and PUSHGATE_APP_ID / _KEY / _SECRET override the first app.\n\n{body}"
        )
    }

    /// Applies `PUSHGATE_*` environment variables read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(var: &str, v: &str) -> Result<T, ConfigError> {
            v.trim().parse().map_err(|_| ConfigError::Env {
                var: var.into(),
                message: format!("cannot parse {v:?}"),
            })
        }
        if let Some(v) = get("PUSHGATE_HOST") {
            self.host = v;
        }
        macro_rules! num {
            ($var:literal, $field:ident) => {
                if let Some(v) = get($var) {
                    self.$field = parse($var, &v)?;
                }
            };
        }
        num!("PUSHGATE_PORT", port);
        num!("PUSHGATE_SHARDS", shards);
        num!("PUSHGATE_ACTIVITY_TIMEOUT", activity_timeout);
        num!("PUSHGATE_PONG_TIMEOUT", pong_timeout);
        num!("PUSHGATE_OUTBOUND_QUEUE_BYTES", outbound_queue_bytes);
        num!("PUSHGATE_SOCKET_SEND_BUFFER", socket_send_buffer);
        num!("PUSHGATE_RING_DEPTH", ring_depth);
        if let Some(v) = get("PUSHGATE_METRICS_TOKEN") {
            self.metrics_token = v;
        }
        if let Some(v) = get("PUSHGATE_PIN") {
            self.pin = parse("PUSHGATE_PIN", &v)?;
        }
        if let Some(app) = self.apps.first_mut() {
            if let Some(v) = get("PUSHGATE_APP_ID") {
                app.id = v;
            }
            if let Some(v) = get("PUSHGATE_APP_KEY") {
                app.key = v;
            }
            if let Some(v) = get("PUSHGATE_APP_SECRET") {
                app.secret = v;
            }
        }
        Ok(())
    }

    /// Checks every value; the first problem found is returned with its key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.host.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid("host", format!("{:?} is not an IP address", self.host)));
        }
        if self.listen_backlog < 1 {
            return Err(invalid("listen_backlog", "must be at least 1"));
        }
        if self.shards > 1024 {
            return Err(invalid("shards", "at most 1024"));
        }
        let positive = [
            ("activity_timeout", self.activity_timeout as usize),
            ("pong_timeout", self.pong_timeout as usize),
            ("max_message_bytes", self.max_message_bytes),
            ("outbound_queue_bytes", self.outbound_queue_bytes),
            ("ring_capacity", self.ring_capacity),
            ("ring_depth", self.ring_depth),
            ("http_idle_timeout_secs", self.http_idle_timeout_secs as usize),
            ("max_channel_name_len", self.max_channel_name_len),
            ("max_calls_in_flight", self.max_calls_in_flight),
            ("grpc_max_message_bytes", self.grpc_max_message_bytes),
            ("grpc_max_concurrent_streams", self.grpc_max_concurrent_streams as usize),
            ("grpc_idle_timeout_secs", self.grpc_idle_timeout_secs as usize),
            ("message_assembly_timeout_secs", self.message_assembly_timeout_secs as usize),
            ("max_subscriptions_per_connection", self.max_subscriptions_per_connection),
            ("rest_body_timeout_ms", self.rest_body_timeout_ms as usize),
            ("max_concurrent_rest_requests", self.max_concurrent_rest_requests),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        // Queue and message sizes are counted in 32 bits per connection.
        for (key, value) in [
            ("max_message_bytes", self.max_message_bytes),
            ("outbound_queue_bytes", self.outbound_queue_bytes),
        ] {
            if value > 1 << 30 {
                return Err(invalid(key, "at most 1073741824 (1 GiB)"));
            }
        }
        self.check_hardening()?;
        if self.io_memory < 64 * 1024 {
            return Err(invalid("io_memory", "at least 65536 (glommio's minimum)"));
        }
        hooks::check_defaults(&self.hooks)?;
        hooks::check_event_hooks(&self.event_hooks)?;
        self.im.check("im")?;
        self.cluster.check()?;
        gateway::check(&self.gateway)?;
        self.store.check("store")?;
        self.zato.check("zato", &self.store)?;
        if self.apps.is_empty() {
            return Err(invalid("apps", "at least one app is needed"));
        }
        if self.apps.len() > usize::from(u16::MAX) {
            return Err(invalid("apps", "too many apps"));
        }
        for (i, app) in self.apps.iter().enumerate() {
            app.check(i)?;
            for (j, other) in self.apps[..i].iter().enumerate() {
                if other.id == app.id {
                    return Err(invalid(format!("apps[{i}].id"), format!("same id as apps[{j}]")));
                }
                if other.key == app.key {
                    return Err(invalid(
                        format!("apps[{i}].key"),
                        format!("same key as apps[{j}]"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The keys of what one client, one app or one mistake may make the server hold.
    fn check_hardening(&self) -> Result<(), ConfigError> {
        let token = &self.metrics_token;
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("metrics_token", "printable ASCII without spaces only"));
        }
        if let Some(tls) = &self.tls {
            for (key, file) in [("tls.cert_file", &tls.cert_file), ("tls.key_file", &tls.key_file)]
            {
                if file.is_empty() {
                    return Err(invalid(key, "a PEM file is needed"));
                }
            }
        }
        Ok(())
    }

    /// Whether any webhook or event hook is configured (then a hook shard runs).
    pub fn has_hooks(&self) -> bool {
        !self.event_hooks.is_empty() || self.apps.iter().any(|a| !a.webhooks.is_empty())
    }

    /// The app whose public key is `key`, with its index.
    pub fn app_by_key(&self, key: &str) -> Option<(u16, &AppConfig)> {
        let i = self.apps.iter().position(|a| a.key == key)?;
        Some((i as u16, &self.apps[i]))
    }

    /// The app whose id is `id`, with its index.
    pub fn app_by_id(&self, id: &str) -> Option<(u16, &AppConfig)> {
        let i = self.apps.iter().position(|a| a.id == id)?;
        Some((i as u16, &self.apps[i]))
    }
}

impl AppConfig {
    fn check(&self, i: usize) -> Result<(), ConfigError> {
        let text = [("id", &self.id), ("key", &self.key), ("secret", &self.secret)];
        for (name, value) in text {
            if value.is_empty() {
                return Err(invalid(format!("apps[{i}].{name}"), "must not be empty"));
            }
        }
        hooks::check_webhooks(&format!("apps[{i}]"), &self.webhooks)?;
        if self.key.contains(['/', '?', '#']) {
            return Err(invalid(format!("apps[{i}].key"), "must not contain '/', '?' or '#'"));
        }
        let positive = [
            ("max_event_payload_bytes", self.max_event_payload_bytes),
            ("max_event_channels", self.max_event_channels),
            ("max_batch_size", self.max_batch_size),
            ("max_event_name_len", self.max_event_name_len),
            ("max_presence_members", self.max_presence_members),
            ("max_presence_user_info_bytes", self.max_presence_user_info_bytes),
            ("max_user_id_len", self.max_user_id_len),
            ("cache_ttl_secs", self.cache_ttl_secs as usize),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(invalid(format!("apps[{i}].{name}"), "must be greater than 0"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_soketi_credentials() {
        let c = Config::default();
        c.check().expect("defaults are valid");
        assert_eq!(c.port, 6001);
        assert_eq!(c.apps[0].id, "app-id");
        assert_eq!(c.apps[0].key, "app-key");
        assert_eq!(c.apps[0].secret, "app-secret");
    }

    #[test]
    fn sizes_counted_in_32_bits_are_capped() {
        let c = Config { outbound_queue_bytes: 5 << 30, ..Config::default() };
        let e = c.check().expect_err("too big").to_string();
        assert!(e.contains("outbound_queue_bytes"), "{e}");
        let c = Config { max_message_bytes: (1 << 30) + 1, ..Config::default() };
        assert!(c.check().expect_err("too big").to_string().contains("max_message_bytes"));
        Config { outbound_queue_bytes: 1 << 30, ..Config::default() }
            .check()
            .expect("1 GiB is fine");
    }

    #[test]
    fn printed_defaults_parse_back_to_defaults() {
        let text = Config::default_toml();
        assert_eq!(Config::from_toml(&text).expect("parses"), Config::default());
    }

    #[test]
    fn file_overrides_and_keeps_other_defaults() {
        let c = Config::from_toml(
            "port = 7000\n[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n\
             [[apps]]\nid = \"b\"\nkey = \"k2\"\nsecret = \"s2\"\nmax_batch_size = 3\n",
        )
        .expect("parses");
        assert_eq!(c.port, 7000);
        assert_eq!(c.activity_timeout, 120);
        assert_eq!(c.apps.len(), 2);
        assert_eq!(c.apps[1].max_batch_size, 3);
        assert_eq!(c.apps[0].max_event_payload_bytes, 10240);
        c.check().expect("valid");
    }

    #[test]
    fn hooks_parse_in_the_documented_shape() {
        let c = Config::from_toml(
            r#"
[hooks]
socket_pause_ms = 500

[[apps]]
id = "app-id"
key = "app-key"
secret = "app-secret"

[[apps.webhooks]]
url = "https://backend.example/pusher/webhooks"
event_types = ["channel_occupied", "channel_vacated"]
filter = { channel_prefix = "private-" }
headers = { "X-Extra" = "1" }
batch_max = 20

[[event_hooks]]
event = "client.subscribe"
topic = "orders/#"
url = "http://backend.example/emqx"
payload_encoding = "base64"
"#,
        )
        .expect("parses");
        c.check().expect("valid");
        let hook = &c.apps[0].webhooks[0];
        assert_eq!(hook.delivery.over(&c.hooks).batch_max, 20);
        assert_eq!(hook.delivery.over(&c.hooks).socket_pause_ms, 500);
        assert!(hook.filter.admits("private-x") && !hook.filter.admits("public"));
        assert_eq!(c.event_hooks[0].payload_encoding, hooks::PayloadEncoding::Base64);
    }

    #[test]
    fn bad_hooks_name_their_key() {
        let c = Config::from_toml("[[event_hooks]]\nevent = \"client.nope\"\nurl = \"http://x\"\n")
            .expect("parses");
        assert!(c.check().expect_err("bad event").to_string().contains("event_hooks[0].event"));
        let text =
            "[[event_hooks]]\nevent = \"message.publish\"\ntopic = \"a/#/b\"\nurl = \"http://x\"\n";
        let c = Config::from_toml(text).expect("parses");
        assert!(c.check().expect_err("bad filter").to_string().contains("event_hooks[0].topic"));
        let text = "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n[[apps.webhooks]]\nurl = \"ftp://x\"\n";
        let c = Config::from_toml(text).expect("parses");
        assert!(c.check().expect_err("bad url").to_string().contains("apps[0].webhooks[0].url"));
    }

    #[test]
    fn hardening_keys_parse_and_are_checked() {
        let c = Config::from_toml(
            "max_channels_per_app = 0\nfd_reserve = 16\nmetrics_token = \"t0k\"\n\
             [tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
        )
        .expect("parses");
        c.check().expect("valid");
        assert_eq!(c.tls.as_ref().map(|t| t.key_file.as_str()), Some("k.pem"));
        let c = Config { metrics_token: "has space".into(), ..Config::default() };
        assert!(c.check().expect_err("token").to_string().contains("metrics_token"));
        let c = Config::from_toml("[tls]\ncert_file = \"c.pem\"\n").expect("parses");
        assert!(c.check().expect_err("no key").to_string().contains("tls.key_file"));
        let c = Config { max_concurrent_rest_requests: 0, ..Config::default() };
        assert!(c.check().expect_err("zero").to_string().contains("max_concurrent_rest_requests"));
        assert!(!Config::default_toml().contains("[tls]"), "TLS is off by default");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("prot = 1").expect_err("unknown key");
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let mut c = Config::default();
        c.apps.push(AppConfig { id: "other".into(), ..AppConfig::default() });
        let err = c.check().expect_err("duplicate key").to_string();
        assert!(err.contains("apps[1].key"), "{err}");

        let mut c = Config::default();
        c.apps[0].secret.clear();
        assert!(c.check().expect_err("empty").to_string().contains("apps[0].secret"));

        let c = Config { host: "not an ip".into(), ..Config::default() };
        assert!(c.check().expect_err("host").to_string().contains("`host`"));
    }

    #[test]
    fn env_overrides_port_and_first_app() {
        let mut c = Config::default();
        let env = |k: &str| match k {
            "PUSHGATE_PORT" => Some("7001".to_string()),
            "PUSHGATE_APP_SECRET" => Some("s3cret".to_string()),
            _ => None,
        };
        c.apply_env(env).expect("applies");
        assert_eq!(c.port, 7001);
        assert_eq!(c.apps[0].secret, "s3cret");
        let bad = |k: &str| (k == "PUSHGATE_PORT").then(|| "x".to_string());
        let err = c.apply_env(bad).expect_err("bad port").to_string();
        assert!(err.contains("PUSHGATE_PORT"), "{err}");
    }
}
