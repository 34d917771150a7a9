//! The durable store end to end: a real file, the storage thread, and glommio executors as the
//! shards that use it. One test binary for all of it (one link on a small machine).

mod crash;
mod failures;
mod group_commit;
mod support;
