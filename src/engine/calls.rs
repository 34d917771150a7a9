//! A shard's upstream calls: a pending table of the calls it has handed to the hook shard,
//! bounded (past the bound a call is refused at once with [`CallError::Busy`]), whose slots
//! are reused and stamped with a generation so a late answer never reaches a newer call. The
//! answers come back on this shard's ring of the reply mesh; an answer for a connection that
//! has closed (or closed and been replaced in its slot) is dropped.

use super::{conn::ConnKey, shard::Shard};
use crate::hook::call::{Call, CallError, CallId, CallReply, Request, Response};
use glommio::channels::{
    channel_mesh::Receivers,
    local_channel::{self, LocalReceiver, LocalSender},
};
use slab::Slab;
use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::Duration,
};

type Answer = Result<Response, CallError>;

/// Calls waiting for their answers on one shard.
pub struct Calls {
    pending: RefCell<Slab<(u32, LocalSender<Answer>)>>,
    next_generation: Cell<u32>,
    max: usize,
    /// This shard's consumer index in the reply mesh (None: no hook shard runs).
    reply_to: Option<usize>,
}

impl Calls {
    pub fn new(max: usize, reply_to: Option<usize>) -> Calls {
        Calls { pending: RefCell::default(), next_generation: Cell::new(0), max, reply_to }
    }

    /// Calls waiting now.
    pub fn in_flight(&self) -> usize {
        self.pending.borrow().len()
    }

    fn register(&self) -> Result<(CallId, LocalReceiver<Answer>), CallError> {
        let mut pending = self.pending.borrow_mut();
        if pending.len() >= self.max {
            return Err(CallError::Busy(self.max));
        }
        let generation = self.next_generation.get();
        self.next_generation.set(generation.wrapping_add(1));
        let (tx, rx) = local_channel::new_bounded(1);
        let slot = pending.insert((generation, tx)) as u64;
        Ok(((u64::from(generation) << 32) | slot, rx))
    }

    fn forget(&self, id: CallId) {
        let (generation, slot) = ((id >> 32) as u32, (id & 0xffff_ffff) as usize);
        let mut pending = self.pending.borrow_mut();
        if pending.get(slot).is_some_and(|(g, _)| *g == generation) {
            pending.remove(slot);
        }
    }

    /// Hands an answer to the call waiting for it (nothing if it stopped waiting).
    fn complete(&self, reply: CallReply) {
        let (generation, slot) = ((reply.id >> 32) as u32, (reply.id & 0xffff_ffff) as usize);
        let pending = self.pending.borrow();
        if let Some((g, tx)) = pending.get(slot) {
            if *g == generation {
                let _ = tx.try_send(reply.result);
            }
        }
    }
}

/// Listens for answers on this shard's reply ring.
pub fn listen(shard: &Rc<Shard>, mut receivers: Receivers<CallReply>) {
    for (_, ring) in receivers.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(reply) = ring.recv().await {
                shard.calls.complete(reply);
            }
        })
        .detach();
    }
}

/// How long past the request's own timeout a call waits before giving up on the hook shard.
const MARGIN: Duration = Duration::from_secs(5);

impl Shard {
    /// Makes an upstream call for connection `key` through the hook shard and waits for the
    /// answer without blocking the shard. Fails with [`CallError::Gone`] if the connection
    /// closed meanwhile.
    pub async fn call(self: &Rc<Self>, key: ConnKey, request: Request) -> Answer {
        let answer = self.call_unbound(request).await;
        if !self.is_open(key) {
            return Err(CallError::Gone);
        }
        answer
    }

    /// Makes an upstream call for no connection (a notice that a connection has gone).
    pub async fn call_unbound(self: &Rc<Self>, request: Request) -> Answer {
        let Some(reply_to) = self.calls.reply_to else {
            return Err(CallError::Unavailable);
        };
        let wait = request.deadline() + MARGIN;
        let (id, rx) = self.calls.register()?;
        let sent = self.hooks.call(Call { reply_to, id, request }).await;
        let answer = if sent {
            glommio::timer::timeout(wait, async { Ok(rx.recv().await) }).await
        } else {
            Ok(Some(Err(CallError::Unavailable)))
        };
        self.calls.forget(id);
        match answer {
            Ok(Some(answer)) => answer,
            Ok(None) => Err(CallError::Unavailable),
            Err(_) => Err(CallError::Timeout),
        }
    }
}
