//! The hook shard: a dedicated executor that receives events from every connection shard over
//! the hook rings and routes them to their endpoints (each with its own queue, batching and
//! retries), so no connection shard ever waits on an HTTP call.

use super::{
    board::{Board, EndpointReport},
    call::{Caller, ReplyMesh},
    emqx,
    endpoint::{Endpoint, EndpointConfig, EndpointStats},
    event::{EmqxKind, HookMesh, HookMsg, PusherEvent},
    retry::RetryPolicy,
    webman,
};
use crate::mqtt;
use crate::{
    config::{
        hooks::{HooksConfig, PayloadEncoding, WebhookConfig, WebhookFormat},
        AppConfig, Config,
    },
    crypto::hmac_hex,
    shutdown::Shutdown,
    upstream::http::{ClientConfig, HttpClient},
};
use bytes::Bytes;
use glommio::channels::channel_mesh::Role;
use std::{rc::Rc, sync::Arc, time::Duration};

/// Events per request for message.delivered rules unless the rule sets `batch_max`: one
/// fan-out to 10,000 subscribers becomes 100 requests, not 10,000.
const DELIVERED_BATCH: usize = 100;

struct Webhook {
    config: WebhookConfig,
    target: Target,
}

/// A webhook's endpoint, by format.
enum Target {
    Pusher(Endpoint<PusherEvent>),
    Webman(Endpoint<webman::Entry>),
}

impl Target {
    fn stats(&self) -> EndpointStats {
        match self {
            Target::Pusher(endpoint) => endpoint.stats(),
            Target::Webman(endpoint) => endpoint.stats(),
        }
    }
}

struct Rule {
    kind: EmqxKind,
    topic: Option<String>,
    encoding: PayloadEncoding,
    /// Items are JSON object texts. Shared by every rule with the same URL, headers and
    /// delivery settings, so their events keep the order they happened in.
    endpoint: Rc<Endpoint<String>>,
}

/// What makes two rules' endpoints the same one: URL, extra headers, delivery settings.
type RuleTarget = (String, Vec<(String, String)>, HooksConfig);

/// Every endpoint, by what it serves.
struct Router {
    webhooks: Vec<Vec<Webhook>>,
    /// Per app, its key (webman payloads carry it).
    app_keys: Vec<String>,
    rules: Vec<Rule>,
    /// Each event-hook endpoint once (rules may share one).
    rule_endpoints: Vec<(RuleTarget, Rc<Endpoint<String>>)>,
    node: String,
    /// Makes upstream calls for the connection shards.
    caller: Rc<Caller>,
}

/// What the hook shard is started with.
pub struct Setup {
    pub config: Arc<Config>,
    /// The rings from the connection shards.
    pub mesh: HookMesh,
    /// The rings back to the connection shards, for upstream answers.
    pub replies: ReplyMesh,
    pub board: Arc<Board>,
    pub ready: crossbeam_channel::Sender<Result<usize, String>>,
    pub shutdown: Shutdown,
}

/// Runs the hook shard until shutdown.
pub async fn run(setup: Setup) {
    let Setup { config, mesh, replies, board, ready, shutdown } = setup;
    // Joined in the order the shards join them (the hook rings, then the reply rings).
    let mut receivers = match mesh.join(Role::Consumer).await {
        Ok((_, receivers)) => receivers,
        Err(e) => {
            let _ = ready.send(Err(format!("hook shard could not join its rings: {e}")));
            return;
        }
    };
    let caller = match replies.join(Role::Producer).await {
        Ok((senders, _)) => Caller::new(senders),
        Err(e) => {
            let _ = ready.send(Err(format!("hook shard could not join the reply rings: {e}")));
            return;
        }
    };
    let router = match Router::new(&config, caller) {
        Ok(router) => Rc::new(router),
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    for (_, ring) in receivers.streams() {
        let router = router.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = ring.recv().await {
                router.route(msg);
            }
        })
        .detach();
    }
    let _ = ready.send(Ok(usize::MAX));
    let mut ticks = 0u32;
    while !shutdown.requested() {
        glommio::timer::sleep(Duration::from_millis(100)).await;
        ticks += 1;
        if ticks.is_multiple_of(10) {
            board.publish(router.reports());
        }
    }
    let stats: EndpointStats = router.stats();
    tracing::info!(?stats, "hook shard stopping");
}

impl Router {
    fn new(config: &Config, caller: Rc<Caller>) -> Result<Router, String> {
        let mut webhooks = Vec::new();
        for app in &config.apps {
            let mut list = Vec::new();
            for hook in &app.webhooks {
                let delivery = hook.delivery(&config.hooks);
                let (client, endpoint_config) = endpoint_parts(&hook.url, &delivery)?;
                let target = match hook.format {
                    WebhookFormat::Pusher => Target::Pusher(Endpoint::new(
                        client,
                        endpoint_config,
                        pusher_body(app, hook),
                    )),
                    WebhookFormat::Webman => {
                        let secret = hook.secret.clone().unwrap_or_else(|| app.secret.clone());
                        let extra = hook.headers.clone().into_iter().collect();
                        let build = webman::requests(&hook.url, secret, extra);
                        Target::Webman(Endpoint::per_attempt(client, endpoint_config, build))
                    }
                };
                list.push(Webhook { config: hook.clone(), target });
            }
            webhooks.push(list);
        }
        let app_keys = config.apps.iter().map(|a| a.key.clone()).collect();
        let mut rules = Vec::new();
        let mut rule_endpoints: Vec<(RuleTarget, Rc<Endpoint<String>>)> = Vec::new();
        for rule in &config.event_hooks {
            let Some(kind) = EmqxKind::parse(&rule.event) else { continue };
            let mut delivery = rule.delivery.over(&config.hooks);
            if kind == EmqxKind::MessageDelivered && rule.delivery.batch_max.is_none() {
                delivery.batch_max = DELIVERED_BATCH;
            }
            let extra: Vec<(String, String)> = rule.headers.clone().into_iter().collect();
            let target = (rule.url.clone(), extra, delivery);
            let shared = rule_endpoints.iter().find(|(t, _)| *t == target);
            let endpoint = match shared {
                Some((_, endpoint)) => endpoint.clone(),
                None => {
                    let (url, extra, delivery) = &target;
                    let body = emqx_body(extra.clone(), delivery.batch_max > 1);
                    let endpoint = Rc::new(endpoint(url, delivery, body)?);
                    rule_endpoints.push((target, endpoint.clone()));
                    endpoint
                }
            };
            rules.push(Rule {
                kind,
                topic: rule.topic.clone(),
                encoding: rule.payload_encoding,
                endpoint,
            });
        }
        Ok(Router { webhooks, app_keys, rules, rule_endpoints, node: node_name(), caller })
    }

    fn route(&self, msg: HookMsg) {
        match msg {
            HookMsg::Call(call) => self.caller.start(*call),
            HookMsg::Pusher { app, event } => self.route_webhook(app, &event),
            HookMsg::Emqx(event) => {
                let Some(kind) = event.kind else { return };
                let topic = event.topic.as_deref();
                let is_message = matches!(
                    kind,
                    EmqxKind::MessagePublish | EmqxKind::MessageDelivered | EmqxKind::MessageAcked
                );
                if is_message && topic.is_some_and(|t| t.starts_with('$')) {
                    return;
                }
                for rule in self.rules.iter().filter(|r| r.kind == kind) {
                    let matched = match (kind.has_topic(), &rule.topic, topic) {
                        (true, Some(filter), Some(topic)) => mqtt::matches(topic, filter),
                        _ => true,
                    };
                    if matched {
                        for body in emqx::bodies(&event, &self.node, rule.encoding) {
                            rule.endpoint.push(body);
                        }
                    }
                }
            }
        }
    }

    /// Queues a webhook event on every webhook of `app` that wants it; a webman entry is built
    /// once, for the first webman-format webhook that wants the event.
    fn route_webhook(&self, app: u16, event: &PusherEvent) {
        let app = usize::from(app);
        let mut entry = None;
        for hook in self.webhooks.get(app).into_iter().flatten() {
            if !hook.config.wants(event.name) {
                continue;
            }
            match &hook.target {
                Target::Pusher(endpoint) => {
                    if hook.config.filter.admits(&event.channel) {
                        endpoint.push(event.clone());
                    }
                }
                Target::Webman(endpoint) => {
                    let key = self.app_keys.get(app).map_or("", String::as_str);
                    let built = entry.get_or_insert_with(|| webman::entry(key, event));
                    if let Some((channel, entry)) = built {
                        if hook.config.filter.admits(channel) {
                            endpoint.push(entry.clone());
                        }
                    }
                }
            }
        }
    }

    fn reports(&self) -> Vec<EndpointReport> {
        let webhooks = self.webhooks.iter().flatten().map(|w| EndpointReport {
            kind: "webhook",
            url: crate::upstream::url::redact(&w.config.url),
            stats: w.target.stats(),
        });
        let rules = self.rule_endpoints.iter().map(|((url, ..), endpoint)| EndpointReport {
            kind: "event_hook",
            url: crate::upstream::url::redact(url),
            stats: endpoint.stats(),
        });
        webhooks.chain(rules).collect()
    }

    fn stats(&self) -> EndpointStats {
        let webhooks = self.webhooks.iter().flatten().map(|w| w.target.stats());
        webhooks.chain(self.rule_endpoints.iter().map(|(_, e)| e.stats())).sum()
    }
}

fn endpoint<T: 'static>(
    url: &str,
    d: &HooksConfig,
    build: super::endpoint::BodyBuilder<T>,
) -> Result<Endpoint<T>, String> {
    let (client, config) = endpoint_parts(url, d)?;
    Ok(Endpoint::new(client, config, build))
}

/// The HTTP client and delivery settings of an endpoint at `url`.
fn endpoint_parts(url: &str, d: &HooksConfig) -> Result<(HttpClient, EndpointConfig), String> {
    let client_config = ClientConfig {
        connect_timeout: Duration::from_millis(d.connect_timeout_ms),
        request_timeout: Duration::from_millis(d.request_timeout_ms),
        ..ClientConfig::default()
    };
    let client = HttpClient::new(url, client_config)
        .map_err(|e| format!("hook endpoint {}: {e}", crate::upstream::url::redact(url)))?;
    let config = EndpointConfig {
        queue_max: d.queue_max,
        batch_max: d.batch_max,
        batch_window: Duration::from_millis(d.batch_window_ms),
        retry: RetryPolicy {
            max_elapsed: match d.max_elapsed_secs {
                0 => Duration::MAX,
                secs => Duration::from_secs(secs),
            },
            max_attempts: d.max_attempts,
            initial_backoff: Duration::from_millis(d.initial_backoff_ms),
            max_backoff: Duration::from_millis(d.max_backoff_ms),
            socket_pause: Duration::from_millis(d.socket_pause_ms),
            other_pause: Duration::from_millis(d.other_pause_ms),
        },
    };
    Ok((client, config))
}

/// Pusher's webhook request: `{"time_ms", "events": [...]}`, signed with the app secret in
/// `X-Pusher-Signature`, `Content-Type: application/json` without a charset (the Node SDK's
/// validator insists).
fn pusher_body(app: &AppConfig, hook: &WebhookConfig) -> super::endpoint::BodyBuilder<PusherEvent> {
    let (key, secret) = (app.key.clone(), app.secret.clone());
    let extra: Vec<(String, String)> = hook.headers.clone().into_iter().collect();
    Box::new(move |events: &[PusherEvent]| {
        let body =
            serde_json::json!({ "time_ms": super::event::now_ms(), "events": events }).to_string();
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("X-Pusher-Key".to_string(), key.clone()),
            ("X-Pusher-Signature".to_string(), hmac_hex(&secret, &body)),
        ];
        headers.extend(extra.iter().cloned());
        (Bytes::from(body), headers)
    })
}

/// An EMQX-style request: one JSON object, or a JSON array of them when the rule batches.
fn emqx_body(extra: Vec<(String, String)>, batched: bool) -> super::endpoint::BodyBuilder<String> {
    Box::new(move |bodies: &[String]| {
        let body = if batched || bodies.len() > 1 {
            format!("[{}]", bodies.join(","))
        } else {
            bodies.first().cloned().unwrap_or_default()
        };
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        headers.extend(extra.iter().cloned());
        (Bytes::from(body), headers)
    })
}

/// `pushgate@<hostname>`, EMQX's `node` field.
fn node_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string());
    format!("pushgate@{}", host.filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into()))
}
