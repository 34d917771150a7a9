//! Zato publish/subscribe end to end against the real binary: each test is named after the
//! feature line it covers (F002-01..27 in the shared reference), plus durability across
//! restarts and `kill -9`, and bad input and faults. Each test has a data directory of its
//! own; servers run two shards so that topics' home shards differ from the shard a request
//! lands on. One binary for all of it (one link on a small machine).

#[path = "../common/mod.rs"]
mod common;
#[path = "../hook_receiver/mod.rs"]
mod hook_receiver;

mod api;
mod browse;
mod delivery;
mod durability;
mod faults;
mod queue;
mod wsx;

use common::{zato::DataDir, Server};

/// Shards of every test server.
pub const SHARDS: usize = 2;

/// Starts a server on `dir` with `zato_keys` under `[zato]` and `tables` after the endpoints.
pub fn start(dir: &DataDir, zato_keys: &str, tables: &str) -> Server {
    Server::start(&common::zato::config(dir, zato_keys, tables), SHARDS)
}
