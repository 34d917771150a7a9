//! pushgate: a WebSocket push gateway, thread-per-core on io_uring (glommio).
//!
//! # Layout
//!
//! - [`config`]: one typed `Config`; embedded defaults, TOML file, environment; checked at start;
//!   `config::hooks` for webhooks and event hooks.
//! - [`error`]: the close-code catalog and what each code asks a client to do.
//! - [`runtime`]: resolve the address, build the ring mesh, start the shards, shut down.
//! - [`shard`]: a shard owns its connection slab, topic index and ring ends; accept loop.
//! - [`conn`]: a connection's slab entry, bounded outbound queue, and the task driving its socket.
//! - [`ws`]: WebSocket handshake and frames over tungstenite; no runtime, no I/O.
//! - [`dialect`]: protocols at the edge (Pusher): frames <-> engine operations, no I/O.
//! - [`topic`]: the local topic index, the home-shard state (presence, cache, counts), MQTT filters.
//! - [`bus`]: the cross-shard message enum and the mesh of SPSC rings.
//! - [`fanout`]: encode once, enqueue the same bytes to every subscriber on every shard.
//! - [`http`]: the REST API (hyper) on the client port, with request signing.
//! - [`hook`]: the hook shard: Pusher webhooks and EMQX-style event hooks, delivered over HTTP
//!   with queues, batching and retries, never blocking a connection shard.
//! - [`metrics`]: per-shard counters merged on scrape.
//! - [`store`]: durable state on one storage thread with group commit (one transaction and one
//!   fsync for all waiting writes); shards await it and never touch the disk.
//! - `heap_profile` (feature `heap-profile` only): a counting allocator for memory work.

pub mod bus;
pub mod config;
pub mod conn;
pub mod dialect;
pub mod error;
pub mod fanout;
#[cfg(feature = "heap-profile")]
pub mod heap_profile;
pub mod hook;
pub mod http;
pub mod metrics;
pub mod runtime;
pub mod shard;
pub mod store;
pub mod topic;
pub mod ws;
