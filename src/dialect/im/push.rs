//! The push API's operations, the same over HTTP JSON and gRPC: `SendMsg` (one `PushBody` frame,
//! encoded once, to every matching connection; users with none are reported failed),
//! `KickUserConn` (close 1001 "kick") and `GetUserConn`. With user ids, only those users' home
//! shards are asked; without, every shard is.

use super::{
    frames,
    messages::{Action, Filter, Question, Reply},
    pb::ConnParam,
    Im,
};
use crate::engine::{
    bus::{Answer, Envelope, Query},
    shard::Shard,
};
use bytes::Bytes;
use std::rc::Rc;

/// What `SendMsg` reports.
#[derive(Debug, Default)]
pub struct Sent {
    pub success: Vec<ConnParam>,
    /// One `ConnParam{userId}` per listed user with no matching connection.
    pub failed: Vec<ConnParam>,
}

/// Pushes `PushBody{event, data}` to every connection matching `filter`.
pub async fn send_msg(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    filter: Filter,
    event: i32,
    data: Bytes,
) -> Sent {
    let frame = frames::push(event, data);
    let success = matching(im, shard, &filter, Action::Send(frame)).await;
    let mut failed: Vec<ConnParam> = Vec::new();
    for user in &filter.user_ids {
        let found = success.iter().any(|p| &p.user_id == user);
        if !found && !failed.iter().any(|p| &p.user_id == user) {
            failed.push(ConnParam { user_id: user.clone(), ..ConnParam::default() });
        }
    }
    Sent { success, failed }
}

/// Closes every connection matching `filter` with 1001 "kick"; returns them.
pub async fn kick(im: &Rc<Im>, shard: &Rc<Shard>, filter: Filter) -> Vec<ConnParam> {
    matching(im, shard, &filter, Action::Kick).await
}

/// The connections matching `filter`.
pub async fn get_user_conn(im: &Rc<Im>, shard: &Rc<Shard>, filter: Filter) -> Vec<ConnParam> {
    matching(im, shard, &filter, Action::List).await
}

/// Asks the homes that can hold matches to apply `action`; gathers what they matched.
async fn matching(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    filter: &Filter,
    action: Action,
) -> Vec<ConnParam> {
    let tag = im.tag;
    let question = |filter: Filter| Question::Match { filter, action: action.clone() };
    let answers = if filter.user_ids.is_empty() {
        shard.ask_all(|| Query::Dialect(Envelope::new(tag, question(filter.clone())))).await
    } else {
        let mut by_home: Vec<Vec<String>> = vec![Vec::new(); shard.nr_shards()];
        for user in &filter.user_ids {
            let home = &mut by_home[im.home_of(shard, user)];
            if !home.contains(user) {
                home.push(user.clone());
            }
        }
        let mut pending = Vec::new();
        for (home, user_ids) in by_home.into_iter().enumerate().filter(|(_, u)| !u.is_empty()) {
            let query =
                Query::Dialect(Envelope::new(tag, question(Filter { user_ids, ..filter.clone() })));
            let shard = shard.clone();
            pending.push(glommio::spawn_local(async move { shard.ask(home, query).await }));
        }
        let mut answers = Vec::new();
        for task in pending {
            answers.extend(task.await);
        }
        answers
    };
    answers
        .into_iter()
        .filter_map(|a| match a {
            Answer::Dialect(envelope) => match envelope.open::<Reply>() {
                Some(Reply::Matched(params)) => Some(params),
                _ => None,
            },
            Answer::Stats(_) => None,
        })
        .flatten()
        .collect()
}
