//! pushgate: a WebSocket push gateway, thread-per-core on io_uring (glommio).
//!
//! # Layout
//!
//! - [`cluster`]: cluster mode: nodes linked through NATS (a thread of its own), interest-based.
//! - [`config`]: one typed `Config`; embedded defaults, TOML file, environment; checked at start;
//!   `config::hooks` for webhooks and event hooks.
//! - [`runtime`]: resolve the address, build the ring mesh, start the shards and the hook shard,
//!   shut down; [`shutdown`] is the stop signal it hands to each.
//! - [`mount`]: the dialects this server runs, their tags and namespaces, and the router.
//! - [`engine`]: shards, the connection slab and driver (over a plain or TLS transport), bounded
//!   queues, the topic index by namespace, encode-once fan-out, home shards, the ring mesh, the
//!   sweep; knows no protocol.
//! - [`edge`]: the accept loop (plain or TLS), what a shard lets in (REST requests in progress,
//!   the descriptor reserve), the router (path -> dialect or REST routes), the HTTP server.
//! - [`dialect`]: the protocols at the edge (Pusher; the APISIX/API7-style push gateway; the
//!   xxim-style IM gateway), each behind the engine's `Dialect` seam.
//! - [`rest`]: the REST vocabulary shared by the HTTP server and the dialects' routes.
//! - [`ws`]: WebSocket handshake and frames over tungstenite; no runtime, no I/O.
//! - [`hook`]: the hook shard: Pusher webhooks and EMQX-style event hooks, delivered over HTTP
//!   with queues, batching and retries, never blocking a connection shard.
//! - [`crypto`]: HMAC signatures and constant-time comparison.
//! - [`mqtt`]: MQTT topic names and filters (EMQX-style rules match topics with them).
//! - [`upstream`]: request/response calls to upstreams (HTTP/1.1, h2c + unary gRPC, length-prefixed
//!   TCP JSON), and the h2c/gRPC server for backends publishing on the client port.
//! - [`metrics`]: per-shard counters merged on scrape.
//! - [`store`]: durable state on one storage thread with group commit (one transaction and one
//!   fsync for all waiting writes); shards await it and never touch the disk.
//! - `heap_profile` (feature `heap-profile` only): a counting allocator for memory work.

pub mod cluster;
pub mod config;
pub mod crypto;
pub mod dialect;
pub mod edge;
pub mod engine;
#[cfg(feature = "heap-profile")]
pub mod heap_profile;
pub mod hook;
pub mod metrics;
pub mod mount;
pub mod mqtt;
pub mod rest;
pub mod runtime;
pub mod shutdown;
pub mod store;
pub mod upstream;
pub mod ws;
