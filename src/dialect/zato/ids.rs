//! Zato's identifiers and times: message ids (`zpsm` + 96 random bits), subscription keys
//! (`zpsk.<endpoint type>[.<ext_client_id>].<random>`, a secret), correlation ids, WSX session
//! tokens, and times as microseconds since the epoch printed the way Zato prints them
//! (naive UTC ISO-8601, `2018-07-04T17:16:07.347820`).

use std::time::{SystemTime, UNIX_EPOCH};

/// `n` random bytes in lowercase hex.
fn random_hex(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    hex::encode(bytes)
}

/// A new message id: `zpsm` and 24 hex digits.
pub fn msg_id() -> String {
    format!("zpsm{}", random_hex(12))
}

/// A correlation id for one request (Zato's `cid`): 24 hex digits.
pub fn cid() -> String {
    random_hex(12)
}

/// A WSX session token.
pub fn token() -> String {
    format!("zwsxt.{}", random_hex(12))
}

/// A new subscription key for an endpoint of type `kind` (`rest`, `websockets`), with the
/// client's own id in it when it gave one made of safe characters (at most 64).
pub fn sub_key(kind: &str, ext_client_id: Option<&str>) -> String {
    let safe = |id: &&str| {
        !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match ext_client_id.filter(safe) {
        Some(id) => format!("zpsk.{kind}.{id}.{}", random_hex(12)),
        None => format!("zpsk.{kind}.{}", random_hex(12)),
    }
}

/// Microseconds since the Unix epoch now.
pub fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// `micros` as naive UTC ISO-8601 with microseconds.
pub fn iso(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        micros % 1_000_000
    )
}

/// Parses a publisher's `ext_pub_time`: seconds since the epoch (a number), or an ISO-8601
/// date and time in UTC (`2018-07-04T17:16:07.347820`, `Z` or `+00:00` allowed).
pub fn parse_time(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => {
            let secs = n.as_f64()?;
            (0.0..1e11).contains(&secs).then_some((secs * 1e6) as u64)
        }
        serde_json::Value::String(s) => parse_iso(s),
        _ => None,
    }
}

fn parse_iso(text: &str) -> Option<u64> {
    let text = text.trim_end_matches('Z').trim_end_matches("+00:00");
    let (date, time) = text.split_once(['T', ' '])?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut hms = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next().unwrap_or(Some(0))?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let digits: String = fraction.chars().take(6).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let micros = if digits.is_empty() { 0 } else { digits.parse::<u64>().ok()? };
    let micros = micros * 10u64.pow(6 - digits.len() as u32);
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    Some(((days * 86_400) + h * 3600 + m * 60 + s) * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_zato_shapes() {
        let id = msg_id();
        assert!(id.starts_with("zpsm") && id.len() == 28, "{id}");
        let key = sub_key("rest", None);
        assert!(key.starts_with("zpsk.rest.") && key.len() == 34, "{key}");
        let key = sub_key("websockets", Some("client-7"));
        assert!(key.starts_with("zpsk.websockets.client-7."), "{key}");
        assert!(sub_key("rest", Some("a.b")).starts_with("zpsk.rest."));
        assert_ne!(msg_id(), msg_id());
    }

    #[test]
    fn times_print_and_parse_as_zato_does() {
        let micros = 1_530_724_567_347_820;
        assert_eq!(iso(micros), "2018-07-04T17:16:07.347820");
        assert_eq!(parse_iso("2018-07-04T17:16:07.347820"), Some(micros));
        assert_eq!(parse_iso("2018-07-04T17:16:07Z"), Some(micros - 347_820));
        assert_eq!(parse_iso("2018-07-04T17:16:07.3"), Some(micros - 47_820));
        assert_eq!(iso(0), "1970-01-01T00:00:00.000000");
        assert_eq!(parse_iso("2020-02-30"), None);
        assert_eq!(parse_iso("2020-13-01T00:00:00"), None);
        let number = serde_json::json!(1_530_724_567.5);
        assert_eq!(parse_time(&number), Some(1_530_724_567_500_000));
        assert_eq!(parse_time(&serde_json::json!(true)), None);
        assert_eq!(
            iso(parse_iso("2024-02-29T23:59:59.000001").unwrap_or(0)),
            "2024-02-29T23:59:59.000001"
        );
    }
}
