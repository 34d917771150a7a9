//! Configuration of cluster mode (`[cluster]`): several pushgate nodes linked through NATS so
//! that they behave as one. Off by default: a single node needs nothing.

use super::{invalid, ConfigError};
use serde::{Deserialize, Serialize};

/// Which engine links the nodes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Adapter {
    /// A single node (default).
    #[default]
    None,
    /// NATS core (publish/subscribe and request/reply; no JetStream needed).
    Nats,
}

/// What a publish does while the node's link to NATS is down.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum WhenDown {
    /// Deliver to this node's clients and count what the other nodes missed (default).
    #[default]
    Local,
    /// Refuse the publish (the REST API answers 503), so the publisher can retry.
    Refuse,
}

/// `[cluster]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub adapter: Adapter,
    /// NATS server URLs. Default `["nats://127.0.0.1:4222"]`.
    pub servers: Vec<String>,
    /// This node's name, unique in the cluster. Default empty: `<hostname>-<pid>`.
    pub node: String,
    /// Prefix of every subject, so several clusters can share one NATS. Default `pushgate`.
    pub prefix: String,
    /// How often a node says it is alive, ms. Default 1000.
    pub heartbeat_ms: u64,
    /// A node not heard from for this long is gone: its presence members, counts and sessions
    /// are removed everywhere, with the matching events and webhooks, ms. Default 5000 (a
    /// shorter one removes members of a node that only paused).
    pub node_timeout_ms: u64,
    /// How long a query to the other nodes (REST counts, member lists) waits for their
    /// answers, ms. Default 2000; nodes that did not answer in time are left out of the
    /// answer, which says so (`X-Pushgate-Partial`).
    pub query_timeout_ms: u64,
    /// Messages queued between the shards and the cluster thread, each way. Default 65536;
    /// past it messages are dropped and counted (a shard never waits on the network).
    pub queue_capacity: usize,
    /// Reconnect backoff to NATS, ms: doubling from `reconnect_min_ms` to `reconnect_max_ms`.
    /// Defaults 100 and 5000.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// How often shards check their topic interest against the cluster thread's, seconds
    /// (a count and a hash of the sorted topics, as APISIX's link does). Default 30.
    pub digest_interval_secs: u64,
    /// What a publish does while the link is down. Default `local`.
    pub when_down: WhenDown,
    /// A dialect's snapshot of its replicated state (sent when a node's link comes up or a
    /// node appears) travels in messages of about this many bytes. Default 262144; NATS
    /// refuses messages over its `max_payload` (1 MiB by default), so keep it below that.
    pub snapshot_chunk_bytes: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            adapter: Adapter::None,
            servers: vec!["nats://127.0.0.1:4222".into()],
            node: String::new(),
            prefix: "pushgate".into(),
            heartbeat_ms: 1000,
            node_timeout_ms: 5000,
            query_timeout_ms: 2000,
            queue_capacity: 65_536,
            reconnect_min_ms: 100,
            reconnect_max_ms: 5000,
            digest_interval_secs: 30,
            when_down: WhenDown::Local,
            snapshot_chunk_bytes: 262_144,
        }
    }
}

impl ClusterConfig {
    /// Whether cluster mode is on.
    pub fn enabled(&self) -> bool {
        self.adapter != Adapter::None
    }

    /// The node name: the configured one, or `<hostname>-<pid>`.
    pub fn node_name(&self) -> String {
        if !self.node.is_empty() {
            return self.node.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let host = host.trim();
        format!("{}-{}", if host.is_empty() { "pushgate" } else { host }, std::process::id())
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        if self.servers.is_empty() {
            return Err(invalid("cluster.servers", "at least one NATS server URL"));
        }
        let token = |s: &str| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !token(&self.prefix) {
            return Err(invalid("cluster.prefix", "letters, digits, '-' and '_' only"));
        }
        if !self.node.is_empty() && !token(&self.node) {
            return Err(invalid("cluster.node", "letters, digits, '-' and '_' only"));
        }
        let positive = [
            ("cluster.heartbeat_ms", self.heartbeat_ms),
            ("cluster.node_timeout_ms", self.node_timeout_ms),
            ("cluster.query_timeout_ms", self.query_timeout_ms),
            ("cluster.queue_capacity", self.queue_capacity as u64),
            ("cluster.reconnect_min_ms", self.reconnect_min_ms),
            ("cluster.digest_interval_secs", self.digest_interval_secs),
            ("cluster.snapshot_chunk_bytes", self.snapshot_chunk_bytes as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        if self.node_timeout_ms <= self.heartbeat_ms {
            return Err(invalid("cluster.node_timeout_ms", "must be longer than heartbeat_ms"));
        }
        if self.reconnect_max_ms < self.reconnect_min_ms {
            return Err(invalid("cluster.reconnect_max_ms", "must be at least reconnect_min_ms"));
        }
        Ok(())
    }
}
