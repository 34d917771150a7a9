//! The hook shard and what feeds it: events from the connection shards (`event`), their
//! routing to endpoints (`shard`, with EMQX-style rules' MQTT topic filters from `crate::mqtt`),
//! Pusher, webman-push-server and EMQX bodies (`shard`, `webman`, `emqx`), and the delivery
//! machinery shared by every endpoint: queue, batching and retries (`endpoint`, `retry`),
//! over the HTTP client of `crate::upstream::http`, which upstream calls share. It also makes
//! upstream calls for the connection shards and answers them over rings (`call`).

pub mod board;
pub mod call;
pub mod emqx;
pub mod endpoint;
pub mod event;
pub mod retry;
pub mod shard;
pub mod webman;
