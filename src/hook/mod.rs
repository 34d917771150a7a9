//! The hook shard and what feeds it: events from the connection shards (`event`), their
//! routing to endpoints (`shard`), Pusher and EMQX bodies (`shard`, `emqx`), and the delivery
//! machinery shared by every endpoint: HTTP client (`client`), queue, batching and retries
//! (`endpoint`, `retry`). Later upstream calls go through the same client and policy.

pub mod board;
pub mod client;
pub mod emqx;
pub mod endpoint;
pub mod event;
pub mod retry;
pub mod shard;
