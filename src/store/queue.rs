//! The bounded queue from shards to the storage thread, and how it closes. A push never waits:
//! a full queue is an immediate `QueueFull`. Once the thread stops, every request still queued,
//! or pushed later, is dropped with its answer channel, so its future resolves `Closed` instead
//! of waiting forever (crossbeam keeps queued messages while any sender lives, and shards keep
//! theirs).

use super::{error::StoreError, worker::Request};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::{fence, AtomicBool, Ordering};

pub(crate) struct Queue {
    sender: Sender<Request>,
    receiver: Receiver<Request>,
    closed: AtomicBool,
    capacity: usize,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Queue {
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        Queue { sender, receiver, closed: AtomicBool::new(false), capacity }
    }

    /// Queues without waiting.
    pub(crate) fn push(&self, request: Request) -> Result<(), StoreError> {
        match self.sender.try_send(request) {
            Ok(()) => {
                // Pairs with the fence in `close`: either the thread's last sweep sees this
                // request, or this sees the flag and sweeps it out itself.
                fence(Ordering::SeqCst);
                if self.closed.load(Ordering::Relaxed) {
                    self.discard();
                }
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(StoreError::QueueFull { capacity: self.capacity }),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Closed),
        }
    }

    /// Queues, waiting for room; false once closed. For `Store::shutdown`, never for a shard.
    pub(crate) fn push_waiting(&self, request: Request) -> bool {
        !self.closed.load(Ordering::SeqCst) && self.sender.send(request).is_ok()
    }

    /// The next request, sleeping until there is one.
    pub(crate) fn pop(&self) -> Option<Request> {
        self.receiver.recv().ok()
    }

    pub(crate) fn try_pop(&self) -> Option<Request> {
        self.receiver.try_recv().ok()
    }

    /// Requests waiting now.
    pub(crate) fn len(&self) -> usize {
        self.receiver.len()
    }

    /// Called when the storage thread stops (or dies): drops what waits and all that follows.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.discard();
    }

    fn discard(&self) {
        while self.receiver.try_recv().is_ok() {}
    }
}
