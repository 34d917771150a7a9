//! Gateway actions end to end against mock upstreams in both transports (reference §1.3-1.4;
//! F000-09..19, 25, 31). "Not delivered" is shown without waiting: after the pushes that must
//! not arrive, a marker is published on the same keep-alive connection to a one-shard server,
//! and the next message must be the marker.

mod common;

use common::gateway::{
    routes, start, GwClient, Mock, Publisher, DISCONNECT, PROXY, REGISTER, SUB_ADD, SUB_DELETE,
    SUB_PUT,
};
use common::Server;
use serde_json::json;
use std::{net::TcpListener, thread, time::Duration};

/// Publishes each of `absent` (which `c` must not get), then `marker`; `c` gets the marker next.
fn only_marker(p: &Publisher, c: &mut GwClient, absent: &[&str], marker: &str) {
    for topic in absent {
        p.publish(topic, "x", "must not arrive");
    }
    p.publish(marker, "m", "marker");
    assert_eq!(c.push(), (marker.to_string(), "marker".to_string()));
}

#[test]
/// Feature line F000-09 (../shared/reference/seed-systems.md).
fn f000_09_register_appends_sig_sid_and_returns_result_data_sid() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    for prefix in ["", "/h"] {
        let mut c = GwClient::connect(&server);
        let answer = c.request(&format!("{prefix}{REGISTER}"), json!({"topics": ["t0"]}));
        assert_eq!(answer["status"], 200, "{answer}");
        let sid = answer["body"]["resultData"]["sid"].as_str().expect("sid");
        assert_eq!(answer["body"]["resultData"]["origin"], "null", "a non-object is wrapped");
        let mock = if prefix.is_empty() { &tcp } else { &http };
        let seen = mock.requests_to(&format!("{prefix}{REGISTER}"));
        assert_eq!(
            seen.last().expect("seen")["body"]["topics"],
            json!(["t0", format!("sig_{sid}")])
        );
        let topics = server.list_topics();
        assert!(
            topics.contains(&format!("sig_{sid}")) && topics.contains(&"t0".into()),
            "{topics:?}"
        );
    }
}

#[test]
/// Feature line F000-10 (../shared/reference/seed-systems.md).
fn f000_10_a_push_to_sig_sid_reaches_only_that_connection() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let p = server.gw_publisher();
    let (mut a, mut b) = (GwClient::connect(&server), GwClient::connect(&server));
    let sid_a = a.register(REGISTER);
    b.register(REGISTER);
    a.sub_add(SUB_ADD, &["all"]);
    b.sub_add(SUB_ADD, &["all"]);
    p.publish(&format!("sig_{sid_a}"), "1", "for a");
    p.publish("all", "2", "everyone");
    assert_eq!(a.push(), (format!("sig_{sid_a}"), "for a".into()));
    assert_eq!(a.push(), ("all".into(), "everyone".into()));
    assert_eq!(b.push(), ("all".into(), "everyone".into()), "b got nothing before");
}

#[test]
/// Feature line F000-11 (../shared/reference/seed-systems.md).
fn f000_11_sub_add_and_sub_delete_need_the_topics_answer_header() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let p = server.gw_publisher();
    let mut c = GwClient::connect(&server);
    c.sub_add(SUB_ADD, &["marker"]);
    for prefix in ["", "/h"] {
        for uri in [SUB_ADD, SUB_DELETE] {
            let uri = format!("{prefix}{uri}");
            for (wanted, code) in [("no_topics", "4003"), ("empty_topics", "4004")] {
                let answer =
                    c.request_with(&uri, json!({"topics": ["t1"]}), json!({"wanted": wanted}));
                assert_eq!(answer["status"], 400, "{uri} {wanted}: {answer}");
                assert_eq!(answer["body"]["code"], code);
                assert_eq!(answer["body"]["message"], "invalid request");
            }
        }
    }
    only_marker(&p, &mut c, &["t1"], "marker");
}

#[test]
/// Feature line F000-12 (../shared/reference/seed-systems.md).
fn f000_12_the_upstream_topics_replace_the_clients() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let p = server.gw_publisher();
    let mut c = GwClient::connect(&server);
    c.sub_add(SUB_ADD, &["frontend-topic", "hq_100001_136"]);
    p.publish("frontend-topic", "1", "q139");
    p.publish("backend-topic", "2", "q139");
    p.publish("sig-test", "3", "sig-test-msg");
    p.publish("hq_100001_136", "4", "q136");
    assert_eq!(c.push(), ("backend-topic".into(), "q139".into()));
    assert_eq!(c.push(), ("sig-test".into(), "sig-test-msg".into()));
    assert_eq!(c.push(), ("hq_100001_136".into(), "q136".into()));
    // The same through an HTTP upstream's `topics` response header.
    let mut h = GwClient::connect(&server);
    h.sub_add(&format!("/h{SUB_ADD}"), &["frontend-topic"]);
    only_marker(&p, &mut h, &["frontend-topic"], "backend-topic");
}

#[test]
/// Feature line F000-13 (../shared/reference/seed-systems.md).
fn f000_13_codes_1000_to_1999_pass_through_and_change_nothing() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let p = server.gw_publisher();
    let mut c = GwClient::connect(&server);
    c.sub_add(SUB_ADD, &["marker"]);
    let answer =
        c.request_with(SUB_ADD, json!({"topics": ["hq_129"]}), json!({"wanted_code": "1001"}));
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["body"]["code"], "1001");
    assert_eq!(answer["body"]["message"], "wanted code: 1001");
    only_marker(&p, &mut c, &["hq_129"], "marker");
    // Any other non-zero code is taken as success (the original's "ignore").
    let answer =
        c.request_with(SUB_ADD, json!({"topics": ["hq_126"]}), json!({"wanted_code": "1"}));
    assert_eq!(
        (answer["status"].as_u64(), answer["body"]["message"].as_str()),
        (Some(200), Some("wanted code: 1"))
    );
    p.publish("hq_126", "x", "now subscribed");
    assert_eq!(c.push(), ("hq_126".into(), "now subscribed".into()));
}

#[test]
/// Feature line F000-14 (../shared/reference/seed-systems.md).
fn f000_14_codes_2000_to_2999_close_with_the_401_answer_as_payload() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    for prefix in ["", "/h"] {
        let mut c = GwClient::connect(&server);
        c.send_request(
            &format!("{prefix}{SUB_ADD}"),
            json!({"topics": ["t2"]}),
            json!({"wanted_code": "2001"}),
        );
        // Sent before the answer came: it waits its turn, and the turn never comes.
        c.send_request(&format!("{prefix}{PROXY}"), json!({}), json!({}));
        let (code, reason) = c.close_frame().expect("a close frame");
        assert_eq!(code, 1000);
        let v: serde_json::Value = serde_json::from_str(&reason).expect("json payload");
        assert_eq!(v["status"], 401, "{v}");
        assert_eq!(v["body"]["code"], "2001");
        assert_eq!(v["body"]["message"], "wanted code: 2001");
        assert_eq!(v["body"]["msgId"], "m1");
    }
    assert!(!server.list_topics().contains(&"t2".to_string()));
    assert!(
        tcp.requests_to(PROXY).is_empty() && http.requests_to(&format!("/h{PROXY}")).is_empty()
    );
}

#[test]
/// Feature line F000-15 (../shared/reference/seed-systems.md).
fn f000_15_unreachable_or_failing_upstreams_get_502_with_5021_to_5024() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_port = dead.local_addr().expect("addr").port();
    drop(dead);
    let quick = "timeout = { connect = 0.5, send = 0.5, read = 0.5 }";
    let config = format!(
        "{}{}{}{}",
        routes("", "tcp", tcp.port, quick),
        routes("/h", "http", http.port, quick),
        routes("/dead", "tcp", dead_port, quick),
        routes("/hdead", "http", dead_port, quick),
    );
    let server = Server::start(&config, 1);
    let mut c = GwClient::connect(&server);
    let cases = [
        ("/dead", json!({}), "5021", "failed to connect to upstream"),
        ("/hdead", json!({}), "5021", "failed to connect to upstream"),
        ("", json!({"wanted": "hang"}), "5022", "failed to request upstream"),
        ("/h", json!({"wanted": "hang"}), "5022", "failed to request upstream"),
        ("", json!({"wanted_code": "-1"}), "5023", "failed to request upstream"),
        ("/h", json!({"wanted_code": "-1"}), "5023", "failed to request upstream"),
        ("", json!({"wanted": "not_json"}), "5024", "failed to request upstream"),
        ("/h", json!({"wanted": "not_json"}), "5024", "failed to request upstream"),
        ("", json!({"wanted": "huge"}), "5024", "failed to request upstream"),
        ("/h", json!({"wanted": "huge"}), "5024", "failed to request upstream"),
    ];
    for (prefix, extra, code, message) in cases {
        let answer = c.request_with(&format!("{prefix}{PROXY}"), json!({}), extra.clone());
        assert_eq!(answer["status"], 502, "{prefix} {extra}: {answer}");
        assert_eq!(answer["body"]["code"], code, "{prefix} {extra}: {answer}");
        assert_eq!(answer["body"]["message"], message);
    }
    assert_eq!(c.request(PROXY, json!({}))["status"], 200, "the connection is fine");
}

#[test]
/// Feature line F000-16 (../shared/reference/seed-systems.md).
fn f000_16_sub_put_replaces_the_topic_set() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let p = server.gw_publisher();
    for prefix in ["", "/h"] {
        let mut c = GwClient::connect(&server);
        let sid = c.register(REGISTER);
        let put = format!("{prefix}{SUB_PUT}");
        assert_eq!(c.request(&put, json!({"topics": ["a", "b"]}))["status"], 200);
        assert_eq!(c.request(&put, json!({"topics": ["b", "c"]}))["status"], 200);
        only_marker(&p, &mut c, &["a"], "b");
        only_marker(&p, &mut c, &[], "c");
        // The connection's own sig_<sid> survives a full sync.
        only_marker(&p, &mut c, &[], &format!("sig_{sid}"));
        assert_eq!(c.request(&put, json!({"topics": []}))["status"], 200);
        only_marker(&p, &mut c, &["b", "c"], &format!("sig_{sid}"));
    }
}

#[test]
/// Feature line F000-17 (../shared/reference/seed-systems.md).
fn f000_17_sub_add_is_idempotent_and_sub_delete_removes_only_the_listed() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let p = server.gw_publisher();
    for prefix in ["", "/h"] {
        let mut c = GwClient::connect(&server);
        let (add, delete) = (format!("{prefix}{SUB_ADD}"), format!("{prefix}{SUB_DELETE}"));
        c.sub_add(&add, &["a", "b"]);
        c.sub_add(&add, &["a"]);
        p.publish("a", "1", "once");
        assert_eq!(c.push(), ("a".into(), "once".into()));
        assert_eq!(c.request(&delete, json!({"topics": ["a"]}))["status"], 200);
        only_marker(&p, &mut c, &["a"], "b");
    }
}

#[test]
/// Feature line F000-18 (../shared/reference/seed-systems.md).
fn f000_18_a_disconnect_frame_drops_every_topic_and_keeps_the_socket() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let p = server.gw_publisher();
    let mut c = GwClient::connect(&server);
    let sid = c.register(REGISTER);
    c.sub_add(SUB_ADD, &["hq_100001_129", "hq_100001_126"]);
    let answer = c.request(DISCONNECT, json!({}));
    assert_eq!(
        (answer["status"].as_u64(), answer["body"]["message"].as_str()),
        (Some(200), Some("upstream success"))
    );
    let sig = format!("sig_{sid}");
    assert!(server.list_topics().is_empty(), "{:?}", server.list_topics());
    c.sub_add(SUB_ADD, &["marker"]);
    only_marker(&p, &mut c, &["hq_100001_129", "hq_100001_126", &sig], "marker");
}

#[test]
/// Feature line F000-19 (../shared/reference/seed-systems.md).
fn f000_19_socket_close_drops_that_connections_topics_only() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 2);
    let (mut a, mut b) = (GwClient::connect(&server), GwClient::connect(&server));
    let sid_a = a.register(REGISTER);
    a.sub_add(SUB_ADD, &["shared", "only-a"]);
    b.sub_add(SUB_ADD, &["shared"]);
    drop(a);
    let mut topics = server.list_topics();
    for _ in 0..100 {
        if !topics.contains(&"only-a".to_string()) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
        topics = server.list_topics();
    }
    assert_eq!(topics, ["shared"], "sig_{sid_a} and only-a went with a");
    server.gw_publish("shared", "1", "still here");
    assert_eq!(b.push(), ("shared".into(), "still here".into()));
}

#[test]
/// Feature line F000-25 (../shared/reference/seed-systems.md).
fn f000_25_disconnect_notify_urls_run_on_close_unless_called() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let top = format!("[gateway]\ndisconnect_notify_urls = [\"{DISCONNECT}\"]\n");
    let server = start(&tcp, &http, &top, 1);
    let mut quiet = GwClient::connect(&server);
    let quiet_sid = quiet.register(REGISTER);
    drop(quiet);
    let notified = wait_for(|| {
        tcp.requests_to(DISCONNECT).into_iter().find(|r| r["header"]["sid"] == quiet_sid.as_str())
    });
    let header = &notified["header"];
    assert_eq!(header["appId"], "1");
    assert_eq!(header["Content-Type"], "application/json");
    assert!(header["ts"].is_number(), "{header}");
    let msg_id: f64 = header["msgId"].as_str().expect("text").parse().expect("a time");
    assert!((msg_id - header["ts"].as_f64().expect("ts")).abs() < 1e-6);
    // A client that called it itself is not called again.
    let mut polite = GwClient::connect(&server);
    let polite_sid = polite.register(REGISTER);
    assert_eq!(polite.request(DISCONNECT, json!({}))["status"], 200);
    drop(polite);
    let mut last = GwClient::connect(&server);
    let last_sid = last.register(REGISTER);
    drop(last);
    wait_for(|| {
        tcp.requests_to(DISCONNECT).into_iter().find(|r| r["header"]["sid"] == last_sid.as_str())
    });
    let polite_calls = tcp
        .requests_to(DISCONNECT)
        .iter()
        .filter(|r| r["header"]["sid"] == polite_sid.as_str())
        .count();
    assert_eq!(polite_calls, 1, "only its own call");
}

fn wait_for<T>(mut found: impl FnMut() -> Option<T>) -> T {
    for _ in 0..250 {
        if let Some(t) = found() {
            return t;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("not seen within 5 s");
}

#[test]
/// Feature line F000-31 (../shared/reference/seed-systems.md).
fn f000_31_proxy_forwards_and_changes_nothing() {
    let (tcp, http) = (Mock::tcp(), Mock::http());
    let server = start(&tcp, &http, "", 1);
    let p = server.gw_publisher();
    let mut c = GwClient::connect(&server);
    c.sub_add(SUB_ADD, &["marker"]);
    for prefix in ["", "/h"] {
        let uri = format!("{prefix}{PROXY}");
        let answer =
            c.request_with(&uri, json!({"topics": ["p1"]}), json!({"wanted": "status_503"}));
        assert_eq!(answer["status"], 503, "the upstream's status as is: {answer}");
        assert_eq!(answer["body"]["message"], "upstream success");
        assert_eq!(answer["body"]["resultData"], "null", "the body as is");
    }
    only_marker(&p, &mut c, &["p1"], "marker");
}
