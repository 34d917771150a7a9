//! Bad input and limits of the gateway: upstream answers that are not JSON, huge or never
//! come; frames over `max_message_bytes`; a client sending faster than its upstream answers;
//! 100,000 topics on one connection. None may take a shard down or disturb other connections,
//! and a connection's answers always come in the order its requests were sent.

mod common;

use common::gateway::{routes, start, GwClient, Mock, PROXY, SUB_ADD, SUB_DELETE, SUB_PUT};
use common::Server;
use serde_json::{json, Value};
use std::{thread, time::Duration};
use tungstenite::Message;

/// A server whose TCP routes time out after 1 s (a read, then the one resend).
fn quick_server(mock: &Mock, top: &str) -> Server {
    let quick = "timeout = { connect = 1, send = 1, read = 1 }";
    Server::start(&format!("{top}\n{}", routes("", "tcp", mock.port, quick)), 1)
}

#[test]
fn bad_upstream_answers_fail_one_request_and_disturb_no_one() {
    let mock = Mock::tcp();
    let server = quick_server(&mock, "");
    let mut bad = GwClient::connect(&server);
    let mut good = GwClient::connect(&server);
    good.sub_add(SUB_ADD, &["news"]);
    // The hang first: while it waits at its upstream, the other connection is served.
    bad.send_request(PROXY, json!({}), json!({"wanted": "hang"}));
    for i in 0..20 {
        assert_eq!(good.request(PROXY, json!({ "i": i }))["status"], 200);
    }
    server.gw_publish("news", "1", "served meanwhile");
    assert_eq!(good.push(), ("news".into(), "served meanwhile".into()));
    assert_eq!(bad.recv()["body"]["code"], "5022");
    for wanted in ["not_json", "huge"] {
        let answer = bad.request_with(PROXY, json!({}), json!({ "wanted": wanted }));
        assert_eq!(
            (answer["status"].as_u64(), answer["body"]["code"].as_str()),
            (Some(502), Some("5024"))
        );
    }
    assert_eq!(bad.request(PROXY, json!({}))["status"], 200, "the bad one is fine afterwards");
}

#[test]
fn a_connection_that_closes_while_its_upstream_hangs_leaves_no_trace() {
    let mock = Mock::tcp();
    let server = quick_server(&mock, "");
    let mut c = GwClient::connect(&server);
    c.sub_add(SUB_ADD, &["gone-soon"]);
    c.send_request(PROXY, json!({}), json!({"wanted": "hang"}));
    c.send_request(PROXY, json!({}), json!({}));
    drop(c);
    let mut other = GwClient::connect(&server);
    assert_eq!(other.request(PROXY, json!({}))["status"], 200);
    for _ in 0..250 {
        if server.list_topics().is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(server.list_topics().is_empty());
    // The hanging call's late answer is dropped; the shard goes on.
    thread::sleep(Duration::from_millis(2500));
    assert_eq!(other.request(PROXY, json!({}))["status"], 200);
}

#[test]
fn a_frame_over_max_message_bytes_closes_only_that_connection_with_1009() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "max_message_bytes = 1024", 1);
    let mut big = GwClient::connect(&server);
    let mut other = GwClient::connect(&server);
    big.send(&json!({"uri": PROXY, "body": {"pad": "x".repeat(2000)}}));
    assert_eq!(big.close_frame().map(|(code, _)| code), Some(1009));
    assert!(tcp.requests().is_empty(), "nothing went upstream");
    assert_eq!(other.request(PROXY, json!({}))["status"], 200);
}

#[test]
fn requests_past_the_in_flight_bound_get_429_in_their_turn() {
    let mock = Mock::tcp();
    let server = quick_server(&mock, "[gateway]\nmax_requests_in_flight = 4\n");
    let mut c = GwClient::connect(&server);
    // The first hangs (the bound counts it while it waits); three more fit behind it.
    let mut sent = vec![c.send_request(PROXY, json!({}), json!({"wanted": "hang"}))];
    for _ in 0..9 {
        sent.push(c.send_request(PROXY, json!({}), json!({})));
    }
    let answers: Vec<Value> = (0..10).map(|_| c.recv()).collect();
    let ids: Vec<&str> = answers.iter().map(|a| a["body"]["msgId"].as_str().expect("id")).collect();
    assert_eq!(ids, sent, "answers in the order sent");
    assert_eq!(answers[0]["body"]["code"], "5022");
    for a in &answers[1..4] {
        assert_eq!(a["status"], 200, "{a}");
    }
    for a in &answers[4..] {
        assert_eq!(a["status"], 429, "{a}");
        assert_eq!(a["body"]["code"], "4291");
        assert_eq!(a["body"]["message"], "429 Too Many Requests");
    }
    assert_eq!(mock.requests_to(PROXY).len(), 4 + 1, "refused ones never went (one resend)");
    assert_eq!(c.request(PROXY, json!({}))["status"], 200, "room again");
}

#[test]
fn answers_come_in_the_order_sent_whoever_gives_them() {
    let mock = Mock::tcp();
    let server = quick_server(&mock, "");
    let mut c = GwClient::connect(&server);
    c.send_request(PROXY, json!({}), json!({"wanted": "slow"}));
    c.send_request("/no/route", json!({}), json!({}));
    c.send(&json!({"uri": "/api/ping", "header": {"msgId": "ping"}}));
    c.send_request(SUB_ADD, json!({"topics": "not a list"}), json!({}));
    c.send_text("not json");
    c.send_request(PROXY, json!({}), json!({}));
    let got: Vec<Value> = (0..6).map(|_| c.recv()).collect();
    assert_eq!(
        (got[0]["status"].as_u64(), got[0]["body"]["msgId"].as_str()),
        (Some(200), Some("m1"))
    );
    assert_eq!(
        (got[1]["body"]["code"].as_str(), got[1]["body"]["msgId"].as_str()),
        (Some("4041"), Some("m2"))
    );
    assert_eq!(got[2]["uri"], "/api/pong");
    assert_eq!(
        (got[3]["body"]["code"].as_str(), got[3]["body"]["msgId"].as_str()),
        (Some("4002"), Some("m3"))
    );
    assert_eq!((got[4]["status"].as_u64(), got[4]["body"]["code"].as_str()), (Some(400), Some("")));
    assert_eq!(
        (got[5]["status"].as_u64(), got[5]["body"]["msgId"].as_str()),
        (Some(200), Some("m4"))
    );
}

fn names(from: usize, n: usize) -> Vec<String> {
    (from..from + n).map(|i| format!("t{i:06}")).collect()
}

#[test]
fn a_hundred_thousand_topics_meet_the_cap_with_a_clear_error() {
    let mock = Mock::tcp();
    let server = quick_server(&mock, "max_message_bytes = 2097152");
    let mut c = GwClient::connect(&server);
    let all = names(0, 100_000);
    let answer = c.request(SUB_ADD, json!({ "topics": all }));
    assert_eq!(answer["status"], 400);
    assert_eq!(answer["body"]["code"], "4005");
    assert_eq!(answer["body"]["message"], "too many topics: at most 10000 per connection");
    assert!(mock.requests().is_empty(), "refused before the upstream");
    for batch in 0..2 {
        c.sub_add(
            SUB_ADD,
            &names(batch * 5000, 5000).iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
    let answer = c.request(SUB_ADD, json!({ "topics": names(10_000, 1) }));
    assert_eq!(answer["body"]["code"], "4005", "the upstream's list would pass the cap: {answer}");
    assert_eq!(server.list_topics().len(), 10_000);
    let mut other = GwClient::connect(&server);
    other.sub_add(SUB_ADD, &["t000001"]);
    server.gw_publish("t000001", "1", "both");
    assert_eq!(c.push(), ("t000001".into(), "both".into()));
    assert_eq!(other.push(), ("t000001".into(), "both".into()));
}

#[test]
fn a_hundred_thousand_topics_fit_when_the_cap_allows_and_go_with_the_connection() {
    let mock = Mock::tcp();
    let server = quick_server(&mock, "[gateway]\nmax_topics_per_connection = 100000\n");
    let mut c = GwClient::connect(&server);
    for batch in 0..20 {
        c.sub_add(
            SUB_ADD,
            &names(batch * 5000, 5000).iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
    assert_eq!(server.list_topics().len(), 100_000);
    let odd: Vec<String> = names(0, 100_000).into_iter().skip(1).step_by(2).collect();
    for chunk in odd.chunks(5000) {
        assert_eq!(c.request(SUB_DELETE, json!({ "topics": chunk }))["status"], 200);
    }
    assert_eq!(server.list_topics().len(), 50_000);
    let answer = c.request(SUB_PUT, json!({ "topics": names(0, 5000) }));
    assert_eq!(answer["status"], 200);
    assert_eq!(server.list_topics().len(), 5000);
    c.ws.send(Message::Close(None)).expect("close");
    c.close_frame();
    for _ in 0..250 {
        if server.list_topics().is_empty() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("topics left: {}", server.list_topics().len());
}
