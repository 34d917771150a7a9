//! Watchlist events: a signed-in connection hears the status of the users on its sign-in's
//! `watchlist` at once, then every change (`online` when a user's first connection signs in
//! anywhere, `offline` when its last one goes), over both shards.

mod common;

use common::{clients_on_both_shards, Client, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn app(extra: &str) -> String {
    format!("[[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\n{extra}")
}

fn user(id: &str, watchlist: &[&str]) -> String {
    json!({"id": id, "watchlist": watchlist}).to_string()
}

/// The next message, which must be `pusher_internal:watchlist_events`; returns its events as
/// (name, user ids) pairs.
fn recv_events(client: &mut Client) -> Vec<(String, Vec<String>)> {
    let got = client.recv();
    assert_eq!(got["event"], "pusher_internal:watchlist_events", "{got}");
    assert!(got.get("channel").is_none(), "{got}");
    let data: Value = serde_json::from_str(got["data"].as_str().expect("data is a string"))
        .expect("data is JSON");
    let events = data["events"].as_array().expect("events").iter();
    events
        .map(|e| {
            let ids = e["user_ids"].as_array().expect("user_ids").iter();
            let ids = ids.map(|id| id.as_str().expect("string id").to_string()).collect();
            (e["name"].as_str().expect("name").to_string(), ids)
        })
        .collect()
}

/// Reads watchlist events until what `client` has heard equals `want` (user -> status). Every
/// event must change what it heard: each user's status at sign-in comes once, and only a
/// sign-in still crossing between shards may follow a first `offline` with `online`.
fn settle(client: &mut Client, want: &BTreeMap<String, String>) {
    let mut heard = BTreeMap::new();
    while &heard != want {
        for (name, ids) in recv_events(client) {
            for id in ids {
                assert!(want.contains_key(&id), "{name} for {id}, who is not watched");
                let before = heard.insert(id.clone(), name.clone());
                assert_ne!(before.as_deref(), Some(name.as_str()), "{id} was already {name}");
            }
        }
    }
}

fn statuses(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(id, s)| (id.to_string(), s.to_string())).collect()
}

fn one_event(name: &str, id: &str) -> Vec<(String, Vec<String>)> {
    vec![(name.to_string(), vec![id.to_string()])]
}

#[test]
fn a_watcher_hears_the_status_at_sign_in_and_every_change_over_both_shards() {
    let server = Server::start("", 2);
    let (mut zero, mut one) = clients_on_both_shards(&server, 3);
    // Users a and b sign in on both shards before anyone watches them.
    let (mut a0, mut a1) = (zero.pop().expect("a"), one.pop().expect("a"));
    a0.sign_in(&user("a", &[]));
    a1.sign_in(&user("a", &[]));
    let mut b = zero.pop().expect("b");
    b.sign_in(&user("b", &[]));
    // One watcher on each shard, watching users homed anywhere (ids hash over both shards).
    let watched = ["a", "b", "c", "d", "e", "f"];
    let mut watchers = vec![zero.pop().expect("w"), one.pop().expect("w")];
    for (i, w) in watchers.iter_mut().enumerate() {
        w.sign_in(&user(&format!("w{i}"), &watched));
        let expected = statuses(&[
            ("a", "online"),
            ("b", "online"),
            ("c", "offline"),
            ("d", "offline"),
            ("e", "offline"),
            ("f", "offline"),
        ]);
        settle(w, &expected);
    }
    // c's first connection: online, once, to each watcher.
    let mut c = one.pop().expect("c");
    c.sign_in(&user("c", &[]));
    for w in &mut watchers {
        assert_eq!(recv_events(w), one_event("online", "c"));
    }
    // a keeps a connection on shard 1: dropping the one on shard 0 changes nothing; dropping
    // the last makes a offline. Had the first drop said anything, it would come before this.
    drop(a0);
    drop(a1);
    for w in &mut watchers {
        assert_eq!(recv_events(w), one_event("offline", "a"));
    }
    drop(c);
    for w in &mut watchers {
        assert_eq!(recv_events(w), one_event("offline", "c"));
    }
    // A watcher that leaves hears nothing more, and the other still hears everything.
    let gone = watchers.pop().expect("w1");
    drop(gone);
    let mut d = server.client();
    d.sign_in(&user("d", &[]));
    assert_eq!(recv_events(&mut watchers[0]), one_event("online", "d"));
    // b never changed, so nothing was said of it.
    watchers[0].subscribe("control");
    common::assert_quiet(&server, &mut watchers[0], "control");
    drop(b);
}

#[test]
fn a_watcher_that_is_itself_watched_and_signs_in_again_as_someone_else() {
    let server = Server::start("", 2);
    let mut x = server.client();
    x.sign_in(&user("x", &["y"]));
    settle(&mut x, &statuses(&[("y", "offline")]));
    let mut y = server.client();
    y.sign_in(&user("y", &["x"]));
    settle(&mut y, &statuses(&[("x", "online")]));
    assert_eq!(recv_events(&mut x), one_event("online", "y"));
    // y's connection signs in again as z, watching nobody: y went offline and x hears it; the
    // connection no longer watches x.
    y.sign_in(&user("z", &[]));
    assert_eq!(recv_events(&mut x), one_event("offline", "y"));
    drop(x);
    y.subscribe("control");
    common::assert_quiet(&server, &mut y, "control");
}

#[test]
fn duplicates_and_non_string_ids_in_a_watchlist() {
    let server = Server::start("", 1);
    let mut n = server.client();
    n.sign_in(&json!({"id": "7"}).to_string());
    let mut w = server.client();
    let too_long = "x".repeat(129);
    let list = json!(["7", 7, "7", null, "", {"id": 1}, too_long, "8"]);
    w.sign_in(&json!({"id": "w", "watchlist": list}).to_string());
    // "7" and 7 are one user, listed once; entries that are not ids (or too long for one) are
    // skipped.
    settle(&mut w, &statuses(&[("7", "online"), ("8", "offline")]));
    drop(n);
    assert_eq!(recv_events(&mut w), one_event("offline", "7"));
}

#[test]
fn watchlist_events_can_be_turned_off_per_app() {
    let server = Server::start(&app("watchlist_events = false\n"), 2);
    let mut w = server.client();
    w.sign_in(&user("w", &["a"]));
    let mut a = server.client();
    a.sign_in(&user("a", &[]));
    w.subscribe("control");
    common::assert_quiet(&server, &mut w, "control");
}

/// Applies watchlist events to `status` until every one of `users` is `want`; an event that
/// does not change a user's status (online twice, say) fails the test.
fn until_all(
    client: &mut Client,
    status: &mut BTreeMap<String, String>,
    users: &[String],
    want: &str,
) {
    while users.iter().any(|u| status.get(u).map(String::as_str) != Some(want)) {
        for (name, ids) in recv_events(client) {
            for id in ids {
                let before = status.insert(id.clone(), name.clone());
                assert_ne!(before.as_deref(), Some(name.as_str()), "{id} was already {name}");
            }
        }
    }
}

#[test]
fn status_changes_keep_their_order_when_the_rings_are_full() {
    // A one-message ring between the shards: notices wait for room and must not overtake.
    let server = Server::start("ring_capacity = 1\n", 2);
    let users: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
    let mut watcher = server.client();
    watcher.sign_in(&json!({"id": "w", "watchlist": users}).to_string());
    let mut status: BTreeMap<String, String> =
        users.iter().map(|u| (u.clone(), "offline".to_string())).collect();
    settle(&mut watcher, &status);
    for _round in 0..3 {
        let mut conns = Vec::new();
        for id in &users {
            for _ in 0..2 {
                let mut c = server.client();
                c.sign_in(&user(id, &[]));
                conns.push(c);
            }
        }
        until_all(&mut watcher, &mut status, &users, "online");
        drop(conns);
        until_all(&mut watcher, &mut status, &users, "offline");
    }
    watcher.subscribe("control");
    common::assert_quiet(&server, &mut watcher, "control");
}

#[test]
fn a_quick_return_and_signing_in_again_as_oneself_tell_watchers_nothing() {
    let server = Server::start(&app("watchlist_offline_delay_ms = 300\n"), 2);
    let mut w = server.client();
    w.sign_in(&user("w", &["a"]));
    settle(&mut w, &statuses(&[("a", "offline")]));
    let mut a = server.client();
    a.sign_in(&user("a", &[]));
    assert_eq!(recv_events(&mut w), one_event("online", "a"));
    // a reconnects at once: whichever the server sees first, the close or the new sign-in, a
    // is never reported offline.
    drop(a);
    let mut again = server.client();
    again.sign_in(&user("a", &[]));
    // Signing in again as a, now with a watchlist: the connection hears its list, watchers of a
    // hear nothing.
    again.sign_in(&user("a", &["w"]));
    settle(&mut again, &statuses(&[("w", "online")]));
    // Again, adding v: only v's status comes; w, already watched, is not told twice.
    again.sign_in(&user("a", &["w", "v"]));
    assert_eq!(recv_events(&mut again), one_event("offline", "v"));
    std::thread::sleep(std::time::Duration::from_millis(600));
    w.subscribe("control");
    common::assert_quiet(&server, &mut w, "control");
    // Gone for good: offline once the delay has passed.
    drop(again);
    assert_eq!(recv_events(&mut w), one_event("offline", "a"));
}
