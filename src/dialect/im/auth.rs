//! Token checks on connect. Locally: an HS256 JWT whose `userId` (or `sub`), `platform` and
//! `deviceId` claims must be the connection's and whose `exp` has not passed. Or upstream:
//! xxim's `BeforeConnect`, whose non-empty `msg` refuses the connection. A refusal's text is
//! the reason of the 3000 close.

use super::{backend, params::Params, pb, Im};
use crate::{config::im::AuthMode, engine::shard::Shard};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, Validation};
use prost::Message;
use serde::Deserialize;
use std::rc::Rc;

/// The claims a connection's token must carry.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(rename = "userId")]
    user_id: Option<String>,
    sub: Option<String>,
    platform: Option<String>,
    #[serde(rename = "deviceId")]
    device_id: Option<String>,
}

/// Checks a connection's token as configured; `Err` holds the refusal's reason.
pub async fn check(im: &Im, shard: &Rc<Shard>, params: &Params) -> Result<(), String> {
    let auth = &im.im().auth;
    match auth.mode {
        AuthMode::None => Ok(()),
        AuthMode::Jwt => check_jwt(&auth.jwt_secret, auth.jwt_leeway_secs, params),
        AuthMode::Upstream => check_upstream(im, shard, params).await,
    }
}

/// Verifies an HS256 token against the connection's user, platform and device.
pub fn check_jwt(secret: &str, leeway: u64, params: &Params) -> Result<(), String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = leeway;
    let key = DecodingKey::from_secret(secret.as_bytes());
    let claims = match jsonwebtoken::decode::<Claims>(&params.token, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            return Err(match e.kind() {
                ErrorKind::ExpiredSignature => "token expired".into(),
                ErrorKind::InvalidSignature => "invalid token signature".into(),
                _ => format!("invalid token: {e}"),
            })
        }
    };
    let user = claims.user_id.or(claims.sub);
    if user.as_deref() != Some(params.user_id.as_str()) {
        return Err("token is for another user".into());
    }
    if claims.platform.as_deref() != Some(params.platform.as_str()) {
        return Err("token is for another platform".into());
    }
    if claims.device_id.as_deref() != Some(params.device_id.as_str()) {
        return Err("token is for another device".into());
    }
    Ok(())
}

/// Asks the `BeforeConnect` backend; a failed call refuses too (xxim: InternalError).
async fn check_upstream(im: &Im, shard: &Rc<Shard>, params: &Params) -> Result<(), String> {
    let Some(upstream) = &im.im().auth.upstream else { return Err("no token check".into()) };
    let request = pb::BeforeConnectReq { conn_param: Some(params.conn_param(&im.im().pod_ip)) };
    let path = upstream.path.as_deref().unwrap_or("/pb.imService/BeforeConnect");
    let call = backend::request(upstream, path, request.encode_to_vec().into());
    let answer = backend::outcome(shard.call_detached(call).await, upstream.protocol);
    let body = answer.map_err(|e| format!("token check failed: {e}"))?;
    let resp = pb::BeforeConnectResp::decode(body).map_err(|_| "token check failed".to_string())?;
    if resp.msg.is_empty() {
        Ok(())
    } else {
        Err(resp.msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn params() -> Params {
        Params {
            user_id: "u1".into(),
            platform: "ios".into(),
            device_id: "d1".into(),
            ..Params::default()
        }
    }

    fn token(claims: serde_json::Value, secret: &str) -> String {
        encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes()))
            .expect("encode")
    }

    fn exp(offset: i64) -> i64 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(0, |d| d.as_secs() as i64) + offset
    }

    #[test]
    fn a_token_bound_to_the_connection_passes() {
        let mut p = params();
        p.token = token(json!({"userId":"u1","platform":"ios","deviceId":"d1","exp":exp(60)}), "s");
        assert_eq!(check_jwt("s", 0, &p), Ok(()));
        p.token = token(json!({"sub":"u1","platform":"ios","deviceId":"d1","exp":exp(60)}), "s");
        assert_eq!(check_jwt("s", 0, &p), Ok(()), "sub stands for userId");
    }

    #[test]
    fn wrong_secret_expiry_or_claims_refuse() {
        let mut p = params();
        let good = json!({"userId":"u1","platform":"ios","deviceId":"d1","exp":exp(60)});
        p.token = token(good.clone(), "other");
        assert_eq!(check_jwt("s", 0, &p), Err("invalid token signature".into()));
        p.token =
            token(json!({"userId":"u1","platform":"ios","deviceId":"d1","exp":exp(-120)}), "s");
        assert_eq!(check_jwt("s", 0, &p), Err("token expired".into()));
        p.token = token(json!({"userId":"u1","platform":"ios","deviceId":"d2","exp":exp(60)}), "s");
        assert_eq!(check_jwt("s", 0, &p), Err("token is for another device".into()));
        p.token = token(json!({"userId":"u2","platform":"ios","deviceId":"d1","exp":exp(60)}), "s");
        assert_eq!(check_jwt("s", 0, &p), Err("token is for another user".into()));
        p.token = token(json!({"userId":"u1","platform":"ios","deviceId":"d1"}), "s");
        assert!(check_jwt("s", 0, &p).is_err(), "exp is required");
        p.token = "not.a.token".into();
        assert!(check_jwt("s", 0, &p).is_err());
    }
}
