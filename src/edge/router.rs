//! The router: which dialect a WebSocket upgrade's path belongs to, and which REST route table
//! serves a plain request's path. Built once per shard from the mounted dialects.

use crate::{
    config::Config, engine::conn::DialectTag, rest::Routes, upstream::grpc::server::H2cConfig,
};
use std::{rc::Rc, time::Duration};

/// How a mount matches a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// Exactly this path (`/msg-pub`).
    Exact(String),
    /// Any path containing this segment (`/app/`: Pusher tolerates a path prefix).
    Contains(String),
}

impl PathMatch {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => path == p,
            PathMatch::Contains(p) => path.contains(p.as_str()),
        }
    }
}

/// The mount table of one shard.
#[derive(Default)]
pub struct Router {
    /// Limits of h2c connections (backends publishing over gRPC).
    pub h2c: Rc<H2cConfig>,
    ws: Vec<(PathMatch, DialectTag)>,
    /// The dialect that answers upgrades no mount claims (with its own "not found" close), if
    /// any; without one they get an HTTP 404.
    ws_fallback: Option<DialectTag>,
    rest: Vec<Rc<dyn Routes>>,
}

impl Router {
    /// An empty router with the configured h2c limits.
    pub fn new(config: &Config) -> Router {
        let h2c = H2cConfig {
            max_message: config.grpc_max_message_bytes,
            max_concurrent_streams: config.grpc_max_concurrent_streams,
            idle_timeout: Duration::from_secs(config.grpc_idle_timeout_secs),
        };
        Router { h2c: Rc::new(h2c), ..Router::default() }
    }

    /// Mounts a dialect's WebSocket endpoint.
    pub fn mount_ws(&mut self, path: PathMatch, tag: DialectTag) {
        self.ws.push((path, tag));
    }

    /// Makes `tag` answer upgrades to paths no mount claims.
    pub fn fallback_ws(&mut self, tag: DialectTag) {
        self.ws_fallback.get_or_insert(tag);
    }

    /// Mounts a REST route table (asked after the ones mounted before it).
    pub fn mount_rest(&mut self, routes: Rc<dyn Routes>) {
        self.rest.push(routes);
    }

    /// The dialect an upgrade to `path` goes to.
    pub fn dialect_for(&self, path: &str) -> Option<DialectTag> {
        let mounted = self.ws.iter().find(|(m, _)| m.matches(path)).map(|(_, tag)| *tag);
        mounted.or(self.ws_fallback)
    }

    /// The route table serving `path`.
    pub fn rest_for(&self, path: &str) -> Option<&Rc<dyn Routes>> {
        self.rest.iter().find(|r| r.serves(path))
    }

    /// Every route table, in mount order.
    pub fn rest_tables(&self) -> &[Rc<dyn Routes>] {
        &self.rest
    }

    /// The route table serving h2c requests to `path`.
    pub fn h2_for(&self, path: &str) -> Option<&Rc<dyn Routes>> {
        self.rest.iter().find(|r| r.serves_h2(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_mounts_win_in_order_then_the_fallback() {
        let mut router = Router::default();
        router.mount_ws(PathMatch::Exact("/msg-pub".into()), 1);
        router.mount_ws(PathMatch::Contains("/app/".into()), 0);
        assert_eq!(router.dialect_for("/msg-pub"), Some(1));
        assert_eq!(router.dialect_for("/x/app/key"), Some(0));
        assert_eq!(router.dialect_for("/elsewhere"), None);
        router.fallback_ws(0);
        assert_eq!(router.dialect_for("/elsewhere"), Some(0));
        assert!(router.rest_for("/apps/1/events").is_none());
    }
}
