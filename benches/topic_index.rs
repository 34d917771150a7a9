//! The local topic index: subscribe, unsubscribe and lookup, on a channel with 1 subscriber and
//! on one with 100,000. The index promises O(1) for all three whatever the channel's size; these
//! benches check that promise, since a million connections mean both huge broadcast channels
//! and very many private one-subscriber channels.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pushgate::engine::{
    conn::{ConnEntry, ConnKey},
    topics::TopicIndex,
};
use slab::Slab;
use std::hint::black_box;

const SIZES: [usize; 2] = [1, 100_000];

/// A shard's slab and index with `n` connections all subscribed to `"channel"` of app 0.
fn shard_with(n: usize) -> (Slab<ConnEntry>, TopicIndex, Vec<ConnKey>) {
    let mut conns = Slab::with_capacity(n);
    let mut index = TopicIndex::default();
    let keys: Vec<ConnKey> = (0..n)
        .map(|_| {
            let entry = conns.vacant_entry();
            let key = ConnKey::new(entry.key(), 1);
            entry.insert(ConnEntry::new(1, 0, 0, 0));
            key
        })
        .collect();
    for &key in &keys {
        index.subscribe(&mut conns, key, "channel");
    }
    (conns, index, keys)
}

/// `TopicIndex::get(app, name)`: one ahash lookup of the channel name, done once per
/// publication per shard before fan-out. Must not depend on the subscriber count.
fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("topic_index/get");
    for n in SIZES {
        let (_conns, index, _keys) = shard_with(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| index.get(0, black_box("channel")).map(|t| t.subscribers.len()))
        });
    }
    group.finish();
}

/// One existing subscriber leaves and rejoins (`unsubscribe` then `subscribe`), cycling through
/// all subscribers so most removals are from the middle: a `swap_remove` plus the moved
/// subscriber's position fix-up. With 1 subscriber the channel is destroyed and recreated each
/// time (name allocation, hash map insert and remove), the common private-channel case.
fn unsubscribe_subscribe(c: &mut Criterion) {
    let mut group = c.benchmark_group("topic_index/unsubscribe_subscribe");
    for n in SIZES {
        let (mut conns, mut index, keys) = shard_with(n);
        let mut i = 0;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let key = keys[i % keys.len()];
                i = i.wrapping_add(7919);
                let left = index.unsubscribe(&mut conns, key, "channel");
                let joined = index.subscribe(&mut conns, key, "channel");
                black_box((left, joined))
            })
        });
        assert_eq!(index.get(0, "channel").map(|t| t.subscribers.len()), Some(n));
    }
    group.finish();
}

/// A new connection joins the channel (appended last) and leaves again (`subscribe` then
/// `unsubscribe`): the connect/disconnect churn of a channel that already has `n` members.
fn subscribe_unsubscribe_new(c: &mut Criterion) {
    let mut group = c.benchmark_group("topic_index/subscribe_unsubscribe_new");
    for n in SIZES {
        let (mut conns, mut index, _keys) = shard_with(n);
        let entry = conns.vacant_entry();
        let extra = ConnKey::new(entry.key(), 1);
        entry.insert(ConnEntry::new(1, 0, 0, 0));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let joined = index.subscribe(&mut conns, extra, black_box("channel"));
                let left = index.unsubscribe(&mut conns, extra, black_box("channel"));
                black_box((joined, left))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lookup, unsubscribe_subscribe, subscribe_unsubscribe_new);
criterion_main!(benches);
