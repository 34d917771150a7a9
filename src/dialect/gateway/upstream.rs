//! A request's trip to its route's upstream through the hook shard, and what came back, in the
//! original's terms. TCP routes send one `{uri,header,body}` frame (the pooled client picks
//! nodes, retries connects and resends once, with codes 5021-5024); HTTP routes `POST <node><uri>`
//! with the header map as request headers and the same rules played here: a refused connect
//! moves to the next node (5021), a timeout (5022) or any other failure (5023) is resent once.
//! An answer that is not JSON with an object `body`, or is larger than the cap, is 5024.

use super::{
    request::Job,
    table::{Route, Scheme, Upstream},
    Gateway,
};
use crate::{
    engine::{conn::ConnKey, shard::Shard},
    hook::call::{CallError, HttpRequest, Request, Response, TcpJsonRequest},
    upstream::tcp_json::TcpJsonConfig,
};
use bytes::Bytes;
use serde_json::{Map, Value};
use std::{rc::Rc, time::Instant};

/// An upstream's answer, whichever transport brought it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Map<String, Value>,
    /// The `topics` response header (HTTP) or `header.topics` (TCP), comma-separated.
    pub topics: Option<String>,
}

/// Why a request has no upstream answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The connection closed meanwhile: nothing to answer.
    Gone,
    /// Answer the client with this status, code and message.
    Error { status: u16, code: &'static str, message: &'static str },
}

const REQUEST_FAILED: &str = "failed to request upstream";

impl Failure {
    fn error(status: u16, code: &'static str, message: &'static str) -> Failure {
        Failure::Error { status, code, message }
    }

    /// The answer to a call that failed.
    pub fn of(error: &CallError) -> Failure {
        match error {
            CallError::Gone => Failure::Gone,
            CallError::Busy(_) | CallError::Unavailable => {
                Failure::error(503, "5031", "503 Service Unavailable")
            }
            CallError::Setup(_) => Failure::error(500, "5003", "failed to create upstream"),
            CallError::Connect(_) => Failure::error(502, "5021", "failed to connect to upstream"),
            CallError::Timeout => Failure::error(502, "5022", REQUEST_FAILED),
            CallError::Failed(_) => Failure::error(502, "5023", REQUEST_FAILED),
            CallError::TooLarge(_) => Failure::error(502, "5024", REQUEST_FAILED),
            CallError::Upstream { code, status } => match code {
                5001 => Failure::error(*status, "5001", "failed to encode upstream request"),
                5021 => Failure::error(*status, "5021", "failed to connect to upstream"),
                5022 => Failure::error(*status, "5022", REQUEST_FAILED),
                5023 => Failure::error(*status, "5023", REQUEST_FAILED),
                _ => Failure::error(*status, "5024", REQUEST_FAILED),
            },
        }
    }

    fn bad_answer() -> Failure {
        Failure::error(502, "5024", REQUEST_FAILED)
    }
}

/// Sends `job` to its route's upstream and reads the answer; records the upstream latency.
/// `key` is the connection waiting for it (None for a connection that has gone).
pub async fn call(
    gw: &Gateway,
    shard: &Rc<Shard>,
    key: Option<ConnKey>,
    route: &Route,
    job: &Job,
) -> Result<Answer, Failure> {
    let started = Instant::now();
    let answer = match route.upstream.scheme {
        Scheme::Tcp => call_tcp(gw, shard, key, &route.upstream, job).await,
        Scheme::Http | Scheme::Https => call_http(gw, shard, key, route, job).await,
    };
    if !matches!(answer, Err(Failure::Gone)) {
        gw.metrics.borrow_mut().upstream_latency(job.route, started.elapsed());
    }
    answer
}

async fn call_tcp(
    gw: &Gateway,
    shard: &Rc<Shard>,
    key: Option<ConnKey>,
    up: &Upstream,
    job: &Job,
) -> Result<Answer, Failure> {
    let frame = serde_json::json!({ "uri": job.uri, "header": job.header, "body": job.body });
    let config = TcpJsonConfig {
        connect_timeout: up.connect,
        send_timeout: up.send,
        read_timeout: up.read,
        pool_size: up.pool_size,
        idle_timeout: up.pool_idle,
        pool_requests: up.pool_requests,
        retries: Some(up.tcp_picks()),
        max_frame: gw.config.gateway.max_upstream_response_bytes,
    };
    let request = Request::TcpJson(TcpJsonRequest {
        upstream: up.name.clone(),
        nodes: up.picks.clone(),
        config,
        json: Bytes::from(frame.to_string()),
    });
    let response = ask(shard, key, request).await.map_err(|e| Failure::of(&e))?;
    read_tcp(&response.body)
}

/// One call through the hook shard, for a connection or for none.
async fn ask(
    shard: &Rc<Shard>,
    key: Option<ConnKey>,
    request: Request,
) -> Result<Response, CallError> {
    match key {
        Some(key) => shard.call(key, request).await,
        None => shard.call_unbound(request).await,
    }
}

/// Reads a TCP reply frame: `{"status","body",{"header":{"topics"}}}`.
pub fn read_tcp(payload: &[u8]) -> Result<Answer, Failure> {
    let Ok(Value::Object(mut reply)) = serde_json::from_slice(payload) else {
        return Err(Failure::bad_answer());
    };
    let Some(Value::Object(body)) = reply.remove("body") else {
        return Err(Failure::bad_answer());
    };
    let status = reply.get("status").and_then(Value::as_u64).map_or(200, clamp_status);
    let topics = match reply.get("header").and_then(|h| h.get("topics")) {
        Some(Value::String(list)) => Some(list.clone()),
        Some(Value::Array(items)) => {
            Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
        }
        _ => None,
    };
    Ok(Answer { status, body, topics })
}

fn clamp_status(status: u64) -> u16 {
    u16::try_from(status).ok().filter(|s| (100..1000).contains(s)).unwrap_or(200)
}

/// How one HTTP attempt ended, for the retry rule.
enum Attempt {
    Done(Result<Response, CallError>),
    Retry(CallError),
}

async fn call_http(
    gw: &Gateway,
    shard: &Rc<Shard>,
    key: Option<ConnKey>,
    route: &Route,
    job: &Job,
) -> Result<Answer, Failure> {
    let up = &route.upstream;
    let body = Bytes::from(serde_json::to_vec(&job.body).unwrap_or_default());
    let headers = http_headers(&job.header);
    let mut connects = 0;
    let mut resent = false;
    loop {
        let node = gw.pick(job.route, up);
        let request = Request::Http(http_request(gw, up, &node, job, &headers, body.clone()));
        let attempt = match ask(shard, key, request).await {
            Err(CallError::Connect(e)) if connects + 1 < up.http_connects() => {
                connects += 1;
                Attempt::Retry(CallError::Connect(e))
            }
            Err(e @ (CallError::Timeout | CallError::Failed(_))) if !resent => {
                resent = true;
                Attempt::Retry(e)
            }
            other => Attempt::Done(other),
        };
        match attempt {
            Attempt::Retry(e) => {
                tracing::debug!(%node, error = %e, "upstream call failed; retrying")
            }
            Attempt::Done(Ok(response)) => return read_http(&response),
            Attempt::Done(Err(e)) => return Err(Failure::of(&e)),
        }
    }
}

fn http_request(
    gw: &Gateway,
    up: &Upstream,
    node: &str,
    job: &Job,
    headers: &[(String, String)],
    body: Bytes,
) -> HttpRequest {
    let scheme = if up.scheme == Scheme::Https { "https" } else { "http" };
    HttpRequest {
        base: format!("{scheme}://{node}"),
        method: http::Method::POST,
        path_and_query: job.uri.clone(),
        headers: headers.to_vec(),
        body,
        connect_timeout: up.connect,
        timeout: up.connect + up.send + up.read,
        max_response_bytes: gw.config.gateway.max_upstream_response_bytes,
    }
}

/// The header map as HTTP request headers: strings as they are, other values as JSON; names or
/// values HTTP cannot carry are left out. `content-type: application/json` unless given.
pub fn http_headers(header: &Map<String, Value>) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = header
        .iter()
        .filter_map(|(name, value)| {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Null => return None,
                other => other.to_string(),
            };
            http::HeaderName::from_bytes(name.as_bytes()).ok()?;
            http::HeaderValue::from_str(&value).ok()?;
            Some((name.clone(), value))
        })
        .collect();
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
        headers.push(("content-type".into(), "application/json".into()));
    }
    headers
}

/// Reads an HTTP answer: its status, its JSON object body, its `topics` header.
pub fn read_http(response: &Response) -> Result<Answer, Failure> {
    let Ok(Value::Object(body)) = serde_json::from_slice(&response.body) else {
        return Err(Failure::bad_answer());
    };
    let topics = response.header("topics").map(str::to_string);
    Ok(Answer { status: response.status, body, topics })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tcp_replies_are_read_as_the_mock_writes_them() {
        let reply = br#"{"status":200,"body":{"code":"0","msgId":"1"},"header":{"topics":"a,b"}}"#;
        let answer = read_tcp(reply).expect("answer");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.topics.as_deref(), Some("a,b"));
        assert_eq!(Value::Object(answer.body), json!({"code": "0", "msgId": "1"}));
        let no_status = read_tcp(br#"{"body":{},"header":{"topics":["x","y"]}}"#).expect("answer");
        assert_eq!((no_status.status, no_status.topics.as_deref()), (200, Some("x,y")));
        for bad in [&b"not json"[..], b"[]", b"{}", br#"{"body":"text"}"#] {
            assert_eq!(
                read_tcp(bad),
                Err(Failure::bad_answer()),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn http_answers_need_a_json_object_body() {
        let response = |body: &'static str| Response {
            status: 503,
            headers: vec![("Topics".into(), "t1".into())],
            body: Bytes::from_static(body.as_bytes()),
        };
        let answer = read_http(&response(r#"{"code":"1001"}"#)).expect("answer");
        assert_eq!((answer.status, answer.topics.as_deref()), (503, Some("t1")));
        assert_eq!(read_http(&response("<html>")), Err(Failure::bad_answer()));
    }

    #[test]
    fn headers_become_http_headers() {
        let header = json!({"msgId": "1", "ts": 5, "gateway-metadata": {"sid": "s"},
                            "bad name": "x", "bad-value": "a\nb", "nothing": null});
        let headers = http_headers(header.as_object().expect("object"));
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("msgId"), Some("1"));
        assert_eq!(get("ts"), Some("5"));
        assert_eq!(get("gateway-metadata"), Some(r#"{"sid":"s"}"#));
        assert_eq!(get("content-type"), Some("application/json"));
        assert_eq!(headers.len(), 4, "{headers:?}");
    }

    #[test]
    fn failures_carry_the_original_codes() {
        let code = |e: CallError| match Failure::of(&e) {
            Failure::Error { status, code, .. } => (status, code),
            Failure::Gone => (0, ""),
        };
        assert_eq!(code(CallError::Connect("refused".into())), (502, "5021"));
        assert_eq!(code(CallError::Timeout), (502, "5022"));
        assert_eq!(code(CallError::TooLarge(1)), (502, "5024"));
        assert_eq!(code(CallError::Busy(1)), (503, "5031"));
        assert_eq!(code(CallError::Upstream { code: 5023, status: 502 }), (502, "5023"));
        assert_eq!(code(CallError::Upstream { code: 5001, status: 500 }), (500, "5001"));
        assert_eq!(Failure::of(&CallError::Gone), Failure::Gone);
    }
}
