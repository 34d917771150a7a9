//! Start and stop: resolve the listen address, build the ring mesh and the mounted dialects,
//! start one glommio executor per shard (pinned or not) and the hook shard, and shut down on
//! request with a bounded grace period.

use crate::{
    cluster::{self, link::Link, link::LinkSeed, FromCluster},
    config::Config,
    edge::{accept::serve_listener, Edge},
    engine::{self, bus::Bus, bus::Mesh, calls::Calls, conn::sys, shard::Shard},
    hook::{self, board::Board, call::ReplyMesh, event::HookMesh, event::Hooks},
    mount::{self, Mounting, Mounts},
    shutdown::Shutdown,
    store::{self, Store},
};
use anyhow::{anyhow, Context};
use crossbeam_channel::{bounded, Receiver, Sender};
use glommio::{
    channels::channel_mesh::{MeshBuilder, Role},
    LocalExecutorBuilder, Placement,
};
use std::{
    net::{SocketAddr, TcpListener as StdListener},
    rc::Rc,
    sync::Arc,
    time::Duration,
};

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub shards: usize,
    exited: Receiver<usize>,
    grace: Duration,
    shutdown: Shutdown,
    /// The edge every shard shares (TLS certificate, open-file budget).
    pub edge: Arc<Edge>,
    /// The durable store, when a mounted dialect needs it; stopped after the shards.
    store: Option<Store>,
}

/// What a shard is started with.
struct Setup {
    config: Arc<Config>,
    mesh: Mesh,
    /// The rings to the hook shard and back, when a hook shard runs.
    hook_mesh: Option<(HookMesh, ReplyMesh)>,
    mounts: Arc<dyn Mounting>,
    /// The hook shard's counters, for `/metrics`.
    board: Arc<Board>,
    addr: SocketAddr,
    ready: Sender<Result<usize, String>>,
    shutdown: Shutdown,
    /// This shard's link to the cluster thread and what it hears from it, in cluster mode.
    cluster: Option<(LinkSeed, flume::Receiver<FromCluster>)>,
    edge: Arc<Edge>,
}

/// Starts the server's dialects on their shards (and the durable store first, when one needs
/// it); returns once every shard is listening.
pub fn start(config: Config) -> anyhow::Result<Running> {
    let store = match mount::needs_store(&config) {
        true => {
            Some(store::start(&config.store).context("cannot start the durable store ([store])")?)
        }
        false => None,
    };
    let mounts = Arc::new(Mounts::new(&config, store.as_ref().map(Store::handle)));
    let mut running = start_with(config, mounts)?;
    running.store = store;
    Ok(running)
}

/// Starts the shards with the dialects `mounts` makes (tests mount their own).
pub fn start_with(config: Config, mounts: Arc<dyn Mounting>) -> anyhow::Result<Running> {
    let nr = match config.shards {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let addr = resolve(&config)?;
    let config = Arc::new(Config { port: addr.port(), shards: nr, ..config });
    let mesh: Mesh = MeshBuilder::full(nr, config.ring_capacity);
    let hook_shard = config.has_hooks() || mounts.uses_calls();
    let hook_mesh = hook_shard.then(|| {
        let capacity = config.ring_capacity;
        (HookMesh::partial(nr + 1, capacity), ReplyMesh::partial(nr + 1, capacity))
    });
    let board = Arc::new(Board::default());
    let edge = Arc::new(Edge::new(&config).map_err(|e| anyhow!(e))?);
    let shutdown = Shutdown::default();
    let (ready_tx, ready_rx) = bounded::<Result<usize, String>>(nr + 1);
    let (exit_tx, exit_rx) = bounded::<usize>(nr);
    let mut links: Vec<Option<(LinkSeed, flume::Receiver<FromCluster>)>> =
        (0..nr).map(|_| None).collect();
    if config.cluster.enabled() {
        let names = mounts.ns_names(&config);
        let started = cluster::node::start(&config.cluster, nr, names, shutdown.clone())
            .map_err(|e| anyhow!(e))?;
        tracing::info!("cluster mode: node {}", started.node);
        for (slot, link) in links.iter_mut().zip(started.links.into_iter().zip(started.receivers)) {
            *slot = Some(link);
        }
    }
    for (id, cluster) in links.into_iter().enumerate() {
        let placement = if config.pin { Placement::Fixed(id) } else { Placement::Unbound };
        let setup = Setup {
            config: config.clone(),
            mesh: mesh.clone(),
            hook_mesh: hook_mesh.clone(),
            mounts: mounts.clone(),
            board: board.clone(),
            addr,
            ready: ready_tx.clone(),
            shutdown: shutdown.clone(),
            cluster,
            edge: edge.clone(),
        };
        let exited = exit_tx.clone();
        LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{id}"))
            .io_memory(config.io_memory)
            .ring_depth(config.ring_depth)
            .spawn(move || async move {
                run_shard(setup).await;
                let _ = exited.send(id);
            })
            .map_err(|e| anyhow!("cannot start shard {id} (io_uring, locked memory?): {e}"))?;
    }
    let expected = nr + usize::from(hook_mesh.is_some());
    if let Some((mesh, replies)) = hook_mesh {
        let setup = hook::shard::Setup {
            config: config.clone(),
            mesh,
            replies,
            board: board.clone(),
            ready: ready_tx.clone(),
            shutdown: shutdown.clone(),
        };
        LocalExecutorBuilder::new(Placement::Unbound)
            .name("hooks")
            .io_memory(config.io_memory)
            .spawn(move || async move { hook::shard::run(setup).await })
            .map_err(|e| anyhow!("cannot start the hook shard: {e}"))?;
    }
    for _ in 0..expected {
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(anyhow!(e)),
            Err(_) => return Err(anyhow!("shards did not start within 10 s")),
        }
    }
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    Ok(Running { addr, shards: nr, exited: exit_rx, grace, shutdown, edge, store: None })
}

/// Runs a shard: listen, join the meshes, build its dialects, serve until shutdown, then close
/// every client and wait (bounded) for them to go.
async fn run_shard(setup: Setup) {
    let Setup { config, mesh, hook_mesh, mounts, board, addr, ready, shutdown, cluster, edge } =
        setup;
    let listener = match sys::listen(addr, config.listen_backlog) {
        Ok(listener) => listener,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot listen on {addr}: {e}")));
            return;
        }
    };
    let Ok((bus, receivers)) = Bus::join(mesh).await else {
        let _ = ready.send(Err("shard could not join the ring mesh".into()));
        return;
    };
    let (hook_senders, replies) = match hook_mesh {
        Some((mesh, replies)) => {
            let joined = match mesh.join(Role::Producer).await {
                Ok((senders, _)) => replies.join(Role::Consumer).await.map(|r| (senders, r.1)),
                Err(e) => Err(e),
            };
            match joined {
                Ok((senders, replies)) => (Some(senders), Some(replies)),
                Err(_) => {
                    let _ = ready.send(Err("shard could not reach the hook shard".into()));
                    return;
                }
            }
        }
        None => (None, None),
    };
    let hooks = Hooks::new(&config, hook_senders, board);
    let reply_to = replies.as_ref().and_then(|r| r.consumer_id());
    let calls = Calls::new(config.max_calls_in_flight, reply_to);
    let mounted = mounts.for_shard(&config);
    let (link, from_cluster) = match cluster {
        Some((seed, rx)) => (Some(Link::new(seed)), Some(rx)),
        None => (None, None),
    };
    let digest_every = Duration::from_secs(config.cluster.digest_interval_secs);
    let shard = Shard::new(config, bus, hooks, calls, link, mounted.dialects, mounted.ns_tags);
    engine::start(&shard, receivers);
    if let Some(rx) = from_cluster {
        engine::remote::listen(&shard, rx, digest_every);
    }
    if let Some(replies) = replies {
        engine::calls::listen(&shard, replies);
    }
    let router = Rc::new(mounted.router);
    let accept = glommio::spawn_local(serve_listener(shard.clone(), router, edge, listener));
    let _ = ready.send(Ok(shard.id()));
    shutdown.wait().await;
    shard.shutting_down.set(true);
    drop(accept);
    engine::drain(&shard).await;
}

/// The address to listen on; port 0 is resolved once so every shard shares one port.
///
/// The shards bind with SO_REUSEPORT, which would let them join another process's group on
/// the same port and split its clients with it. A probe bound without SO_REUSEPORT first
/// fails if anyone holds the port, and the server refuses to start.
fn resolve(config: &Config) -> anyhow::Result<SocketAddr> {
    let ip = config.host.parse().context("host")?;
    let addr = SocketAddr::new(ip, config.port);
    let probe = StdListener::bind(addr).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::AddrInUse {
            "address already in use (another pushgate or another program holds this port)"
                .to_string()
        } else {
            e.to_string()
        };
        anyhow!("cannot listen on {addr}: {why}")
    })?;
    // Dropped before the shards bind: for port 0, a free port kept only by us for now.
    Ok(probe.local_addr()?)
}

impl Running {
    /// Asks every shard to stop (as a signal does).
    pub fn request_shutdown(&self) {
        self.shutdown.request();
    }

    /// Blocks until a shard exits (an error: returns false) or `signal` fires; then shuts down
    /// within the grace period (returns true).
    pub fn wait(self, signal: Receiver<()>) -> bool {
        crossbeam_channel::select! {
            recv(signal) -> _ => {}
            recv(self.exited) -> shard => {
                tracing::error!("shard {shard:?} stopped unexpectedly");
                return false;
            }
        }
        tracing::info!("shutting down: closing clients");
        self.shutdown.request();
        let deadline = self.grace + Duration::from_secs(3);
        for _ in 0..self.shards {
            if self.exited.recv_timeout(deadline).is_err() {
                tracing::warn!("a shard did not stop within {deadline:?}");
                break;
            }
        }
        if let Some(store) = self.store {
            store.shutdown();
        }
        true
    }
}
