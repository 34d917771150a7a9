//! Unit tests of the store below the thread (batches, ranges, scans, limits, one fsync per
//! commit, reopening) and of the handle's own checks (full queue, invalid batch, stopped store).

use super::{
    batch::{Batch, KeyRange},
    disk::Disk,
    handle::{Limits, StoreHandle},
    stats::Meter,
    *,
};
use bytes::Bytes;
use futures_lite::future::block_on;
use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

const T: &str = "t";
const OTHER: &str = "other";

/// A directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("pushgate-store-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn config(&self) -> StoreConfig {
        StoreConfig { path: self.0.clone(), ..StoreConfig::default() }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &TempDir) -> (Disk, Arc<Meter>) {
    let meter = Arc::new(Meter::default());
    (Disk::open(&dir.config(), meter.clone()).expect("open the store"), meter)
}

fn key(n: u32) -> Bytes {
    Bytes::copy_from_slice(&n.to_be_bytes())
}

fn keys(entries: &[(Bytes, Bytes)]) -> Vec<Bytes> {
    entries.iter().map(|(k, _)| k.clone()).collect()
}

fn commit(disk: &mut Disk, batch: &Batch) {
    disk.commit(&[batch]).expect("commit");
}

#[test]
fn a_batch_applies_puts_deletes_and_range_deletes_in_order() {
    let dir = TempDir::new("ops");
    let (mut disk, _) = open(&dir);
    let mut batch = Batch::new();
    for k in ["a", "b", "c1", "c2", "d", "e"] {
        batch.put(T, k, format!("v-{k}"));
    }
    batch.delete(T, "b").delete_range(T, KeyRange::prefix("c")).put(T, "x", "1").delete(T, "x");
    batch.put(OTHER, "a", "other table");
    commit(&mut disk, &batch);

    let reader = disk.reader().expect("reader");
    let left = reader.scan(T, &KeyRange::all(), 100, false).expect("scan");
    assert_eq!(keys(&left), ["a", "d", "e"]);
    assert_eq!(reader.get(T, b"a").expect("get"), Some(Bytes::from("v-a")));
    assert_eq!(reader.get(OTHER, b"a").expect("get"), Some(Bytes::from("other table")));
    assert_eq!(reader.get(T, b"x").expect("get"), None, "a put then delete leaves nothing");
}

#[test]
fn batches_of_one_group_apply_in_order_in_one_commit() {
    let dir = TempDir::new("group");
    let (mut disk, meter) = open(&dir);
    let mut first = Batch::new();
    first.put(T, "k", "first").put(T, "only-first", "1");
    let mut second = Batch::new();
    second.put(T, "k", "second").delete(T, "only-first");
    let before = meter.snapshot(0).fsyncs;
    disk.commit(&[&first, &second]).expect("commit");
    assert_eq!(meter.snapshot(0).fsyncs - before, 1, "one group, one fsync");
    let reader = disk.reader().expect("reader");
    assert_eq!(reader.get(T, b"k").expect("get"), Some(Bytes::from("second")));
    assert_eq!(reader.get(T, b"only-first").expect("get"), None);
}

#[test]
fn scans_follow_key_order_stop_at_the_limit_and_page_both_ways() {
    let dir = TempDir::new("scan");
    let (mut disk, _) = open(&dir);
    let mut batch = Batch::new();
    for n in (0..25).rev() {
        batch.put(T, key(n), format!("{n}"));
    }
    commit(&mut disk, &batch);
    let reader = disk.reader().expect("reader");
    let all: Vec<Bytes> = (0..25).map(key).collect();

    let (mut forward, mut range) = (Vec::new(), KeyRange::all());
    loop {
        let page = reader.scan(T, &range, 10, false).expect("scan");
        assert!(page.len() <= 10);
        let Some((last, _)) = page.last() else { break };
        range = range.after(last.clone());
        forward.extend(keys(&page));
    }
    assert_eq!(forward, all);

    let (mut backward, mut range) = (Vec::new(), KeyRange::span(key(5), key(20)));
    loop {
        let page = reader.scan(T, &range, 4, true).expect("scan");
        let Some((last, _)) = page.last() else { break };
        range = range.before(last.clone());
        backward.extend(keys(&page));
    }
    let expected: Vec<Bytes> = (5..20).rev().map(key).collect();
    assert_eq!(backward, expected);

    let first = reader.scan(T, &KeyRange::all(), 1, false).expect("scan");
    assert_eq!(first, [(key(0), Bytes::from("0"))], "values come with their keys");
    assert!(reader.scan(T, &KeyRange::all(), 0, false).expect("scan").is_empty());
    assert!(reader.scan(T, &KeyRange::span(key(9), key(3)), 10, false).expect("scan").is_empty());
}

#[test]
fn prefix_scans_and_deletes_stay_inside_the_prefix() {
    let dir = TempDir::new("prefix");
    let (mut disk, _) = open(&dir);
    let mut batch = Batch::new();
    for k in [&b"q\x01a"[..], b"q\x01b", b"q\x02a", b"q\xff\xff", b"r"] {
        batch.put(T, Bytes::copy_from_slice(k), "v");
    }
    commit(&mut disk, &batch);
    let reader = disk.reader().expect("reader");
    let one = reader.scan(T, &KeyRange::prefix(&b"q\x01"[..]), 100, false).expect("scan");
    assert_eq!(keys(&one), [&b"q\x01a"[..], b"q\x01b"]);
    let high = reader.scan(T, &KeyRange::prefix(&b"q\xff"[..]), 100, false).expect("scan");
    assert_eq!(keys(&high), [&b"q\xff\xff"[..]]);
    drop(reader);

    let mut delete = Batch::new();
    delete.delete_range(T, KeyRange::prefix(&b"q"[..]));
    commit(&mut disk, &delete);
    let reader = disk.reader().expect("reader");
    assert_eq!(keys(&reader.scan(T, &KeyRange::all(), 100, false).expect("scan")), ["r"]);
}

#[test]
fn a_table_never_written_reads_as_empty() {
    let dir = TempDir::new("missing");
    let (mut disk, _) = open(&dir);
    let reader = disk.reader().expect("reader");
    assert_eq!(reader.get("never", b"k").expect("get"), None);
    assert!(reader.scan("never", &KeyRange::all(), 10, false).expect("scan").is_empty());
}

#[test]
fn committed_data_is_there_after_closing_and_opening_again() {
    let dir = TempDir::new("reopen");
    let (mut disk, _) = open(&dir);
    let mut batch = Batch::new();
    batch.put(T, "k", vec![7u8; 3000]);
    commit(&mut disk, &batch);
    drop(disk);
    let (mut disk, _) = open(&dir);
    let value = disk.reader().expect("reader").get(T, b"k").expect("get");
    assert_eq!(value, Some(Bytes::from(vec![7u8; 3000])));
}

/// A handle on a queue no thread reads; the test plays the storage thread.
fn handle_without_thread(capacity: usize) -> (StoreHandle, Arc<queue::Queue>) {
    let queue = Arc::new(queue::Queue::new(capacity));
    let limits = Limits { max_batch_ops: 2, max_entry_bytes: 8 };
    (StoreHandle::new(queue.clone(), limits, Arc::new(Meter::default())), queue)
}

#[test]
fn a_full_queue_refuses_at_once_and_counts_what_waits() {
    let (handle, _requests) = handle_without_thread(2);
    let waiting: Vec<_> = (0..2).map(|_| handle.get(T, "k")).collect();
    assert_eq!(handle.stats().queued, 2);
    let refused = block_on(handle.get(T, "k")).expect_err("queue full");
    assert!(matches!(refused, StoreError::QueueFull { capacity: 2 }), "{refused}");
    let mut batch = Batch::new();
    batch.put(T, "k", "v");
    let refused = block_on(handle.commit(batch)).expect_err("queue full");
    assert!(matches!(refused, StoreError::QueueFull { .. }), "{refused}");
    drop(waiting);
}

#[test]
fn invalid_batches_are_refused_before_the_queue_and_empty_ones_need_no_trip() {
    let (handle, requests) = handle_without_thread(4);
    let mut large = Batch::new();
    large.put(T, "k", "123456789");
    assert!(matches!(block_on(handle.commit(large)), Err(StoreError::Invalid(_))));
    let mut long = Batch::new();
    long.delete(T, "a").delete(T, "b").delete(T, "c");
    assert!(matches!(block_on(handle.commit(long)), Err(StoreError::Invalid(_))));
    block_on(handle.commit(Batch::new())).expect("an empty batch commits nothing");
    assert!(matches!(block_on(handle.get("", "k")), Err(StoreError::Invalid(_))));
    assert!(matches!(block_on(handle.scan("", KeyRange::all(), 1)), Err(StoreError::Invalid(_))));
    assert_eq!(requests.len(), 0);
}

#[test]
fn a_stopped_store_answers_closed_to_what_was_queued_and_what_comes_after() {
    let (handle, queue) = handle_without_thread(4);
    let pending = handle.get(T, "k");
    queue.close();
    assert!(matches!(block_on(pending), Err(StoreError::Closed)), "queued, then dropped");
    assert!(matches!(block_on(handle.get(T, "k")), Err(StoreError::Closed)));
    assert_eq!(queue.len(), 0);
}

#[test]
fn the_thread_answers_in_order_caps_groups_and_scans_and_stops_cleanly() {
    let dir = TempDir::new("thread");
    let config = StoreConfig { max_batch_ops: 4, max_scan_items: 7, ..dir.config() };
    let store = start(&config).expect("start");
    let handle = store.handle();
    let replies: Vec<_> = (0..20)
        .map(|n| {
            let mut batch = Batch::new();
            batch.put(T, key(n), "v").put(T, "last", key(n));
            handle.commit(batch)
        })
        .collect();
    for reply in replies {
        block_on(reply).expect("commit");
    }
    let stats = store.stats();
    assert_eq!((stats.batches, stats.ops, stats.failed_commits), (20, 40, 0));
    assert!(stats.max_group <= 2, "4 ops per transaction at most: {stats:?}");
    assert!(stats.commits >= 10, "{stats:?}");
    assert_eq!(block_on(handle.get(T, "last")).expect("get"), Some(key(19)), "applied in order");
    let scanned = block_on(handle.scan(T, KeyRange::all(), 100)).expect("scan");
    assert_eq!(scanned.len(), 7, "capped at max_scan_items");
    let back = block_on(handle.scan_rev(T, KeyRange::all(), 2)).expect("scan");
    assert_eq!(keys(&back), [Bytes::from("last"), key(19)]);

    store.shutdown();
    let mut batch = Batch::new();
    batch.put(T, "after", "stop");
    assert!(matches!(block_on(handle.commit(batch)), Err(StoreError::Closed)));
    let store = start(&config).expect("start again");
    let last = block_on(store.handle().get(T, "last")).expect("get");
    assert_eq!(last, Some(key(19)));
}
