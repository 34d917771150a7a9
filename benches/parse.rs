//! Client-side parsing: WebSocket frame decode, Pusher message parse (simd-json), and the REST
//! trigger body. These run once per inbound message, so they bound how many subscribes and
//! client events a shard can take per second, and how fast the REST API accepts publishes.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pushgate::{
    config::AppConfig,
    dialect::pusher::inbound,
    dialect::pusher::rest::events::parse_event,
    ws::frame::{self, Reassembly},
};
use std::hint::black_box;

const SUBSCRIBE: &str = r#"{"event":"pusher:subscribe","data":{"channel":"private-orders","auth":"app-key:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}"#;
const CLIENT_EVENT: &str = r#"{"event":"client-typing","channel":"private-chat-42","data":{"user":"alice","typing":true}}"#;
const TRIGGER: &str = r#"{"name":"order-update","data":"{\"id\":1234,\"status\":\"shipped\",\"eta\":\"2024-05-01T10:00:00Z\"}","channels":["private-orders","orders-eu"],"socket_id":"123.456"}"#;

/// `frame::decode` of one complete masked text frame holding a `pusher:subscribe`: header parse
/// (tungstenite), limit checks, in-place unmasking and the UTF-8 check. Paid for every client
/// message; the input is reset outside the timed region because decoding unmasks in place.
fn decode_masked_text(c: &mut Criterion) {
    let wire = frame::client_frame(0x81, SUBSCRIBE.as_bytes());
    let mut group = c.benchmark_group("parse/ws_decode");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("masked_text_subscribe", |b| {
        let mut reassembly = Reassembly::default();
        b.iter_batched_ref(
            || wire.clone(),
            |input| {
                let decoded = frame::decode(input, &mut reassembly, 64 * 1024)
                    .expect("valid frame")
                    .expect("complete frame");
                black_box(decoded.0);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// `inbound::parse` (simd-json into a borrowed value, then field extraction into a `Request`)
/// for the two messages clients send most: `pusher:subscribe` with an auth signature, and a
/// `client-*` event whose `data` is re-encoded for relaying.
fn pusher_inbound(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse/pusher_inbound");
    for (name, text) in [("subscribe", SUBSCRIBE), ("client_event", CLIENT_EVENT)] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || text.as_bytes().to_vec(),
                |bytes| black_box(inbound::parse(bytes).expect("valid message")),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// The REST trigger body: `simd_json::to_borrowed_value` then `events::parse_event` (name, data,
/// channel list and name checks, socket_id). Paid once per `POST /apps/{id}/events`.
fn rest_trigger_body(c: &mut Criterion) {
    let app = AppConfig::default();
    let mut group = c.benchmark_group("parse/rest_trigger");
    group.throughput(Throughput::Bytes(TRIGGER.len() as u64));
    group.bench_function("parse_event", |b| {
        b.iter_batched_ref(
            || TRIGGER.as_bytes().to_vec(),
            |body| {
                let value = simd_json::to_borrowed_value(body).expect("valid JSON");
                black_box(parse_event(&value, &app, 164, true).expect("valid event"))
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, decode_masked_text, pusher_inbound, rest_trigger_body);
criterion_main!(benches);
