//! Start and stop: resolve the listen address, build the ring mesh, start one glommio executor
//! per shard (pinned or not), and shut down on request with a bounded grace period.

use crate::{bus::Mesh, config::Config, hook, hook::event::HookMesh, shard};
use anyhow::{anyhow, Context};
use crossbeam_channel::{bounded, Receiver};
use glommio::{channels::channel_mesh::MeshBuilder, LocalExecutorBuilder, Placement};
use std::{
    net::{SocketAddr, TcpListener as StdListener},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

/// Set once to stop every shard. Read by each shard's shutdown watcher every 100 ms, never on
/// the message path.
static SHUTDOWN: AtomicBool = AtomicBool::new(false);

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub shards: usize,
    exited: Receiver<usize>,
    grace: Duration,
}

/// Asks every shard to stop.
pub fn request_shutdown() {
    SHUTDOWN.store(true, Ordering::Relaxed);
}

pub(crate) fn shutdown_requested() -> bool {
    SHUTDOWN.load(Ordering::Relaxed)
}

/// Starts the shards and returns once every one is listening.
pub fn start(config: Config) -> anyhow::Result<Running> {
    let nr = match config.shards {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let addr = resolve(&config)?;
    let config = Arc::new(Config { port: addr.port(), shards: nr, ..config });
    let mesh: Mesh = MeshBuilder::full(nr, config.ring_capacity);
    let hook_mesh = config.has_hooks().then(|| HookMesh::partial(nr + 1, config.ring_capacity));
    let board = Arc::new(hook::board::Board::default());
    let app_conns: Arc<[AtomicU64]> = config.apps.iter().map(|_| AtomicU64::new(0)).collect();
    let (ready_tx, ready_rx) = bounded::<Result<usize, String>>(nr + 1);
    let (exit_tx, exit_rx) = bounded::<usize>(nr);
    for id in 0..nr {
        let placement = if config.pin { Placement::Fixed(id) } else { Placement::Unbound };
        let setup = shard::Setup {
            config: config.clone(),
            mesh: mesh.clone(),
            hook_mesh: hook_mesh.clone(),
            app_conns: app_conns.clone(),
            board: board.clone(),
            addr,
            ready: ready_tx.clone(),
        };
        let exited = exit_tx.clone();
        LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{id}"))
            .io_memory(config.io_memory)
            .ring_depth(config.ring_depth)
            .spawn(move || async move {
                shard::run(setup).await;
                let _ = exited.send(id);
            })
            .map_err(|e| anyhow!("cannot start shard {id} (io_uring, locked memory?): {e}"))?;
    }
    let expected = nr + usize::from(hook_mesh.is_some());
    if let Some(mesh) = hook_mesh {
        let (config, ready, board) = (config.clone(), ready_tx.clone(), board.clone());
        LocalExecutorBuilder::new(Placement::Unbound)
            .name("hooks")
            .io_memory(config.io_memory)
            .spawn(move || async move { hook::shard::run(config, mesh, board, ready).await })
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
    Ok(Running { addr, shards: nr, exited: exit_rx, grace })
}

/// The address to listen on; port 0 is resolved once so every shard shares one port.
fn resolve(config: &Config) -> anyhow::Result<SocketAddr> {
    let ip = config.host.parse().context("host")?;
    let addr = SocketAddr::new(ip, config.port);
    if config.port != 0 {
        return Ok(addr);
    }
    // Bound briefly and dropped before the shards bind: a free port, kept only by us for now.
    let probe = StdListener::bind(addr).context("cannot find a free port")?;
    Ok(probe.local_addr()?)
}

impl Running {
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
        tracing::info!("shutting down: closing clients with 4200");
        request_shutdown();
        let deadline = self.grace + Duration::from_secs(3);
        for _ in 0..self.shards {
            if self.exited.recv_timeout(deadline).is_err() {
                tracing::warn!("a shard did not stop within {deadline:?}");
                break;
            }
        }
        true
    }
}
