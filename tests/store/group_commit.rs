//! Group commit seen from shards: glommio executors on their own threads commit concurrently,
//! every write is acknowledged and readable, and the commits (each one fsync) are fewer than the
//! writes. Also: a glommio task with nothing else to do is woken by the storage thread.

use super::support::{on_executor, TempDir};
use pushgate::store::{self, Batch, KeyRange};
use std::{thread, time::Duration};

const TABLE: &str = "gd";
const SHARDS: usize = 3;
const TASKS: usize = 40;
const LIMIT: Duration = Duration::from_secs(120);

fn key(shard: usize, task: usize) -> Vec<u8> {
    format!("{shard:02}-{task:03}").into_bytes()
}

#[test]
fn concurrent_commits_from_several_executors_share_fsyncs() {
    let dir = TempDir::new("group");
    let store = store::start(&dir.config()).expect("start");
    let before = store.stats();
    let shards: Vec<_> = (0..SHARDS)
        .map(|shard| {
            let handle = store.handle();
            thread::spawn(move || {
                on_executor(&format!("shard-{shard}"), LIMIT, move || async move {
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|task| {
                            let handle = handle.clone();
                            glommio::spawn_local(async move {
                                let mut batch = Batch::new();
                                batch.put(TABLE, key(shard, task), vec![task as u8; 1024]);
                                handle.commit(batch).await
                            })
                        })
                        .collect();
                    let mut acknowledged = 0;
                    for task in tasks {
                        task.await.expect("commit acknowledged");
                        acknowledged += 1;
                    }
                    acknowledged
                })
            })
        })
        .collect();
    let acknowledged: usize = shards.into_iter().map(|s| s.join().expect("shard")).sum();
    let writes = SHARDS * TASKS;
    assert_eq!(acknowledged, writes);

    let after = store.stats();
    let commits = after.commits - before.commits;
    assert_eq!(after.batches - before.batches, writes as u64);
    assert!(commits < writes as u64, "{writes} concurrent writes took {commits} commits");
    // One fsync per commit, plus one each time redb grows the file (src/store/tests.rs checks
    // the exact count on a commit that does not grow it).
    let fsyncs = after.fsyncs - before.fsyncs;
    assert!(fsyncs >= commits && fsyncs < writes as u64, "{fsyncs} fsyncs: {after:?}");
    assert!(after.max_group > 1, "{after:?}");

    let handle = store.handle();
    let stored = on_executor("reader", LIMIT, move || async move {
        handle.scan(TABLE, KeyRange::all(), 1000).await.expect("scan")
    });
    assert_eq!(stored.len(), writes);
    for (k, v) in &stored {
        let task: usize = std::str::from_utf8(&k[3..]).expect("key").parse().expect("task");
        assert_eq!(&v[..], &[task as u8; 1024][..]);
    }
}

#[test]
fn an_idle_executor_is_woken_by_the_storage_thread() {
    let dir = TempDir::new("wake");
    let store = store::start(&dir.config()).expect("start");
    let handle = store.handle();
    // One task and no timers: the executor sleeps in io_uring until the answer arrives from
    // the storage thread, so finishing at all proves the cross-thread wake.
    let (value, missing) = on_executor("idle", LIMIT, move || async move {
        let mut batch = Batch::new();
        batch.put(TABLE, "k", "v");
        handle.commit(batch).await.expect("commit");
        let value = handle.get(TABLE, "k").await.expect("get");
        let missing = handle.get(TABLE, "absent").await.expect("get");
        (value, missing)
    });
    assert_eq!(value.as_deref(), Some(&b"v"[..]));
    assert_eq!(missing, None);
}
