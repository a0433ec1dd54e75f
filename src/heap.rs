//! Gives freed heap memory back to the operating system once a wave of sessions has ended.
//!
//! glibc keeps what many threads free in per-thread arenas and returns memory only from the top
//! of each heap, so after 10 000 abandoned sessions the process kept about twice its baseline
//! RSS (mimalloc kept it too). `malloc_trim` releases the free pages of every arena. It runs
//! after every [`ENDED_BEFORE_TRIM`] sessions that end, and once more when handshakes stop
//! coming, so a steady node never pays for it and a burst is cleaned up after its last session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::relay::Relay;
use crate::relay::admission::Turnover;

/// How often the session counts are looked at.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// Sessions that end between two trims while handshakes keep coming.
pub const ENDED_BEFORE_TRIM: u64 = 1_000;
/// Sessions that must have ended for a trim once handshakes have stopped: a trim walks the
/// whole heap, which a node holding many connections should not do for a few departures.
pub const ENDED_BEFORE_QUIET_TRIM: u64 = 100;

/// Starts the task that trims the heap after many sessions have ended.
pub fn spawn_trimmer(relay: Arc<Relay>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut looks = tokio::time::interval(LOOK_EVERY);
        looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut previous = Turnover::default();
        let mut ended_at_trim = 0;
        loop {
            looks.tick().await;
            let now = relay.turnover(Instant::now());
            let ended = now.ended.saturating_sub(ended_at_trim);
            let quiet = now.admitted == previous.admitted;
            previous = now;
            if ended < ENDED_BEFORE_TRIM && !(quiet && ended >= ENDED_BEFORE_QUIET_TRIM) {
                continue;
            }
            ended_at_trim = now.ended;
            let started = Instant::now();
            match tokio::task::spawn_blocking(trim).await {
                Ok(released) => tracing::debug!(
                    ended,
                    released,
                    took_ms = started.elapsed().as_millis(),
                    "heap trimmed after sessions ended"
                ),
                Err(error) => tracing::warn!(%error, "heap trim failed"),
            }
        }
    })
}

/// Returns free heap pages to the system; `true` when some were released.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    // SAFETY: malloc_trim only walks glibc's own arenas, under their locks; it has no
    // preconditions on the caller.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators return memory on their own.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}
