//! Gives freed heap memory back to the operating system once a wave of sessions has ended.
//!
//! glibc keeps what many threads free in per-thread arenas and returns memory only from the top
//! of each heap, so after 10 000 abandoned sessions the process kept about twice its baseline
//! RSS (mimalloc kept it too). `malloc_trim` releases the free pages of every arena. It runs
//! only after at least [`ENDED_BEFORE_TRIM`] sessions have ended, so a steady node never pays
//! for it.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::http::guard::Capacity;

/// How often the session count is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// Sessions that must have ended since the last peak before memory is trimmed.
pub const ENDED_BEFORE_TRIM: usize = 1_000;

/// Starts the task that trims the heap after many sessions have ended.
pub fn spawn_trimmer(capacity: Capacity) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut looks = tokio::time::interval(LOOK_EVERY);
        looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            looks.tick().await;
            let ended = capacity
                .policy
                .admissions
                .ended_since_last_look(capacity.live.as_ref(), Instant::now());
            if ended < ENDED_BEFORE_TRIM {
                continue;
            }
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
