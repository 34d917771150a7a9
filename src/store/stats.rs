//! The store's counters: written only by the storage thread (once per commit or fsync, never
//! per shard message), read by anyone as a plain [`StoreStats`] for /metrics.

use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

/// Upper bounds of the fsync latency buckets, in microseconds; a last bucket takes the rest.
pub const FSYNC_BUCKETS_MICROS: [u64; 12] =
    [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];

/// A snapshot of the store's counters (totals since start, except `queued`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Transactions committed (each one fsync'ed): one per group of waiting batches.
    pub commits: u64,
    /// Batches acknowledged; `batches / commits` is the grouping achieved.
    pub batches: u64,
    /// Operations in the acknowledged batches.
    pub ops: u64,
    /// Key and value bytes in the acknowledged batches.
    pub bytes: u64,
    /// Most batches acknowledged by one commit.
    pub max_group: u64,
    /// Commits that failed; every batch in them got the error.
    pub failed_commits: u64,
    /// Batches that got an error from a failed commit.
    pub failed_batches: u64,
    /// Reads (gets and scans) answered.
    pub reads: u64,
    /// Times the file was opened again after an I/O error.
    pub reopens: u64,
    /// fsyncs of the store file (redb makes one per durable commit, more at open and close).
    pub fsyncs: u64,
    /// Total and longest time spent in fsync, in microseconds.
    pub fsync_micros_sum: u64,
    pub fsync_micros_max: u64,
    /// fsyncs per latency bucket: `fsync_buckets[i]` counts those of at most
    /// `FSYNC_BUCKETS_MICROS[i]` and more than the bound before; the last counts the rest.
    pub fsync_buckets: [u64; FSYNC_BUCKETS_MICROS.len() + 1],
    /// Requests waiting for the storage thread now.
    pub queued: u64,
}

impl StoreStats {
    /// Average batches per commit (0 before the first commit).
    pub fn batches_per_commit(&self) -> f64 {
        if self.commits == 0 {
            0.0
        } else {
            self.batches as f64 / self.commits as f64
        }
    }

    /// The bucket bound under which at least `quantile` of the fsyncs fell (`u64::MAX` for the
    /// last bucket, 0 with no fsync yet): a coarse percentile.
    pub fn fsync_quantile_micros(&self, quantile: f64) -> u64 {
        let total: u64 = self.fsync_buckets.iter().sum();
        if total == 0 {
            return 0;
        }
        let wanted = (quantile * total as f64).ceil() as u64;
        let mut seen = 0;
        for (i, count) in self.fsync_buckets.iter().enumerate() {
            seen += count;
            if seen >= wanted.max(1) {
                return FSYNC_BUCKETS_MICROS.get(i).copied().unwrap_or(u64::MAX);
            }
        }
        u64::MAX
    }
}

/// The live counters behind [`StoreStats`].
#[derive(Debug, Default)]
pub(crate) struct Meter {
    commits: AtomicU64,
    batches: AtomicU64,
    ops: AtomicU64,
    bytes: AtomicU64,
    max_group: AtomicU64,
    failed_commits: AtomicU64,
    failed_batches: AtomicU64,
    reads: AtomicU64,
    reopens: AtomicU64,
    fsyncs: AtomicU64,
    fsync_micros_sum: AtomicU64,
    fsync_micros_max: AtomicU64,
    fsync_buckets: [AtomicU64; FSYNC_BUCKETS_MICROS.len() + 1],
}

impl Meter {
    pub(crate) fn committed(&self, batches: u64, ops: u64, bytes: u64) {
        self.commits.fetch_add(1, Relaxed);
        self.batches.fetch_add(batches, Relaxed);
        self.ops.fetch_add(ops, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.max_group.fetch_max(batches, Relaxed);
    }

    pub(crate) fn failed(&self, batches: u64) {
        self.failed_commits.fetch_add(1, Relaxed);
        self.failed_batches.fetch_add(batches, Relaxed);
    }

    pub(crate) fn read(&self, count: u64) {
        self.reads.fetch_add(count, Relaxed);
    }

    pub(crate) fn reopened(&self) {
        self.reopens.fetch_add(1, Relaxed);
    }

    pub(crate) fn fsynced(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.fsyncs.fetch_add(1, Relaxed);
        self.fsync_micros_sum.fetch_add(micros, Relaxed);
        self.fsync_micros_max.fetch_max(micros, Relaxed);
        let bucket = FSYNC_BUCKETS_MICROS.partition_point(|&bound| bound < micros);
        self.fsync_buckets[bucket].fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, queued: usize) -> StoreStats {
        StoreStats {
            commits: self.commits.load(Relaxed),
            batches: self.batches.load(Relaxed),
            ops: self.ops.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            max_group: self.max_group.load(Relaxed),
            failed_commits: self.failed_commits.load(Relaxed),
            failed_batches: self.failed_batches.load(Relaxed),
            reads: self.reads.load(Relaxed),
            reopens: self.reopens.load(Relaxed),
            fsyncs: self.fsyncs.load(Relaxed),
            fsync_micros_sum: self.fsync_micros_sum.load(Relaxed),
            fsync_micros_max: self.fsync_micros_max.load(Relaxed),
            fsync_buckets: std::array::from_fn(|i| self.fsync_buckets[i].load(Relaxed)),
            queued: queued as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsyncs_land_in_the_bucket_of_their_bound() {
        let meter = Meter::default();
        meter.fsynced(Duration::from_micros(100));
        meter.fsynced(Duration::from_micros(101));
        meter.fsynced(Duration::from_secs(5));
        let stats = meter.snapshot(3);
        assert_eq!(stats.fsync_buckets[0], 1);
        assert_eq!(stats.fsync_buckets[1], 1);
        assert_eq!(stats.fsync_buckets[FSYNC_BUCKETS_MICROS.len()], 1);
        assert_eq!((stats.fsyncs, stats.fsync_micros_max, stats.queued), (3, 5_000_000, 3));
        assert_eq!(stats.fsync_quantile_micros(0.5), 250);
        assert_eq!(stats.fsync_quantile_micros(1.0), u64::MAX);
    }

    #[test]
    fn commits_add_up_and_keep_the_largest_group() {
        let meter = Meter::default();
        meter.committed(3, 6, 600);
        meter.committed(1, 1, 10);
        meter.failed(2);
        let stats = meter.snapshot(0);
        assert_eq!((stats.commits, stats.batches, stats.ops, stats.bytes), (2, 4, 7, 610));
        assert_eq!((stats.max_group, stats.failed_commits, stats.failed_batches), (3, 1, 2));
        assert_eq!(stats.batches_per_commit(), 2.0);
    }
}
