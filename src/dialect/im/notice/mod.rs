//! Notices, with pushgate as the notice store (xxim's notice service): a backend adds a notice
//! to one user or to a conversation's members (`add`); each device of a user has a durable ack
//! cursor per conversation; a device is pushed one notice at a time, the oldest it has not
//! acknowledged (`select`), on connect and after each `AckNotice` that moves its cursor, and a
//! connection is never pushed the same notice twice (a reconnect gets it again). An
//! `onlinePushOnce` notice is marked spent in the store before its one push.
//!
//! All of it runs on the user's home shard, under a per-user lock, so a run and an ack of one
//! user never interleave; the store (one storage thread) is shared by all shards. A failed
//! store call is retried `retry_attempts` times, `retry_interval_ms` apart (xxim: 12 x 2 s).

pub mod add;
pub mod keys;
pub mod select;

use super::{
    frames,
    messages::{Question, Reply},
    pb::{AckNoticeDataReq, Code, CommonOnlyResp},
    request::Request,
    Im,
};
use crate::{
    engine::{bus::Notice, conn::queue::Frame, conn::ConnKey, shard::Shard},
    hook::event::now_ms,
    store::{Batch, StoreError, StoreHandle},
};
use ahash::{AHashMap, AHashSet};
use glommio::sync::{Semaphore, StaticPermit};
use prost::Message;
use std::{rc::Rc, time::Duration};

/// The notice work of the users homed on one shard.
#[derive(Default)]
pub struct Runs {
    /// Per user with work under way: its lock (runs and acks take it in turn).
    locks: AHashMap<String, Rc<Semaphore>>,
    /// Users with a run waiting to start: another wake adds nothing.
    queued: AHashSet<String>,
}

/// A user's lock, held.
struct Held {
    semaphore: Rc<Semaphore>,
    permit: Option<StaticPermit>,
}

async fn lock(im: &Im, user: &str) -> Held {
    let semaphore = im
        .notices
        .borrow_mut()
        .locks
        .entry(user.to_string())
        .or_insert_with(|| Rc::new(Semaphore::new(1)))
        .clone();
    let permit = semaphore.acquire_static_permit(1).await.ok();
    Held { semaphore, permit }
}

fn unlock(im: &Im, user: &str, mut held: Held) {
    held.permit = None;
    // The table and this one: nobody else waits.
    if Rc::strong_count(&held.semaphore) == 2 {
        im.notices.borrow_mut().locks.remove(user);
    }
}

/// Pushes the next notice to each connected device of `user` (homed here), soon.
pub fn wake(im: &Rc<Im>, shard: &Rc<Shard>, user: &str) {
    if im.store.is_none() || !im.home.borrow().users.contains_key(user) {
        return;
    }
    if !im.notices.borrow_mut().queued.insert(user.to_string()) {
        return;
    }
    let (im, shard, user) = (im.clone(), shard.clone(), user.to_string());
    glommio::spawn_local(async move {
        let held = lock(&im, &user).await;
        im.notices.borrow_mut().queued.remove(&user);
        run(&im, &shard, &user).await;
        unlock(&im, &user, held);
    })
    .detach();
}

/// Pushes the next notice to each device of `user`, retrying store failures.
async fn run(im: &Rc<Im>, shard: &Rc<Shard>, user: &str) {
    let Some(store) = im.store.clone() else { return };
    let mut devices: Vec<String> = match im.home.borrow().users.get(user) {
        Some(conns) => conns.iter().map(|r| r.param.device_id.clone()).collect(),
        None => return,
    };
    devices.dedup();
    let wait = Duration::from_millis(im.im().retry_interval_ms);
    for device in devices {
        for attempt in 0..=im.im().retry_attempts {
            match push_device(im, shard, &store, user, &device).await {
                Ok(()) => break,
                Err(e) => tracing::warn!(
                    "im: notice push for {user}/{device} failed (attempt {attempt}): {e}"
                ),
            }
            glommio::timer::sleep(wait).await;
        }
    }
}

/// Pushes one device's next notice to its connections that have not had it.
async fn push_device(
    im: &Im,
    shard: &Rc<Shard>,
    store: &StoreHandle,
    user: &str,
    device: &str,
) -> Result<(), StoreError> {
    let connected = im.home.borrow().users.get(user).and_then(|conns| {
        conns.iter().filter(|r| r.param.device_id == device).map(|r| r.connected_ms).min()
    });
    let start = select::device_start(store, user, device, connected.unwrap_or_else(now_ms)).await?;
    let Some(mut next) = select::next(store, user, device, start).await? else { return Ok(()) };
    let fresh = |r: &super::home::Registered| {
        r.param.device_id == device && r.last_notice.as_ref() != Some(&next.order)
    };
    let waiting = im.home.borrow().users.get(user).is_some_and(|c| c.iter().any(fresh));
    if !waiting {
        return Ok(());
    }
    let Some(notice) = next.stored.notice.clone() else { return Ok(()) };
    if notice.options.as_ref().is_some_and(|o| o.online_push_once) {
        next.stored.push_invalid = true;
        let mut batch = Batch::new();
        batch.put(next.table, next.key.clone(), next.stored.encode_to_vec());
        store.commit(batch).await?;
    }
    let frame = frames::notice(notice);
    let mut by_shard: Vec<Vec<ConnKey>> = vec![Vec::new(); shard.nr_shards()];
    if let Some(conns) = im.home.borrow_mut().users.get_mut(user) {
        for r in conns.iter_mut().filter(|r| fresh(r)) {
            r.last_notice = Some(next.order.clone());
            by_shard[usize::from(r.addr.shard)].push(r.addr.key);
        }
    }
    for (peer, keys) in by_shard.into_iter().enumerate().filter(|(_, k)| !k.is_empty()) {
        shard.tell(peer, Notice::Deliver { keys, frame: frame.clone() });
    }
    Ok(())
}

/// User's home: moves a device's cursor to an acknowledged notice; true if it moved (then the
/// next notice is pushed).
pub async fn ack(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    user: &str,
    device: &str,
    conv: &str,
    id: &str,
) -> Result<bool, String> {
    let Some(store) = im.store.clone() else { return Ok(false) };
    let held = lock(im, user).await;
    let moved = move_cursor(&store, user, device, conv, id).await;
    unlock(im, user, held);
    let moved = moved.map_err(|e| e.to_string())?;
    if moved {
        wake(im, shard, user);
    }
    Ok(moved)
}

async fn move_cursor(
    store: &StoreHandle,
    user: &str,
    device: &str,
    conv: &str,
    id: &str,
) -> Result<bool, StoreError> {
    if !keys::valid_id(conv) || !keys::valid_id(id) {
        return Ok(false);
    }
    let Some(entry) = store.get(keys::NOTICE_IDS, keys::key(&[conv, id])).await? else {
        return Ok(false);
    };
    let (Some(created), target) = (keys::ms(&entry), entry.get(8..).unwrap_or_default()) else {
        return Ok(false);
    };
    if !target.is_empty() && target != user.as_bytes() {
        return Ok(false);
    }
    let order = keys::order(created, id);
    let cursor = keys::key(&[user, device, conv]);
    if store.get(keys::CURSORS, cursor.clone()).await?.is_some_and(|c| c[..] >= order[..]) {
        return Ok(false);
    }
    let mut batch = Batch::new();
    batch.put(keys::CURSORS, cursor, order);
    store.commit(batch).await?;
    Ok(true)
}

/// Event 3 answered by the gateway: the cursor moves on the user's home, then the client gets
/// `AckNoticeDataResp{}` (code 0) once the move is on disk.
pub async fn on_ack(im: &Rc<Im>, shard: &Rc<Shard>, req: &Request) -> Frame {
    let Ok(ack) = AckNoticeDataReq::decode(&req.data[..]) else {
        return frames::error(req.event, &req.req_id, Code::InternalError);
    };
    let params = &req.params;
    let question = Question::Ack {
        user: params.user_id.clone(),
        device: params.device_id.clone(),
        conv: ack.conv_id,
        notice_id: ack.notice_id,
    };
    match im.ask(shard, im.home_of(shard, &params.user_id), question).await {
        Some(Reply::Done(Ok(_))) => {
            let data = CommonOnlyResp::default().encode_to_vec().into();
            frames::response(req.event, &req.req_id, Code::Success, data)
        }
        _ => frames::error(req.event, &req.req_id, Code::InternalError),
    }
}
