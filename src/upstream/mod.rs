//! Request/response calls to upstreams, made on a glommio executor (the hook shard) for a
//! connection: the gateway dialect's per-action calls, the IM dialect's backend calls, and the
//! webhooks' HTTP POSTs. Each transport keeps its own small keep-alive pool, its timeouts and a
//! cap on what it buffers, and classifies its errors so a dialect can answer with its own codes.
//! The same gRPC pieces also serve the other direction: backends publishing over h2c.
//!
//! - [`http`]: HTTP/1.1 over hyper, plain or TLS: `post` for webhooks, `request` for upstreams.
//! - [`tcp_json`]: APISIX's length-prefixed TCP JSON frames (`0xB7 0x00`, u32 LE length), and a
//!   pooled client with the original's resend rule and error codes 5021-5024.
//! - [`grpc`]: unary gRPC over h2c: the client (`call`), the server for the client port
//!   (`is_h2_preface`, `serve_h2c`), the 5-byte message framing, and `pushserverpb` messages.
//! - [`url`]: URLs shown without their credentials, and userinfo as Basic credentials.
//! - [`rt`]: hyper on glommio: the I/O adapter, the local executor, capped body reads,
//!   timeouts, name resolution.

pub mod grpc;
pub mod http;
pub mod rt;
pub mod tcp_json;
pub mod url;

/// What kind of failure ended an attempt; retry policies choose the pause before the next one
/// from it (Zato's and the hooks' longer pause after socket-level failures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Connect refused or timed out, connection reset, request timeout, TLS failure.
    Socket,
    /// The endpoint answered, but not with 2xx (or the exchange broke at the HTTP level).
    Other,
}
