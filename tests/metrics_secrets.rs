//! What `/metrics` and the log may show (issue 8, defect 7): webhook URLs without their
//! credentials, and `/metrics` behind a bearer token when one is configured.

mod common;

use common::raw::{eventually, request, Launch};
use std::{net::TcpListener, time::Duration};

const USER: &str = "hookuser";
const PASSWORD: &str = "s3cret-pass";
const TOKEN: &str = "t0p-s3cret";

/// Defect 7: a webhook URL with userinfo and a query token appears in `/metrics` labels and in
/// the delivery-failure warning with both redacted; the endpoint stays recognizable by its
/// host, port and path.
#[test]
fn webhook_credentials_never_reach_metrics_or_the_log() {
    // A port nobody listens on: every delivery fails and is logged.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}/pusher/hook?token={TOKEN}");
    let config = format!(
        "[hooks]\ninitial_backoff_ms = 50\nsocket_pause_ms = 100\nother_pause_ms = 100\n\n\
         [[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\n\n\
         [[apps.webhooks]]\nurl = \"{url}\"\nevent_types = [\"channel_occupied\"]\n"
    );
    let (server, log) = Launch::new(&config).start();
    let mut client = server.client();
    client.subscribe("orders");
    let tried = eventually(50, Duration::from_millis(200), || {
        server.get("/metrics").1.lines().any(|l| {
            l.starts_with("pushgate_hook_requests_total{")
                && l.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()).is_some_and(|n| n > 0)
        })
    });
    assert!(tried, "the webhook was never attempted:\n{}", server.get("/metrics").1);
    assert!(
        eventually(50, Duration::from_millis(200), || log.count("hook delivery") > 0),
        "no delivery failure was logged:\n{}",
        log.text()
    );
    let metrics = server.get("/metrics").1;
    let endpoint = format!("127.0.0.1:{port}/pusher/hook");
    assert!(
        metrics.lines().any(|l| l.contains(&endpoint)),
        "the endpoint is no longer recognizable in /metrics:\n{metrics}"
    );
    let text = log.text();
    let mut leaks = Vec::new();
    for secret in [USER, PASSWORD, TOKEN] {
        if let Some(line) = metrics.lines().find(|l| l.contains(secret)) {
            leaks.push(format!("/metrics shows {secret:?}: {line}"));
        }
        if let Some(line) = text.lines().find(|l| l.contains(secret)) {
            leaks.push(format!("the log shows {secret:?}: {line}"));
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// Defect 7: with `metrics_token` set, `/metrics` answers only requests carrying
/// `Authorization: Bearer <token>` (what Prometheus sends with `authorization.credentials`);
/// others get 401. `/health` stays open.
#[test]
fn metrics_require_the_metrics_token_when_one_is_set() {
    let (server, _log) = Launch::new("metrics_token = \"prom-s3cret\"\n").start();
    let get = |auth: &str| {
        let req = format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{auth}\r\n");
        request(server.port, req.as_bytes()).expect("reply")
    };
    let none = get("");
    assert_eq!(none.status, 401, "GET /metrics without a token answered {}", none.status);
    assert!(!none.text().contains("pushgate_connections"), "{none:?}");
    assert_eq!(get("Authorization: Bearer wrong\r\n").status, 401, "wrong token");
    assert_eq!(get("Authorization: Basic cHJvbS1zM2NyZXQ=\r\n").status, 401, "not a bearer");
    let good = get("Authorization: Bearer prom-s3cret\r\n");
    assert_eq!(good.status, 200, "{good:?}");
    assert!(good.text().contains("pushgate_connections "), "{good:?}");
    let health = request(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").expect("reply");
    assert_eq!(health.status, 200);
}
