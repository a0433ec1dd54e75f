//! The per-node connection limit, applied to handshakes before a session exists.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
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
    /// Sockets that settled and have not left yet. Counting them here keeps each handshake
    /// O(1); listing every namespace's sockets made a burst of N connections cost O(N²).
    sockets: AtomicUsize,
    /// Sessions admitted since startup.
    admitted: AtomicU64,
}

impl Admissions {
    /// A gate for `max` connections whose handshakes must connect within `connect_timeout`.
    pub fn new(max: usize, connect_timeout: Duration) -> Self {
        Admissions {
            max,
            connect_timeout,
            pending: Mutex::new(VecDeque::new()),
            sockets: AtomicUsize::new(0),
            admitted: AtomicU64::new(0),
        }
    }

    /// Admits one more session given the count of connected sockets, or refuses it.
    ///
    /// `live` is read under the gate's lock: a session that connects meanwhile is then counted
    /// as pending (it cannot settle before the lock is released) or as live, never as neither.
    pub fn try_admit(&self, live: impl FnOnce() -> usize, now: Instant) -> bool {
        let mut pending = self.lock_pending();
        self.expire(&mut pending, now);
        let held = live() + pending.len();
        if held >= self.max {
            return false;
        }
        pending.push_back(now);
        self.admitted.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Sessions admitted since startup, and how many of them have ended; `live` counts the
    /// connected clients as for [`Admissions::try_admit`].
    pub fn turnover(&self, live: impl FnOnce() -> usize, now: Instant) -> Turnover {
        let mut pending = self.lock_pending();
        self.expire(&mut pending, now);
        let held = (live() + pending.len()) as u64;
        let admitted = self.admitted.load(Ordering::Relaxed);
        Turnover {
            admitted,
            ended: admitted.saturating_sub(held),
        }
    }

    /// Forgets handshakes older than the connect timeout: the server has dropped them.
    fn expire(&self, pending: &mut VecDeque<Instant>, now: Instant) {
        while pending
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > self.connect_timeout)
        {
            pending.pop_front();
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, VecDeque<Instant>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A pending session has been served outside Socket.IO (a plain WebSocket, which its hub
    /// counts) or has failed: it no longer counts as pending.
    pub fn settle(&self) {
        self.lock_pending().pop_front();
    }

    /// A pending session has joined a namespace: it takes its seat among the live sockets,
    /// unless it already left.
    pub fn take_seat(&self, seat: &Seat) {
        let mut pending = self.lock_pending();
        pending.pop_front();
        // Under the lock, so that `try_admit` sees the session as pending or as live.
        if seat
            .0
            .compare_exchange(SEAT_FREE, SEAT_TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.sockets.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A socket has disconnected; its seat is given back if it had taken one.
    ///
    /// socketioxide may run the disconnect handler before the spawned connect handler, so the
    /// seat remembers which came first and the count never drifts either way.
    pub fn leave_seat(&self, seat: &Seat) {
        if seat.0.swap(SEAT_LEFT, Ordering::AcqRel) == SEAT_TAKEN {
            self.sockets.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Sockets connected right now, on every namespace.
    pub fn sockets(&self) -> usize {
        self.sockets.load(Ordering::Relaxed)
    }
}

/// Sessions a node has admitted and seen end, since startup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Turnover {
    /// Handshakes admitted.
    pub admitted: u64,
    /// Of those, sessions that have ended (expired unconnected, or connected and left).
    pub ended: u64,
}

const SEAT_FREE: u8 = 0;
const SEAT_TAKEN: u8 = 1;
const SEAT_LEFT: u8 = 2;

/// One socket's place among the live sockets of [`Admissions`].
#[derive(Debug, Default)]
pub struct Seat(AtomicU8);

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
        let seats = [Seat::default(), Seat::default()];
        gate.take_seat(&seats[0]);
        gate.take_seat(&seats[1]);
        assert_eq!(gate.sockets(), 2);
        assert!(
            !gate.try_admit(|| gate.sockets(), now),
            "two live sockets fill it too"
        );
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

    #[test]
    fn a_seat_is_counted_once_whatever_the_order() {
        let gate = Admissions::new(10, Duration::from_secs(1));
        let now = Instant::now();
        let usual = Seat::default();
        assert!(gate.try_admit(|| 0, now));
        gate.take_seat(&usual);
        gate.take_seat(&usual);
        assert_eq!(gate.sockets(), 1, "taking a seat twice counts once");
        gate.leave_seat(&usual);
        gate.leave_seat(&usual);
        assert_eq!(gate.sockets(), 0, "leaving twice gives back one seat");

        let gate = Admissions::new(1, Duration::from_secs(1));
        let early_leaver = Seat::default();
        assert!(gate.try_admit(|| gate.sockets(), now));
        gate.leave_seat(&early_leaver);
        gate.take_seat(&early_leaver);
        assert_eq!(
            gate.sockets(),
            0,
            "a socket that left before connecting is not counted"
        );
        assert!(
            gate.try_admit(|| gate.sockets(), now),
            "and its pending place was released"
        );
    }

    #[test]
    fn turnover_counts_expired_and_departed_sessions() {
        let gate = Admissions::new(10, Duration::from_secs(1));
        let now = Instant::now();
        for _ in 0..3 {
            assert!(gate.try_admit(|| 0, now));
        }
        let seat = Seat::default();
        gate.take_seat(&seat);
        assert_eq!(
            gate.turnover(|| gate.sockets(), now),
            Turnover {
                admitted: 3,
                ended: 0
            },
            "one connected, two pending"
        );
        let later = now + Duration::from_secs(2);
        assert_eq!(
            gate.turnover(|| gate.sockets(), later).ended,
            2,
            "two expired"
        );
        gate.leave_seat(&seat);
        assert_eq!(
            gate.turnover(|| gate.sockets(), later).ended,
            3,
            "and one left"
        );
    }
}
