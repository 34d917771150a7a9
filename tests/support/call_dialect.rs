//! A dialect for tests and benches of upstream calls: every text message `path` becomes a GET
//! of `path` on the upstream, made through the hook shard, and the connection gets back what
//! came of it as JSON (`{"status","body","topics"}` or `{"error"}`). Mounted at `/calls` by
//! [`Mounts`]. Included with `#[path]` by tests/upstream_calls.rs and benches/calls.rs.

use pushgate::{
    config::Config,
    edge::router::{PathMatch, Router},
    engine::{
        bus::Envelope,
        conn::{queue::Frame, Close, ConnKey},
        seam::{Admission, Dialect, Gone, LocalFuture, Policy},
        shard::Shard,
    },
    hook::call::{CallError, HttpRequest, Request},
    mount::{Mounting, ShardMounts},
    ws::{frame, frame::Message, handshake::Upgrade},
};
use serde_json::json;
use std::{
    net::SocketAddr,
    rc::Rc,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

/// A dialect whose every text message `path` is a GET of `path` on the upstream.
pub struct Caller {
    upstream: String,
    gone: Arc<AtomicUsize>,
}

impl Dialect for Caller {
    fn name(&self) -> &'static str {
        "calls"
    }

    fn admit<'a>(
        &'a self,
        _: &'a Rc<Shard>,
        _: &'a Upgrade,
        _: Option<SocketAddr>,
    ) -> LocalFuture<'a, Admission> {
        Box::pin(std::future::ready(Admission::Accept { ns: 0, headers: Vec::new() }))
    }

    fn open(&self, _: &Rc<Shard>, _: ConnKey, _: &Upgrade, _: Option<SocketAddr>) {}

    fn on_message(
        &self,
        shard: &Rc<Shard>,
        key: ConnKey,
        message: Message<'_>,
    ) -> Result<(), Close> {
        let Message::Text(text) = message else { return Ok(()) };
        let path = String::from_utf8_lossy(text).to_string();
        let request = Request::Http(HttpRequest {
            base: self.upstream.clone(),
            method: http::Method::GET,
            path_and_query: path,
            headers: vec![("x-from".into(), "pushgate".into())],
            body: bytes::Bytes::new(),
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_millis(800),
            max_response_bytes: 1024,
        });
        let (shard, gone) = (shard.clone(), self.gone.clone());
        glommio::spawn_local(async move {
            let answer = match shard.call(key, request).await {
                Ok(r) => json!({"status": r.status, "body": String::from_utf8_lossy(&r.body),
                                "topics": r.header("topics")}),
                Err(CallError::Gone) => {
                    gone.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Err(e) => json!({"error": format!("{e:?}")}),
            };
            shard.send(key, Frame::new(frame::text(answer.to_string().as_bytes())));
        })
        .detach();
        Ok(())
    }

    fn on_close(&self, _: &Rc<Shard>, _: ConnKey, _: &Gone) {}

    fn policy(&self) -> Policy {
        let close = Close::fixed(1001, "bye");
        Policy {
            idle_secs: 0,
            pong_secs: 30,
            ping: Frame::new(frame::text(b"ping")),
            timeout: close.clone(),
            over_capacity: close.clone(),
            shutdown: close,
            deadlines: false,
        }
    }

    fn on_notice(&self, _: &Rc<Shard>, _: Envelope) {}

    fn answer(&self, _: &Rc<Shard>, question: Envelope) -> LocalFuture<'static, Envelope> {
        Box::pin(std::future::ready(question))
    }

    fn client_id(&self, _: &Shard, key: ConnKey) -> String {
        format!("{key:?}")
    }
}

pub struct Mounts {
    pub upstream: String,
    /// Calls answered `CallError::Gone` (their connection closed while they waited).
    pub gone: Arc<AtomicUsize>,
}

impl Mounting for Mounts {
    fn for_shard(&self, config: &Arc<Config>) -> ShardMounts {
        let dialect = Caller { upstream: self.upstream.clone(), gone: self.gone.clone() };
        let mut router = Router::new(config);
        router.mount_ws(PathMatch::Exact("/calls".into()), 0);
        ShardMounts { dialects: vec![Rc::new(dialect)], ns_tags: vec![0], router }
    }

    fn uses_calls(&self) -> bool {
        true
    }
}
