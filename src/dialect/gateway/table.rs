//! The route table, built once from `[[gateway.routes]]`: which route serves a frame's `uri`
//! (exact match first, then the longest `*` prefix, as APISIX's radixtree), and each route's
//! action and upstream in the form calls need (node addresses in weighted round-robin order,
//! timeouts, pool settings).

use crate::config::gateway::{GatewayConfig, HeadersConfig, RouteConfig, UpstreamConfig};
use std::time::Duration;

/// What a route does with the upstream's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Register,
    SubAdd,
    SubPut,
    SubDelete,
    Disconnect,
    Proxy,
}

impl Action {
    fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "register" => Action::Register,
            "sub_add" => Action::SubAdd,
            "sub_put" => Action::SubPut,
            "sub_delete" => Action::SubDelete,
            "disconnect" => Action::Disconnect,
            "proxy" => Action::Proxy,
            _ => return None,
        })
    }

    /// The actions whose `body.topics` must be an array.
    pub fn needs_topics(self) -> bool {
        matches!(self, Action::SubAdd | Action::SubPut | Action::SubDelete)
    }
}

/// How a route reaches its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// The original's length-prefixed JSON over TCP.
    Tcp,
    Http,
    Https,
}

/// A route's upstream, ready for calls.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The pool name on the hook shard (one pool per route).
    pub name: String,
    pub scheme: Scheme,
    /// `host:port` per pick, in weighted round-robin order (one period).
    pub picks: Vec<String>,
    /// Distinct nodes with a weight.
    pub nodes: usize,
    /// Connect attempts asked for (`upstream.retries`).
    pub retries: Option<usize>,
    pub connect: Duration,
    pub send: Duration,
    pub read: Duration,
    pub pool_size: usize,
    pub pool_idle: Duration,
    pub pool_requests: u32,
}

/// One sub-route.
#[derive(Debug, Clone)]
pub struct Route {
    pub uri: String,
    pub action: Action,
    pub upstream: Upstream,
    pub headers: HeadersConfig,
}

/// Every route, matched by uri.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// Picks per period at most: weights are scaled down past it.
const MAX_PERIOD: u64 = 1024;

impl RouteTable {
    /// Builds the table from a checked config (routes that failed the check are skipped).
    pub fn new(config: &GatewayConfig) -> RouteTable {
        let routes = config.routes.iter().enumerate().filter_map(|(i, r)| route(i, r)).collect();
        RouteTable { routes }
    }

    /// The index of the route serving `uri`: exact match first, then the longest prefix.
    pub fn find(&self, uri: &str) -> Option<usize> {
        if let Some(i) = self.routes.iter().position(|r| r.uri == uri) {
            return Some(i);
        }
        self.routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i, r.uri.strip_suffix('*')?)))
            .filter(|(_, prefix)| uri.starts_with(prefix))
            .max_by_key(|(_, prefix)| prefix.len())
            .map(|(i, _)| i)
    }

    pub fn get(&self, i: usize) -> Option<&Route> {
        self.routes.get(i)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}

fn route(i: usize, config: &RouteConfig) -> Option<Route> {
    let action = Action::parse(config.action.as_deref()?)?;
    let upstream = upstream(i, config.upstream.as_ref()?);
    Some(Route { uri: config.uri.clone(), action, upstream, headers: config.headers.clone() })
}

fn upstream(i: usize, config: &UpstreamConfig) -> Upstream {
    let scheme = match config.scheme.as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => Scheme::Tcp,
    };
    let secs = |s: f64| Duration::from_secs_f64(s);
    let (connect, send, read) = match &config.timeout {
        Some(t) => (secs(t.connect), secs(t.send), secs(t.read)),
        None => (Duration::from_secs(60), Duration::from_secs(60), Duration::from_secs(60)),
    };
    let nodes: Vec<(String, u32)> = config
        .nodes
        .iter()
        .filter(|n| n.weight > 0)
        .map(|n| {
            let host = if n.host.contains(':') && !n.host.starts_with('[') {
                format!("[{}]", n.host)
            } else {
                n.host.clone()
            };
            (format!("{host}:{}", n.port), n.weight)
        })
        .collect();
    Upstream {
        name: format!("gateway.routes[{i}]"),
        scheme,
        picks: weighted_order(&nodes),
        nodes: nodes.len(),
        retries: config.retries,
        connect,
        send,
        read,
        pool_size: config.keepalive_pool.size,
        pool_idle: secs(config.keepalive_pool.idle_timeout),
        pool_requests: config.keepalive_pool.requests,
    }
}

impl Upstream {
    /// Connect attempts of an HTTP call: `retries`, else one per node.
    pub fn http_connects(&self) -> usize {
        self.retries.unwrap_or(self.nodes).max(1)
    }

    /// Connect picks of a TCP call, made over the weighted order: `retries`, else a whole
    /// period, so every node is tried once.
    pub fn tcp_picks(&self) -> usize {
        self.retries.unwrap_or(self.picks.len()).max(1)
    }
}

/// One period of smooth weighted round robin (nginx's): each node appears in proportion to its
/// weight, spread out rather than in runs. Weights are reduced by their gcd, and scaled down
/// when their sum passes `MAX_PERIOD`.
fn weighted_order(nodes: &[(String, u32)]) -> Vec<String> {
    let g = nodes.iter().fold(0, |g, (_, w)| gcd(g, u64::from(*w))).max(1);
    let sum: u64 = nodes.iter().map(|(_, w)| u64::from(*w) / g).sum();
    let scale = sum.div_ceil(MAX_PERIOD).max(1);
    let weights: Vec<i64> =
        nodes.iter().map(|(_, w)| ((u64::from(*w) / g) / scale).max(1) as i64).collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; nodes.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&weights) {
            *c += w;
        }
        let Some(best) = (0..nodes.len()).max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
        else {
            break;
        };
        current[best] -= total;
        order.push(nodes[best].0.clone());
    }
    order
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(uris: &[&str]) -> RouteTable {
        let routes = uris
            .iter()
            .map(|u| RouteConfig::new(u, "proxy", "tcp", &[("127.0.0.1", 1975)]))
            .collect();
        RouteTable::new(&GatewayConfig { routes, ..GatewayConfig::default() })
    }

    #[test]
    fn exact_routes_win_then_the_longest_prefix() {
        let t = table(&["/a/*", "/a/b/*", "/a/b/c", "/x"]);
        assert_eq!(t.find("/a/b/c"), Some(2));
        assert_eq!(t.find("/a/b/d"), Some(1));
        assert_eq!(t.find("/a/z"), Some(0));
        assert_eq!(t.find("/x"), Some(3));
        assert_eq!(t.find("/x/y"), None);
        assert_eq!(t.find(""), None);
    }

    #[test]
    fn weights_spread_picks_in_proportion() {
        let nodes = vec![("a:1".to_string(), 5), ("b:1".to_string(), 1), ("c:1".to_string(), 1)];
        let order = weighted_order(&nodes);
        assert_eq!(order, ["a:1", "a:1", "b:1", "a:1", "c:1", "a:1", "a:1"]);
        let even = weighted_order(&[("a:1".into(), 10), ("b:1".into(), 10)]);
        assert_eq!(even, ["a:1", "b:1"]);
        let huge = weighted_order(&[("a:1".into(), 1_000_000), ("b:1".into(), 1)]);
        assert!(huge.len() <= MAX_PERIOD as usize + 1 && huge.contains(&"b:1".to_string()));
    }

    #[test]
    fn zero_weights_take_nothing_and_ipv6_hosts_are_bracketed() {
        let mut route = RouteConfig::new("/a", "register", "http", &[("::1", 80), ("h", 81)]);
        if let Some(up) = route.upstream.as_mut() {
            up.nodes[1].weight = 0;
        }
        let t = RouteTable::new(&GatewayConfig { routes: vec![route], ..GatewayConfig::default() });
        let up = &t.get(0).expect("route").upstream;
        assert_eq!(up.picks, ["[::1]:80"]);
        assert_eq!((up.scheme, up.http_connects()), (Scheme::Http, 1));
        assert_eq!(t.get(0).expect("route").action, Action::Register);
    }
}
