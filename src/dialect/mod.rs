//! Dialects turn a protocol's frames into engine operations and publications into frames.
//! They do no I/O and are tested with byte vectors.

pub mod pusher;
