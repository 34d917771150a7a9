//! Admission of an IM upgrade. As xxim, a refused client sees the WebSocket open and then a
//! close with 3000 and the reason (xxim accepts first and checks after; here the check runs
//! before the 101 is written, and a refusal is that 101 followed by the close). Accepted
//! upgrades get xxim's CORS headers on the 101. A client offering permessage-deflate is
//! answered without the extension, which declines it (README: what compression would take).

use super::{auth, params::Params, Im};
use crate::{
    engine::{conn::Close, seam::Admission, shard::Shard},
    ws::handshake::Upgrade,
};
use std::{net::SocketAddr, rc::Rc};

/// The close code of every refused connection (xxim's `WebsocketStatusCodeAuthFailed`).
pub const AUTH_FAILED: u16 = 3000;

/// xxim's CORS headers, on the 101 and on plain requests to the WebSocket path.
pub const CORS: [(&str, &str); 4] = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE"),
    (
        "Access-Control-Allow-Headers",
        "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization",
    ),
    ("Access-Control-Allow-Credentials", "true"),
];

/// Admits an upgrade, checking its token first.
pub async fn admit(
    im: &Im,
    shard: &Rc<Shard>,
    up: &Upgrade,
    peer: Option<SocketAddr>,
) -> Admission {
    if shard.shutting_down.get() {
        return refuse(Close::fixed(1001, "server shutting down"));
    }
    let params = Params::of(up, peer);
    let checked = if params.is_anonymous() {
        match im.im().allow_anonymous {
            true => Ok(()),
            false => Err("userId and token are required".to_string()),
        }
    } else if [&params.user_id, &params.device_id, &params.platform]
        .iter()
        .any(|v| v.contains('\0'))
    {
        Err("invalid userId, platform or deviceId".to_string())
    } else {
        auth::check(im, shard, &params).await
    };
    match checked {
        Ok(()) => {
            let headers = CORS.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            Admission::Accept { ns: im.ns, headers }
        }
        Err(reason) => refuse(Close { code: AUTH_FAILED, reason: truncate(reason).into() }),
    }
}

fn refuse(close: Close) -> Admission {
    Admission::RefuseInside { frames: Vec::new(), close, why: "not_authorized" }
}

/// A close reason fits in 123 bytes: cut at a character boundary.
fn truncate(mut reason: String) -> String {
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let reason = "é".repeat(100);
        let cut = truncate(reason);
        assert!(cut.len() <= 123 && cut.chars().all(|c| c == 'é'));
    }
}
