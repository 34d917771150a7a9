//! The store file: open it (each way that fails gives an error naming the directory or the
//! file), apply a group of batches in one write transaction (one commit, one fsync), and read.
//! Synchronous and blocking: only the storage thread calls it, never a shard.
//!
//! After an I/O error redb refuses every later commit (`PreviousIo`), so the file is closed and
//! opened again (redb repairs it) before the next request: a disk that was full and has room
//! again takes writes without a restart.

use super::{
    batch::{Batch, KeyRange, Op},
    config::StoreConfig,
    error::StoreError,
    metered::MeteredFile,
    stats::Meter,
};
use bytes::Bytes;
use redb::{Builder, Database, ReadTransaction, ReadableDatabase, TableDefinition, TableError};
use std::{
    fs::{File, OpenOptions},
    io,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::Arc,
};

/// The file's name inside the data directory.
pub const FILE_NAME: &str = "store.redb";

type Table<'txn> = redb::Table<'txn, &'static [u8], &'static [u8]>;
type ReadTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

fn definition(table: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(table)
}

/// The open store file.
pub(crate) struct Disk {
    /// None after an I/O error, until the next request opens it again.
    db: Option<Database>,
    file: PathBuf,
    cache_bytes: usize,
    verify: bool,
    meter: Arc<Meter>,
}

impl Disk {
    /// Creates the directory and the file if needed, and opens it.
    pub(crate) fn open(config: &StoreConfig, meter: Arc<Meter>) -> Result<Disk, StoreError> {
        let file = prepare(&config.path)?;
        let mut disk = Disk {
            db: None,
            file,
            cache_bytes: config.cache_bytes,
            verify: config.verify_on_open,
            meter,
        };
        disk.db = Some(disk.open_db()?);
        Ok(disk)
    }

    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    fn open_db(&self) -> Result<Database, StoreError> {
        let handle = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.file)
            .map_err(|e| StoreError::Open { path: self.file.clone(), reason: e.to_string() })?;
        let backend = MeteredFile::new(handle, self.meter.clone())
            .map_err(|e| open_error(&self.file, e.into()))?;
        let mut builder = Builder::new();
        builder.set_cache_size(self.cache_bytes).set_check_integrity_on_open(self.verify);
        // redb documents that a plain open of a damaged file may panic; a damaged file is a
        // start-up error here, not a crash.
        match catch_unwind(AssertUnwindSafe(|| builder.create_with_backend(backend))) {
            Ok(opened) => opened.map_err(|e| open_error(&self.file, e.into())),
            Err(panic) => Err(StoreError::Corrupted {
                path: self.file.clone(),
                reason: format!("reading it failed: {}", panic_text(&*panic)),
            }),
        }
    }

    /// The database, opened again if an I/O error closed it.
    fn db(&mut self) -> Result<&Database, StoreError> {
        if self.db.is_none() {
            let db = self.open_db()?;
            self.meter.reopened();
            tracing::info!("store file {} opened again after an I/O error", self.file.display());
            self.db = Some(db);
        }
        self.db.as_ref().ok_or(StoreError::Closed)
    }

    /// Applies every batch, in order, in one transaction, and commits it durably (one fsync).
    pub(crate) fn commit(&mut self, batches: &[&Batch]) -> Result<(), StoreError> {
        let result = write_group(self.db()?, batches);
        result.map_err(|e| {
            let error = write_error(&e);
            if broken(&e) {
                tracing::warn!("store file {}: {e}; it will be opened again", self.file.display());
                self.db = None;
            }
            error
        })
    }

    /// A consistent view for reads: every commit acknowledged so far, nothing after.
    pub(crate) fn reader(&mut self) -> Result<Reader, StoreError> {
        let begun = self.db()?.begin_read();
        match begun {
            Ok(txn) => Ok(Reader { txn }),
            Err(e) => {
                let e = redb::Error::from(e);
                if broken(&e) {
                    self.db = None;
                }
                Err(StoreError::Read { reason: e.to_string() })
            }
        }
    }
}

/// Reads inside one read transaction.
pub(crate) struct Reader {
    txn: ReadTransaction,
}

impl Reader {
    pub(crate) fn get(&self, table: &str, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let Some(table) = self.table(table)? else { return Ok(None) };
        let value = table.get(key).map_err(read_error)?;
        Ok(value.map(|v| Bytes::copy_from_slice(v.value())))
    }

    /// Up to `limit` entries of `range` in key order (`reverse`: from the last).
    pub(crate) fn scan(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, StoreError> {
        let Some(table) = self.table(table)? else { return Ok(Vec::new()) };
        if range.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let entries = table.range::<&[u8]>(range.as_slices()).map_err(read_error)?;
        let copy = |entry: Result<_, redb::StorageError>| {
            let (k, v): (redb::AccessGuard<&[u8]>, redb::AccessGuard<&[u8]>) =
                entry.map_err(read_error)?;
            Ok((Bytes::copy_from_slice(k.value()), Bytes::copy_from_slice(v.value())))
        };
        if reverse {
            entries.rev().take(limit).map(copy).collect()
        } else {
            entries.take(limit).map(copy).collect()
        }
    }

    fn table(&self, name: &str) -> Result<Option<ReadTable>, StoreError> {
        match self.txn.open_table(definition(name)) {
            Ok(table) => Ok(Some(table)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(read_error(e)),
        }
    }
}

fn write_group(db: &Database, batches: &[&Batch]) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        // A group touches few tables: each is opened once and kept until the commit.
        let mut open: Vec<(&str, Table)> = Vec::new();
        for op in batches.iter().flat_map(|b| b.ops()) {
            let at = match open.iter().position(|(name, _)| *name == op.table()) {
                Some(at) => at,
                None => {
                    open.push((op.table(), txn.open_table(definition(op.table()))?));
                    open.len() - 1
                }
            };
            apply(&mut open[at].1, op)?;
        }
    }
    txn.commit()?;
    Ok(())
}

fn apply(table: &mut Table, op: &Op) -> Result<(), redb::Error> {
    match op {
        Op::Put { key, value, .. } => {
            table.insert(&key[..], &value[..])?;
        }
        Op::Delete { key, .. } => {
            table.remove(&key[..])?;
        }
        Op::DeleteRange { range, .. } if range.is_empty() => {}
        Op::DeleteRange { range, .. } => {
            table.retain_in::<&[u8], _>(range.as_slices(), |_, _| false)?
        }
    }
    Ok(())
}

/// Creates the directory (and makes the new entries durable) and the file; returns its path.
fn prepare(dir: &Path) -> Result<PathBuf, StoreError> {
    let dir_error =
        |e: io::Error| StoreError::Dir { path: dir.to_path_buf(), reason: e.to_string() };
    let existed = dir.is_dir();
    std::fs::create_dir_all(dir).map_err(dir_error)?;
    let file = dir.join(FILE_NAME);
    if file.exists() {
        return Ok(file);
    }
    OpenOptions::new().write(true).create(true).truncate(false).open(&file).map_err(|e| {
        StoreError::Dir {
            path: dir.to_path_buf(),
            reason: format!("cannot create {FILE_NAME}: {e}"),
        }
    })?;
    // The new file's name, and the new directory's, must survive a crash like the data.
    sync_dir(dir).map_err(dir_error)?;
    if !existed {
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        sync_dir(parent).map_err(dir_error)?;
    }
    Ok(file)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn open_error(file: &Path, e: redb::Error) -> StoreError {
    let path = file.to_path_buf();
    match e {
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
            StoreError::InUse { path }
        }
        redb::Error::Corrupted(reason) => StoreError::Corrupted { path, reason },
        redb::Error::UpgradeRequired(version) => {
            StoreError::Corrupted { path, reason: format!("file format {version} is not this one") }
        }
        redb::Error::Io(e)
            if matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof) =>
        {
            StoreError::Corrupted { path, reason: e.to_string() }
        }
        e => StoreError::Open { path, reason: e.to_string() },
    }
}

fn write_error(e: &redb::Error) -> StoreError {
    let kind = match e {
        redb::Error::Io(io) => Some(io.kind()),
        _ => None,
    };
    StoreError::Write { kind, reason: e.to_string() }
}

fn read_error(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Read { reason: e.into().to_string() }
}

/// Whether redb refuses further work on this handle, so it must be opened again.
fn broken(e: &redb::Error) -> bool {
    matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::Backend(_))
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic in the store library".to_string()
    }
}
