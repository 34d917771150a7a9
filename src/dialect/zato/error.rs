//! Zato's errors as the API reports them: an HTTP status and the `details` text of the
//! `{"zato_env": {"result": "ZATO_ERROR", "details": ..., "cid": ...}}` envelope. The texts
//! are Zato's own where Zato has one ("No data sent on input", "You are not allowed to access
//! this resource", "Subscription to topic `...` already exists", ...).

use serde_json::json;

/// Zato's answer to anything the caller may not see (bad credentials, wrong sub_key, a topic
/// it has no permission for): the same text whatever the cause, so nothing leaks.
pub const NOT_ALLOWED: &str = "You are not allowed to access this resource";

/// An error of the Zato API: status and details. Crosses shards inside replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZatoError {
    pub status: u16,
    pub details: String,
}

impl ZatoError {
    pub fn new(status: u16, details: impl Into<String>) -> ZatoError {
        ZatoError { status, details: details.into() }
    }

    /// 403 with Zato's one text.
    pub fn forbidden() -> ZatoError {
        ZatoError::new(403, NOT_ALLOWED)
    }

    pub fn bad_request(details: impl Into<String>) -> ZatoError {
        ZatoError::new(400, details)
    }

    pub fn not_found(details: impl Into<String>) -> ZatoError {
        ZatoError::new(404, details)
    }

    /// 503: the request was valid but cannot be taken now (inactive topic, depth reached, the
    /// store refused the write).
    pub fn unavailable(details: impl Into<String>) -> ZatoError {
        ZatoError::new(503, details)
    }

    pub fn no_such_topic(topic: &str) -> ZatoError {
        ZatoError::not_found(format!("No such topic `{topic}`"))
    }

    /// The durable store refused or failed a write: nothing was acknowledged.
    pub fn store(what: &str, error: &crate::store::StoreError) -> ZatoError {
        ZatoError::unavailable(format!("{what} rejected - {error}"))
    }

    /// The error envelope for request `cid`.
    pub fn envelope(&self, cid: &str) -> String {
        json!({"zato_env": {"result": "ZATO_ERROR", "details": self.details, "cid": cid}})
            .to_string()
    }
}

impl std::fmt::Display for ZatoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_zatos() {
        let body = ZatoError::bad_request("No data sent on input").envelope("b64b473b6f29c6");
        let value: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(value["zato_env"]["result"], "ZATO_ERROR");
        assert_eq!(value["zato_env"]["details"], "No data sent on input");
        assert_eq!(value["zato_env"]["cid"], "b64b473b6f29c6");
        assert_eq!(ZatoError::forbidden().status, 403);
    }
}
