//! Dialects: each protocol at the edge turns its frames into engine operations and publications
//! into its frames, behind the engine's `Dialect` seam, with its own side tables, cross-shard
//! messages, close codes and REST routes.

pub mod gateway;
pub mod im;
pub mod pusher;
pub mod zato;
