//! The per-node connection limit, applied to handshakes before a session exists.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Admits new Engine.IO sessions while the node holds fewer than its maximum.
///
/// A session counts from its handshake: until it joins a namespace it is "pending" (for at
/// most the connect timeout, after which the server drops it), then it is a live socket. So a
/// burst of simultaneous handshakes cannot overshoot the limit.
#[derive(Debug)]
pub struct Admissions {
    max: usize,
    connect_timeout: Duration,
    pending: Mutex<VecDeque<Instant>>,
}

impl Admissions {
    /// A gate for `max` connections whose handshakes must connect within `connect_timeout`.
    pub fn new(max: usize, connect_timeout: Duration) -> Self {
        Admissions {
            max,
            connect_timeout,
            pending: Mutex::new(VecDeque::new()),
        }
    }

    /// Admits one more session given the count of connected sockets, or refuses it.
    ///
    /// `live` is read under the gate's lock: a session that connects meanwhile is then counted
    /// as pending (it cannot settle before the lock is released) or as live, never as neither.
    pub fn try_admit(&self, live: impl FnOnce() -> usize, now: Instant) -> bool {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while pending
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > self.connect_timeout)
        {
            pending.pop_front();
        }
        if live() + pending.len() >= self.max {
            return false;
        }
        pending.push_back(now);
        true
    }

    /// A pending session has joined a namespace and now counts as a live socket.
    pub fn settle(&self) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_line_at_the_maximum() {
        let gate = Admissions::new(2, Duration::from_secs(1));
        let now = Instant::now();
        assert!(gate.try_admit(|| 0, now));
        assert!(gate.try_admit(|| 0, now));
        assert!(
            !gate.try_admit(|| 0, now),
            "two pending handshakes fill a gate of two"
        );
        gate.settle();
        gate.settle();
        assert!(!gate.try_admit(|| 2, now), "two live sockets fill it too");
        assert!(gate.try_admit(|| 1, now));
    }

    #[test]
    fn abandoned_handshakes_expire() {
        let gate = Admissions::new(1, Duration::from_secs(1));
        let now = Instant::now();
        assert!(gate.try_admit(|| 0, now));
        assert!(!gate.try_admit(|| 0, now));
        assert!(gate.try_admit(|| 0, now + Duration::from_secs(2)));
    }
}
