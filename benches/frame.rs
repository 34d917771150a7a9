//! Server frame encoding: what a publication costs once, before it is shared by reference.
//!
//! pushgate encodes each publication into WebSocket frame bytes exactly once per channel and
//! queues the same bytes on every subscriber, so this cost is paid per publication, never per
//! delivery. A regression here shows up as REST publish latency, not as fan-out throughput.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pushgate::{dialect::pusher::outbound, ws::frame};
use std::hint::black_box;

/// `frame::text` on a 64 B and a 1 KiB payload: header formatting (tungstenite's
/// `FrameHeader`) plus one allocation and copy of the payload. 64 B is a typical small event;
/// 1 KiB crosses the 126-byte boundary into the 2-byte extended length header.
fn text_frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame/text");
    for size in [64usize, 1024] {
        let payload = vec![b'x'; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &payload, |b, payload| {
            b.iter(|| frame::text(black_box(payload)))
        });
    }
    group.finish();
}

/// A whole Pusher channel event as the REST trigger path builds it: the
/// `{"event","channel","data"}` JSON envelope (`outbound::channel_event`, serde_json with the
/// data string escaped) and then `frame::text` around it. This is the complete once-per-publication
/// encode cost that "encode once, share by reference" amortizes over all subscribers.
fn pusher_channel_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame/pusher_channel_event");
    for size in [64usize, 1024] {
        // A JSON object as the data string, so the envelope has quotes to escape.
        let filler = "v".repeat(size.saturating_sub(16));
        let data = format!("{{\"message\":\"{filler}\"}}");
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
            b.iter(|| {
                let json = outbound::channel_event(
                    black_box("my-event"),
                    black_box("private-orders"),
                    black_box(data),
                );
                frame::text(&json)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, text_frame, pusher_channel_event);
criterion_main!(benches);
