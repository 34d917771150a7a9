//! When to try a failed delivery again, and when to give up: a pure policy with time passed in,
//! so every rule is tested without sleeping.
//!
//! Backoff doubles from `initial_backoff` up to `max_backoff`, and is never shorter than the pause
//! for the kind of failure: as in Zato's outgoing connections, an endpoint that failed at the
//! socket level (refused, reset, timed out, TLS) pauses longer than one that answered badly.
//! Retries stop once the next attempt would start after `max_elapsed` from the first (Pusher
//! retries a webhook for up to 5 minutes) or once `max_attempts` attempts were made.

use std::time::Duration;

pub use crate::upstream::FailureKind;

/// Retry and pause rules for one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Default 300 s (Pusher's 5 minutes). No attempt starts later than this after the first;
    /// longer keeps events for an endpoint that comes back late, at the cost of a longer stall
    /// of everything queued behind the failing batch. `Duration::MAX`: retry until delivered
    /// (webman-push-server's way; the endpoint's queue limit then bounds what waits).
    pub max_elapsed: Duration,
    /// Default 0: unlimited within `max_elapsed`. Counts every attempt, the first included.
    pub max_attempts: u32,
    /// Default 1 s: the backoff after the first failure, doubled after each further one.
    pub initial_backoff: Duration,
    /// Default 60 s: the cap on the doubling backoff.
    pub max_backoff: Duration,
    /// Default 10 s: the least wait after a socket-level failure.
    pub socket_pause: Duration,
    /// Default 3 s: the least wait after any other failure (non-2xx status).
    pub other_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_elapsed: Duration::from_secs(300),
            max_attempts: 0,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            socket_pause: Duration::from_secs(10),
            other_pause: Duration::from_secs(3),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th consecutive failure (1 for the first) of kind `kind`.
    pub fn backoff(&self, failures: u32, kind: FailureKind) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let exponential =
            self.initial_backoff.saturating_mul(1u32 << doublings).min(self.max_backoff);
        exponential.max(self.pause(kind))
    }

    /// The least wait after a failure of this kind.
    pub fn pause(&self, kind: FailureKind) -> Duration {
        match kind {
            FailureKind::Socket => self.socket_pause,
            FailureKind::Other => self.other_pause,
        }
    }

    /// After `attempts` attempts that all failed, the last one of kind `kind`, with `elapsed`
    /// since the first attempt started: how long to wait before the next attempt, or `None` to
    /// give up.
    pub fn next_wait(
        &self,
        attempts: u32,
        elapsed: Duration,
        kind: FailureKind,
    ) -> Option<Duration> {
        if self.max_attempts != 0 && attempts >= self.max_attempts {
            return None;
        }
        let wait = self.backoff(attempts, kind);
        (elapsed.saturating_add(wait) <= self.max_elapsed).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            socket_pause: Duration::from_millis(50),
            other_pause: Duration::from_millis(10),
            max_backoff: Duration::from_millis(1000),
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn defaults_match_pusher_and_zato() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_elapsed, S(300));
        assert_eq!(p.max_attempts, 0);
        assert_eq!((p.initial_backoff, p.max_backoff), (S(1), S(60)));
        assert_eq!((p.socket_pause, p.other_pause), (S(10), S(3)));
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let p = fast();
        let waits: Vec<u64> =
            (1..=6).map(|n| p.backoff(n, FailureKind::Other).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff(u32::MAX, FailureKind::Other), Duration::from_millis(1000));
        assert_eq!(p.backoff(0, FailureKind::Other), Duration::from_millis(100));
    }

    #[test]
    fn backoff_never_below_the_pause_for_the_kind() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, FailureKind::Socket), S(10));
        assert_eq!(p.backoff(1, FailureKind::Other), S(3));
        assert_eq!(p.backoff(3, FailureKind::Other), S(4));
        assert_eq!(p.backoff(4, FailureKind::Socket), S(10));
        assert_eq!(p.backoff(5, FailureKind::Socket), S(16));
        assert_eq!(p.backoff(20, FailureKind::Socket), S(60));
    }

    #[test]
    fn gives_up_when_next_attempt_would_start_after_max_elapsed() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_wait(1, S(0), FailureKind::Socket), Some(S(10)));
        assert_eq!(p.next_wait(9, S(240), FailureKind::Other), Some(S(60)));
        assert_eq!(p.next_wait(9, S(241), FailureKind::Other), None);
    }

    #[test]
    fn without_a_time_limit_retries_go_on() {
        let p = RetryPolicy { max_elapsed: Duration::MAX, ..RetryPolicy::default() };
        assert_eq!(p.next_wait(10_000, S(86_400 * 365), FailureKind::Socket), Some(S(60)));
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let p = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        assert!(p.next_wait(2, S(0), FailureKind::Other).is_some());
        assert_eq!(p.next_wait(3, S(0), FailureKind::Other), None);
        let unlimited = RetryPolicy::default();
        assert!(unlimited.next_wait(1000, S(0), FailureKind::Other).is_some());
    }
}
