//! The store file as redb sees it: redb's own file backend, with every fsync counted and timed.
//! Counting at the backend measures the real thing: how many fsyncs a group commit costs and
//! how long each took, not a guess from the commit's duration.

use super::stats::Meter;
use redb::{backends::FileBackend, BackendError, StorageBackend};
use std::{fs::File, io, ops::Bound, sync::Arc, time::Instant};

/// redb's file backend plus the meter its fsyncs are recorded in.
#[derive(Debug)]
pub(crate) struct MeteredFile {
    inner: FileBackend,
    meter: Arc<Meter>,
}

impl MeteredFile {
    pub(crate) fn new(file: File, meter: Arc<Meter>) -> Result<MeteredFile, redb::DatabaseError> {
        Ok(MeteredFile { inner: FileBackend::new(file)?, meter })
    }
}

impl StorageBackend for MeteredFile {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let start = Instant::now();
        let synced = self.inner.sync_data();
        self.meter.fsynced(start.elapsed());
        synced
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
