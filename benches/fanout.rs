//! Fan-out of one publication to 10,000 local subscribers: the per-subscriber hot path of
//! `fanout::deliver_local`, raced in the same run against the per-subscriber copy that
//! "encode once, share by reference" avoids.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pushgate::{
    dialect::pusher::outbound,
    engine::{
        conn::{queue::Frame, Close, ConnEntry, ConnKey},
        shard::enqueue,
        topics::TopicIndex,
    },
    metrics::Stats,
    ws::frame,
};
use slab::Slab;
use std::{
    collections::VecDeque,
    hint::black_box,
    time::{Duration, Instant},
};

const SUBSCRIBERS: usize = 10_000;
/// The default `outbound_queue_bytes`.
const LIMIT: usize = 1024 * 1024;

/// A Pusher channel event frame whose `data` is about `size` bytes.
fn event_frame(size: usize) -> Vec<u8> {
    let data = format!("{{\"m\":\"{}\"}}", "x".repeat(size.saturating_sub(8)));
    frame::text(&outbound::channel_event("update", "prices", &data))
}

fn shard_with(n: usize) -> (Slab<ConnEntry>, TopicIndex) {
    let mut conns = Slab::with_capacity(n);
    let mut index = TopicIndex::default();
    for _ in 0..n {
        let entry = conns.vacant_entry();
        let key = ConnKey::new(entry.key(), 1);
        entry.insert(ConnEntry::new(1, 0, 0, 0));
        index.subscribe(&mut conns, key, "prices");
    }
    (conns, index)
}

/// Shared frames: look up the topic, then `shard::enqueue(conn, frame.clone(), ..)` for
/// each of 10,000 subscribers, all holding one `Frame` (an `Rc` increment each, plus the first
/// push into an idle connection's empty queue). Queues are drained outside the timed region,
/// so every iteration starts from idle connections, as between publications in production.
/// Elements/s here is deliveries queued per second on one core.
fn shared(c: &mut Criterion) {
    let (mut conns, topics) = shard_with(SUBSCRIBERS);
    let mut stats = Stats::default();
    let over = Close::fixed(4100, "Over capacity");
    let mut group = c.benchmark_group("fanout_10k");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    for size in [64usize, 1024] {
        // Bytes, as a `PubItem` carries them: `deliver_local` wraps a clone in one `Frame`.
        let bytes = bytes::Bytes::from(event_frame(size));
        group.bench_with_input(BenchmarkId::new("shared_frame", size), &bytes, |b, bytes| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let frame = Frame::new(bytes.clone());
                    let topic = topics.get(0, black_box("prices")).expect("topic exists");
                    for &key in &topic.subscribers {
                        let conn = conns.get_mut(key.index()).expect("live connection");
                        enqueue(conn, frame.clone(), LIMIT, &mut stats, &over);
                    }
                    total += start.elapsed();
                    for (_, conn) in conns.iter_mut() {
                        conn.out.advance(conn.out.bytes());
                    }
                }
                total
            })
        });
    }
    group.finish();
    assert_eq!(stats.slow_consumers_closed, 0, "queues must not overflow");
}

/// Baseline in the same run: the same 10,000 deliveries if every subscriber got its own copy of
/// the frame bytes (`to_vec()` into a per-connection queue): one allocation and memcpy per
/// subscriber. The gap to `shared_frame` is what encode-once-share-by-reference saves.
fn copied(c: &mut Criterion) {
    let mut queues: Vec<VecDeque<Vec<u8>>> = (0..SUBSCRIBERS).map(|_| VecDeque::new()).collect();
    let mut group = c.benchmark_group("fanout_10k");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    for size in [64usize, 1024] {
        let bytes = event_frame(size);
        group.bench_with_input(
            BenchmarkId::new("copy_per_subscriber", size),
            &bytes,
            |b, bytes| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        for queue in &mut queues {
                            queue.push_back(black_box(bytes.as_slice()).to_vec());
                        }
                        total += start.elapsed();
                        for queue in &mut queues {
                            *queue = VecDeque::new();
                        }
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, shared, copied);
criterion_main!(benches);
