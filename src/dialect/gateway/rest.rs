//! The gateway's HTTP routes on the client port: `POST /gateway/publish` (in `publish`) and
//! `GET /list/topics`, the Push Gateway's introspection: `{"topics":[...]}`, exactly the topics
//! with a subscriber on some shard at the time of the call (every shard is asked). In cluster
//! mode every other node is asked too; an answer some node missed carries
//! `X-Pushgate-Partial: true`.

use super::{messages::Question, messages::Reply as Answered, publish, Gateway};
use crate::{
    engine::shard::Shard,
    rest::{json, ApiError, Reply},
};
use hyper::{body::Incoming, header, Method, Request, StatusCode};
use std::rc::Rc;

pub const PUBLISH: &str = "/gateway/publish";
pub const LIST_TOPICS: &str = "/list/topics";

/// Serves one request to [`PUBLISH`] or [`LIST_TOPICS`].
pub async fn call(gw: &Gateway, shard: &Rc<Shard>, request: Request<Incoming>) -> Reply {
    let path = request.uri().path().to_string();
    match (request.method(), path.as_str()) {
        (&Method::POST, PUBLISH) => publish::http(gw, shard, request).await,
        (&Method::GET, LIST_TOPICS) => {
            let auth = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            if !gw.config.gateway.list_topics_public && !publish::authorized(gw, auth) {
                let why = "Authorization: Bearer <publish key> is required";
                return ApiError::new(StatusCode::UNAUTHORIZED, why).reply();
            }
            let mut topics = list_topics(gw, shard).await;
            let mut complete = true;
            if let Some(link) = &shard.cluster {
                let (answers, all) = link.query(gw.tag, bytes::Bytes::new()).await;
                for (node, body) in answers {
                    match serde_json::from_slice::<Vec<String>>(&body) {
                        Ok(names) => topics.extend(names),
                        Err(_) => tracing::warn!("gateway: node {node} sent an undecodable list"),
                    }
                }
                topics.sort_unstable();
                topics.dedup();
                complete = all;
            }
            let mut reply =
                json(StatusCode::OK, serde_json::json!({ "topics": topics }).to_string());
            if !complete {
                let partial = header::HeaderValue::from_static("true");
                reply.headers_mut().insert("x-pushgate-partial", partial);
            }
            reply
        }
        _ => ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("Method not allowed on {path}"))
            .reply(),
    }
}

/// Every topic with a subscriber on any shard of this node, sorted.
pub async fn list_topics(gw: &Gateway, shard: &Rc<Shard>) -> Vec<String> {
    let mut topics: Vec<String> = gw
        .ask_all(shard, Question::Topics)
        .await
        .into_iter()
        .flat_map(|reply| match reply {
            Answered::Topics(names) => names,
            Answered::Metrics(_) => Vec::new(),
        })
        .collect();
    topics.sort_unstable();
    topics.dedup();
    topics
}
