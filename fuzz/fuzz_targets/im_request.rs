//! An IM client frame: `RequestBody` and `CustomRequestBody` decoding, then the wire walk that
//! stamps `CommonReq` on the request data (and strips `deliverAfter`) and reads an answer's
//! `CommonResp.code`, all on the same untrusted bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use pushgate::dialect::im::{
    pb::{CommonReq, CustomRequestBody, RequestBody},
    wire,
};

fuzz_target!(|data: &[u8]| {
    let common = CommonReq { user_id: "u".into(), ..CommonReq::default() };
    if let Ok(body) = RequestBody::decode(data) {
        let _ = CustomRequestBody::decode(body.data.clone());
        if let Ok(stamped) = wire::stamp(&body.data, &common) {
            let again = wire::stamp(&stamped, &common).expect("a stamped message is well formed");
            assert_eq!(again, stamped, "stamping twice changes nothing");
            let stripped = wire::strip(&stamped, 11).expect("well formed");
            assert!(stripped.len() <= stamped.len());
        }
    }
    let stamped = wire::stamp(data, &common);
    let stripped = wire::strip(data, 1);
    assert_eq!(stamped.is_ok(), stripped.is_ok(), "one walk, one verdict");
    let _ = wire::answer_code(data);
});
