//! What a route's action does with its upstream's answer, as `ht-msg-sub` and the original's
//! topic index do it: the `code` ranges (1000-1999 passed through with no change, 2000-2999 end
//! the connection with 401), the `topics` answer header (4003 missing, 4004 empty for sub_add
//! and sub_delete), then the change to the connection's topics, and the answer.
//!
//! | action     | topics of the connection                                   |
//! |------------|------------------------------------------------------------|
//! | register   | add the client's topics and `sig_<sid>`; `resultData.sid`  |
//! | sub_add    | add the upstream's list                                    |
//! | sub_put    | become the upstream's list (the client's if it sent none)  |
//! | sub_delete | remove the upstream's list                                 |
//! | disconnect | remove all (the socket stays open)                         |
//! | proxy      | nothing                                                    |
//!
//! Two rules of ours: `sub_put` keeps the connection's own `sig_<sid>` (a push to one
//! connection must not depend on the client's next full sync), and no connection may hold the
//! `sig_` topic of another connection (it is dropped from any list).

use super::{request::Job, table::Action, upstream::Answer, Gateway};
use crate::engine::{conn::ConnKey, shard::Shard};
use ahash::AHashSet;
use serde_json::{Map, Value};
use std::rc::Rc;

/// The answer to send, and whether it ends the connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: u16,
    pub body: Value,
    pub close: bool,
}

impl Outcome {
    fn answer(status: u16, body: Map<String, Value>) -> Outcome {
        Outcome { status, body: Value::Object(body), close: false }
    }

    /// The upstream's body with the gateway's code and message in it (the original's 4003).
    fn refused(mut body: Map<String, Value>, code: &str, message: &str) -> Outcome {
        body.insert("code".into(), Value::String(code.into()));
        body.insert("message".into(), Value::String(message.into()));
        Outcome::answer(400, body)
    }
}

/// The numeric value of `body.code` (a string or a number; anything else counts as 0).
fn code_of(body: &Map<String, Value>) -> f64 {
    match body.get("code") {
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0.0),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Applies `answer` for connection `key` and returns what to tell the client.
pub fn conclude(
    gw: &Gateway,
    shard: &Rc<Shard>,
    key: ConnKey,
    action: Action,
    job: &Job,
    answer: Answer,
) -> Outcome {
    let Answer { status, mut body, topics } = answer;
    let code = code_of(&body);
    if (1000.0..2000.0).contains(&code) {
        return Outcome::answer(status, body);
    }
    if (2000.0..3000.0).contains(&code) {
        return Outcome { status: 401, body: Value::Object(body), close: true };
    }
    let listed = match action {
        Action::Proxy => return Outcome::answer(status, body),
        Action::SubAdd | Action::SubDelete => {
            let Some(header) = topics else {
                return Outcome::refused(body, "4003", "invalid request");
            };
            let list = split(&header);
            if list.is_empty() {
                return Outcome::refused(body, "4004", "invalid request");
            }
            list
        }
        Action::SubPut => topics.as_deref().map_or_else(|| job.topics.clone(), split),
        Action::Register => job.topics.clone(),
        Action::Disconnect => Vec::new(),
    };
    let own = gw.sig(shard, key);
    let listed: Vec<String> = listed
        .into_iter()
        .filter(|t| *t == own || gw.shared.sids.addr_of_topic(t).is_none())
        .collect();
    let max = gw.config.gateway.max_topics_per_connection;
    let held = held_topics(shard, key);
    let changed = match action {
        Action::Register | Action::SubAdd => add(shard, key, &held, &listed, max),
        Action::SubPut => put(shard, key, &held, listed, &own, max),
        Action::SubDelete => {
            shard.unsubscribe_many(key, &listed.iter().map(String::as_str).collect::<Vec<_>>());
            Ok(())
        }
        Action::Disconnect => {
            shard.unsubscribe_many(key, &held.iter().map(String::as_str).collect::<Vec<_>>());
            Ok(())
        }
        Action::Proxy => Ok(()),
    };
    if changed.is_err() {
        let message = format!("too many topics: at most {max} per connection");
        return Outcome::refused(body, "4005", &message);
    }
    if action == Action::Register {
        let sid = own.strip_prefix(super::sid::SIG).unwrap_or_default().to_string();
        let mut data = match body.remove("resultData") {
            Some(Value::Object(data)) => data,
            None | Some(Value::Null) => Map::new(),
            Some(origin) => Map::from_iter([("origin".to_string(), origin)]),
        };
        data.insert("sid".into(), Value::String(sid));
        body.insert("resultData".into(), Value::Object(data));
    }
    Outcome::answer(200, body)
}

/// The topics of a `topics` header: comma-separated, trimmed, empty names left out.
pub fn split(header: &str) -> Vec<String> {
    header.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// The connection is over its topic cap; nothing was changed.
struct OverCap;

/// The topics connection `key` holds.
fn held_topics(shard: &Shard, key: ConnKey) -> AHashSet<String> {
    let state = shard.state.borrow();
    match state.conns.get(key.index()).filter(|c| c.generation == key.generation()) {
        Some(conn) => state.topics.names_of(conn).into_iter().map(String::from).collect(),
        None => AHashSet::new(),
    }
}

fn add(
    shard: &Shard,
    key: ConnKey,
    held: &AHashSet<String>,
    listed: &[String],
    max: usize,
) -> Result<(), OverCap> {
    let new: AHashSet<&String> = listed.iter().filter(|t| !held.contains(*t)).collect();
    if held.len() + new.len() > max {
        return Err(OverCap);
    }
    for topic in listed.iter().filter(|t| new.contains(t)) {
        shard.subscribe(key, topic);
    }
    Ok(())
}

fn put(
    shard: &Shard,
    key: ConnKey,
    held: &AHashSet<String>,
    listed: Vec<String>,
    own: &str,
    max: usize,
) -> Result<(), OverCap> {
    let mut wanted: AHashSet<String> = listed.into_iter().collect();
    if held.contains(own) {
        wanted.insert(own.to_string());
    }
    if wanted.len() > max {
        return Err(OverCap);
    }
    let gone: Vec<&str> =
        held.iter().filter(|t| !wanted.contains(*t)).map(String::as_str).collect();
    shard.unsubscribe_many(key, &gone);
    for topic in wanted.iter().filter(|t| !held.contains(*t)) {
        shard.subscribe(key, topic);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_headers_split_on_commas() {
        assert_eq!(split("a,b"), ["a", "b"]);
        assert_eq!(split(" a , b ,,"), ["a", "b"]);
        assert!(split("").is_empty() && split(" , ").is_empty());
    }

    #[test]
    fn codes_are_read_from_strings_or_numbers() {
        let body = |v: Value| Map::from_iter([("code".to_string(), v)]);
        assert_eq!(code_of(&body(Value::String("1001".into()))), 1001.0);
        assert_eq!(code_of(&body(Value::from(2001))), 2001.0);
        assert_eq!(code_of(&body(Value::String("failed".into()))), 0.0);
        assert_eq!(code_of(&Map::new()), 0.0);
    }
}
