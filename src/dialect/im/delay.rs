//! Delayed `SendMsgList` (`deliverAfter` = N seconds, on every path: xxim delays only requests
//! it queues, which this does not copy). The request, stamped and without `deliverAfter`, is
//! stored under its due time; the client is answered once it is on disk. Shard 0 runs the
//! schedule: the store is the queue (keys sort by due time), read a page at a time, each due
//! request sent by a task of its own and deleted once the backend has taken it (or refused
//! it for good). Pending requests survive restarts: the schedule starts by reading the store.

use super::{
    backend::{self, Failure},
    frames,
    messages::Tell,
    pb::Code,
    request::Request,
    Im,
};
use crate::{
    engine::{conn::queue::Frame, shard::Shard},
    hook::event::now_ms,
    store::{Batch, KeyRange},
};
use ahash::AHashSet;
use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalSender};
use prost::Message;
use std::{cell::RefCell, rc::Rc, time::Duration};

/// Delayed requests: `due ms (8, big-endian) + 8 random bytes` -> [`Held`].
pub const DELAYED: &str = "im_delay";
/// The schedule reads this many due requests at a time.
const PAGE: usize = 64;
/// After `retry_attempts` quick retries, a delayed request is retried this often.
const SLOW_RETRY: Duration = Duration::from_secs(60);

/// A held request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Held {
    /// The route key (`0`): the backend is looked up when it is sent.
    #[prost(string, tag = "1")]
    pub route: String,
    /// The request message, `CommonReq` stamped, `deliverAfter` removed.
    #[prost(bytes = "bytes", tag = "2")]
    pub message: Bytes,
}

/// The schedule's state on shard 0.
#[derive(Default)]
pub struct Scheduler {
    wake: RefCell<Option<LocalSender<()>>>,
    sending: RefCell<AHashSet<Bytes>>,
}

/// Stores a request due in `secs` seconds and answers the client once it is durable.
pub async fn hold(
    im: &Rc<Im>,
    shard: &Rc<Shard>,
    req: &Request,
    message: Bytes,
    secs: u32,
) -> Frame {
    let Some(store) = &im.store else {
        return frames::error(req.event, &req.req_id, Code::InternalError);
    };
    let Ok(message) = super::wire::strip(&message, 11) else {
        return frames::error(req.event, &req.req_id, Code::InternalError);
    };
    let due = now_ms() + u64::from(secs) * 1000;
    let key = [due.to_be_bytes(), rand::random::<u64>().to_be_bytes()].concat();
    let held = Held { route: req.route.clone(), message };
    let mut batch = Batch::new();
    batch.put(DELAYED, key, held.encode_to_vec());
    if let Err(e) = store.commit(batch).await {
        tracing::warn!("im: cannot hold a delayed request: {e}");
        return frames::error(req.event, &req.req_id, Code::InternalError);
    }
    im.tell(shard, 0, Tell::Delayed);
    let data = super::pb::CommonOnlyResp::default().encode_to_vec().into();
    frames::response(req.event, &req.req_id, Code::Success, data)
}

/// Starts the schedule on shard 0 (when the store runs).
pub fn start(im: &Rc<Im>, shard: &Rc<Shard>) {
    if shard.id() != 0 || im.store.is_none() {
        return;
    }
    let (tx, rx) = local_channel::new_bounded(1);
    *im.delay.wake.borrow_mut() = Some(tx);
    let (im, shard) = (im.clone(), shard.clone());
    glommio::spawn_local(async move {
        while !shard.shutting_down.get() {
            let wait = due_now(&im, &shard).await;
            let sleep = async {
                glommio::timer::sleep(wait).await;
                Some(())
            };
            futures_lite::future::or(rx.recv(), sleep).await;
        }
    })
    .detach();
}

/// Looks at the schedule again (a request was stored, or one finished).
pub fn wake(im: &Im) {
    if let Some(tx) = im.delay.wake.borrow().as_ref() {
        let _ = tx.try_send(());
    }
}

/// Sends what is due; returns how long until the next is.
async fn due_now(im: &Rc<Im>, shard: &Rc<Shard>) -> Duration {
    let Some(store) = im.store.clone() else { return SLOW_RETRY };
    let page = match store.scan(DELAYED, KeyRange::all(), PAGE).await {
        Ok(page) => page,
        Err(e) => {
            tracing::warn!("im: cannot read delayed requests: {e}");
            return Duration::from_millis(im.im().retry_interval_ms);
        }
    };
    let now = now_ms();
    for (key, value) in page {
        let due = super::notice::keys::ms(&key).unwrap_or(0);
        if due > now {
            return Duration::from_millis(due - now);
        }
        if im.delay.sending.borrow_mut().insert(key.clone()) {
            glommio::spawn_local(send(im.clone(), shard.clone(), key, value)).detach();
        }
    }
    // Everything read is due and being sent: the senders wake the schedule when done.
    SLOW_RETRY
}

/// Sends one due request until the backend takes it or refuses it for good, then deletes it.
async fn send(im: Rc<Im>, shard: Rc<Shard>, key: Bytes, value: Bytes) {
    let held = Held::decode(value).ok();
    let route = held.as_ref().and_then(|h| im.routes.get(&h.route).map(|r| (r.clone(), h)));
    let mut attempt = 0;
    if let Some((route, held)) = route {
        loop {
            let call = backend::request(&route.backend, &route.path, held.message.clone());
            match backend::outcome(shard.call_detached(call).await, route.backend.protocol) {
                Ok(_) => break,
                Err(Failure::Refused(e)) => {
                    tracing::warn!("im: a delayed request was refused: {e}");
                    break;
                }
                Err(e) => tracing::warn!("im: a delayed request failed (attempt {attempt}): {e}"),
            }
            if shard.shutting_down.get() {
                im.delay.sending.borrow_mut().remove(&key);
                return;
            }
            attempt += 1;
            let quick = attempt <= im.im().retry_attempts;
            glommio::timer::sleep(if quick {
                Duration::from_millis(im.im().retry_interval_ms)
            } else {
                SLOW_RETRY
            })
            .await;
        }
    } else {
        tracing::warn!("im: a delayed request has no route any more; dropped");
    }
    if let Some(store) = &im.store {
        let mut batch = Batch::new();
        batch.delete(DELAYED, key.clone());
        if let Err(e) = store.commit(batch).await {
            tracing::warn!("im: a sent delayed request stays stored (it may be sent again): {e}");
        }
    }
    im.delay.sending.borrow_mut().remove(&key);
    wake(&im);
}
