//! The durable store: acknowledged commits per second of one 1 KiB put each, from 1, 10 and 100
//! concurrent writers (glommio tasks on one executor, as on a shard), raced in the same run
//! against the floor of any durable write on this disk: append 1 KiB to a file and fdatasync it.
//! After each case it prints what group commit did: batches per commit, fsyncs per commit, and
//! the fsync latency the store measured (mean, max, coarse p50/p99 from its histogram).
//!
//! The store lives under `PUSHGATE_BENCH_DIR` (default: the system's temporary directory): put
//! it on the disk you mean to measure.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use glommio::{LocalExecutorBuilder, Placement};
use pushgate::store::{self, Batch, StoreConfig, StoreHandle, StoreStats};
use std::{
    cell::Cell,
    fs::OpenOptions,
    io::Write,
    path::PathBuf,
    rc::Rc,
    time::{Duration, Instant},
};

const TABLE: &str = "bench";
const VALUE: usize = 1024;
/// Keys wrap at this count, so the file stops growing after the first pass (a queue whose
/// entries are replaced, as acknowledged ones are deleted and new ones come).
const KEYS: u64 = 65_536;
/// Per executor: this machine allows 8 MiB of locked memory in total.
const IO_MEMORY: usize = 256 * 1024;

fn bench_dir(name: &str) -> PathBuf {
    let base =
        std::env::var_os("PUSHGATE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!("pushgate-store-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `total` commits by `writers` tasks on a fresh executor; the time from the first commit to the
/// last acknowledgement.
fn commits(handle: &StoreHandle, writers: usize, total: u64, next_key: Rc<Cell<u64>>) -> Duration {
    let handle = handle.clone();
    let start_key = next_key.get();
    let took = LocalExecutorBuilder::new(Placement::Unbound)
        .name("bench-shard")
        .io_memory(IO_MEMORY)
        .spawn(move || async move {
            let left = Rc::new(Cell::new(total));
            let key = Rc::new(Cell::new(start_key));
            let start = Instant::now();
            let tasks: Vec<_> = (0..writers)
                .map(|_| {
                    let (handle, left, key) = (handle.clone(), left.clone(), key.clone());
                    glommio::spawn_local(async move {
                        while left.get() > 0 {
                            left.set(left.get() - 1);
                            let n = key.get();
                            key.set(n + 1);
                            let mut batch = Batch::new();
                            batch.put(
                                TABLE,
                                (n % KEYS).to_be_bytes().to_vec(),
                                vec![n as u8; VALUE],
                            );
                            handle.commit(batch).await.expect("commit");
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await;
            }
            start.elapsed()
        })
        .expect("start an executor")
        .join()
        .expect("executor");
    next_key.set(start_key + total);
    took
}

fn report(name: &str, before: &StoreStats, after: &StoreStats) {
    let commits = (after.commits - before.commits).max(1);
    let fsyncs = (after.fsyncs - before.fsyncs).max(1);
    let mut window = after.clone();
    for (bucket, old) in window.fsync_buckets.iter_mut().zip(before.fsync_buckets) {
        *bucket -= old;
    }
    eprintln!(
        "{name}: {} commits for {} batches ({:.1} batches/commit), {:.2} fsyncs/commit, \
         fsync mean {} us, max {} us (since start), p50 <= {} us, p99 <= {} us",
        after.commits - before.commits,
        after.batches - before.batches,
        (after.batches - before.batches) as f64 / commits as f64,
        (after.fsyncs - before.fsyncs) as f64 / commits as f64,
        (after.fsync_micros_sum - before.fsync_micros_sum) / fsyncs,
        after.fsync_micros_max,
        window.fsync_quantile_micros(0.5),
        window.fsync_quantile_micros(0.99),
    );
}

fn store_commits(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_commit_1KiB");
    group.sample_size(10).warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(1));

    let dir = bench_dir("baseline");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let mut file =
        OpenOptions::new().create(true).append(true).open(dir.join("log")).expect("file");
    group.bench_function("baseline_append_fdatasync", |b| {
        b.iter(|| {
            file.write_all(&[7u8; VALUE]).expect("write");
            file.sync_data().expect("fdatasync");
        })
    });
    let _ = std::fs::remove_dir_all(&dir);

    for writers in [1, 10, 100] {
        let dir = bench_dir(&format!("w{writers}"));
        let config = StoreConfig { path: dir.clone(), ..StoreConfig::default() };
        let store = store::start(&config).expect("start the store");
        let handle = store.handle();
        let next_key = Rc::new(Cell::new(0));
        let before = store.stats();
        group.bench_function(format!("{writers}_writers"), |b| {
            b.iter_custom(|iters| commits(&handle, writers, iters, next_key.clone()))
        });
        report(&format!("{writers} writers"), &before, &store.stats());
        store.shutdown();
        let _ = std::fs::remove_dir_all(&dir);
    }
    group.finish();
}

criterion_group!(benches, store_commits);
criterion_main!(benches);
