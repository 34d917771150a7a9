//! Request/response calls to upstreams, made on a glommio executor (the hook shard) for a
//! connection: the gateway dialect's per-action calls, the IM dialect's backend calls, and the
//! webhooks' HTTP POSTs. Each transport keeps its own small keep-alive pool, its timeouts and a
//! cap on what it buffers, and classifies its errors so a dialect can answer with its own codes.
//!
//! - [`http`]: HTTP/1.1 over hyper, plain or TLS: `post` for webhooks, `request` for upstreams.
//! - [`rt`]: hyper on glommio: the I/O adapter, the local executor, capped body reads,
//!   timeouts, name resolution.

pub mod http;
pub mod rt;
