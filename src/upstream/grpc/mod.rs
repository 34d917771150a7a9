//! Unary gRPC over cleartext HTTP/2, both ways: the client the IM dialect calls backends with,
//! the h2c server backends publish to on the client port, the wire pieces they share, and the
//! gateway's `pushserverpb.Push/Msg` messages.

pub mod client;
pub mod pushserverpb;
pub mod server;
pub mod wire;

pub use client::{GrpcClient, GrpcConfig, GrpcError, GrpcReply};
pub use server::{
    is_h2_preface, serve_h2c, GrpcResponse, H2Reply, H2Request, H2cConfig, ReplyBody,
};
pub use wire::Code;
