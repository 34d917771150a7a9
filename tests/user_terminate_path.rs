//! `POST /users/{id}/terminate_connections` without `/apps/{id}` (issue 8, "also in this
//! issue"): the official Python SDK 3.3.4 calls this path; the app comes from `auth_key`.

mod common;

use common::{hmac_hex, now, sign, Client, Server, KEY, SECRET};
use serde_json::json;

const TWO_APPS: &str = "[[apps]]\nid = \"app-id\"\nkey = \"app-key\"\nsecret = \"app-secret\"\n\n\
    [[apps]]\nid = \"other-id\"\nkey = \"other-key\"\nsecret = \"other-secret\"\n";

/// A client of the app with `key` / `secret`, signed in as `user`.
fn signed_in(server: &Server, key: &str, secret: &str, user: &str) -> Client {
    let mut client =
        Client::connect(server, &format!("/app/{key}?protocol=7")).expect("client connects");
    let user_data = json!({ "id": user }).to_string();
    let auth =
        format!("{key}:{}", hmac_hex(secret, &format!("{}::user::{user_data}", client.socket_id)));
    client.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}));
    let reply = client.recv();
    assert_eq!(reply["event"], "pusher:signin_success", "{reply}");
    client
}

/// As the SDK sends it: a signed POST with body `{}` to the path without `/apps/{id}`.
fn terminate(server: &Server, user: &str, key: &str, secret: &str) -> u16 {
    let path = format!("/users/{user}/terminate_connections");
    let query = sign("POST", &path, "{}", key, secret, now());
    server.post_raw(&format!("{path}?{query}"), "{}").0
}

#[test]
fn terminate_connections_without_the_apps_prefix_closes_that_apps_user() {
    let server = Server::start(TWO_APPS, 2);
    let mut alice = signed_in(&server, KEY, SECRET, "alice");
    let mut other_alice = signed_in(&server, "other-key", "other-secret", "alice");
    let mut bob = signed_in(&server, KEY, SECRET, "bob");
    assert_eq!(
        terminate(&server, "alice", KEY, SECRET),
        200,
        "POST /users/alice/terminate_connections signed with app-key"
    );
    assert_eq!(alice.close_code(), Some(4009));
    assert_eq!(terminate(&server, "bob", KEY, "wrong-secret"), 401, "a bad signature");
    // The same user id in the other app, and another user of this app, stay connected.
    other_alice.sync();
    bob.sync();
    assert_eq!(terminate(&server, "alice", "other-key", "other-secret"), 200);
    assert_eq!(other_alice.close_code(), Some(4009));
    bob.sync();
}
