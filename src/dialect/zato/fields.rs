//! The input of a publication and of a subscription as REST bodies and WSX service requests
//! carry it: field by field, type-checked, with Zato's defaults and messages. No network data
//! is trusted: a field of the wrong type is a 400 naming the field.

use super::{
    error::ZatoError,
    message::{PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN},
    messages::PublishReq,
    sub::SubOptions,
};
use serde_json::{Map, Value};

/// A JSON body parsed as an object (an empty body is an empty object).
pub fn object(body: &[u8]) -> Result<Map<String, Value>, ZatoError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ZatoError::bad_request("Input must be a JSON object")),
        Err(e) => Err(ZatoError::bad_request(format!("Invalid JSON on input: {e}"))),
    }
}

/// An optional string field (a number is taken as its text, as Zato's SimpleIO does).
pub fn text(input: &Map<String, Value>, name: &str) -> Result<Option<String>, ZatoError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ZatoError::bad_request(format!("Invalid {name}: expected a string"))),
    }
}

/// An optional integer field.
pub fn integer(input: &Map<String, Value>, name: &str) -> Result<Option<i64>, ZatoError> {
    let invalid = || ZatoError::bad_request(format!("Invalid {name}: expected an integer"));
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(invalid),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

/// An optional boolean field (Zato's `has_gd` must be a real bool).
pub fn boolean(input: &Map<String, Value>, name: &str) -> Result<Option<bool>, ZatoError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => {
            Err(ZatoError::bad_request(format!("Input {name} is not a bool (found:`{other}`)")))
        }
    }
}

/// The publication in `input` to `topic`, by `endpoint` under `pattern`. `mime_type` is the
/// request's (the Content-Type of a REST call) unless the input names one.
pub fn publication(
    input: &Map<String, Value>,
    topic: &str,
    endpoint: &str,
    pattern: &str,
    mime_type: Option<&str>,
) -> Result<PublishReq, ZatoError> {
    let (data, data_json) = match input.get("data") {
        None | Some(Value::Null) => return Err(ZatoError::bad_request("No data sent on input")),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(ZatoError::bad_request("No data sent on input"))
        }
        Some(Value::String(s)) => (s.clone(), false),
        Some(other) => (other.to_string(), true),
    };
    let priority = match integer(input, "priority")? {
        None => PRIORITY_DEFAULT,
        Some(p) if (i64::from(PRIORITY_MIN)..=i64::from(PRIORITY_MAX)).contains(&p) => p as u8,
        Some(p) => {
            return Err(ZatoError::bad_request(format!(
                "Priority `{p}` outside of allowed range {PRIORITY_MIN}-{PRIORITY_MAX}"
            )))
        }
    };
    let expiration = match integer(input, "expiration")? {
        Some(e) if e < 0 => {
            return Err(ZatoError::bad_request(format!("Expiration `{e}` must not be negative")))
        }
        Some(0) | None => None,
        Some(e) => Some(e as u64),
    };
    let ext_pub_time = match input.get("ext_pub_time") {
        None | Some(Value::Null) => None,
        Some(value) => Some(super::ids::parse_time(value).ok_or_else(|| {
            ZatoError::bad_request("Invalid ext_pub_time: expected seconds or an ISO-8601 time")
        })?),
    };
    let position = integer(input, "position_in_group")?.unwrap_or(1);
    let msg_id = text(input, "msg_id")?;
    if msg_id.as_ref().is_some_and(|id| id.len() > 200) {
        return Err(ZatoError::bad_request("Invalid msg_id: longer than 200 characters"));
    }
    let mime_type = text(input, "mime_type")?
        .or_else(|| mime_type.filter(|m| *m != "application/x-www-form-urlencoded").map(Into::into))
        .unwrap_or_else(|| "application/json".into());
    Ok(PublishReq {
        topic: topic.into(),
        endpoint: endpoint.into(),
        pattern: pattern.into(),
        data,
        data_json,
        msg_id,
        priority,
        expiration,
        correl_id: text(input, "correl_id")?,
        in_reply_to: text(input, "in_reply_to")?,
        ext_client_id: text(input, "ext_client_id")?,
        has_gd: boolean(input, "has_gd")?,
        mime_type,
        ext_pub_time,
        group_id: text(input, "group_id")?,
        position_in_group: u64::try_from(position).unwrap_or(1).max(1),
    })
}

/// Subscription options: `base` with the option fields of `input` over it (other fields are
/// left to the caller), checked.
pub fn options(base: &SubOptions, input: &Map<String, Value>) -> Result<SubOptions, ZatoError> {
    let mut merged = match serde_json::to_value(base) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for (name, value) in input {
        if merged.contains_key(name) {
            merged.insert(name.clone(), value.clone());
        }
    }
    let options: SubOptions = serde_json::from_value(Value::Object(merged))
        .map_err(|e| ZatoError::bad_request(format!("Invalid subscription option: {e}")))?;
    match options.problem() {
        Some(problem) => Err(ZatoError::bad_request(problem)),
        None => Ok(options),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn publications_take_zatos_defaults_and_refuse_bad_fields() {
        let p = publication(&input(json!({"data": "hi"})), "/t", "e", "/*", None).expect("ok");
        assert_eq!((p.priority, p.expiration, p.has_gd), (5, None, None));
        assert_eq!(p.mime_type, "application/json");
        let no_data = publication(&input(json!({"priority": 3})), "/t", "e", "/*", None);
        assert_eq!(no_data.expect_err("no data").details, "No data sent on input");
        for bad in [0, 10, -1] {
            let e = publication(&input(json!({"data": "x", "priority": bad})), "/t", "e", "", None)
                .expect_err("bad priority");
            assert!(e.details.contains("outside of allowed range 1-9"), "{e}");
        }
        let e = publication(&input(json!({"data": "x", "has_gd": "yes"})), "/t", "e", "", None)
            .expect_err("has_gd");
        assert!(e.details.contains("not a bool"), "{e}");
        let p = publication(&input(json!({"data": {"a": 1}})), "/t", "e", "", Some("text/plain"))
            .expect("json data");
        assert!(p.data_json && p.data == "{\"a\":1}" && p.mime_type == "text/plain");
        assert!(object(b"not json").is_err() && object(b"[1]").is_err());
        assert!(object(b"  ").expect("empty").is_empty());
    }

    #[test]
    fn options_overlay_known_fields_and_check_them() {
        let base = SubOptions { notify_url: Some("http://x".into()), ..SubOptions::default() };
        let o = options(&base, &input(json!({"delivery_batch_size": 1, "topic_name": "/t"})))
            .expect("ok");
        assert_eq!(o.delivery_batch_size, 1);
        assert!(options(&base, &input(json!({"active_status": "sideways"}))).is_err());
        assert!(options(&base, &input(json!({"delivery_batch_size": 0}))).is_err());
    }
}
