//! Cluster helpers for the end-to-end tests: a real `nats-server` (Debian's package, on a free
//! port, killed on drop) and nodes of pushgate linked through it.

use super::Server;
use std::{
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The NATS server binary: `NATS_SERVER` or Debian's path.
pub fn nats_binary() -> Option<String> {
    let path = std::env::var("NATS_SERVER").unwrap_or_else(|_| "/usr/sbin/nats-server".into());
    std::path::Path::new(&path).exists().then_some(path)
}

/// A running nats-server, killed when dropped.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
}

impl Nats {
    /// Starts nats-server on a free port of 127.0.0.1 and waits until it accepts connections.
    pub fn start() -> Nats {
        let port = free_port();
        let mut nats = Nats { child: None, port };
        nats.restart();
        nats
    }

    /// Starts it again on the same port (after `stop`).
    pub fn restart(&mut self) {
        let binary = nats_binary().expect("nats-server is installed (apt-get install nats-server)");
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nats-server did not start on port {}", self.port);
    }

    /// Kills it (the nodes lose their link).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The `[cluster]` section of node `name` (extra keys appended inside the section).
pub fn cluster_toml(nats: &Nats, name: &str, extra: &str) -> String {
    format!(
        "[cluster]\nadapter = \"nats\"\nservers = [\"{}\"]\nnode = \"{name}\"\nheartbeat_ms = 200\nnode_timeout_ms = 1500\n{extra}\n",
        nats.url()
    )
}

/// `n` one-shard nodes that keep a killed node in the live set for a minute and give up on a
/// query after 300 ms, once they see each other: for answers some live node missed.
pub fn start_slow_to_forget(nats: &Nats, n: usize) -> Vec<Server> {
    let toml = |name: String| {
        format!(
            "[cluster]\nadapter = \"nats\"\nservers = [\"{}\"]\nnode = \"{name}\"\n\
             heartbeat_ms = 200\nnode_timeout_ms = 60000\nquery_timeout_ms = 300\n",
            nats.url()
        )
    };
    let nodes: Vec<Server> = (0..n).map(|i| Server::start(&toml(format!("node-{i}")), 1)).collect();
    wait_until(|| nodes.iter().all(|node| node.cluster_metric("nodes") == (n - 1) as u64));
    nodes
}

/// `n` nodes named node-0.. with `shards` shards each; `toml` goes before the cluster section.
pub fn start_nodes(nats: &Nats, n: usize, shards: usize, toml: &str) -> Vec<Server> {
    start_nodes_with(nats, n, shards, |_| toml.to_string())
}

/// Like [`start_nodes`], with node `i`'s own `toml(i)` (a data directory each, ...).
pub fn start_nodes_with(
    nats: &Nats,
    n: usize,
    shards: usize,
    toml: impl Fn(usize) -> String,
) -> Vec<Server> {
    let nodes: Vec<Server> = (0..n)
        .map(|i| {
            let config = format!("{}\n{}", toml(i), cluster_toml(nats, &format!("node-{i}"), ""));
            Server::start(&config, shards)
        })
        .collect();
    wait_until(|| nodes.iter().all(|node| node.cluster_metric("nodes") == (n - 1) as u64));
    nodes
}

/// Polls `done` every 50 ms, up to 10 s; panics if it never holds.
pub fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("condition not reached within 10 s");
}

impl Server {
    /// A `pushgate_cluster_*` metric of this node.
    pub fn cluster_metric(&self, name: &str) -> u64 {
        let (_, text) = self.get("/metrics");
        let prefix = format!("pushgate_cluster_{name}{{");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).and_then(|rest| rest.split(' ').nth(1)))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}
