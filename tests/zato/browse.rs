//! Queue browsing for admins (F002-26, F002-27): GD and in-RAM messages listed without being
//! consumed, in pages, searched in their first 64 bytes; one message in detail, updated in
//! place and deleted.

use crate::{
    common::zato::{topics, Api, DataDir, ADMIN, USER},
    start,
};
use serde_json::{json, Value};

fn prefixes(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["data_prefix_short"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
/// Feature line F002-26 (../shared/reference/seed-systems.md).
fn f002_26_browsing_lists_gd_and_ram_messages_in_pages_searching_the_first_64_bytes() {
    let dir = DataDir::new("f26");
    let server = start(&dir, "", &topics(&["/t"]));
    let api = Api::new(&server, USER);
    let admin = Api::new(&server, ADMIN);
    let key = api.subscribe_ok("/t");
    let padding = "x".repeat(70);
    for i in 0..7 {
        // The word "needle" is in the first 64 bytes of the even ones only; every message has
        // "late" after byte 64.
        let data = if i % 2 == 0 {
            format!("m{i} needle {padding} late")
        } else {
            format!("m{i} {padding} late")
        };
        api.publish_ok("/t", &data, json!({"has_gd": i < 3}));
    }
    let page = admin.admin("GET", &format!("queue?sub_key={key}&page_size=3"), None);
    assert_eq!(page["total"], 7);
    assert_eq!(page["num_pages"], 3);
    assert_eq!(page["has_next_page"], true);
    let first: Vec<String> = prefixes(&page).iter().map(|p| p[..2].to_string()).collect();
    assert_eq!(first, ["m0", "m1", "m2"]);
    assert!(prefixes(&page).iter().all(|p| p.len() == 64), "64-byte prefixes only");
    let last = admin.admin("GET", &format!("queue?sub_key={key}&page_size=3&page=3"), None);
    assert_eq!(prefixes(&last).len(), 1);
    assert_eq!(last["has_next_page"], false);

    let gd = admin.admin("GET", &format!("queue?sub_key={key}&has_gd=true"), None);
    assert_eq!(gd["total"], 3);
    let ram = admin.admin("GET", &format!("queue?sub_key={key}&has_gd=false"), None);
    assert_eq!(ram["total"], 4);
    let found = admin.admin("GET", &format!("queue?sub_key={key}&query=needle"), None);
    let found: Vec<String> = prefixes(&found).iter().map(|p| p[..2].to_string()).collect();
    assert_eq!(found, ["m0", "m2", "m4", "m6"]);
    let beyond = admin.admin("GET", &format!("queue?sub_key={key}&query=late"), None);
    assert_eq!(beyond["total"], 0, "only the first 64 bytes are searched");

    // Nothing was consumed.
    assert_eq!(api.messages("/t", &key).len(), 7);
}

#[test]
/// Feature line F002-27 (../shared/reference/seed-systems.md).
fn f002_27_one_message_in_detail_updated_in_place_and_deleted() {
    let dir = DataDir::new("f27");
    let tables = topics(&["/t"]);
    let server = start(&dir, "", &tables);
    let api = Api::new(&server, USER);
    let admin = Api::new(&server, ADMIN);
    let key = api.subscribe_ok("/t");
    let first = api.publish_ok("/t", "first", json!({"has_gd": true, "correl_id": "c-1"}));
    let second = api.publish_ok("/t", "second", json!({"has_gd": true}));
    let third = api.publish_ok("/t", "third", json!({}));

    let path = |id: &str| format!("message?sub_key={key}&msg_id={id}");
    let detail = admin.admin("GET", &path(&second), None);
    assert_eq!(detail["data"], "second");
    assert_eq!(detail["msg_id"], second.as_str());
    assert_eq!(detail["published_by"], USER.0);
    assert_eq!(detail["pub_pattern_matched"], "**");
    assert_eq!(detail["sub_pattern_matched"], "**");
    assert_eq!(detail["priority"], 5);
    assert!(detail["expiration_time_iso"].is_string() && detail["pub_time_iso"].is_string());

    let changes = json!({"data": "second, edited", "priority": 9, "expiration": 3600});
    let updated = admin.admin("PATCH", &path(&second), Some(changes));
    assert_eq!(
        (updated["data"].as_str(), updated["priority"].as_u64()),
        (Some("second, edited"), Some(9))
    );
    assert_eq!(updated["expiration"], 3600);
    let (status, _, _) = admin.request(
        "PATCH",
        &format!("/zato/pubsub/admin/{}", path(&first)),
        Some("{\"priority\": 11}"),
    );
    assert_eq!(status, 400, "the update is checked as a publication is");

    admin.admin("DELETE", &path(&third), None);
    let (status, _, _) =
        admin.request("GET", &format!("/zato/pubsub/admin/{}", path(&third)), None);
    assert_eq!(status, 404);

    // The update is on disk: after a restart the edited message leads the queue.
    drop(server);
    let server = start(&dir, "", &tables);
    let api = Api::new(&server, USER);
    let got = api.messages("/t", &key);
    let data: Vec<&str> = got.iter().filter_map(|m| m["data"].as_str()).collect();
    assert_eq!(data, ["second, edited", "first"], "third was deleted, second moved up");
    assert_eq!(got[0]["priority"], 9);
    assert_eq!(got[1]["correl_id"], "c-1");
}
