//! The cross-shard ring: a glommio `shared_channel` (bounded lock-free SPSC) between two
//! executors on two threads, carrying an `Arc<Publication>` the way `fanout::publish` hands a
//! publication to every peer shard. Raced in the same run against a crossbeam bounded channel
//! between two plain threads, the usual lock-free MPMC alternative.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use glommio::{channels::shared_channel, LocalExecutorBuilder, Placement};
use pushgate::engine::bus::{PubItem, Publication};
use std::{
    sync::{Arc, Barrier},
    thread,
    time::{Duration, Instant},
};

/// Messages in one criterion iteration.
const BATCH: u64 = 100_000;
/// The default `ring_capacity`.
const CAPACITY: usize = 1024;
/// Per executor; this machine allows 8 MiB of locked memory in total.
const IO_MEMORY: usize = 256 * 1024;

fn publication() -> Arc<Publication> {
    let item = PubItem {
        topic: "prices".into(),
        frame: bytes::Bytes::from_static(b"\x81\x2a{\"event\":\"update\",\"channel\":\"prices\"}"),
        exclude: None,
        exclude_elsewhere: None,
        report: false,
    };
    Arc::new(Publication { ns: 0, items: vec![item] })
}

/// Sends `count` clones of one `Arc<Publication>` from one executor to another over a glommio
/// shared channel of capacity `CAPACITY`, and returns the time from the first send (both ends
/// connected and released by a barrier) to the last receive. Counts are fixed in advance, so a
/// run cannot hang waiting for messages that will never come: the receiver also stops when the
/// sender goes away.
fn glommio_ring(count: u64) -> Duration {
    let (tx, rx) = shared_channel::new_bounded::<Arc<Publication>>(CAPACITY);
    let ready = Arc::new(Barrier::new(2));
    let sender_ready = ready.clone();
    let sender = LocalExecutorBuilder::new(Placement::Unbound)
        .name("bench-tx")
        .io_memory(IO_MEMORY)
        .spawn(move || async move {
            let tx = tx.connect().await;
            let publication = publication();
            sender_ready.wait();
            let start = Instant::now();
            for _ in 0..count {
                if tx.send(publication.clone()).await.is_err() {
                    break;
                }
            }
            start
        })
        .expect("spawn the sending executor");
    let receiver = LocalExecutorBuilder::new(Placement::Unbound)
        .name("bench-rx")
        .io_memory(IO_MEMORY)
        .spawn(move || async move {
            let rx = rx.connect().await;
            ready.wait();
            let mut received = 0u64;
            while received < count {
                match rx.recv().await {
                    Some(publication) => drop(std::hint::black_box(publication)),
                    None => break,
                }
                received += 1;
            }
            (Instant::now(), received)
        })
        .expect("spawn the receiving executor");
    let start = sender.join().expect("sending executor");
    let (end, received) = receiver.join().expect("receiving executor");
    assert_eq!(received, count, "every message must arrive");
    end.duration_since(start)
}

/// The same transfer over `crossbeam_channel::bounded(CAPACITY)` between two OS threads with
/// blocking send and receive.
fn crossbeam_ring(count: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<Arc<Publication>>(CAPACITY);
    let ready = Arc::new(Barrier::new(2));
    let receiver_ready = ready.clone();
    let receiver = thread::spawn(move || {
        receiver_ready.wait();
        let mut received = 0u64;
        while received < count {
            match rx.recv() {
                Ok(publication) => drop(std::hint::black_box(publication)),
                Err(_) => break,
            }
            received += 1;
        }
        (Instant::now(), received)
    });
    let publication = publication();
    ready.wait();
    let start = Instant::now();
    for _ in 0..count {
        if tx.send(publication.clone()).is_err() {
            break;
        }
    }
    let (end, received) = receiver.join().expect("receiving thread");
    assert_eq!(received, count, "every message must arrive");
    end.duration_since(start)
}

/// Messages per second through one cross-shard ring (send + receive of an `Arc<Publication>`,
/// including waits when the ring is full or empty). This bounds how many publications per
/// second one shard can hand to one peer; every publication crosses `nr_shards - 1` rings.
/// One iteration is a batch of 100,000 messages; thread start-up is outside the timing.
fn cross_shard_ring(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_100k");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.bench_function("glommio_shared_channel", |b| {
        b.iter_custom(|iters| glommio_ring(iters * BATCH))
    });
    group.bench_function("crossbeam_bounded", |b| {
        b.iter_custom(|iters| crossbeam_ring(iters * BATCH))
    });
    group.finish();
}

criterion_group!(benches, cross_shard_ring);
criterion_main!(benches);
