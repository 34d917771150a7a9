//! Backend calls: the route table built from `[[im.routes]]`, the hook-shard request for a
//! backend (unary gRPC over h2c, or an HTTP POST of the protobuf bytes), and what an answer
//! means: the reply message, or why there is none and whether trying again may help.

use crate::{
    config::im::{default_event_path, Backend, ImConfig, Protocol},
    hook::call::{CallError, GrpcRequest, HttpRequest, Request, Response},
    upstream::grpc::{Code, GrpcConfig},
};
use ahash::AHashMap;
use bytes::Bytes;
use std::time::Duration;

/// Where one route key goes.
#[derive(Debug, Clone)]
pub struct Route {
    pub backend: Backend,
    pub path: String,
}

/// The route table: key (event number as text, or method) -> backend and path.
pub fn routes(config: &ImConfig) -> AHashMap<String, Route> {
    config
        .routes
        .iter()
        .filter_map(|r| {
            let path = r
                .backend
                .path
                .clone()
                .or_else(|| r.event.and_then(default_event_path).map(str::to_string))?;
            Some((r.key(), Route { backend: r.backend.clone(), path }))
        })
        .collect()
}

/// Why a call gave no reply message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// No answer (connect, timeout, busy shard) or a status saying the backend could not
    /// serve now (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, HTTP 5xx/429).
    #[error("{0}")]
    Retryable(String),
    /// The backend answered and refused (any other status).
    #[error("{0}")]
    Refused(String),
    /// The caller's connection is gone.
    #[error("the connection is gone")]
    Gone,
}

/// The hook-shard request calling `path` on `backend` with one protobuf message.
pub fn request(backend: &Backend, path: &str, message: Bytes) -> Request {
    let timeout = Duration::from_millis(backend.timeout_ms);
    let connect_timeout = timeout.min(Duration::from_secs(5));
    match backend.protocol {
        Protocol::Grpc => Request::Grpc(GrpcRequest {
            base: backend.url.clone(),
            config: GrpcConfig {
                connect_timeout,
                request_timeout: timeout,
                ..GrpcConfig::default()
            },
            path: path.to_string(),
            message,
            metadata: Vec::new(),
        }),
        Protocol::Http => Request::Http(HttpRequest {
            base: backend.url.clone(),
            method: http::Method::POST,
            path_and_query: path.to_string(),
            headers: vec![("content-type".into(), "application/x-protobuf".into())],
            body: message,
            connect_timeout,
            timeout,
            max_response_bytes: GrpcConfig::default().max_message,
        }),
    }
}

/// The reply message of a call's answer, or why there is none.
pub fn outcome(answer: Result<Response, CallError>, protocol: Protocol) -> Result<Bytes, Failure> {
    let response = match answer {
        Ok(response) => response,
        Err(CallError::Gone) => return Err(Failure::Gone),
        Err(e @ (CallError::Setup(_) | CallError::TooLarge(_))) => {
            return Err(Failure::Refused(e.to_string()))
        }
        Err(e) => return Err(Failure::Retryable(e.to_string())),
    };
    match protocol {
        Protocol::Grpc if response.status == 0 => Ok(response.body),
        Protocol::Grpc => {
            let message = response.header("grpc-message").unwrap_or_default();
            let why = format!("gRPC status {}: {message}", response.status);
            let code = Code(u32::from(response.status));
            let transient = [Code::UNAVAILABLE, Code::DEADLINE_EXCEEDED, Code::RESOURCE_EXHAUSTED];
            Err(if transient.contains(&code) {
                Failure::Retryable(why)
            } else {
                Failure::Refused(why)
            })
        }
        Protocol::Http if (200..300).contains(&response.status) => Ok(response.body),
        Protocol::Http => {
            let why = format!("HTTP status {}", response.status);
            let transient = response.status >= 500 || response.status == 429;
            Err(if transient { Failure::Retryable(why) } else { Failure::Refused(why) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::im::RouteConfig;

    fn backend(protocol: Protocol) -> Backend {
        Backend { url: "http://h:1".into(), path: None, protocol, timeout_ms: 100 }
    }

    #[test]
    fn events_default_to_xxim_methods() {
        let config = ImConfig {
            routes: vec![RouteConfig {
                event: Some(0),
                method: None,
                backend: backend(Protocol::Grpc),
            }],
            ..ImConfig::default()
        };
        let table = routes(&config);
        assert_eq!(table["0"].path, "/pb.msgService/SendMsgListAsync");
    }

    #[test]
    fn answers_become_messages_or_failures() {
        let ok = Response { status: 0, headers: vec![], body: Bytes::from_static(b"x") };
        assert_eq!(outcome(Ok(ok), Protocol::Grpc), Ok(Bytes::from_static(b"x")));
        let unavailable = Response { status: 14, headers: vec![], body: Bytes::new() };
        assert!(matches!(outcome(Ok(unavailable), Protocol::Grpc), Err(Failure::Retryable(_))));
        let bad = Response { status: 3, headers: vec![], body: Bytes::new() };
        assert!(matches!(outcome(Ok(bad), Protocol::Grpc), Err(Failure::Refused(_))));
        let http = Response { status: 404, headers: vec![], body: Bytes::new() };
        assert!(matches!(outcome(Ok(http), Protocol::Http), Err(Failure::Refused(_))));
        assert_eq!(outcome(Err(CallError::Gone), Protocol::Http), Err(Failure::Gone));
        assert!(matches!(
            outcome(Err(CallError::Timeout), Protocol::Http),
            Err(Failure::Retryable(_))
        ));
    }
}
