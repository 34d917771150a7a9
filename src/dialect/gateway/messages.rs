//! What gateway shards ask each other, inside the engine's envelopes: the topics with local
//! subscribers (for an exact `GET /list/topics`) and the metrics (for `/metrics`).

use super::metrics::Snapshot;

/// A question to every shard.
#[derive(Debug, Clone, Copy)]
pub enum Question {
    Topics,
    Metrics,
}

/// The answer to a [`Question`].
#[derive(Debug, Clone)]
pub enum Reply {
    Topics(Vec<String>),
    Metrics(Box<Snapshot>),
}
