//! Adding notices and conversation members. A notice goes to one user or to the members of its
//! conversation; it is stored (an upsert by conversation and notice id, on the conversation's
//! home shard so two adds of one notice never interleave), then the homes of its recipients
//! push it to those online. Members are kept here too, for broadcast notices.

use super::{
    keys::{self, Stored},
    select::scan_all,
};
use crate::{
    dialect::im::{
        messages::{Question, Reply, Tell},
        pb::NoticeData,
        Im,
    },
    engine::shard::Shard,
    hook::event::now_ms,
    store::{Batch, KeyRange},
};
use prost::Message;
use std::rc::Rc;

/// Adds a notice through its conversation's home: to `user`, or (None) to the members.
pub async fn send(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    notice: NoticeData,
    user: Option<String>,
) -> Result<(), String> {
    if im.store.is_none() {
        return Err("notices are off ([im] durable = false)".into());
    }
    if !keys::valid_id(&notice.conv_id) || !keys::valid_id(&notice.notice_id) {
        return Err("noticeData.convId and noticeData.noticeId are required (no NUL)".into());
    }
    if user.as_deref().is_some_and(|u| !keys::valid_id(u)) {
        return Err("invalid userId".into());
    }
    let home = shard.home_of(im.ns, &format!("conv:{}", notice.conv_id));
    match im.ask(shard, home, Question::AddNotice { notice, user }).await {
        Some(Reply::Done(Ok(_))) => Ok(()),
        Some(Reply::Done(Err(e))) => Err(e),
        _ => Err("the conversation's shard did not answer".into()),
    }
}

/// Conversation's home: stores the notice durably, then wakes its recipients' homes.
pub async fn add(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    mut notice: NoticeData,
    user: Option<String>,
) -> Result<(), String> {
    let Some(store) = im.store.clone() else { return Err("notices are off".into()) };
    let created = match notice.create_time.trim() {
        "" => now_ms(),
        text => text.parse::<u64>().map_err(|_| "noticeData.createTime must be ms since 1970")?,
    };
    notice.create_time = created.to_string();
    let (conv, id) = (notice.conv_id.clone(), notice.notice_id.clone());
    let target = user.clone().unwrap_or_default();
    let id_key = keys::key(&[&conv, &id]);
    let old = store.get(keys::NOTICE_IDS, id_key.clone()).await.map_err(|e| e.to_string())?;
    let mut batch = Batch::new();
    if let Some(old) = old {
        let (old_time, old_user) = (keys::ms(&old).unwrap_or(0), old.get(8..).unwrap_or_default());
        let old_order = keys::order(old_time, &id);
        match std::str::from_utf8(old_user) {
            Ok("") => {
                batch.delete(keys::CONV_NOTICES, keys::under(&keys::prefix(&[&conv]), &old_order))
            }
            Ok(u) => batch
                .delete(keys::USER_NOTICES, keys::under(&keys::prefix(&[u, &conv]), &old_order)),
            Err(_) => &mut batch,
        };
    }
    let order = keys::order(created, &id);
    let stored = Stored { notice: Some(notice), push_invalid: false }.encode_to_vec();
    batch.put(keys::NOTICE_IDS, id_key, [&created.to_be_bytes()[..], target.as_bytes()].concat());
    match &user {
        Some(u) => {
            batch.put(keys::USER_NOTICES, keys::under(&keys::prefix(&[u, &conv]), &order), stored);
            batch.put(keys::USER_CONVS, keys::key(&[u, &conv]), Vec::new());
        }
        None => {
            batch.put(keys::CONV_NOTICES, keys::under(&keys::prefix(&[&conv]), &order), stored);
        }
    };
    store.commit(batch).await.map_err(|e| e.to_string())?;
    let recipients = match user {
        Some(u) => vec![u],
        None => members(im, &conv).await?,
    };
    wake_users(im, shard, recipients);
    Ok(())
}

/// Adds and removes members of a conversation; the added ones online get its notices.
pub async fn set_members(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    conv: &str,
    add: &[String],
    remove: &[String],
) -> Result<(), String> {
    let Some(store) = im.store.clone() else {
        return Err("notices are off ([im] durable = false)".into());
    };
    if !keys::valid_id(conv) || add.iter().chain(remove).any(|u| !keys::valid_id(u)) {
        return Err("convId and user ids must be non-empty, without NUL".into());
    }
    let mut batch = Batch::new();
    for user in add {
        batch.put(keys::CONV_MEMBERS, keys::key(&[conv, user]), Vec::new());
        batch.put(keys::MEMBER_CONVS, keys::key(&[user, conv]), Vec::new());
    }
    for user in remove {
        batch.delete(keys::CONV_MEMBERS, keys::key(&[conv, user]));
        batch.delete(keys::MEMBER_CONVS, keys::key(&[user, conv]));
    }
    store.commit(batch).await.map_err(|e| e.to_string())?;
    wake_users(im, shard, add.to_vec());
    Ok(())
}

/// The members of a conversation.
async fn members(im: &Im, conv: &str) -> Result<Vec<String>, String> {
    let Some(store) = &im.store else { return Ok(Vec::new()) };
    let range = KeyRange::prefix(keys::prefix(&[conv]));
    let entries = scan_all(store, keys::CONV_MEMBERS, range).await.map_err(|e| e.to_string())?;
    let users = entries.iter().filter_map(|(k, _)| std::str::from_utf8(keys::last(k)).ok());
    Ok(users.map(str::to_string).collect())
}

/// Tells each user's home to push it its next notice (one message per home).
fn wake_users(im: &Im, shard: &Rc<Shard>, users: Vec<String>) {
    let mut by_home: Vec<Vec<String>> = vec![Vec::new(); shard.nr_shards()];
    for user in users {
        by_home[im.home_of(shard, &user)].push(user);
    }
    for (home, users) in by_home.into_iter().enumerate().filter(|(_, u)| !u.is_empty()) {
        im.tell(shard, home, Tell::Wake { users });
    }
}
