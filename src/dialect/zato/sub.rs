//! Subscriptions: their options with Zato's defaults (F002-01), the record kept in the store,
//! and the live state on the topic's home shard: the queue in delivery order, the WSX
//! connection it delivers to, and the signal that wakes its delivery task.

use super::message::{Msg, OrderKey};
use crate::engine::addr::ConnAddr;
use serde::{Deserialize, Serialize};
use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    future::poll_fn,
    rc::Rc,
    task::{Poll, Waker},
};

/// How messages reach the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryMethod {
    /// The server pushes them to the subscription's URL (Zato's default).
    Notify,
    /// The subscriber fetches them (REST get-messages).
    Pull,
    /// The server pushes them to the WSX connection that subscribed.
    WebSocket,
}

/// Whether new messages enter the queue and whether the subscriber may take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActiveStatus {
    PubSub,
    PubOnly,
    SubOnly,
    Disabled,
}

impl ActiveStatus {
    /// New messages are queued for it.
    pub fn enqueues(self) -> bool {
        matches!(self, ActiveStatus::PubSub | ActiveStatus::PubOnly)
    }

    /// Its queue is delivered (or may be fetched).
    pub fn consumes(self) -> bool {
        matches!(self, ActiveStatus::PubSub | ActiveStatus::SubOnly)
    }
}

/// A subscription's delivery options. Defaults are Zato's (`PUBSUB.DEFAULT`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubOptions {
    pub delivery_method: DeliveryMethod,
    /// Most messages in one delivery (one notify call, one WSX message, one get-messages).
    pub delivery_batch_size: u32,
    /// With a batch size of 1: true sends a one-element list, false the bare message. Larger
    /// batches are always lists.
    pub wrap_one_msg_in_list: bool,
    /// Attempts per message: a message tried this many times is dropped from the queue.
    pub delivery_max_retry: u32,
    /// A failing delivery blocks the messages behind it (order kept); false lets them pass
    /// while the failed ones wait out their pause.
    pub delivery_err_should_block: bool,
    /// Seconds of pause after a socket-level failure (refused, reset, timeout).
    pub wait_sock_err: f64,
    /// Seconds of pause after any other failure (an answer other than 2xx).
    pub wait_non_sock_err: f64,
    pub active_status: ActiveStatus,
    /// Messages to this subscription are stored (GD) even when published without it; unset:
    /// as the message (or its topic) says.
    pub has_gd: Option<bool>,
    /// Method of notify deliveries.
    pub out_http_method: String,
    /// Where notify deliveries go.
    pub notify_url: Option<String>,
    /// A WSX subscription is deleted when its connection closes; false keeps its messages
    /// (as GD) until a new connection resumes it by sub_key.
    pub unsub_on_wsx_close: bool,
}

impl Default for SubOptions {
    fn default() -> Self {
        SubOptions {
            delivery_method: DeliveryMethod::Notify,
            delivery_batch_size: 500,
            wrap_one_msg_in_list: true,
            delivery_max_retry: 123_456_789,
            delivery_err_should_block: true,
            wait_sock_err: 10.0,
            wait_non_sock_err: 3.0,
            active_status: ActiveStatus::PubSub,
            has_gd: None,
            out_http_method: "POST".into(),
            notify_url: None,
            unsub_on_wsx_close: true,
        }
    }
}

impl SubOptions {
    /// Why these options cannot be used, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if self.delivery_batch_size == 0 {
            return Some("delivery_batch_size must be at least 1".into());
        }
        if self.delivery_max_retry == 0 {
            return Some("delivery_max_retry must be at least 1".into());
        }
        for (name, value) in
            [("wait_sock_err", self.wait_sock_err), ("wait_non_sock_err", self.wait_non_sock_err)]
        {
            if !(0.0..=86_400.0).contains(&value) {
                return Some(format!("{name} must be between 0 and 86400 seconds"));
            }
        }
        let methods = ["POST", "PUT", "PATCH", "DELETE", "GET"];
        if !methods.contains(&self.out_http_method.as_str()) {
            return Some(format!("out_http_method must be one of {}", methods.join(", ")));
        }
        match (&self.notify_url, self.delivery_method) {
            (Some(url), _) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                Some("notify_url must be an http(s) URL".into())
            }
            (None, DeliveryMethod::Notify) => {
                Some("a notify subscription needs a notify_url (or an endpoint with one)".into())
            }
            _ => None,
        }
    }

    /// Whether a single message goes out in a list.
    pub fn wraps(&self) -> bool {
        self.delivery_batch_size > 1 || self.wrap_one_msg_in_list
    }
}

/// The kind of endpoint a subscription belongs to (the `<type>` of its sub_key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubKind {
    Rest,
    Websockets,
}

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubRecord {
    pub sub_key: String,
    pub topic: String,
    /// The endpoint's name.
    pub endpoint: String,
    pub kind: SubKind,
    pub options: SubOptions,
    /// Microseconds since the epoch.
    pub created: u64,
    pub ext_client_id: Option<String>,
}

/// One message in one subscription's queue.
#[derive(Debug, Clone)]
pub struct Entry {
    pub msg: Rc<Msg>,
    /// Attempts so far (counted in memory: it starts again at 0 after a restart, as in Zato).
    pub delivery_count: u32,
    /// With `delivery_err_should_block` off: not to be tried again before this time
    /// (microseconds since the epoch; 0: now).
    pub not_before: u64,
}

/// A subscription's live state on its topic's home shard.
pub struct SubState {
    pub record: RefCell<SubRecord>,
    pub queue: RefCell<BTreeMap<OrderKey, Entry>>,
    /// The WSX connection it delivers to (None: not connected).
    pub wsx: Cell<Option<ConnAddr>>,
    /// Wakes its delivery task: a message arrived, options changed, it was deleted.
    pub signal: Signal,
    pub deleted: Cell<bool>,
    /// Its delivery task runs.
    pub task: Cell<bool>,
    /// Messages delivered since start.
    pub delivered: Cell<u64>,
    /// The last failed delivery since the last one that took, if any.
    pub failure: RefCell<Option<Failure>>,
}

/// A failed delivery, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// `socket` (connect failure, timeout) or `other` (the endpoint answered with an error).
    pub kind: &'static str,
    /// The pause it caused, seconds.
    pub pause_secs: f64,
    pub details: String,
    /// Attempts of the batch's first message so far.
    pub delivery_count: u32,
}

impl SubState {
    pub fn new(record: SubRecord) -> Rc<SubState> {
        Rc::new(SubState {
            record: RefCell::new(record),
            queue: RefCell::default(),
            wsx: Cell::new(None),
            signal: Signal::default(),
            deleted: Cell::new(false),
            task: Cell::new(false),
            delivered: Cell::new(0),
            failure: RefCell::new(None),
        })
    }

    pub fn sub_key(&self) -> String {
        self.record.borrow().sub_key.clone()
    }

    pub fn options(&self) -> SubOptions {
        self.record.borrow().options.clone()
    }

    pub fn depth(&self) -> usize {
        self.queue.borrow().len()
    }

    /// Adds a message to the queue and wakes the delivery task.
    pub fn push(&self, msg: Rc<Msg>) {
        let entry = Entry { msg: msg.clone(), delivery_count: 0, not_before: 0 };
        self.queue.borrow_mut().insert(msg.order(), entry);
        self.signal.raise();
    }

    /// Removes the message with this uid wherever it is in the queue.
    pub fn remove_uid(&self, key: OrderKey, uid: u64) -> Option<Entry> {
        let mut queue = self.queue.borrow_mut();
        if let Some(entry) = queue.remove(&key) {
            return Some(entry);
        }
        let found = queue.iter().find(|(_, e)| e.msg.uid == uid).map(|(k, _)| *k)?;
        queue.remove(&found)
    }
}

/// A one-waiter wake-up: `raise` sets it (waking the waiter), `wait` returns once it is set
/// and clears it. Raised before anyone waits, the next wait returns at once.
#[derive(Default)]
pub struct Signal {
    raised: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    pub fn raise(&self) {
        self.raised.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.raised.replace(false) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_zatos() {
        let options = SubOptions::default();
        assert_eq!(options.delivery_method, DeliveryMethod::Notify);
        assert_eq!(options.delivery_batch_size, 500);
        assert!(options.wrap_one_msg_in_list && options.delivery_err_should_block);
        assert_eq!(options.delivery_max_retry, 123_456_789);
        assert_eq!((options.wait_sock_err, options.wait_non_sock_err), (10.0, 3.0));
        assert_eq!(options.active_status, ActiveStatus::PubSub);
        let text = serde_json::to_string(&options).expect("json");
        assert!(text.contains("\"pub-sub\"") && text.contains("\"notify\""), "{text}");
    }

    #[test]
    fn wrapping_follows_batch_size_then_the_flag() {
        let mut options = SubOptions { delivery_batch_size: 1, ..SubOptions::default() };
        assert!(options.wraps());
        options.wrap_one_msg_in_list = false;
        assert!(!options.wraps());
        options.delivery_batch_size = 2;
        assert!(options.wraps());
    }

    #[test]
    fn statuses_gate_queueing_and_consuming() {
        use ActiveStatus::*;
        let gates: Vec<(bool, bool)> = [PubSub, PubOnly, SubOnly, Disabled]
            .iter()
            .map(|s| (s.enqueues(), s.consumes()))
            .collect();
        assert_eq!(gates, [(true, true), (true, false), (false, true), (false, false)]);
    }

    #[test]
    fn notify_needs_a_url() {
        let options = SubOptions::default();
        assert!(options.problem().is_some());
        let options = SubOptions { notify_url: Some("http://x/y".into()), ..options };
        assert_eq!(options.problem(), None);
        let pull = SubOptions { delivery_method: DeliveryMethod::Pull, ..SubOptions::default() };
        assert_eq!(pull.problem(), None);
    }
}
