//! The push API's operations, the same over HTTP JSON and gRPC: `SendMsg` (one `PushBody` frame,
//! encoded once, to every matching connection; users with none are reported failed),
//! `KickUserConn` (close 1001 "kick") and `GetUserConn`. With user ids, only those users' home
//! shards are asked; without, every shard is. Each home lists what it matched already encoded
//! in the answer's format, so the answer costs one pass over the matches and no copies. In
//! cluster mode every other node applies the same filter (`cluster`).

use super::{
    cluster, frames,
    messages::{Action, Filter, Format, Question, Reply},
    pb::ConnParam,
    rest::json::ConnParamJson,
    Im,
};
use crate::engine::{
    bus::{Answer, Envelope, Query},
    shard::Shard,
};
use ahash::AHashSet;
use bytes::Bytes;
use std::rc::Rc;

/// What the homes matched.
#[derive(Debug, Default)]
pub struct Listed {
    pub count: usize,
    /// The matched connections in the format asked (for JSON, objects separated by commas).
    pub list: Vec<u8>,
    /// Listed users with no matching connection.
    pub missing: Vec<String>,
    /// Cluster mode: some node did not answer in time.
    pub partial: bool,
}

/// Adds `count` matches listed as `list` (in `format`) to `listed`.
pub fn append(listed: &mut Listed, count: usize, list: &[u8], format: Format) {
    if format == Format::Json && listed.count > 0 && count > 0 {
        listed.list.push(b',');
    }
    listed.count += count;
    listed.list.extend_from_slice(list);
}

/// Appends `param` to a list in `format`; `index` is its position in the list.
pub fn list(format: Format, param: &ConnParam, index: usize, out: &mut Vec<u8>) {
    match format {
        Format::Count => {}
        Format::Proto => prost::encoding::message::encode(2, param, out),
        Format::Json => {
            if index > 0 {
                out.push(b',');
            }
            // Writing into a Vec cannot fail; plain fields serialize.
            let _ = serde_json::to_writer(&mut *out, &ConnParamJson::from(param));
        }
    }
}

/// Pushes `PushBody{event, data}` to every connection matching `filter`.
pub async fn send_msg(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    filter: Filter,
    event: i32,
    data: Bytes,
    format: Format,
) -> Listed {
    let frame = frames::push(event, data);
    matching(im, shard, &filter, Action::Send(frame), format).await
}

/// Closes every connection matching `filter` with 1001 "kick"; `count` says how many.
pub async fn kick(im: &Rc<Im>, shard: &Rc<Shard>, filter: Filter) -> Listed {
    matching(im, shard, &filter, Action::Kick, Format::Count).await
}

/// The connections matching `filter`.
pub async fn get_user_conn(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    filter: Filter,
    format: Format,
) -> Listed {
    matching(im, shard, &filter, Action::List, format).await
}

/// Applies `action` to the matching connections on this node and, in cluster mode, on every
/// other node; gathers what they listed.
async fn matching(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    filter: &Filter,
    action: Action,
    format: Format,
) -> Listed {
    let mut listed = matching_here(im, shard, filter, action.clone(), format).await;
    cluster::merge_nodes(im, shard, filter, &action, format, &mut listed).await;
    listed
}

/// Asks this node's homes that can hold matches to apply `action`; gathers what they listed.
pub async fn matching_here(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    filter: &Filter,
    action: Action,
    format: Format,
) -> Listed {
    let tag = im.tag;
    let question = |filter: Filter| Question::Match { filter, action: action.clone(), format };
    let answers = if filter.user_ids.is_empty() {
        shard.ask_all(|| Query::Dialect(Envelope::new(tag, question(filter.clone())))).await
    } else {
        let mut by_home: Vec<Vec<String>> = vec![Vec::new(); shard.nr_shards()];
        let mut seen = AHashSet::with_capacity(filter.user_ids.len());
        for user in filter.user_ids.iter().filter(|u| seen.insert(u.as_str())) {
            by_home[im.home_of(shard, user)].push(user.clone());
        }
        let mut pending = Vec::new();
        for (home, user_ids) in by_home.into_iter().enumerate().filter(|(_, u)| !u.is_empty()) {
            let (platforms, devices) = (filter.platforms.clone(), filter.devices.clone());
            let asked = question(Filter { user_ids, platforms, devices });
            let query = Query::Dialect(Envelope::new(tag, asked));
            let shard = shard.clone();
            pending.push(glommio::spawn_local(async move { shard.ask(home, query).await }));
        }
        let mut answers = Vec::new();
        for task in pending {
            answers.extend(task.await);
        }
        answers
    };
    let mut listed = Listed::default();
    for answer in answers {
        let Answer::Dialect(envelope) = answer else { continue };
        if let Some(Reply::Matched { count, list, missing }) = envelope.open::<Reply>() {
            append(&mut listed, count, &list, format);
            listed.missing.extend(missing);
        }
    }
    listed
}
