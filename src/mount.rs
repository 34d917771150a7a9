//! Mounting: which dialects this server runs, the tag and namespaces of each, and the router
//! that sends upgrades and REST requests to them. The one place that names every dialect:
//! the engine and the edge only see the `Dialect` and `Routes` traits.

use crate::{
    config::Config,
    dialect::{
        gateway::{self, GatewayDialect},
        im::ImDialect,
        pusher::{self, PusherDialect},
        zato::ZatoDialect,
    },
    edge::router::{PathMatch, Router},
    engine::{conn::DialectTag, seam::Dialect},
    rest::Routes,
    store::StoreHandle,
};
use std::{rc::Rc, sync::Arc};

/// Tag of the Pusher dialect; its apps are namespaces `0..apps.len()`.
pub const PUSHER: DialectTag = 0;
/// Tag of the APISIX/API7-style gateway dialect; one namespace.
pub const GATEWAY: DialectTag = 1;
/// Tag of the Zato publish/subscribe dialect; one namespace.
pub const ZATO: DialectTag = 2;
/// Tag of the xxim-style IM dialect; one namespace.
pub const IM: DialectTag = 3;

/// The namespace of a dialect that has one (every dialect but Pusher): they follow the Pusher
/// apps in tag order, so `ns_tags` lists Pusher's apps and then one namespace per such dialect.
pub fn namespace(config: &Config, tag: DialectTag) -> u16 {
    (config.apps.len() + usize::from(tag) - 1) as u16
}

/// Whether a mounted dialect keeps durable state (then the runtime starts the store).
pub fn needs_store(config: &Config) -> bool {
    config.zato.active() || config.im.needs_store()
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

/// The dialects the configuration asks for. Every dialect has its object on every shard (tags
/// stay indexes); only the enabled ones are mounted on paths.
pub struct Mounts {
    pusher: Arc<pusher::Shared>,
    gateway: Arc<gateway::Shared>,
    /// The durable store, when a dialect needs it.
    store: Option<StoreHandle>,
    /// Some mounted dialect calls upstreams: gateway routes, Zato notifications, IM routes,
    /// connect hooks or an upstream token check.
    calls: bool,
}

impl Mounts {
    pub fn new(config: &Config, store: Option<StoreHandle>) -> Mounts {
        let gateway_calls = config.gateway.enabled && !config.gateway.routes.is_empty();
        Mounts {
            pusher: pusher::Shared::new(config),
            gateway: gateway::Shared::new(config),
            store,
            calls: gateway_calls || config.zato.active() || config.im.uses_calls(),
        }
    }
}

impl Mounting for Mounts {
    fn for_shard(&self, config: &Arc<Config>) -> ShardMounts {
        let pusher = PusherDialect::new(PUSHER, config.clone(), self.pusher.clone());
        let gateway = GatewayDialect::new(
            GATEWAY,
            namespace(config, GATEWAY),
            config.clone(),
            self.gateway.clone(),
        );
        let zato =
            ZatoDialect::new(ZATO, namespace(config, ZATO), config.clone(), self.store.clone());
        // `/` too, as xxim: no other dialect has it (Pusher's fallback keeps other paths).
        let im_root = config.im.path != "/";
        let im =
            ImDialect::new(IM, namespace(config, IM), config.clone(), self.store.clone(), im_root);
        let mut router = Router::new(config);
        if config.gateway.enabled {
            router.mount_ws(PathMatch::Exact(config.gateway.path.clone()), GATEWAY);
            router.mount_rest(Rc::new(gateway.clone()) as Rc<dyn Routes>);
        }
        if config.zato.enabled {
            router.mount_ws(PathMatch::Exact(config.zato.wsx_path.clone()), ZATO);
            // Before Pusher's: a topic name may contain `/apps/`.
            router.mount_rest(Rc::new(zato.clone()) as Rc<dyn Routes>);
        }
        if config.im.enabled {
            router.mount_ws(PathMatch::Exact(config.im.path.clone()), IM);
            if im_root {
                router.mount_ws(PathMatch::Exact("/".into()), IM);
            }
            router.mount_rest(Rc::new(im.clone()) as Rc<dyn Routes>);
        }
        router.mount_ws(PathMatch::Contains("/app/".into()), PUSHER);
        // A Pusher client that got the path wrong understands Pusher's 4005 better than a 404.
        router.fallback_ws(PUSHER);
        router.mount_rest(Rc::new(pusher.clone()) as Rc<dyn Routes>);
        let mut ns_tags = vec![PUSHER; config.apps.len()];
        ns_tags.extend([GATEWAY, ZATO, IM]);
        let dialects: Vec<Rc<dyn Dialect>> =
            vec![Rc::new(pusher), Rc::new(gateway), Rc::new(zato), Rc::new(im)];
        ShardMounts { dialects, ns_tags, router }
    }

    fn uses_calls(&self) -> bool {
        self.calls
    }

    fn ns_names(&self, config: &Config) -> Vec<String> {
        let mut names: Vec<String> =
            config.apps.iter().map(|app| format!("app:{}", app.id)).collect();
        names.extend(["gateway", "zato", "im"].map(String::from));
        names
    }
}
