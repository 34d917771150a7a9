//! Cluster-wide Pusher state with a real nats-server and several pushgate nodes on 127.0.0.1:
//! presence members and counts exact from any node, member events once per subscriber,
//! webhooks once per cluster, a killed node's members removed, a new node learning what the
//! others hold, termination and watchlists across nodes, and the partial-answer header when a
//! node does not answer. Skipped (with a message) where
//! nats-server is not installed. Never asserts timings: every wait is bounded and polled.

mod common;
mod hook_receiver;

use common::{
    cluster::{cluster_toml, nats_binary, start_nodes, start_slow_to_forget, wait_until, Nats},
    Client, Server,
};
use hook_receiver::{accepted_events, Receiver};
use serde_json::{json, Value};
use std::{collections::BTreeSet, time::Duration};

const WAIT: Duration = Duration::from_secs(15);
/// The vacate / member_removed delay in these tests (Pusher's is 3 s).
const DELAY_MS: u64 = 300;

fn nats() -> Option<Nats> {
    if nats_binary().is_none() {
        eprintln!("SKIPPED: nats-server is not installed");
        return None;
    }
    Some(Nats::start())
}

fn member(user: &str) -> String {
    json!({"user_id": user, "user_info": {"name": user}}).to_string()
}

/// The user ids `GET /channels/{channel}/users` lists on `node`.
fn users(node: &Server, channel: &str) -> BTreeSet<String> {
    let (status, body) = node.get_signed(&format!("channels/{channel}/users"), &[]);
    assert_eq!(status, 200, "{body}");
    let list = body["users"].as_array().cloned().unwrap_or_default();
    list.iter().filter_map(|u| u["id"].as_str().map(str::to_string)).collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Joins `channel` as `user` on `node` once every node lists `before`.
fn join(nodes: &[&Server], at: &Server, channel: &str, user: &str, before: &[&str]) -> Client {
    wait_until(|| nodes.iter().all(|n| users(n, channel) == set(before)));
    let mut client = at.client();
    let presence = client.join_presence(channel, &member(user));
    let mut ids: Vec<&str> = before.to_vec();
    if !ids.contains(&user) {
        ids.push(user);
    }
    let got: BTreeSet<String> = presence["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_string())
        .collect();
    assert_eq!(got, set(&ids), "{presence}");
    assert_eq!(presence["count"], ids.len());
    client
}

/// Reads until a member event; returns (event name, user id).
fn member_event(client: &mut Client) -> (String, String) {
    loop {
        let got = client.recv();
        let name = got["event"].as_str().unwrap_or("").to_string();
        if name.starts_with("pusher_internal:member_") {
            let data: Value =
                serde_json::from_str(got["data"].as_str().expect("data")).expect("json");
            let id = data["user_id"].as_str().expect("user_id").to_string();
            return (name.trim_start_matches("pusher_internal:").to_string(), id);
        }
    }
}

fn quiet(client: &mut Client) {
    if let Some(extra) = client.try_recv(Duration::from_millis(300)) {
        panic!("nothing more expected, got {extra}");
    }
}

#[test]
/// Feature line F003-25 (../shared/reference/seed-systems.md).
fn f003_25_presence_members_are_exact_across_three_nodes() {
    let Some(nats) = nats() else { return };
    let nodes = start_nodes(&nats, 3, 2, "");
    let all: Vec<&Server> = nodes.iter().collect();
    let ch = "presence-room";
    let mut a = join(&all, &nodes[0], ch, "u0", &[]);
    let mut b = join(&all, &nodes[1], ch, "u1", &["u0"]);
    assert_eq!(member_event(&mut a), ("member_added".into(), "u1".into()));
    let mut c = join(&all, &nodes[2], ch, "u2", &["u0", "u1"]);
    assert_eq!(member_event(&mut a), ("member_added".into(), "u2".into()));
    assert_eq!(member_event(&mut b), ("member_added".into(), "u2".into()));
    // A second connection of u0, on another node: nobody hears of it.
    let again = join(&all, &nodes[2], ch, "u0", &["u0", "u1", "u2"]);
    for node in &nodes {
        let (status, body) = node.get_signed(&format!("channels/{ch}"), &[("info", "user_count")]);
        assert_eq!(
            (status, &body["user_count"], &body["occupied"]),
            (200, &json!(3), &json!(true))
        );
        let (_, list) = node
            .get_signed("channels", &[("filter_by_prefix", "presence-"), ("info", "user_count")]);
        assert_eq!(list["channels"][ch]["user_count"], 3, "{list}");
    }
    drop(again);
    drop(b);
    assert_eq!(member_event(&mut a), ("member_removed".into(), "u1".into()));
    assert_eq!(member_event(&mut c), ("member_removed".into(), "u1".into()));
    wait_until(|| nodes.iter().all(|n| users(n, ch) == set(&["u0", "u2"])));
    quiet(&mut a);
    quiet(&mut c);
}

#[test]
fn subscription_counts_and_channel_lists_are_exact_from_any_node() {
    let Some(nats) = nats() else { return };
    let nodes = start_nodes(&nats, 3, 2, "");
    let mut clients = Vec::new();
    for (node, channel) in [(0, "news"), (0, "news"), (1, "news"), (2, "sports")] {
        let mut client = nodes[node].client();
        client.subscribe(channel);
        clients.push(client);
    }
    for node in &nodes {
        let (status, body) = node.get_signed("channels/news", &[("info", "subscription_count")]);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"occupied": true, "subscription_count": 3}));
        let (_, list) = node.get_signed("channels", &[("info", "subscription_count")]);
        assert_eq!(
            list,
            json!({"channels": {"news": {"subscription_count": 3}, "sports": {"subscription_count": 1}}})
        );
        let (_, empty) = node.get_signed("channels/nobody", &[]);
        assert_eq!(empty, json!({"occupied": false}));
    }
    drop(clients);
    wait_until(|| {
        let (_, list) = nodes[1].get_signed("channels", &[]);
        list == json!({"channels": {}})
    });
}

fn hooks_toml(receiver: &Receiver) -> String {
    format!(
        "[hooks]\nvacate_delay_ms = {DELAY_MS}\ninitial_backoff_ms = 50\n\n\
         [[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\n\n\
         [[apps.webhooks]]\nurl = \"{}\"\n\
         event_types = [\"channel_occupied\", \"channel_vacated\", \"member_added\", \"member_removed\"]\n",
        receiver.url("/pusher")
    )
}

/// The webhook events received, as sorted "name:channel[:user]" lines.
fn hook_lines(receiver: &Receiver) -> Vec<String> {
    let mut lines: Vec<String> = receiver
        .pusher_events("/pusher")
        .iter()
        .map(|e| {
            let user = e["user_id"].as_str().map(|u| format!(":{u}")).unwrap_or_default();
            format!(
                "{}:{}{user}",
                e["name"].as_str().unwrap_or("?"),
                e["channel"].as_str().unwrap_or("?")
            )
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn webhooks_fire_once_per_cluster() {
    let Some(nats) = nats() else { return };
    let receiver = Receiver::start();
    let nodes = start_nodes(&nats, 3, 2, &hooks_toml(&receiver));
    let all: Vec<&Server> = nodes.iter().collect();
    let ch = "presence-hooks";
    let a = join(&all, &nodes[0], ch, "u0", &[]);
    let b = join(&all, &nodes[1], ch, "u0", &["u0"]);
    let c = join(&all, &nodes[2], ch, "u1", &["u0"]);
    let mut public = Vec::new();
    for node in &nodes {
        let mut client = node.client();
        client.subscribe("plain");
        public.push(client);
    }
    let up = [
        "channel_occupied:plain",
        "channel_occupied:presence-hooks",
        "member_added:presence-hooks:u0",
        "member_added:presence-hooks:u1",
    ];
    receiver.wait_for(WAIT, |r| accepted_events(r, "/pusher").len() >= up.len());
    std::thread::sleep(Duration::from_millis(DELAY_MS * 3));
    assert_eq!(hook_lines(&receiver), up);
    drop((a, b, c, public));
    let down = [
        "channel_occupied:plain",
        "channel_occupied:presence-hooks",
        "channel_vacated:plain",
        "channel_vacated:presence-hooks",
        "member_added:presence-hooks:u0",
        "member_added:presence-hooks:u1",
        "member_removed:presence-hooks:u0",
        "member_removed:presence-hooks:u1",
    ];
    receiver.wait_for(WAIT, |r| accepted_events(r, "/pusher").len() >= down.len());
    std::thread::sleep(Duration::from_millis(DELAY_MS * 3));
    assert_eq!(hook_lines(&receiver), down);
}

#[test]
fn a_killed_node_has_its_members_removed_with_events_and_one_webhook() {
    let Some(nats) = nats() else { return };
    let receiver = Receiver::start();
    let mut nodes = start_nodes(&nats, 3, 1, &hooks_toml(&receiver));
    let ch = "presence-crash";
    let mut a;
    let mut c;
    {
        let all: Vec<&Server> = nodes.iter().collect();
        a = join(&all, &nodes[0], ch, "u0", &[]);
        let b = join(&all, &nodes[1], ch, "u1", &["u0"]);
        c = join(&all, &nodes[2], ch, "u2", &["u0", "u1"]);
        std::mem::forget(b);
    }
    assert_eq!(member_event(&mut a), ("member_added".into(), "u1".into()));
    assert_eq!(member_event(&mut a), ("member_added".into(), "u2".into()));
    // SIGKILL: the node says nothing; the others notice its silence (node_timeout_ms).
    drop(nodes.remove(1));
    assert_eq!(member_event(&mut a), ("member_removed".into(), "u1".into()));
    assert_eq!(member_event(&mut c), ("member_removed".into(), "u1".into()));
    wait_until(|| nodes.iter().all(|n| users(n, ch) == set(&["u0", "u2"])));
    let removed = |r: &[hook_receiver::Received]| {
        accepted_events(r, "/pusher").iter().filter(|e| e["name"] == "member_removed").count()
    };
    receiver.wait_for(WAIT, |r| removed(r) >= 1);
    std::thread::sleep(Duration::from_millis(DELAY_MS * 3));
    assert_eq!(removed(&receiver.received()), 1, "{:?}", hook_lines(&receiver));
    quiet(&mut a);
}

#[test]
fn a_new_node_learns_the_presence_the_others_hold_and_a_restarted_one_clears_its_old() {
    let Some(nats) = nats() else { return };
    let nodes = start_nodes(&nats, 2, 2, "");
    let ch = "presence-late";
    let mut a;
    {
        let all: Vec<&Server> = nodes.iter().collect();
        a = join(&all, &nodes[0], ch, "u0", &[]);
        let b = join(&all, &nodes[1], ch, "u1", &["u0"]);
        std::mem::forget(b);
    }
    assert_eq!(member_event(&mut a), ("member_added".into(), "u1".into()));
    let mut nodes = nodes;
    // node-1 dies and comes back at once under the same name (sooner than the timeout):
    // its snapshot, empty now, replaces what node-0 held of it.
    drop(nodes.remove(1));
    let restarted = Server::start(&cluster_toml(&nats, "node-1", ""), 2);
    assert_eq!(member_event(&mut a), ("member_removed".into(), "u1".into()));
    // A new node learns u0 from node-0's snapshot.
    let fresh = Server::start(&cluster_toml(&nats, "node-2", ""), 1);
    let everyone = [&nodes[0], &restarted, &fresh];
    wait_until(|| everyone.iter().all(|n| users(n, ch) == set(&["u0"])));
    let _c = join(&everyone, &fresh, ch, "u2", &["u0"]);
    assert_eq!(member_event(&mut a), ("member_added".into(), "u2".into()));
}

#[test]
fn a_node_restarted_with_fewer_shards_leaves_no_members_of_its_old_shards() {
    let Some(nats) = nats() else { return };
    // A timeout far longer than the test: only the restarted node's snapshot can clear it.
    let section = |name: &str| {
        format!(
            "[cluster]\nadapter = \"nats\"\nservers = [\"{}\"]\nnode = \"{name}\"\n\
             heartbeat_ms = 200\nnode_timeout_ms = 600000\n",
            nats.url()
        )
    };
    let node0 = Server::start(&section("node-0"), 1);
    let node1 = Server::start(&section("node-1"), 2);
    wait_until(|| node0.cluster_metric("nodes") == 1 && node1.cluster_metric("nodes") == 1);
    // Members on eight channels: their home shards on node-1 are both of its shards.
    let channels: Vec<String> = (0..8).map(|i| format!("presence-shrink-{i}")).collect();
    for ch in &channels {
        let client = join(&[&node0, &node1], &node1, ch, "u1", &[]);
        std::mem::forget(client);
    }
    drop(node1);
    let restarted = Server::start(&section("node-1"), 1);
    for ch in &channels {
        wait_until(|| users(&node0, ch).is_empty() && users(&restarted, ch).is_empty());
    }
}

#[test]
fn terminate_connections_reaches_every_node() {
    let Some(nats) = nats() else { return };
    let nodes = start_nodes(&nats, 3, 2, "");
    let mut alice = nodes[2].client();
    alice.sign_in(&json!({"id": "alice"}).to_string());
    let mut bob = nodes[1].client();
    bob.sign_in(&json!({"id": "bob"}).to_string());
    let (status, body) = nodes[0].post("users/alice/terminate_connections", &json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(alice.close_code(), Some(4009));
    bob.subscribe("still-here");
}

#[test]
fn watchlists_follow_users_on_other_nodes() {
    let Some(nats) = nats() else { return };
    let nodes = start_nodes(&nats, 2, 2, "");
    let mut watcher = nodes[0].client();
    watcher.sign_in(&json!({"id": "w", "watchlist": ["bob"]}).to_string());
    let first = watchlist_event(&mut watcher);
    assert_eq!(first, ("offline".into(), "bob".into()));
    let mut bob = nodes[1].client();
    bob.sign_in(&json!({"id": "bob"}).to_string());
    assert_eq!(watchlist_event(&mut watcher), ("online".into(), "bob".into()));
    drop(bob);
    assert_eq!(watchlist_event(&mut watcher), ("offline".into(), "bob".into()));
}

fn watchlist_event(client: &mut Client) -> (String, String) {
    let got = client.recv();
    assert_eq!(got["event"], "pusher_internal:watchlist_events", "{got}");
    let data: Value = serde_json::from_str(got["data"].as_str().expect("data")).expect("json");
    let event = &data["events"][0];
    (
        event["name"].as_str().unwrap_or("").to_string(),
        event["user_ids"][0].as_str().unwrap_or("").to_string(),
    )
}

/// GET a signed Pusher REST path on `node`; returns (status, body, `X-Pushgate-Partial`).
fn get_with_partial(node: &Server, action: &str, params: &[(&str, &str)]) -> (u16, Value, bool) {
    let path = format!("/apps/{}/{action}", common::APP_ID);
    let query = common::sign_with("GET", &path, "", params, common::now());
    let url = format!("http://127.0.0.1:{}{path}?{query}", node.port);
    let mut reply = common::agent().get(&url).call().expect("http request");
    let partial = reply.headers().get("x-pushgate-partial").is_some_and(|v| v == "true");
    let text = reply.body_mut().read_to_string().unwrap_or_default();
    (reply.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::String(text)), partial)
}

#[test]
fn an_answer_missing_a_node_says_so_with_x_pushgate_partial() {
    let Some(nats) = nats() else { return };
    // A node that dies stays in the live set for a minute here, so queries still ask it and
    // go without its answer after query_timeout_ms.
    let mut nodes = start_slow_to_forget(&nats, 3);
    let mut one = nodes[1].client();
    one.subscribe("partial");
    let mut two = nodes[2].client();
    two.subscribe("partial");
    let count = [("info", "subscription_count")];
    let (status, body, partial) = get_with_partial(&nodes[0], "channels/partial", &count);
    assert_eq!((status, partial), (200, false), "{body}");
    assert_eq!(body, json!({"occupied": true, "subscription_count": 2}));
    let (_, list, partial) = get_with_partial(&nodes[0], "channels", &[]);
    assert!(!partial, "{list}");
    assert_eq!(list, json!({"channels": {"partial": {}}}));
    // SIGKILL node-2: node-0 still counts it as live and asks it in vain.
    drop(two);
    drop(nodes.remove(2));
    let (status, body, partial) = get_with_partial(&nodes[0], "channels/partial", &count);
    assert_eq!((status, partial), (200, true), "{body}");
    assert_eq!(body, json!({"occupied": true, "subscription_count": 1}));
    let (status, list, partial) = get_with_partial(&nodes[0], "channels", &[]);
    assert_eq!((status, partial), (200, true), "{list}");
    assert_eq!(list, json!({"channels": {"partial": {}}}));
    drop(one);
}
