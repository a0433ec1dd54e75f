//! The per-client event budget: how many events one client may send per second.
//!
//! Node socket.io has no such limit. iorelay keeps one because a client's events are handled
//! one after the other: an unbounded flood from one client would queue unbounded work. An event
//! over the budget is never dropped silently: it is counted, logged, and answered with
//! [`RateLimited`] when the client asked for an acknowledgement.

use std::time::{Duration, Instant};

/// Consecutive one-second windows with refused events after which a client is disconnected.
const FLOOD_WINDOWS_BEFORE_DISCONNECT: u32 = 3;

/// What the rate limit says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the budget.
    Allowed,
    /// Over the budget: the event is not handled.
    Dropped,
    /// Over the budget for too long: the event is not handled and the client is disconnected.
    Flooding,
}

/// The answer to an event over the budget, as the client reads it in its acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited: more than {0} events per second")]
pub struct RateLimited(pub u32);

/// The node's rate limit. Refused events are counted per namespace in the metrics
/// (`Relay::spend`), which `/healthz` sums.
#[derive(Debug)]
pub struct RateLimit {
    per_second: u32,
}

impl RateLimit {
    /// A limit of `per_second` events per client.
    pub fn new(per_second: u32) -> Self {
        RateLimit { per_second }
    }

    /// Spends one event of `budget` at `now`.
    pub fn spend(&self, budget: &mut EventBudget, now: Instant) -> Verdict {
        budget.spend(now, self.per_second)
    }

    /// The error a refused event is answered with.
    pub fn error(&self) -> RateLimited {
        RateLimited(self.per_second)
    }
}

/// A client's event count in the current one-second window.
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

    #[test]
    fn refusals_are_explained() {
        let limit = RateLimit::new(1);
        let now = Instant::now();
        let mut budget = EventBudget::new(now);
        assert_eq!(limit.spend(&mut budget, now), Verdict::Allowed);
        assert_eq!(limit.spend(&mut budget, now), Verdict::Dropped);
        assert_eq!(
            limit.error().to_string(),
            "rate limited: more than 1 events per second"
        );
    }
}
