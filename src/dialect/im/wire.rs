//! Protobuf wire work the dialect does without knowing a request's type: every xxim request
//! message carries `CommonReq` as field 1, so the gateway replaces field 1 of whatever the
//! client sent with its own, walking the fields once (and refusing bytes that are not a
//! well-formed message); every answer carries `CommonResp` as field 1, whose code is read.
//! Limits are checked before anything is sliced: a length past the end is an error.

use super::pb::{CommonOnlyResp, CommonReq};
use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;

/// Bytes that are not a well-formed protobuf message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated varint")]
    Varint,
    #[error("field length past the end of the message")]
    Length,
    #[error("field number 0 or wire type {0} (groups are not supported)")]
    Tag(u8),
}

/// `data` with field 1 replaced by `common`: the request the backend gets.
pub fn stamp(data: &[u8], common: &CommonReq) -> Result<Bytes, WireError> {
    let common = common.encode_to_vec();
    let mut out = BytesMut::with_capacity(data.len() + common.len() + 6);
    out.put_u8(0x0a);
    prost::encoding::encode_varint(common.len() as u64, &mut out);
    out.put_slice(&common);
    out.put_slice(&strip(data, 1)?);
    Ok(out.freeze())
}

/// `data` without any occurrence of `field` (a delayed request loses its `deliverAfter`).
pub fn strip(data: &[u8], field: u64) -> Result<Bytes, WireError> {
    let mut out = BytesMut::with_capacity(data.len());
    let mut at = 0;
    while at < data.len() {
        let (number, end) = next_field(data, at)?;
        if number != field {
            out.put_slice(&data[at..end]);
        }
        at = end;
    }
    Ok(out.freeze())
}

/// The `CommonResp.code` of an answer (0 when it has none), if the answer is well formed.
pub fn answer_code(answer: &[u8]) -> Result<i32, WireError> {
    let resp = CommonOnlyResp::decode(answer).map_err(|_| WireError::Length)?;
    Ok(resp.common_resp.map_or(0, |c| c.code))
}

/// The field number at `at` and where the field ends.
fn next_field(data: &[u8], at: usize) -> Result<(u64, usize), WireError> {
    let (key, mut at) = varint(data, at)?;
    let field = key >> 3;
    let wire = (key & 7) as u8;
    if field == 0 {
        return Err(WireError::Tag(wire));
    }
    at = match wire {
        0 => varint(data, at)?.1,
        1 => skip(data, at, 8)?,
        2 => {
            let (len, at) = varint(data, at)?;
            skip(data, at, usize::try_from(len).map_err(|_| WireError::Length)?)?
        }
        5 => skip(data, at, 4)?,
        other => return Err(WireError::Tag(other)),
    };
    Ok((field, at))
}

fn skip(data: &[u8], at: usize, len: usize) -> Result<usize, WireError> {
    let end = at.checked_add(len).ok_or(WireError::Length)?;
    if end > data.len() {
        return Err(WireError::Length);
    }
    Ok(end)
}

/// A varint at `at` (at most 10 bytes) and the position after it.
fn varint(data: &[u8], mut at: usize) -> Result<(u64, usize), WireError> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *data.get(at).ok_or(WireError::Varint)?;
        at += 1;
        value |= u64::from(byte & 0x7f) << shift.min(63);
        if byte & 0x80 == 0 {
            return Ok((value, at));
        }
    }
    Err(WireError::Varint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::im::pb::{CommonResp, SendMsgListReq};

    fn common(user: &str) -> CommonReq {
        CommonReq { user_id: user.into(), ..CommonReq::default() }
    }

    #[test]
    fn field_1_is_replaced_and_the_rest_kept() {
        let sent = SendMsgListReq {
            common_req: Some(common("forged")),
            deliver_after: Some(5),
            ..SendMsgListReq::default()
        };
        let stamped = stamp(&sent.encode_to_vec(), &common("u1")).expect("well formed");
        let got = SendMsgListReq::decode(stamped).expect("decodes");
        assert_eq!(got.common_req.map(|c| c.user_id), Some("u1".into()));
        assert_eq!(got.deliver_after, Some(5));
    }

    #[test]
    fn malformed_messages_are_refused() {
        let u = common("u");
        assert_eq!(stamp(b"\x10", &u), Err(WireError::Varint), "varint value missing");
        assert_eq!(stamp(b"\x10\xff\xff", &u), Err(WireError::Varint), "truncated varint");
        let eleven = [&[0x10u8][..], &[0xff; 11]].concat();
        assert_eq!(stamp(&eleven, &u), Err(WireError::Varint), "over 10 bytes");
        // Field 2, length 64 MiB, two bytes of payload.
        assert_eq!(stamp(b"\x12\x80\x80\x80\x20ab", &u), Err(WireError::Length));
        assert_eq!(stamp(b"\x13", &u), Err(WireError::Tag(3)), "start group");
        assert_eq!(stamp(b"\x02\x00", &u), Err(WireError::Tag(2)), "field 0");
        assert_eq!(stamp(b"\x0d\x01\x02", &u), Err(WireError::Length), "short fixed32");
        assert!(stamp(b"", &u).is_ok(), "an empty message is a valid one");
    }

    #[test]
    fn strip_removes_every_occurrence_of_a_field() {
        let sent = SendMsgListReq { deliver_after: Some(9), ..SendMsgListReq::default() };
        let mut twice = sent.encode_to_vec();
        twice.extend_from_slice(&sent.encode_to_vec());
        let stripped = strip(&twice, 11).expect("well formed");
        assert_eq!(SendMsgListReq::decode(stripped).expect("decodes").deliver_after, None);
        assert_eq!(strip(b"\x58", 11), Err(WireError::Varint));
    }

    #[test]
    fn answer_codes_come_from_field_1() {
        let resp = CommonOnlyResp {
            common_resp: Some(CommonResp {
                code: 5,
                msg: Some("toast".into()),
                ..Default::default()
            }),
        };
        assert_eq!(answer_code(&resp.encode_to_vec()), Ok(5));
        assert_eq!(answer_code(b""), Ok(0));
        assert!(answer_code(b"\x0a\x05ab").is_err());
    }
}
