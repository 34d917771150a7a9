//! The hook shard and what feeds it: events from the connection shards (`event`), their
//! routing to endpoints (`shard`, with the MQTT topic filters of EMQX-style rules in `mqtt`),
//! Pusher and EMQX bodies (`shard`, `emqx`), and the delivery machinery shared by every
//! endpoint: HTTP client (`client`), queue, batching and retries (`endpoint`, `retry`), and
//! endpoint URLs shown without their credentials (`url`).

pub mod board;
pub mod client;
pub mod emqx;
pub mod endpoint;
pub mod event;
pub mod mqtt;
pub mod retry;
pub mod shard;
pub mod url;
