//! One client text message of the Pusher protocol (simd-json clobbers its input: use a copy).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut text = data.to_vec();
    let _ = pushgate::dialect::pusher::inbound::parse(&mut text);
});
