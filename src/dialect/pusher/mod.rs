//! Pusher Channels protocol 7: the connect URL (`url`), client messages (`inbound`), server
//! messages (`outbound`) and channel names (`channel`).

pub mod auth;
pub mod channel;
pub mod inbound;
pub mod outbound;
pub mod session;
pub mod url;
