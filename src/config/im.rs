//! `[im]`: the xxim-style IM dialect (binary protobuf on `/ws`): how tokens are checked, where
//! requests go (`[[im.routes]]`), the backend calls after connect and disconnect, the push API
//! key, notices and delayed delivery. Every field documents its default and its trade-off;
//! the embedded defaults mount the dialect with a local HS256 token check and no routes.

use super::{invalid, ConfigError};
use serde::{Deserialize, Serialize};

/// Settings of the IM dialect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ImConfig {
    /// Mount the dialect. Default true: its path and API exist on every server; false frees
    /// `/ws` and `/im/` for nothing else but saves nothing measurable.
    pub enabled: bool,
    /// The WebSocket path. Default `/ws` (xxim's). `/` is mounted too when no other dialect
    /// has it (xxim serves both).
    pub path: String,
    /// The key backends present to the push API (`Authorization: Bearer <key>` over HTTP and
    /// gRPC metadata). Default `im-api-key`, like the default Pusher app's known secret:
    /// change it anywhere the port is reachable. Empty refuses every API call.
    pub api_key: String,
    /// Accept connections without `userId` and `token` (xxim does): they get no `connected`
    /// frame and may only call methods containing `/white/`. Default false, as the seed says
    /// both are required: such a connection is closed with 3000.
    pub allow_anonymous: bool,
    /// Requests of one connection waiting for a backend at once. Default 32: the client sends
    /// faster than backends answer only by this much; past it a request is answered at once
    /// with code RetryError (8). Higher lets one connection hold more of the shard's
    /// `max_calls_in_flight`.
    pub max_requests_per_conn: usize,
    /// Seconds of client silence before a WebSocket ping. Default 60 (under the 3600 s that
    /// load balancers allow). 0: never ping.
    pub idle_secs: u32,
    /// Seconds after an unanswered ping before the connection is closed. Default 30.
    pub pong_secs: u32,
    /// The largest `SendMsgList.deliverAfter`, in seconds; more is refused with RequestError
    /// (3). Default 864000 (10 days, the seed's cap). Larger holds requests on disk longer.
    pub max_deliver_after_secs: u32,
    /// Retries of background calls (AfterConnect, AfterDisconnect, notice pushes, delayed
    /// requests) on failure. Default 12 at `retry_interval_ms`, as xxim retries notice pushes.
    /// A delayed request keeps being retried past this, once a minute: it was acknowledged.
    pub retry_attempts: u32,
    /// Milliseconds between those retries. Default 2000 (xxim's).
    pub retry_interval_ms: u64,
    /// Keep notices, their ack cursors and delayed requests in the durable store (`[store]`,
    /// started for it): `/im/sendNoticeData`, event 3 answered by the gateway, and
    /// `deliverAfter` held here. Default false: it needs a directory on disk. Off, event 3 goes
    /// to its route like any other, and `deliverAfter` (checked against the cap) is left in the
    /// request for the backend.
    pub durable: bool,
    /// What `ConnParam.podIp` says in API answers and upstream calls. Default empty.
    pub pod_ip: String,
    /// How tokens are checked on connect.
    pub auth: AuthConfig,
    /// Called after a connection is registered, until it succeeds or the connection ends
    /// (`AfterConnectReq{connParam, connectedAt}`). Default none.
    pub after_connect: Option<Backend>,
    /// Called after a connection is gone (`AfterDisconnectReq{..., disconnectedAt}`), retried
    /// `retry_attempts` times. Default none.
    pub after_disconnect: Option<Backend>,
    /// Where requests go: by event (0..4) or by custom method (event 100). Default none: every
    /// request is answered with RequestError (3).
    pub routes: Vec<RouteConfig>,
}

/// How a connection's token is checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `jwt` (default): an HS256 token signed with `jwt_secret`, whose `userId` (or `sub`),
    /// `platform` and `deviceId` claims must equal the query's and whose `exp` is honoured.
    /// `upstream`: `BeforeConnect` on `upstream` decides (a non-empty `msg` refuses).
    /// `none`: any token is accepted (tests, or a trusted network).
    pub mode: AuthMode,
    /// The HS256 secret. Default `im-jwt-secret`: known to everyone, change it.
    pub jwt_secret: String,
    /// Seconds of clock skew allowed on `exp`. Default 0.
    pub jwt_leeway_secs: u64,
    /// The `BeforeConnect` backend for `mode = "upstream"` (path default
    /// `/pb.imService/BeforeConnect`).
    pub upstream: Option<Backend>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Jwt,
    Upstream,
    None,
}

/// One request route: an event or a method, and the backend that answers it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Events 0..4 (SendMsgList, SyncConvSeq, SyncMsgList, AckNotice, GetMsgById).
    #[serde(default)]
    pub event: Option<u8>,
    /// A custom method (event 100), e.g. `/v1/user/white/login`.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(flatten)]
    pub backend: Backend,
}

/// A backend endpoint: unary gRPC over h2c, or a plain HTTP POST of the protobuf bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// `http://host:port` (h2c for gRPC).
    pub url: String,
    /// The gRPC method path (`/pb.msgService/SendMsgListAsync`) or the HTTP path. Optional for
    /// events 0..4 and the connect hooks, which default to xxim's methods.
    #[serde(default)]
    pub path: Option<String>,
    /// `grpc` (default) or `http` (`POST`, `Content-Type: application/x-protobuf`, a 2xx
    /// answer's body is the reply).
    #[serde(default)]
    pub protocol: Protocol,
    /// Milliseconds a call may take, connecting included. Default 10000: a backend that hangs
    /// costs its caller this long, then code InternalError (2).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Grpc,
    Http,
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl Default for ImConfig {
    fn default() -> Self {
        ImConfig {
            enabled: true,
            path: "/ws".into(),
            api_key: "im-api-key".into(),
            allow_anonymous: false,
            max_requests_per_conn: 32,
            idle_secs: 60,
            pong_secs: 30,
            max_deliver_after_secs: 864_000,
            retry_attempts: 12,
            retry_interval_ms: 2000,
            durable: false,
            pod_ip: String::new(),
            auth: AuthConfig::default(),
            after_connect: None,
            after_disconnect: None,
            routes: Vec::new(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Jwt,
            jwt_secret: "im-jwt-secret".into(),
            jwt_leeway_secs: 0,
            upstream: None,
        }
    }
}

/// xxim's gRPC method for each client event (package `pb`, as at 5250ab4).
pub fn default_event_path(event: u8) -> Option<&'static str> {
    Some(match event {
        0 => "/pb.msgService/SendMsgListAsync",
        1 => "/pb.msgService/BatchGetConvSeq",
        2 => "/pb.msgService/BatchGetMsgListByConvId",
        3 => "/pb.noticeService/AckNoticeData",
        4 => "/pb.msgService/GetMsgById",
        _ => return None,
    })
}

impl ImConfig {
    /// Whether the dialect keeps durable state (then the store runs).
    pub fn needs_store(&self) -> bool {
        self.enabled && self.durable
    }

    /// Whether the dialect makes upstream calls (then the hook shard runs).
    pub fn uses_calls(&self) -> bool {
        self.enabled
            && (!self.routes.is_empty()
                || self.after_connect.is_some()
                || self.after_disconnect.is_some()
                || self.auth.mode == AuthMode::Upstream)
    }

    /// Checks every value; `at` is the key prefix (`im`).
    pub fn check(&self, at: &str) -> Result<(), ConfigError> {
        if !self.path.starts_with('/') || self.path.contains(['?', '#']) {
            return Err(invalid(format!("{at}.path"), "must start with '/' and hold no query"));
        }
        for (key, value) in [
            ("max_requests_per_conn", self.max_requests_per_conn as u64),
            ("retry_interval_ms", self.retry_interval_ms),
        ] {
            if value == 0 {
                return Err(invalid(format!("{at}.{key}"), "must be greater than 0"));
            }
        }
        if self.max_deliver_after_secs > 864_000 * 10 {
            return Err(invalid(format!("{at}.max_deliver_after_secs"), "at most 8640000"));
        }
        self.auth.check(&format!("{at}.auth"))?;
        for (name, hook) in
            [("after_connect", &self.after_connect), ("after_disconnect", &self.after_disconnect)]
        {
            if let Some(backend) = hook {
                backend.check(&format!("{at}.{name}"))?;
            }
        }
        for (i, route) in self.routes.iter().enumerate() {
            route.check(&format!("{at}.routes[{i}]"))?;
            if self.routes[..i].iter().any(|r| r.event == route.event && r.method == route.method) {
                return Err(invalid(format!("{at}.routes[{i}]"), "a route for this key exists"));
            }
        }
        Ok(())
    }
}

impl AuthConfig {
    fn check(&self, at: &str) -> Result<(), ConfigError> {
        match (self.mode, &self.upstream) {
            (AuthMode::Jwt, _) if self.jwt_secret.is_empty() => {
                Err(invalid(format!("{at}.jwt_secret"), "must not be empty with mode = \"jwt\""))
            }
            (AuthMode::Upstream, None) => {
                Err(invalid(format!("{at}.upstream"), "needed with mode = \"upstream\""))
            }
            (_, Some(backend)) => backend.check(&format!("{at}.upstream")),
            _ => Ok(()),
        }
    }
}

impl RouteConfig {
    fn check(&self, at: &str) -> Result<(), ConfigError> {
        match (self.event, &self.method) {
            (Some(event), None) if event <= 4 => {}
            (Some(_), None) => return Err(invalid(format!("{at}.event"), "must be 0..4")),
            (None, Some(method)) if !method.is_empty() => {
                if self.backend.path.is_none() {
                    return Err(invalid(format!("{at}.path"), "needed for a method route"));
                }
            }
            _ => return Err(invalid(at, "needs exactly one of `event` and `method`")),
        }
        self.backend.check(at)
    }

    /// The key a request is routed by: the event number as text, or the method.
    pub fn key(&self) -> String {
        match (&self.method, self.event) {
            (Some(method), _) => method.clone(),
            (None, event) => event.unwrap_or_default().to_string(),
        }
    }
}

impl Backend {
    fn check(&self, at: &str) -> Result<(), ConfigError> {
        let uri: http::Uri = self
            .url
            .parse()
            .map_err(|_| invalid(format!("{at}.url"), format!("{:?} is not a URL", self.url)))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(invalid(format!("{at}.url"), "must be http://host:port (h2c for gRPC)"));
        }
        if self.path.as_ref().is_some_and(|p| !p.starts_with('/')) {
            return Err(invalid(format!("{at}.path"), "must start with '/'"));
        }
        if self.timeout_ms == 0 {
            return Err(invalid(format!("{at}.timeout_ms"), "must be greater than 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let config = ImConfig::default();
        config.check("im").expect("valid");
        let text = toml::to_string(&config).expect("serialize");
        assert_eq!(toml::from_str::<ImConfig>(&text).expect("parse"), config);
        assert!(!config.uses_calls());
    }

    #[test]
    fn routes_parse_and_bad_ones_name_their_key() {
        let text = "[[routes]]\nevent = 0\nurl = \"http://127.0.0.1:1\"\n\
                    [[routes]]\nmethod = \"/v1/x\"\npath = \"/pb.x/X\"\nurl = \"http://h:2\"\nprotocol = \"http\"\n";
        let config: ImConfig = toml::from_str(text).expect("parse");
        config.check("im").expect("valid");
        assert_eq!(config.routes[0].key(), "0");
        assert_eq!(config.routes[1].backend.protocol, Protocol::Http);
        let bad: ImConfig =
            toml::from_str("[[routes]]\nevent = 7\nurl = \"http://h:1\"\n").expect("parse");
        assert!(bad.check("im").expect_err("bad").to_string().contains("im.routes[0].event"));
        let bad: ImConfig =
            toml::from_str("[[routes]]\nmethod = \"/m\"\nurl = \"http://h:1\"\n").expect("parse");
        assert!(bad.check("im").expect_err("no path").to_string().contains("im.routes[0].path"));
        let bad: ImConfig = toml::from_str("[auth]\nmode = \"upstream\"\n").expect("parse");
        assert!(bad.check("im").expect_err("no upstream").to_string().contains("im.auth.upstream"));
    }
}
