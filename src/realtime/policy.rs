//! Who may connect and how much each socket may do: shared by every handler as socketioxide state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Socket;

use super::auth::Authenticator;
use crate::config::{Config, Secret};
use crate::http::admission::{Admissions, Seat};

/// Consecutive one-second windows with dropped events after which a socket is disconnected.
const FLOOD_WINDOWS_BEFORE_DISCONNECT: u32 = 3;

/// The rules and counters every namespace applies.
#[derive(Debug)]
pub struct RelayPolicy {
    /// Handshake authentication.
    pub auth: Authenticator,
    /// Per-socket limits.
    pub limits: Limits,
    /// Events dropped by the rate limit, since startup.
    pub dropped_events: AtomicU64,
    /// The connection limit, shared with the HTTP guard that applies it.
    pub admissions: Admissions,
}

/// Per-socket limits, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rooms one socket may be in at once.
    pub max_rooms_per_socket: usize,
    /// Longest room name, in characters.
    pub max_room_name_chars: usize,
    /// Events a socket may send per second before the excess is dropped.
    pub max_events_per_second: u32,
}

impl RelayPolicy {
    /// The policy `config` describes.
    pub fn from_config(config: &Config) -> Arc<Self> {
        Arc::new(RelayPolicy {
            auth: Authenticator::new(
                config.auth_token.as_ref().map(Secret::expose),
                config.auth_secret.as_ref().map(Secret::expose),
            ),
            limits: Limits {
                max_rooms_per_socket: config.max_rooms_per_socket,
                max_room_name_chars: config.max_room_name_length,
                max_events_per_second: config.max_events_per_second,
            },
            dropped_events: AtomicU64::new(0),
            admissions: Admissions::new(config.max_connections, config.connect_timeout()),
        })
    }

    /// Counts a socket that has joined its namespace among the node's live connections.
    pub fn socket_connected<A: Adapter>(&self, socket: &SocketRef<A>) {
        if let Some(seat) = socket.extensions.get::<Arc<Seat>>() {
            self.admissions.take_seat(&seat);
        }
    }

    /// Gives back the place of a socket that has left its namespace.
    pub fn socket_disconnected<A: Adapter>(&self, socket: &SocketRef<A>) {
        if let Some(seat) = socket.extensions.get::<Arc<Seat>>() {
            self.admissions.leave_seat(&seat);
        }
    }

    /// Counts an event against the socket's budget: `false` means drop it.
    ///
    /// A socket that keeps exceeding its budget is disconnected, so a flood costs the server
    /// one window of work, not an unbounded stream.
    pub fn admit<A: Adapter>(&self, socket: &SocketRef<A>) -> bool {
        let budget = socket
            .extensions
            .get::<Arc<Mutex<EventBudget>>>()
            .unwrap_or_else(|| {
                let budget = Arc::new(Mutex::new(EventBudget::new(Instant::now())));
                socket.extensions.insert(budget.clone());
                budget
            });
        let verdict = budget
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .spend(Instant::now(), self.limits.max_events_per_second);
        match verdict {
            Verdict::Allowed => true,
            Verdict::Dropped => {
                let total = self.dropped_events.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::debug!(sid = %socket.id, dropped_total = total, "event over the rate limit dropped");
                false
            }
            Verdict::Flooding => {
                self.dropped_events.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    sid = %socket.id,
                    ns = socket.ns(),
                    limit = self.limits.max_events_per_second,
                    "disconnecting a socket that keeps flooding events"
                );
                if let Err(error) = socket.clone().disconnect() {
                    tracing::debug!(sid = %socket.id, %error, "flooding socket already gone");
                }
                false
            }
        }
    }
}

/// What the rate limit says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the budget.
    Allowed,
    /// Over the budget: drop the event.
    Dropped,
    /// Over the budget for too long: drop the event and disconnect the socket.
    Flooding,
}

/// A socket's event count in the current one-second window.
#[derive(Debug)]
pub struct EventBudget {
    window_start: Instant,
    spent: u32,
    dropped_in_window: bool,
    flooding_windows: u32,
}

impl EventBudget {
    /// A fresh budget whose first window starts at `now`.
    pub fn new(now: Instant) -> Self {
        EventBudget {
            window_start: now,
            spent: 0,
            dropped_in_window: false,
            flooding_windows: 0,
        }
    }

    /// Spends one event at `now` against `per_second`.
    pub fn spend(&mut self, now: Instant, per_second: u32) -> Verdict {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= Duration::from_secs(1) {
            let consecutive = self.dropped_in_window && elapsed < Duration::from_secs(2);
            self.flooding_windows = if consecutive {
                self.flooding_windows + 1
            } else {
                0
            };
            self.window_start = now;
            self.spent = 0;
            self.dropped_in_window = false;
        }
        if self.spent < per_second {
            self.spent += 1;
            return Verdict::Allowed;
        }
        self.dropped_in_window = true;
        if self.flooding_windows + 1 >= FLOOD_WINDOWS_BEFORE_DISCONNECT {
            Verdict::Flooding
        } else {
            Verdict::Dropped
        }
    }
}

/// Gives a socket its place in the live count; call before its connect or disconnect handler.
pub fn install_seat<A: Adapter>(socket: &Socket<A>) {
    socket.extensions.insert(Arc::new(Seat::default()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_budget_then_drops() {
        let start = Instant::now();
        let mut budget = EventBudget::new(start);
        for _ in 0..3 {
            assert_eq!(budget.spend(start, 3), Verdict::Allowed);
        }
        assert_eq!(budget.spend(start, 3), Verdict::Dropped);
        // A new window refills the budget.
        assert_eq!(
            budget.spend(start + Duration::from_millis(1_000), 3),
            Verdict::Allowed
        );
    }

    #[test]
    fn sustained_floods_end_in_a_disconnect() {
        let start = Instant::now();
        let mut budget = EventBudget::new(start);
        let mut verdicts = Vec::new();
        for window in 0..3u64 {
            let now = start + Duration::from_millis(1_000 * window + 10);
            for _ in 0..3 {
                budget.spend(now, 2);
            }
            verdicts.push(budget.spend(now, 2));
        }
        assert_eq!(
            verdicts,
            [Verdict::Dropped, Verdict::Dropped, Verdict::Flooding]
        );
    }

    #[test]
    fn a_quiet_window_forgives() {
        let start = Instant::now();
        let mut budget = EventBudget::new(start);
        budget.spend(start, 1);
        assert_eq!(budget.spend(start, 1), Verdict::Dropped);
        let later = start + Duration::from_secs(5);
        assert_eq!(budget.spend(later, 1), Verdict::Allowed);
        assert_eq!(budget.spend(later, 1), Verdict::Dropped);
    }
}
