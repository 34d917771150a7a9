//! What can go wrong with the durable store, one variant per cause, each naming the path or the
//! limit involved. Errors are `Clone`: one failed group commit answers every writer in it.

use std::{io, path::PathBuf};

/// An error of the durable store.
///
/// A write that fails with any of these was not acknowledged. `QueueFull`, `Invalid` and
/// `Closed` (before the request was queued) guarantee it was not applied; after a `Write` error
/// the outcome is unknown to the caller, as with any crash, and only a later read tells.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The data directory cannot be created or written.
    #[error("store directory {path} cannot be used: {reason}")]
    Dir { path: PathBuf, reason: String },
    /// The store file exists but is not a valid store: damaged, truncated, or another format.
    #[error(
        "store file {path} is corrupted or not a pushgate store ({reason}); move it aside to \
         start with an empty store, or restore a copy"
    )]
    Corrupted { path: PathBuf, reason: String },
    /// Another process (another pushgate?) has the store file open.
    #[error("store file {path} is open in another process")]
    InUse { path: PathBuf },
    /// The store file cannot be opened for another reason (I/O error, resources).
    #[error("store file {path} cannot be opened: {reason}")]
    Open { path: PathBuf, reason: String },
    /// A commit failed on the disk (full, I/O error); nothing in it was acknowledged.
    #[error("store write failed ({reason}); nothing in it was acknowledged")]
    Write { kind: Option<io::ErrorKind>, reason: String },
    /// A read failed on the disk.
    #[error("store read failed: {reason}")]
    Read { reason: String },
    /// The queue to the storage thread is full; the request was not queued.
    #[error("store queue full ({capacity} requests waiting); try again later")]
    QueueFull { capacity: usize },
    /// The batch breaks a limit or names no table; it was not queued.
    #[error("invalid store batch: {0}")]
    Invalid(String),
    /// The storage thread has stopped.
    #[error("store stopped")]
    Closed,
    /// The storage thread could not be started.
    #[error("cannot start the storage thread: {0}")]
    Thread(String),
}

impl StoreError {
    /// Whether the disk ran out of room (or of file size allowed to this process).
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            StoreError::Write {
                kind: Some(io::ErrorKind::StorageFull | io::ErrorKind::FileTooLarge),
                ..
            }
        )
    }
}
