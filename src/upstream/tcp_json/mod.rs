//! APISIX's length-prefixed TCP JSON upstream ("ms1975"): the frame codec, pure and fuzzed, and
//! the pooled request/response client over glommio sockets.

pub mod client;
pub mod codec;

pub use client::{Failure, SetupError, TcpJsonClient, TcpJsonConfig, TcpJsonError};
pub use codec::{Codec, FrameError};
