//! The process-wide stop signal, a value made by the runtime and handed to every shard and to
//! the hook shard at start (never a global reached for). Each holder checks it every 100 ms,
//! never on the message path.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

#[derive(Clone, Default, Debug)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Returns once shutdown is requested (checked every 100 ms).
    pub async fn wait(&self) {
        while !self.requested() {
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
    }
}
