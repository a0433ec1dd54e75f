//! A process-wide hook told the number of this node's recipients of every broadcast, for a
//! metrics exporter. Set once; without it, a broadcast only checks that it is unset.

use std::sync::OnceLock;

static OBSERVER: OnceLock<fn(usize)> = OnceLock::new();

/// Calls `observer` with the number of local recipients of every broadcast from now on. Only
/// the first call sets it; returns whether this one did.
#[doc(hidden)]
pub fn observe_broadcasts(observer: fn(usize)) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Tells the observer, if any, of a broadcast to `recipients` local sockets.
#[inline]
pub(crate) fn broadcast(recipients: usize) {
    if let Some(observer) = OBSERVER.get() {
        observer(recipients);
    }
}
