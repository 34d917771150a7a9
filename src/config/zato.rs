//! `[zato]`: Zato-style publish/subscribe. Topics (`[[zato.topics]]`), the endpoints that may
//! publish and subscribe with their HTTP Basic Auth credentials and glob permissions
//! (`[[zato.endpoints]]`), the WSX WebSocket path and its keepalive, the admin API credentials
//! and the limits of publishing and notify delivery. Every field documents its default and its
//! trade-off. Topics defined here live as long as the config names them; topics created through
//! the admin API are kept in the durable store.

use super::{invalid, ConfigError};
use crate::store::StoreConfig;
use serde::{Deserialize, Serialize};

/// Zato publish/subscribe settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ZatoConfig {
    /// Mount the Zato dialect (its REST API under `/zato/pubsub/` and its WSX path). Default
    /// true. With no topics and no admin password (the defaults) it answers but holds nothing,
    /// and neither the durable store nor the hook shard is started for it.
    pub enabled: bool,
    /// WebSocket path of WSX clients. Default `/zato/wsx`. Must not be under `/zato/pubsub/`.
    pub wsx_path: String,
    /// User name of the admin API (`/zato/pubsub/admin/...`, HTTP Basic Auth). Default `admin`.
    pub admin_username: String,
    /// Password of the admin API. Default empty: the admin API refuses every call. Setting it
    /// also lets topics be created at run time, so the durable store is started.
    pub admin_password: String,
    /// Largest publish request body, bytes. Default 1 MiB: a GD message is one store entry, so
    /// this must stay below `[store] max_entry_bytes`; larger bodies get 413 before they are
    /// read whole. Larger lets bigger messages through at the cost of memory per queued copy.
    pub max_publish_bytes: usize,
    /// Seconds between server pings on an idle WSX connection. Default 45 (Zato's).
    pub ping_interval_secs: u32,
    /// Pings a WSX client may leave unanswered; it is then closed with 4002 "Pings missed".
    /// Default 2 (Zato's). Lower closes dead clients sooner; higher tolerates slow networks.
    pub pings_missed_threshold: u32,
    /// Seconds a WSX client has to send its `create-session` before it is closed. Default 5
    /// (Zato's `new_token_wait_time`).
    pub new_session_timeout_secs: u32,
    /// Connect timeout of a notify delivery, ms. Default 5000.
    pub notify_connect_timeout_ms: u64,
    /// Whole-request timeout of a notify delivery, ms. Default 10000. A hanging endpoint costs
    /// its subscription this long per attempt, then the `wait_sock_err` pause.
    pub notify_timeout_ms: u64,
    /// Largest answer body read from a notify endpoint, bytes. Default 65536: the answer is
    /// only checked for its status, so this only bounds what a bad endpoint can make us read.
    pub notify_max_response_bytes: usize,
    /// Seconds between sweeps that drop expired messages from queues. Default 10. Expired
    /// messages are never delivered whatever this is; it bounds how long they hold memory.
    pub cleanup_interval_secs: u64,
    /// Topics (`[[zato.topics]]`). Default none.
    pub topics: Vec<TopicConfig>,
    /// Endpoints: the API clients and their permissions (`[[zato.endpoints]]`). Default none.
    pub endpoints: Vec<EndpointConfig>,
}

impl Default for ZatoConfig {
    fn default() -> Self {
        ZatoConfig {
            enabled: true,
            wsx_path: "/zato/wsx".into(),
            admin_username: "admin".into(),
            admin_password: String::new(),
            max_publish_bytes: 1024 * 1024,
            ping_interval_secs: 45,
            pings_missed_threshold: 2,
            new_session_timeout_secs: 5,
            notify_connect_timeout_ms: 5000,
            notify_timeout_ms: 10_000,
            notify_max_response_bytes: 64 * 1024,
            cleanup_interval_secs: 10,
            topics: Vec::new(),
            endpoints: Vec::new(),
        }
    }
}

/// What a topic does with a message published while it has no subscription.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnNoSubs {
    /// Keep it (as GD) for the first subscriber (Zato's default).
    #[default]
    Accept,
    /// Discard it.
    Drop,
}

/// One topic (`[[zato.topics]]`, or the body of an admin API create).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TopicConfig {
    /// Unique name: ASCII, at most 200 characters, `/`-hierarchical by convention
    /// (`/customer/new`).
    pub name: String,
    /// Messages published without `has_gd` are guaranteed-delivery (stored on disk) when true.
    /// Default false (Zato's): in-RAM messages are faster and lost on a restart.
    pub has_gd: bool,
    /// Most GD messages the topic may hold. Default 10000; publishing past it is refused (503).
    pub max_depth_gd: u64,
    /// Most in-RAM messages the topic may hold. Default 1000; they live in memory, so this
    /// bounds the memory a topic can take.
    pub max_depth_non_gd: u64,
    /// The depth is checked on one publication in this many. Default 100 (Zato's): a topic may
    /// overshoot its maximum by up to this many; 1 checks every publication.
    pub depth_check_freq: u64,
    /// `accept` (default) keeps messages published with no subscription for the first
    /// subscriber; `drop` discards them.
    pub on_no_subs_pub: OnNoSubs,
    /// An inactive topic refuses publications (503). Default true.
    pub active: bool,
    /// Longest life of a message, seconds, and its default expiration. Default 86400 (one day,
    /// Zato's `limit_message_expiry`).
    pub limit_message_expiry: u64,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            name: String::new(),
            has_gd: false,
            max_depth_gd: 10_000,
            max_depth_non_gd: 1000,
            depth_check_freq: 100,
            on_no_subs_pub: OnNoSubs::Accept,
            active: true,
            limit_message_expiry: 86_400,
        }
    }
}

/// One API client (`[[zato.endpoints]]`): credentials and what it may publish and subscribe to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointConfig {
    /// Unique name (shown in subscriptions and used by the admin API).
    pub name: String,
    /// HTTP Basic Auth user name (also the WSX `create-session` username). Unique.
    pub username: String,
    pub password: String,
    /// Topic patterns it may publish to: globs where `*` matches within one `/` segment, `**`
    /// across segments and `?` one character (`/zato/demo/*`). Default none.
    #[serde(rename = "pub")]
    pub pub_patterns: Vec<String>,
    /// Topic patterns it may subscribe to, as `pub`. Default none.
    #[serde(rename = "sub")]
    pub sub_patterns: Vec<String>,
    /// An inactive endpoint is refused as bad credentials. Default true.
    pub active: bool,
    /// Where notify subscriptions made by this endpoint through the REST API deliver (its
    /// outgoing connection, in Zato's terms). Default none: such an endpoint subscribes for
    /// pull only; the admin API may still give any subscription a URL.
    pub notify_url: Option<String>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            name: String::new(),
            username: String::new(),
            password: String::new(),
            pub_patterns: Vec::new(),
            sub_patterns: Vec::new(),
            active: true,
            notify_url: None,
        }
    }
}

/// Longest topic name (Zato's limit).
pub const MAX_TOPIC_NAME: usize = 200;

/// Room a stored message needs besides its data (metadata, JSON framing).
pub const STORED_OVERHEAD: usize = 64 * 1024;

/// Why a topic name is refused, if it is.
pub fn topic_name_error(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_TOPIC_NAME {
        Some("longer than 200 characters")
    } else if !name.bytes().all(|b| b.is_ascii_graphic()) {
        Some("must be printable ASCII without spaces")
    } else {
        None
    }
}

impl ZatoConfig {
    /// Whether anything can be published or created: then the dialect needs the durable store
    /// (GD messages, subscriptions) and the hook shard (notify deliveries).
    pub fn active(&self) -> bool {
        self.enabled && (!self.topics.is_empty() || !self.admin_password.is_empty())
    }

    /// Checks the values; `at` is the key prefix (`zato`).
    pub fn check(&self, at: &str, store: &StoreConfig) -> Result<(), ConfigError> {
        if !self.wsx_path.starts_with('/') || self.wsx_path.starts_with("/zato/pubsub/") {
            let message = "must start with '/' and not be under /zato/pubsub/";
            return Err(invalid(format!("{at}.wsx_path"), message));
        }
        let positive = [
            ("max_publish_bytes", self.max_publish_bytes as u64),
            ("ping_interval_secs", u64::from(self.ping_interval_secs)),
            ("pings_missed_threshold", u64::from(self.pings_missed_threshold)),
            ("new_session_timeout_secs", u64::from(self.new_session_timeout_secs)),
            ("notify_connect_timeout_ms", self.notify_connect_timeout_ms),
            ("notify_timeout_ms", self.notify_timeout_ms),
            ("notify_max_response_bytes", self.notify_max_response_bytes as u64),
            ("cleanup_interval_secs", self.cleanup_interval_secs),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(format!("{at}.{key}"), "must be greater than 0"));
            }
        }
        if self.max_publish_bytes + STORED_OVERHEAD > store.max_entry_bytes {
            let most = store.max_entry_bytes.saturating_sub(STORED_OVERHEAD);
            let message = format!("at most {most} (store.max_entry_bytes less 64 KiB)");
            return Err(invalid(format!("{at}.max_publish_bytes"), message));
        }
        for (i, topic) in self.topics.iter().enumerate() {
            topic.check(&format!("{at}.topics[{i}]"))?;
            if self.topics[..i].iter().any(|t| t.name == topic.name) {
                let message = format!("topic {} is defined twice", topic.name);
                return Err(invalid(format!("{at}.topics[{i}].name"), message));
            }
        }
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            let key = format!("{at}.endpoints[{i}]");
            endpoint.check(&key)?;
            for other in &self.endpoints[..i] {
                if other.name == endpoint.name {
                    return Err(invalid(format!("{key}.name"), "same name as an endpoint before"));
                }
                if other.username == endpoint.username {
                    let message = "same username as an endpoint before";
                    return Err(invalid(format!("{key}.username"), message));
                }
            }
        }
        Ok(())
    }
}

impl TopicConfig {
    /// Checks the values; `at` names the topic's key (`zato.topics[0]`).
    pub fn check(&self, at: &str) -> Result<(), ConfigError> {
        if let Some(problem) = topic_name_error(&self.name) {
            return Err(invalid(format!("{at}.name"), problem));
        }
        let positive = [
            ("max_depth_gd", self.max_depth_gd),
            ("max_depth_non_gd", self.max_depth_non_gd),
            ("depth_check_freq", self.depth_check_freq),
            ("limit_message_expiry", self.limit_message_expiry),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(format!("{at}.{key}"), "must be greater than 0"));
            }
        }
        Ok(())
    }
}

impl EndpointConfig {
    fn check(&self, at: &str) -> Result<(), ConfigError> {
        let text = [("name", &self.name), ("username", &self.username)];
        for (key, value) in text {
            if value.is_empty() {
                return Err(invalid(format!("{at}.{key}"), "must not be empty"));
            }
        }
        if self.password.is_empty() {
            return Err(invalid(format!("{at}.password"), "must not be empty"));
        }
        if self.username.contains(':') {
            return Err(invalid(format!("{at}.username"), "must not contain ':' (Basic Auth)"));
        }
        for (key, patterns) in [("pub", &self.pub_patterns), ("sub", &self.sub_patterns)] {
            if let Some(j) = patterns.iter().position(|p| p.is_empty()) {
                return Err(invalid(format!("{at}.{key}[{j}]"), "an empty pattern"));
            }
        }
        if let Some(url) = &self.notify_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(format!("{at}.notify_url"), "must be an http(s) URL"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ZatoConfig {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn defaults_are_valid_inert_and_round_trip() {
        let config = ZatoConfig::default();
        config.check("zato", &StoreConfig::default()).expect("valid");
        assert!(!config.active(), "no topic, endpoint or admin password: nothing to store");
        let text = toml::to_string(&config).expect("serialize");
        assert_eq!(parse(&text), config);
    }

    #[test]
    fn topics_and_endpoints_parse_with_zato_defaults() {
        let config = parse(
            "[[topics]]\nname = \"/zato/demo/sample\"\nhas_gd = true\n\
             [[endpoints]]\nname = \"demo\"\nusername = \"pubsub1\"\npassword = \"pass1\"\n\
             pub = [\"/zato/demo/*\"]\nsub = [\"/zato/demo/*\"]\n",
        );
        config.check("zato", &StoreConfig::default()).expect("valid");
        assert!(config.active());
        let topic = &config.topics[0];
        assert_eq!((topic.max_depth_gd, topic.max_depth_non_gd), (10_000, 1000));
        assert_eq!((topic.depth_check_freq, topic.limit_message_expiry), (100, 86_400));
        assert_eq!(topic.on_no_subs_pub, OnNoSubs::Accept);
        assert_eq!(config.endpoints[0].pub_patterns, vec!["/zato/demo/*".to_string()]);
    }

    #[test]
    fn bad_values_name_their_key() {
        let config = parse("[[topics]]\nname = \"a b\"\n");
        let error = config.check("zato", &StoreConfig::default()).expect_err("space");
        assert!(error.to_string().contains("zato.topics[0].name"), "{error}");
        let config = parse("[[topics]]\nname = \"/t\"\n[[topics]]\nname = \"/t\"\n");
        let error = config.check("zato", &StoreConfig::default()).expect_err("twice");
        assert!(error.to_string().contains("zato.topics[1].name"), "{error}");
        let config = parse("[[endpoints]]\nname = \"e\"\nusername = \"u\"\n");
        let error = config.check("zato", &StoreConfig::default()).expect_err("no password");
        assert!(error.to_string().contains("zato.endpoints[0].password"), "{error}");
        let config = ZatoConfig { max_publish_bytes: 8 << 20, ..ZatoConfig::default() };
        let error = config.check("zato", &StoreConfig::default()).expect_err("too big");
        assert!(error.to_string().contains("zato.max_publish_bytes"), "{error}");
        let config = ZatoConfig { wsx_path: "/zato/pubsub/wsx".into(), ..ZatoConfig::default() };
        let error = config.check("zato", &StoreConfig::default()).expect_err("path");
        assert!(error.to_string().contains("zato.wsx_path"), "{error}");
        assert!(toml::from_str::<ZatoConfig>("[[topics]]\nnam = \"x\"\n").is_err());
    }
}
