//! What a connection said about itself on connect (xxim's `ConnParam`): the query parameters,
//! the client's address and its request headers. Stamped on every request as `CommonReq`,
//! reported by `GetUserConn` and the connect hooks as `ConnParam`.

use super::pb::{CommonReq, ConnParam};
use crate::ws::handshake::Upgrade;
use std::net::SocketAddr;

/// A connection's parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pub user_id: String,
    pub token: String,
    pub device_id: String,
    pub platform: String,
    pub device_model: String,
    pub os_version: String,
    pub app_version: String,
    pub language: String,
    pub network_used: String,
    /// The client's address: `X-Real-IP`, else the first `X-Forwarded-For`, else the peer (as
    /// xxim, behind its own reverse proxy, reads it).
    pub ip: String,
    pub user_agent: String,
    /// Request headers, names lowercased, first value of each.
    pub headers: Vec<(String, String)>,
}

impl Params {
    /// Reads the parameters of an upgrade.
    pub fn of(up: &Upgrade, peer: Option<SocketAddr>) -> Params {
        let mut p = Params::default();
        for (name, value) in form_urlencoded::parse(up.query.as_bytes()) {
            let slot = match name.as_ref() {
                "userId" => &mut p.user_id,
                "token" => &mut p.token,
                "deviceId" => &mut p.device_id,
                "platform" => &mut p.platform,
                "deviceModel" => &mut p.device_model,
                "osVersion" => &mut p.os_version,
                "appVersion" => &mut p.app_version,
                "language" => &mut p.language,
                "networkUsed" => &mut p.network_used,
                _ => continue,
            };
            if slot.is_empty() {
                *slot = value.into_owned();
            }
        }
        let forwarded = up.header("x-forwarded-for").and_then(|v| v.split(',').next());
        p.ip = up
            .header("x-real-ip")
            .or(forwarded)
            .map(|v| v.trim().to_string())
            .or_else(|| peer.map(|a| a.ip().to_string()))
            .unwrap_or_default();
        p.user_agent = up.header("user-agent").unwrap_or_default().to_string();
        for (name, value) in &up.headers {
            if !p.headers.iter().any(|(n, _)| n == name) {
                p.headers.push((name.clone(), value.clone()));
            }
        }
        p
    }

    /// Without a user id or token, a connection is anonymous (only `/white/` methods).
    pub fn is_anonymous(&self) -> bool {
        self.user_id.is_empty() || self.token.is_empty()
    }

    /// The `CommonReq` stamped on this connection's requests.
    pub fn common_req(&self) -> CommonReq {
        CommonReq {
            user_id: self.user_id.clone(),
            token: self.token.clone(),
            device_model: self.device_model.clone(),
            device_id: self.device_id.clone(),
            os_version: self.os_version.clone(),
            platform: self.platform.clone(),
            app_version: self.app_version.clone(),
            language: self.language.clone(),
            data: bytes::Bytes::new(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
        }
    }

    /// The connection as conn.proto's `ConnParam`.
    pub fn conn_param(&self, pod_ip: &str) -> ConnParam {
        ConnParam {
            user_id: self.user_id.clone(),
            token: self.token.clone(),
            device_id: self.device_id.clone(),
            platform: self.platform.clone(),
            ips: self.ip.clone(),
            network_used: self.network_used.clone(),
            headers: self.headers.iter().cloned().collect(),
            pod_ip: pod_ip.to_string(),
            device_model: self.device_model.clone(),
            os_version: self.os_version.clone(),
            app_version: self.app_version.clone(),
            language: self.language.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(query: &str, headers: &[(&str, &str)]) -> Upgrade {
        Upgrade {
            path: "/ws".into(),
            query: query.into(),
            origin: None,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            accept: String::new(),
        }
    }

    #[test]
    fn query_parameters_are_decoded_first_value_wins() {
        let up = upgrade(
            "userId=u%201&token=t&platform=ios&deviceId=d&userId=other&networkUsed=wifi",
            &[("user-agent", "ua"), ("x-forwarded-for", "10.0.0.1, 10.0.0.2")],
        );
        let p = Params::of(&up, "127.0.0.1:9".parse().ok());
        assert_eq!(p.user_id, "u 1");
        assert_eq!(p.network_used, "wifi");
        assert_eq!(p.ip, "10.0.0.1");
        assert_eq!(p.user_agent, "ua");
        assert!(!p.is_anonymous());
        assert_eq!(p.common_req().platform, "ios");
        assert_eq!(p.conn_param("pod").headers.get("user-agent").map(String::as_str), Some("ua"));
    }

    #[test]
    fn without_a_token_a_connection_is_anonymous() {
        let p = Params::of(&upgrade("userId=u", &[]), "127.0.0.1:9".parse().ok());
        assert!(p.is_anonymous());
        assert_eq!(p.ip, "127.0.0.1");
    }
}
