//! Mounting: which dialects this server runs, the tag and namespaces of each, and the router
//! that sends upgrades and REST requests to them. The one place that names every dialect:
//! the engine and the edge only see the `Dialect` and `Routes` traits.

use crate::{
    config::Config,
    dialect::{
        gateway::{self, GatewayDialect},
        im::ImDialect,
        pusher::{self, PusherDialect},
    },
    edge::router::{PathMatch, Router},
    engine::{
        bus::Envelope,
        conn::{queue::Frame, Close, ConnKey, DialectTag},
        seam::{Admission, Dialect, Gone, LocalFuture, Policy},
        shard::Shard,
    },
    rest::Routes,
    store::StoreHandle,
    ws::{frame::Message, handshake::Upgrade},
};
use std::{net::SocketAddr, rc::Rc, sync::Arc};

/// Tag of the Pusher dialect; its apps are namespaces `0..apps.len()`.
pub const PUSHER: DialectTag = 0;
/// Tag of the APISIX/API7-style gateway dialect; one namespace.
pub const GATEWAY: DialectTag = 1;
/// Tag of the xxim-style IM dialect (tag 2 is Zato's); one namespace.
pub const IM: DialectTag = 3;

/// The namespace of a dialect that has one (every dialect but Pusher): they follow the Pusher
/// apps in tag order, so `ns_tags` lists Pusher's apps and then one namespace per such dialect.
pub fn namespace(config: &Config, tag: DialectTag) -> u16 {
    (config.apps.len() + usize::from(tag) - 1) as u16
}

/// Whether a mounted dialect keeps durable state (then the runtime starts the store).
pub fn needs_store(config: &Config) -> bool {
    config.im.needs_store()
}

/// One shard's dialects (by tag), the dialect of each namespace, and its router.
pub struct ShardMounts {
    pub dialects: Vec<Rc<dyn Dialect>>,
    pub ns_tags: Vec<DialectTag>,
    pub router: Router,
}

/// A set of dialects to run: built once at start (shared by every shard's thread), it makes
/// each shard's dialect objects. [`Mounts`] is the server's; tests mount their own.
pub trait Mounting: Send + Sync {
    /// The dialect objects and router of one shard.
    fn for_shard(&self, config: &Arc<Config>) -> ShardMounts;

    /// Whether any mounted dialect makes upstream calls (then the hook shard runs).
    fn uses_calls(&self) -> bool;

    /// Each namespace's name, the same on every node of a cluster (nodes may number
    /// namespaces differently). Default: none (`ns<number>` is used).
    fn ns_names(&self, _config: &Config) -> Vec<String> {
        Vec::new()
    }
}

/// The dialects the configuration asks for.
pub struct Mounts {
    pusher: Arc<pusher::Shared>,
    gateway: Arc<gateway::Shared>,
    /// The gateway is mounted with routes: its requests go upstream through the hook shard.
    gateway_calls: bool,
    /// The durable store, when a dialect needs it.
    store: Option<StoreHandle>,
    /// The IM dialect makes upstream calls (routes, connect hooks, an upstream token check).
    im_calls: bool,
}

impl Mounts {
    pub fn new(config: &Config, store: Option<StoreHandle>) -> Mounts {
        Mounts {
            pusher: pusher::Shared::new(config),
            gateway: gateway::Shared::new(config),
            gateway_calls: config.gateway.enabled && !config.gateway.routes.is_empty(),
            store,
            im_calls: config.im.uses_calls(),
        }
    }
}

impl Mounting for Mounts {
    fn for_shard(&self, config: &Arc<Config>) -> ShardMounts {
        let pusher = PusherDialect::new(PUSHER, config.clone(), self.pusher.clone());
        let gateway_ns = namespace(config, GATEWAY);
        let gateway =
            GatewayDialect::new(GATEWAY, gateway_ns, config.clone(), self.gateway.clone());
        let mut router = Router::new(config);
        if config.gateway.enabled {
            router.mount_ws(PathMatch::Exact(config.gateway.path.clone()), GATEWAY);
        }
        let mut ns_tags = vec![PUSHER; config.apps.len()];
        ns_tags.push(GATEWAY);
        let mut dialects: Vec<Rc<dyn Dialect>> =
            vec![Rc::new(pusher.clone()), Rc::new(gateway.clone())];
        if config.im.enabled {
            // `/` too, as xxim: no other dialect has it (Pusher's fallback keeps other paths).
            let root = config.im.path != "/";
            let (ns, store) = (namespace(config, IM), self.store.clone());
            let im = ImDialect::new(IM, ns, config.clone(), store, root);
            while dialects.len() < usize::from(IM) {
                dialects.push(Rc::new(Vacant));
            }
            dialects.push(Rc::new(im.clone()));
            ns_tags.extend(GATEWAY + 1..=IM);
            router.mount_ws(PathMatch::Exact(config.im.path.clone()), IM);
            if root {
                router.mount_ws(PathMatch::Exact("/".into()), IM);
            }
            router.mount_rest(Rc::new(im) as Rc<dyn Routes>);
        }
        router.mount_ws(PathMatch::Contains("/app/".into()), PUSHER);
        // A Pusher client that got the path wrong understands Pusher's 4005 better than a 404.
        router.fallback_ws(PUSHER);
        router.mount_rest(Rc::new(pusher) as Rc<dyn Routes>);
        if config.gateway.enabled {
            router.mount_rest(Rc::new(gateway) as Rc<dyn Routes>);
        }
        ShardMounts { dialects, ns_tags, router }
    }

    fn uses_calls(&self) -> bool {
        self.gateway_calls || self.im_calls
    }

    fn ns_names(&self, config: &Config) -> Vec<String> {
        let mut names: Vec<String> =
            config.apps.iter().map(|app| format!("app:{}", app.id)).collect();
        names.push("gateway".into());
        if config.im.enabled {
            names.extend(["vacant:2".to_string(), "im".to_string()]);
        }
        names
    }
}

/// The slot of a tag whose dialect is not mounted (so tags stay indexes): it admits nobody.
struct Vacant;

impl Dialect for Vacant {
    fn name(&self) -> &'static str {
        "vacant"
    }

    fn admit<'a>(
        &'a self,
        _: &'a Rc<Shard>,
        _: &'a Upgrade,
        _: Option<SocketAddr>,
    ) -> LocalFuture<'a, Admission> {
        let refuse = Admission::Refuse { status: 404, body: "Not found".into(), why: "not_found" };
        Box::pin(std::future::ready(refuse))
    }

    fn open(&self, _: &Rc<Shard>, _: ConnKey, _: &Upgrade, _: Option<SocketAddr>) {}

    fn on_message(&self, _: &Rc<Shard>, _: ConnKey, _: Message<'_>) -> Result<(), Close> {
        Err(Close::PROTOCOL_ERROR)
    }

    fn on_close(&self, _: &Rc<Shard>, _: ConnKey, _: &Gone) {}

    fn policy(&self) -> Policy {
        Policy {
            idle_secs: 0,
            pong_secs: 0,
            ping: Frame::new(Vec::new()),
            timeout: Close::PROTOCOL_ERROR,
            over_capacity: Close::PROTOCOL_ERROR,
            shutdown: Close::fixed(1001, "Going away"),
            deadlines: false,
        }
    }

    fn on_notice(&self, _: &Rc<Shard>, _: Envelope) {}

    fn answer(&self, _: &Rc<Shard>, question: Envelope) -> LocalFuture<'static, Envelope> {
        Box::pin(std::future::ready(question))
    }

    fn client_id(&self, _: &Shard, _: ConnKey) -> String {
        String::new()
    }
}
