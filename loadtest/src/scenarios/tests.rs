//! End-to-end scenario tests against the in-process test server.

use crate::cli::{Cli, Scenario};
use crate::test_server;
use clap::Parser;
use std::sync::atomic::Ordering::Relaxed;

fn parse(args: &[&str]) -> Scenario {
    match Cli::try_parse_from(args) {
        Ok(c) => c.scenario,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn fanout_delivers_everything_once() {
    let (addr, srv) = test_server::start("app-secret").await;
    let port = addr.port().to_string();
    let Scenario::Fanout(a) = parse(&[
        "pushgate-load",
        "fanout",
        "--port",
        &port,
        "-n",
        "30",
        "-c",
        "3",
        "-r",
        "40",
        "-t",
        "1",
        "--quiet",
        "--drain-secs",
        "2",
    ]) else {
        panic!("not fanout")
    };
    let r = match super::fanout::run(&a, None, 1024).await {
        Ok(r) => r,
        Err(e) => panic!("{e:#}"),
    };
    assert_eq!(srv.bad_signatures.load(Relaxed), 0);
    assert_eq!(r.connections.connected, 30);
    let p = r.publish.as_ref().map(|p| p.published).unwrap_or(0);
    assert!(p >= 35, "published {p}");
    let d = r.delivery.as_ref().map(|d| (d.expected, d.delivered, d.missing, d.duplicated));
    assert_eq!(d, Some((p * 10, p * 10, 0, 0)));
    assert_eq!(r.latency_us.as_ref().map(|l| l.count), Some(p * 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn wrong_secret_counts_http_errors_and_missing_nothing() {
    let (addr, srv) = test_server::start("other-secret").await;
    let port = addr.port().to_string();
    let Scenario::Fanout(a) = parse(&[
        "pushgate-load",
        "fanout",
        "--port",
        &port,
        "-n",
        "5",
        "-r",
        "10",
        "-t",
        "1",
        "--quiet",
        "--drain-secs",
        "0",
    ]) else {
        panic!("not fanout")
    };
    let r = match super::fanout::run(&a, None, 1024).await {
        Ok(r) => r,
        Err(e) => panic!("{e:#}"),
    };
    let p = r.publish.as_ref().map(|p| (p.published, p.http_errors)).unwrap_or_default();
    assert_eq!(p.0, 0);
    assert!(p.1 >= 5 && srv.bad_signatures.load(Relaxed) == p.1);
    assert_eq!(r.delivery.as_ref().map(|d| d.expected), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn idle_and_churn_run_to_completion() {
    let (addr, _srv) = test_server::start("app-secret").await;
    let port = addr.port().to_string();
    let Scenario::Idle(a) = parse(&[
        "pushgate-load",
        "idle",
        "--port",
        &port,
        "-n",
        "50",
        "-c",
        "5",
        "--hold-secs",
        "0",
        "--quiet",
    ]) else {
        panic!("not idle")
    };
    let r = match super::idle::run(&a, 1024).await {
        Ok(r) => r,
        Err(e) => panic!("{e:#}"),
    };
    assert_eq!((r.connections.connected, r.connections.dropped), (50, 0));

    let Scenario::Churn(c) = parse(&[
        "pushgate-load",
        "churn",
        "--port",
        &port,
        "-n",
        "10",
        "-r",
        "10",
        "-t",
        "1",
        "--quiet",
        "--churn-rate",
        "20",
        "--churn-lifetime-ms",
        "200",
        "--drain-secs",
        "1",
    ]) else {
        panic!("not churn")
    };
    let r = match super::fanout::run(&c.fanout, Some(&c), 1024).await {
        Ok(r) => r,
        Err(e) => panic!("{e:#}"),
    };
    let ch = r.churn.as_ref().map(|c| (c.opened, c.failed)).unwrap_or_default();
    assert!(ch.0 >= 15 && ch.1 == 0, "churn {ch:?}");
    assert_eq!(r.delivery.as_ref().map(|d| d.missing), Some(0));
}
