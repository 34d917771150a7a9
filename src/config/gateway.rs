//! `[gateway]`: the APISIX/API7-style push gateway dialect (seed 000): its WebSocket path, its
//! publish key and limits, and `[[gateway.routes]]`, the sub-routes (APISIX `ht-msg-sub` routes)
//! that map a frame's `uri` to an action and an upstream. A route is checked as APISIX checks
//! the plugin's schema, with APISIX's messages (`property "upstream" is required`).

use super::{invalid, ConfigError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The gateway dialect. Every field documents its default and its trade-off.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Mount the dialect (its WebSocket path, `POST /gateway/publish`, `GET /list/topics` and
    /// the gRPC `pushserverpb.Push/Msg`). Default true: the embedded defaults serve it.
    pub enabled: bool,
    /// The WebSocket path clients connect to. Default `/msg-pub` (the seed's route).
    pub path: String,
    /// Leave `apisix_ts` (the send time in ms) out of pushes. Default false, as the original.
    pub apisix_ts_disabled: bool,
    /// Route uris called (through their routes) when a connection ends, unless the client
    /// called one of them itself. Default none. Each must match a route.
    pub disconnect_notify_urls: Vec<String>,
    /// The key publishers present: `Authorization: Bearer <key>` on `POST /gateway/publish`,
    /// `authorization` metadata on gRPC. Default `gateway-key` so the embedded defaults work;
    /// set your own anywhere reachable by others.
    pub publish_key: String,
    /// Serve `GET /list/topics` without the publish key, as the original Push Gateway does.
    /// Default true (its clients call it without one); false asks for the key, since topic
    /// names include the `sig_<sid>` of every registered connection.
    pub list_topics_public: bool,
    /// `GatewayIP` sent upstream in `gateway-metadata` and the first part of every sid.
    /// Default empty: the listen address, or the address of the interface that routes out.
    pub gateway_ip: String,
    /// Requests of one connection accepted and not yet answered (one at its upstream, the rest
    /// waiting their turn: a connection's requests reach the upstream one at a time, in order,
    /// as in the original). Default 16. Past it a request is answered, in its turn, with 429
    /// code `4291` and never sent upstream. Higher lets a bursty client queue more; each waiting
    /// request holds its parsed frame.
    pub max_requests_in_flight: usize,
    /// Topics one connection may hold (its `sig_<sid>` included). Default 10000; a request that
    /// would pass it is answered 400 code `4005` and changes nothing. The original has no cap;
    /// each topic costs an index entry per connection.
    pub max_topics_per_connection: usize,
    /// Longest topic name in bytes. Default 256; a longer one is answered 400 code `4006`.
    pub max_topic_len: usize,
    /// Largest upstream answer read, in bytes (HTTP body or TCP frame). Default 1 MiB; a larger
    /// one fails the request with 502 code `5024`. Each waiting call may hold this much.
    pub max_upstream_response_bytes: usize,
    /// Largest `POST /gateway/publish` body, in bytes. Default 1 MiB (gRPC publishes are capped
    /// by `grpc_max_message_bytes`). Pushes go to every subscriber's queue, whose limit is
    /// `outbound_queue_bytes`.
    pub max_publish_bytes: usize,
    /// Seconds of client silence before the server sends a WebSocket ping; `pong_timeout`
    /// seconds more without an answer close the connection (1001). Default 120; 0 never pings,
    /// as the original (which leaves dead peers to TCP).
    pub ping_interval_secs: u64,
    /// The sub-routes (`[[gateway.routes]]`). Default none: every request frame gets 404 `4041`.
    pub routes: Vec<RouteConfig>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            enabled: true,
            path: "/msg-pub".into(),
            apisix_ts_disabled: false,
            disconnect_notify_urls: Vec::new(),
            publish_key: "gateway-key".into(),
            list_topics_public: true,
            gateway_ip: String::new(),
            max_requests_in_flight: 16,
            max_topics_per_connection: 10_000,
            max_topic_len: 256,
            max_upstream_response_bytes: 1024 * 1024,
            max_publish_bytes: 1024 * 1024,
            ping_interval_secs: 120,
            routes: Vec::new(),
        }
    }
}

/// One sub-route: frames whose `uri` matches go to `upstream` and then do `action`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The frame `uri` this route serves: exact, or a prefix when it ends with `*` (APISIX's
    /// radixtree rule). Required.
    #[serde(default)]
    pub uri: String,
    /// `register`, `sub_add`, `sub_put`, `sub_delete`, `disconnect` or `proxy`. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Required, as in APISIX (the seed's routes that put `nodes` beside `action` are refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamConfig>,
    /// Header rewriting before the upstream call.
    #[serde(default)]
    pub headers: HeadersConfig,
}

/// `headers.add` (only where absent), `headers.set` (overwrite), `headers.remove`, applied in
/// that order after the gateway's own headers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HeadersConfig {
    pub add: BTreeMap<String, String>,
    pub set: BTreeMap<String, String>,
    pub remove: Vec<String>,
}

/// Where a route's requests go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Load balancing: `roundrobin` (weighted), the only one. Default `roundrobin`.
    #[serde(rename = "type", default = "roundrobin")]
    pub kind: String,
    /// `tcp` (default: the original's length-prefixed JSON, `0xB7 0x00` + u32 LE), `http` or
    /// `https` (`POST <node><uri>`, the header map as request headers, `body` as JSON).
    #[serde(default = "tcp")]
    pub scheme: String,
    /// At least one node with a weight above 0.
    #[serde(default)]
    pub nodes: Vec<NodeConfig>,
    /// Seconds; each 60 when left out (nginx's defaults, as APISIX).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutConfig>,
    /// Nodes tried when a connect fails. Default: the number of nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<usize>,
    /// Idle connections kept per node (`tcp`).
    #[serde(default)]
    pub keepalive_pool: KeepalivePool,
}

fn roundrobin() -> String {
    "roundrobin".into()
}

fn tcp() -> String {
    "tcp".into()
}

/// One upstream node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub host: String,
    pub port: u16,
    /// Share of the requests (weighted round robin); 0 takes none.
    pub weight: u32,
}

/// APISIX's `timeout`: all three, in seconds, above 0.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutConfig {
    pub connect: f64,
    pub send: f64,
    pub read: f64,
}

/// APISIX's `keepalive_pool`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeepalivePool {
    /// Idle connections kept per node. Default 320.
    pub size: usize,
    /// Seconds an idle connection is kept. Default 60.
    pub idle_timeout: f64,
    /// Requests on one connection before it is closed. Default 1000.
    pub requests: u32,
}

impl Default for KeepalivePool {
    fn default() -> Self {
        KeepalivePool { size: 320, idle_timeout: 60.0, requests: 1000 }
    }
}

/// The actions a route may have, as APISIX's enum.
pub const ACTIONS: [&str; 6] =
    ["sub_put", "sub_add", "sub_delete", "register", "disconnect", "proxy"];

/// Checks `[gateway]`; the first problem is returned with its key.
pub fn check(gateway: &GatewayConfig) -> Result<(), ConfigError> {
    if !gateway.path.starts_with('/') {
        return Err(invalid("gateway.path", "must start with '/'"));
    }
    if gateway.publish_key.is_empty() {
        return Err(invalid("gateway.publish_key", "must not be empty"));
    }
    if !gateway.gateway_ip.is_empty() && gateway.gateway_ip.parse::<std::net::IpAddr>().is_err() {
        return Err(invalid("gateway.gateway_ip", "must be an IP address (or empty)"));
    }
    let positive = [
        ("max_requests_in_flight", gateway.max_requests_in_flight),
        ("max_topics_per_connection", gateway.max_topics_per_connection),
        ("max_topic_len", gateway.max_topic_len),
        ("max_upstream_response_bytes", gateway.max_upstream_response_bytes),
        ("max_publish_bytes", gateway.max_publish_bytes),
    ];
    for (key, value) in positive {
        if value == 0 {
            return Err(invalid(format!("gateway.{key}"), "must be greater than 0"));
        }
    }
    for (i, route) in gateway.routes.iter().enumerate() {
        check_route(&format!("gateway.routes[{i}]"), route)?;
        if let Some(j) = gateway.routes[..i].iter().position(|r| r.uri == route.uri) {
            return Err(invalid(
                format!("gateway.routes[{i}].uri"),
                format!("same uri as gateway.routes[{j}]"),
            ));
        }
    }
    for (i, url) in gateway.disconnect_notify_urls.iter().enumerate() {
        if !gateway.routes.iter().any(|r| uri_matches(&r.uri, url)) {
            return Err(invalid(
                format!("gateway.disconnect_notify_urls[{i}]"),
                format!("no route serves {url:?}"),
            ));
        }
    }
    Ok(())
}

/// Whether route uri `pattern` serves frame uri `uri`.
pub fn uri_matches(pattern: &str, uri: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => uri.starts_with(prefix),
        None => pattern == uri,
    }
}

fn required(at: &str, property: &str) -> ConfigError {
    invalid(format!("{at}.{property}"), format!("property \"{property}\" is required"))
}

fn check_route(at: &str, route: &RouteConfig) -> Result<(), ConfigError> {
    if route.uri.is_empty() {
        return Err(required(at, "uri"));
    }
    if !route.uri.starts_with('/') {
        return Err(invalid(format!("{at}.uri"), "must start with '/'"));
    }
    let Some(action) = &route.action else {
        return Err(required(at, "action"));
    };
    if !ACTIONS.contains(&action.as_str()) {
        return Err(invalid(
            format!("{at}.action"),
            "property \"action\" validation failed: matches none of the enum values",
        ));
    }
    let Some(upstream) = &route.upstream else {
        return Err(required(at, "upstream"));
    };
    check_upstream(&format!("{at}.upstream"), upstream)?;
    let names = route.headers.add.keys().chain(route.headers.set.keys());
    for name in names.chain(route.headers.remove.iter()) {
        if name.is_empty() || name.contains(':') {
            return Err(invalid(
                format!("{at}.headers"),
                format!("header name {name:?} does not match \"^[^:]+$\""),
            ));
        }
    }
    Ok(())
}

fn check_upstream(at: &str, upstream: &UpstreamConfig) -> Result<(), ConfigError> {
    if upstream.kind != "roundrobin" {
        return Err(invalid(format!("{at}.type"), "only \"roundrobin\" is supported"));
    }
    if !["tcp", "http", "https"].contains(&upstream.scheme.as_str()) {
        return Err(invalid(format!("{at}.scheme"), "must be \"tcp\", \"http\" or \"https\""));
    }
    if upstream.nodes.is_empty() {
        return Err(required(at, "nodes"));
    }
    for (i, node) in upstream.nodes.iter().enumerate() {
        let host_ok = !node.host.is_empty()
            && node.host.chars().all(|c| c.is_ascii_alphanumeric() || "-._[]:".contains(c));
        if !host_ok {
            return Err(invalid(
                format!("{at}.nodes[{i}].host"),
                "property \"host\" validation failed: does not match pattern",
            ));
        }
        if node.port == 0 {
            return Err(invalid(format!("{at}.nodes[{i}].port"), "expected 0 to be at least 1"));
        }
    }
    if upstream.nodes.iter().all(|n| n.weight == 0) {
        return Err(invalid(format!("{at}.nodes"), "at least one node needs a weight above 0"));
    }
    if let Some(t) = &upstream.timeout {
        for (name, value) in [("connect", t.connect), ("send", t.send), ("read", t.read)] {
            if value.is_nan() || value <= 0.0 || value > 86_400.0 {
                return Err(invalid(
                    format!("{at}.timeout.{name}"),
                    "must be above 0 and at most 86400 seconds",
                ));
            }
        }
    }
    if upstream.retries == Some(0) {
        return Err(invalid(format!("{at}.retries"), "must be at least 1"));
    }
    let pool = &upstream.keepalive_pool;
    if pool.size == 0 || pool.requests == 0 || pool.idle_timeout.is_nan() || pool.idle_timeout < 0.0
    {
        return Err(invalid(
            format!("{at}.keepalive_pool"),
            "size and requests must be at least 1, idle_timeout at least 0",
        ));
    }
    Ok(())
}

impl RouteConfig {
    /// A route to `nodes` over `scheme` (tests and examples).
    pub fn new(uri: &str, action: &str, scheme: &str, nodes: &[(&str, u16)]) -> RouteConfig {
        let nodes = nodes
            .iter()
            .map(|&(host, port)| NodeConfig { host: host.into(), port, weight: 1 })
            .collect();
        RouteConfig {
            uri: uri.into(),
            action: Some(action.into()),
            upstream: Some(UpstreamConfig {
                kind: roundrobin(),
                scheme: scheme.into(),
                nodes,
                timeout: None,
                retries: None,
                keepalive_pool: KeepalivePool::default(),
            }),
            headers: HeadersConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn with_routes(text: &str) -> Result<(), String> {
        let config = Config::from_toml(text)?;
        config.check().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid_and_mounted() {
        let g = GatewayConfig::default();
        check(&g).expect("valid");
        assert!(g.enabled && g.routes.is_empty());
        assert_eq!(g.path, "/msg-pub");
    }

    #[test]
    fn a_route_parses_in_the_apisix_shape() {
        let text = r#"
[gateway]
disconnect_notify_urls = ["/60101/ormp/session/channelDisconnect"]

[[gateway.routes]]
uri = "/60101/ormp/session/channelDisconnect"
action = "disconnect"
headers = { add = { _url_segment = "3" }, remove = ["ts"] }
upstream = { nodes = [{ host = "127.0.0.1", port = 1975, weight = 1 }], timeout = { connect = 0.5, send = 0.5, read = 0.5 } }
"#;
        with_routes(text).expect("valid");
        let c = Config::from_toml(text).expect("parses");
        let up = c.gateway.routes[0].upstream.as_ref().expect("upstream");
        assert_eq!((up.kind.as_str(), up.scheme.as_str()), ("roundrobin", "tcp"));
        assert_eq!(up.keepalive_pool.size, 320);
    }

    #[test]
    fn a_route_without_upstream_is_refused_as_apisix_does() {
        let e = with_routes("[[gateway.routes]]\nuri = \"/a\"\naction = \"sub_add\"\n")
            .expect_err("no upstream");
        assert!(e.contains("gateway.routes[0].upstream"), "{e}");
        assert!(e.contains("property \"upstream\" is required"), "{e}");
        let e = with_routes(
            "[[gateway.routes]]\nuri = \"/a\"\nupstream = { nodes = [{ host = \"h\", port = 1, weight = 1 }] }\n",
        )
        .expect_err("no action");
        assert!(e.contains("property \"action\" is required"), "{e}");
        let e = with_routes(
            "[[gateway.routes]]\nuri = \"/a\"\naction = \"sub_patch\"\nupstream = { nodes = [{ host = \"h\", port = 1, weight = 1 }] }\n",
        )
        .expect_err("bad action");
        assert!(e.contains("gateway.routes[0].action") && e.contains("enum"), "{e}");
    }

    #[test]
    fn the_seeds_misplaced_nodes_are_an_unknown_key() {
        let e = with_routes(
            "[[gateway.routes]]\nuri = \"/a\"\naction = \"sub_put\"\nnodes = [{ host = \"h\", port = 1, weight = 1 }]\n",
        )
        .expect_err("nodes beside action");
        assert!(e.contains("nodes"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let route = |upstream: &str| {
            format!("[[gateway.routes]]\nuri = \"/a\"\naction = \"proxy\"\nupstream = {upstream}\n")
        };
        let cases = [
            (route("{ scheme = \"udp\", nodes = [{ host = \"h\", port = 1, weight = 1 }] }"), "upstream.scheme"),
            (route("{ nodes = [] }"), "upstream.nodes"),
            (route("{ nodes = [{ host = \"h\", port = 1, weight = 0 }] }"), "upstream.nodes"),
            (route("{ nodes = [{ host = \"h/x\", port = 1, weight = 1 }] }"), "nodes[0].host"),
            (route("{ nodes = [{ host = \"h\", port = 1, weight = 1 }], timeout = { connect = 0, send = 1, read = 1 } }"), "timeout.connect"),
            (route("{ nodes = [{ host = \"h\", port = 1, weight = 1 }], type = \"chash\" }"), "upstream.type"),
        ];
        for (text, key) in cases {
            let e = with_routes(&text).expect_err(key);
            assert!(e.contains(key), "{key}: {e}");
        }
        let e =
            with_routes("[gateway]\ndisconnect_notify_urls = [\"/nowhere\"]\n").expect_err("url");
        assert!(e.contains("gateway.disconnect_notify_urls[0]"), "{e}");
        let e = with_routes("[gateway]\npath = \"msg\"\n").expect_err("path");
        assert!(e.contains("gateway.path"), "{e}");
    }

    #[test]
    fn prefix_routes_match_by_prefix() {
        assert!(uri_matches("/a/*", "/a/b"));
        assert!(!uri_matches("/a/*", "/b"));
        assert!(uri_matches("/a", "/a") && !uri_matches("/a", "/a/b"));
    }
}
