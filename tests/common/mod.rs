//! Shared end-to-end harness: starts the real `pushgate` binary on 127.0.0.1 port 0 with a
//! config file and talks HTTP to it (ureq). Each dialect's client helpers live beside it
//! (`pusher`: a real WebSocket client and the SDKs' request signing, re-exported here so a test
//! names them as `common::Client`; `gateway`: a gateway client, the publish API and mock
//! upstreams; `im`: the xxim client and push API; `zato`: the Zato REST API, admin API and WSX
//! client; `cluster`: nats-server and nodes).

#![allow(dead_code)]

pub mod cluster;
pub mod gateway;
pub mod im;
pub mod pusher;
pub mod raw;
pub mod zato;

#[allow(unused_imports)]
pub use pusher::*;

use serde_json::Value;
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A running server process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub shards: usize,
    _config: tempfile_path::TempPath,
}

mod tempfile_path {
    /// A file removed on drop.
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl Server {
    /// Starts the server with extra TOML config and `shards` shards, on a free port.
    pub fn start(extra_toml: &str, shards: usize) -> Server {
        Server::start_on(extra_toml, shards, 0)
    }

    /// Starts the server on `port` (0: a free one).
    pub fn start_on(extra_toml: &str, shards: usize, port: u16) -> Server {
        let path = std::env::temp_dir().join(format!(
            "pushgate-test-{}-{}.toml",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::write(&path, extra_toml).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_pushgate"))
            .args(["--config", path.to_str().expect("utf8 path")])
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--shards",
                &shards.to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn pushgate");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read ready line");
        assert!(line.contains("listening on"), "unexpected first line: {line:?}");
        let port = line
            .split_whitespace()
            .find_map(|w| w.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
            .expect("port in ready line");
        Server { child, port, shards, _config: tempfile_path::TempPath(path) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path)
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// POST with a ready-made path and query.
    pub fn post_raw(&self, path_and_query: &str, body: &str) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}{}", self.port, path_and_query);
        let agent = agent();
        let mut reply = agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body)
            .expect("http request");
        let status = reply.status().as_u16();
        let text = reply.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// GET; returns (status, body text).
    pub fn get(&self, path: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}{}", self.port, path);
        let mut reply = agent().get(&url).call().expect("http request");
        (reply.status().as_u16(), reply.body_mut().read_to_string().unwrap_or_default())
    }

    /// A metric's value from `/metrics`.
    pub fn metric(&self, name: &str) -> u64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("pushgate_{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing in {text}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn rand_suffix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64)
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
