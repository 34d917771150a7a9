//! `[store]`: where the durable store lives and how much it may hold in memory and in its queue.
//! Every field documents its default and its trade-off. Nothing here touches the disk: the file
//! is created by `store::start`, which only a durable feature calls.

use crate::config::{invalid, ConfigError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Settings of the durable store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory of the store file (`store.redb` inside it), created on first use. Default
    /// `pushgate-data`, relative to the working directory. Put it on a disk whose fsync is
    /// honest: an acknowledged write is only as durable as the disk's cache flush.
    pub path: PathBuf,
    /// Requests (writes and reads) that may wait for the storage thread. Default 4096. Past it a
    /// request fails at once with `StoreError::QueueFull` (the caller answers 503 or retries);
    /// it never waits on a shard and is never dropped silently. Larger absorbs longer bursts at
    /// the cost of memory held by the waiting batches.
    pub queue_capacity: usize,
    /// Most operations in one transaction: the waiting batches are grouped into one commit and
    /// one fsync until this many operations are in it. Default 4096. One `Batch` larger than
    /// this is refused. Larger groups amortise the fsync over more writes; smaller groups make
    /// each commit (and the wait of the first writer in it) shorter.
    pub max_batch_ops: usize,
    /// Largest key plus value of one `Put`, in bytes. Default 4 MiB. Bounds the memory one
    /// request can pin in the queue; redb itself takes up to 3 GiB.
    pub max_entry_bytes: usize,
    /// Most entries one scan returns, whatever limit the caller asks for. Default 1000: a scan
    /// answer is built in memory, so longer listings are read page by page.
    pub max_scan_items: usize,
    /// Page cache of the store, in bytes. Default 64 MiB (redb's own default is 1 GiB). Reads
    /// that miss it go to the page cache of the kernel, then to the disk.
    pub cache_bytes: usize,
    /// Check the checksum of every page at start. Default true: a file damaged on disk fails
    /// the start with a clear error instead of failing later. Start time grows with the file
    /// (the whole file is read once); false trusts a cleanly closed file, and a file left by a
    /// crash is still repaired (walked) at start.
    pub verify_on_open: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("pushgate-data"),
            queue_capacity: 4096,
            max_batch_ops: 4096,
            max_entry_bytes: 4 * 1024 * 1024,
            max_scan_items: 1000,
            cache_bytes: 64 * 1024 * 1024,
            verify_on_open: true,
        }
    }
}

impl StoreConfig {
    /// Checks the values; `at` is the key prefix the lead mounts it under (`store`).
    pub fn check(&self, at: &str) -> Result<(), ConfigError> {
        if self.path.as_os_str().is_empty() {
            return Err(invalid(format!("{at}.path"), "must not be empty"));
        }
        let positive = [
            ("queue_capacity", self.queue_capacity),
            ("max_batch_ops", self.max_batch_ops),
            ("max_entry_bytes", self.max_entry_bytes),
            ("max_scan_items", self.max_scan_items),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(format!("{at}.{key}"), "must be at least 1"));
            }
        }
        if self.max_entry_bytes > MAX_ENTRY_BYTES {
            let message = format!("at most {MAX_ENTRY_BYTES} (3 GiB, redb's limit)");
            return Err(invalid(format!("{at}.max_entry_bytes"), message));
        }
        Ok(())
    }
}

/// redb refuses a value above 3 GiB.
const MAX_ENTRY_BYTES: usize = 3 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_the_check_and_round_trip_through_toml() {
        let config = StoreConfig::default();
        config.check("store").expect("defaults are valid");
        let text = toml::to_string(&config).expect("serialize");
        let back: StoreConfig = toml::from_str(&text).expect("parse");
        assert_eq!(back, config);
    }

    #[test]
    fn unknown_keys_are_refused_and_missing_keys_take_defaults() {
        assert!(toml::from_str::<StoreConfig>("pathh = \"x\"").is_err());
        let config: StoreConfig = toml::from_str("queue_capacity = 8").expect("parse");
        assert_eq!(config.queue_capacity, 8);
        assert_eq!(config.max_batch_ops, StoreConfig::default().max_batch_ops);
    }

    #[test]
    fn zero_limits_name_their_key() {
        let config = StoreConfig { max_batch_ops: 0, ..StoreConfig::default() };
        let error = config.check("store").expect_err("zero refused").to_string();
        assert!(error.contains("store.max_batch_ops"), "{error}");
    }
}
