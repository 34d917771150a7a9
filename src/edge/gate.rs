//! What one shard's edge lets in: REST requests in progress (capped, 503 past the cap), and
//! connections near the open-file limit (a reserve of descriptors kept for the REST API and
//! for refusing; a spare descriptor to accept-and-close with when there is none at all).
//! Plain per-shard cells: nothing here is shared with another thread.

use std::{
    cell::{Cell, RefCell},
    fs::File,
    os::fd::{AsRawFd, RawFd},
    rc::Rc,
    time::{Duration, Instant},
};

/// The process's open-file limit and how much of it is kept in reserve.
#[derive(Debug, Clone, Copy)]
pub struct FdBudget {
    limit: u64,
    reserve: u64,
}

impl FdBudget {
    /// Raises the soft open-file limit to the hard one (what the operator allowed), then
    /// reads it.
    pub fn new(reserve: u64) -> FdBudget {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit and setrlimit read and write one rlimit struct we own.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim = raised;
                }
            }
        }
        FdBudget { limit: lim.rlim_cur, reserve }
    }

    /// The open-file limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether descriptor `fd` lies in the reserve. The kernel hands out the lowest free
    /// number, so a new descriptor numbered `fd` means `fd` others are open.
    pub fn in_reserve(&self, fd: RawFd) -> bool {
        self.reserve > 0 && (fd.max(0) as u64).saturating_add(self.reserve) >= self.limit
    }
}

/// One shard's gate.
pub struct Gate {
    max_rest: usize,
    rest_in_flight: Cell<usize>,
    pub fds: FdBudget,
    /// A descriptor held back to accept (and close at once) a client when none is left, so
    /// clients are refused rather than left in the listen queue.
    spare: RefCell<Option<File>>,
    /// Clients refused for want of descriptors, reported at most once per interval.
    pub refused: Throttle,
    /// Failed accepts (out of descriptors and others), reported at most once per interval.
    pub accept_errors: Throttle,
}

impl Gate {
    pub fn new(max_rest: usize, fds: FdBudget) -> Rc<Gate> {
        Rc::new(Gate {
            max_rest,
            rest_in_flight: Cell::new(0),
            fds,
            spare: RefCell::new(File::open("/dev/null").ok()),
            refused: Throttle::new(Duration::from_secs(10)),
            accept_errors: Throttle::new(Duration::from_secs(10)),
        })
    }

    /// A place for one REST request, or None when `max_concurrent_rest_requests` are running.
    pub fn rest_permit(self: &Rc<Self>) -> Option<RestPermit> {
        let n = self.rest_in_flight.get();
        if n >= self.max_rest {
            return None;
        }
        self.rest_in_flight.set(n + 1);
        Some(RestPermit(self.clone()))
    }

    /// Out of descriptors: closes the spare, accepts one waiting client on `listener` and
    /// closes it (the client sees the connection end), then takes the spare back. False if
    /// there was no spare or no client waiting.
    pub fn refuse_one(&self, listener: RawFd) -> bool {
        let Some(spare) = self.spare.borrow_mut().take() else {
            *self.spare.borrow_mut() = File::open("/dev/null").ok();
            return false;
        };
        drop(spare);
        let mut waiting = libc::pollfd { fd: listener, events: libc::POLLIN, revents: 0 };
        // SAFETY: poll reads and writes the one pollfd we pass; a zero timeout never blocks.
        let ready = unsafe { libc::poll(&mut waiting, 1, 0) } == 1;
        let mut refused = false;
        if ready {
            // SAFETY: accept4 on our listening socket with no address buffers; a client is
            // waiting (poll said so), so it does not block.
            let fd = unsafe {
                libc::accept4(
                    listener,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            if fd >= 0 {
                // SAFETY: `fd` was just returned by accept4 and is ours to close.
                unsafe { libc::close(fd) };
                refused = true;
            }
        }
        *self.spare.borrow_mut() = File::open("/dev/null").ok();
        refused
    }

    /// Whether this shard holds its spare descriptor (for tests of the gate).
    pub fn has_spare(&self) -> bool {
        self.spare.borrow().as_ref().is_some_and(|f| f.as_raw_fd() >= 0)
    }
}

/// A REST request in progress; dropping it frees its place.
pub struct RestPermit(Rc<Gate>);

impl Drop for RestPermit {
    fn drop(&mut self) {
        let n = self.0.rest_in_flight.get();
        self.0.rest_in_flight.set(n.saturating_sub(1));
    }
}

/// Counts events and says when one may be logged: at most once per interval, with the count
/// since the last report.
pub struct Throttle {
    every: Duration,
    last: Cell<Option<Instant>>,
    count: Cell<u64>,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle { every, last: Cell::new(None), count: Cell::new(0) }
    }

    /// Counts one event; `Some(n)` when it is time to report the `n` events since the last.
    pub fn note(&self) -> Option<u64> {
        let n = self.count.get() + 1;
        let due = self.last.get().is_none_or(|t| t.elapsed() >= self.every);
        if !due {
            self.count.set(n);
            return None;
        }
        self.last.set(Some(Instant::now()));
        self.count.set(0);
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_the_top_of_the_limit() {
        let budget = FdBudget { limit: 64, reserve: 16 };
        assert!(!budget.in_reserve(47));
        assert!(budget.in_reserve(48));
        assert!(budget.in_reserve(63));
        assert!(!FdBudget { limit: 64, reserve: 0 }.in_reserve(63));
    }

    #[test]
    fn permits_are_capped_and_given_back() {
        let gate = Gate::new(2, FdBudget { limit: 1024, reserve: 0 });
        let a = gate.rest_permit().expect("first");
        let _b = gate.rest_permit().expect("second");
        assert!(gate.rest_permit().is_none());
        drop(a);
        assert!(gate.rest_permit().is_some());
        assert!(gate.has_spare());
    }

    #[test]
    fn the_throttle_reports_once_per_interval_with_a_count() {
        let throttle = Throttle::new(Duration::from_secs(3600));
        assert_eq!(throttle.note(), Some(1));
        assert_eq!(throttle.note(), None);
        assert_eq!(throttle.note(), None);
        throttle.last.set(Instant::now().checked_sub(Duration::from_secs(7200)));
        assert_eq!(throttle.note(), Some(3));
    }
}
