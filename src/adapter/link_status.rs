//! The state of a Redis link: reachable or not, reconnects, and cross-node messages dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::metrics::RedisLinkSource;

/// The state of a Redis link, shared between the link and health reporting.
#[derive(Clone, Default)]
pub struct RedisStatus {
    reachable: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    reconnects: Arc<AtomicU64>,
}

impl RedisStatus {
    /// Whether Redis is connected right now.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Cross-node messages dropped because Redis was unreachable, since startup.
    pub fn dropped_messages(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn set_reachable(&self, reachable: bool) {
        self.reachable.store(reachable, Ordering::Relaxed);
    }

    /// Counts the link coming back after it was lost.
    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts and logs a cross-node message that could not be published.
    pub(crate) fn drop_message(&self, chan: &str, reason: &dyn std::fmt::Display) {
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(channel = chan, %reason, dropped_total = total, "cross-node message dropped");
    }
}

impl RedisLinkSource for RedisStatus {
    fn up(&self) -> bool {
        self.reachable()
    }

    fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    fn dropped_messages(&self) -> u64 {
        self.dropped_messages()
    }
}
