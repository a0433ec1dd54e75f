//! Process-wide counts of Engine.IO traffic, sessions and packets dropped on full queues, for
//! a metrics exporter to read.
//!
//! Every packet read or written adds to a counter, so adding must cost next to nothing: each
//! of the first [`SHARDS`] threads that count owns a shard (relaxed atomics alone on their
//! cache lines) that only it writes, so it adds with a plain load and store instead of a locked
//! read-modify-write; later threads share one more shard and add atomically. A reader sums the
//! shards. Sessions open now are counted per transport when a session opens, upgrades and
//! closes.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use engineioxide_core::TransportType;

/// Threads that own a shard of the traffic counters; those beyond share the last shard.
const SHARDS: usize = 32;

/// Which way a packet went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From the client.
    In,
    /// To the client.
    Out,
}

/// Packets and bytes one way over one transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    /// Engine.IO packets (a batch of websocket frames counts each packet).
    pub packets: u64,
    /// Bytes of the packets' encoding as the transport carried them.
    pub bytes: u64,
}

/// Traffic over one transport since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportTraffic {
    /// From clients.
    pub received: Flow,
    /// To clients.
    pub sent: Flow,
}

/// Traffic since the process started, per transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// HTTP long-polling.
    pub polling: TransportTraffic,
    /// WebSocket.
    pub websocket: TransportTraffic,
}

/// Engine.IO sessions open now, per transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sessions {
    /// Sessions on long-polling (including those in the middle of an upgrade).
    pub polling: u64,
    /// Sessions on WebSocket.
    pub websocket: u64,
}

/// One thread's counters: `[transport][direction][packets, bytes]`, alone on its cache lines.
#[repr(align(128))]
struct Shard([AtomicU64; 8]);

static TRAFFIC: [Shard; SHARDS + 1] =
    [const { Shard([const { AtomicU64::new(0) }; 8]) }; SHARDS + 1];
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);
static POLLING_SESSIONS: AtomicU64 = AtomicU64::new(0);
/// Shared by every thread: it only moves when a client is not keeping up.
static DROPPED_QUEUE_FULL: AtomicU64 = AtomicU64::new(0);
static WEBSOCKET_SESSIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's shard, and whether the thread owns it (is its only writer).
fn shard() -> (&'static Shard, bool) {
    let index = SHARD.with(|shard| {
        let mut index = shard.get();
        if index == usize::MAX {
            index = NEXT_SHARD.fetch_add(1, Ordering::Relaxed).min(SHARDS);
            shard.set(index);
        }
        index
    });
    (&TRAFFIC[index], index < SHARDS)
}

/// Adds `n` to `counter`: a load and a store when this thread is its only writer.
fn add(counter: &AtomicU64, n: u64, owned: bool) {
    if owned {
        counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    } else {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn slot(transport: TransportType, direction: Direction) -> usize {
    let transport = match transport {
        TransportType::Polling => 0,
        TransportType::Websocket => 4,
    };
    let direction = match direction {
        Direction::In => 0,
        Direction::Out => 2,
    };
    transport + direction
}

/// Counts `packets` packets of `bytes` bytes in all.
pub(crate) fn record(transport: TransportType, direction: Direction, packets: u64, bytes: u64) {
    let (shard, owned) = shard();
    let slot = slot(transport, direction);
    add(&shard.0[slot], packets, owned);
    add(&shard.0[slot + 1], bytes, owned);
}

/// Traffic since the process started: the sum of every thread's counters.
pub fn traffic() -> Traffic {
    let mut sums = [0u64; 8];
    for shard in &TRAFFIC {
        for (sum, counter) in sums.iter_mut().zip(&shard.0) {
            *sum += counter.load(Ordering::Relaxed);
        }
    }
    let flow = |slot: usize| Flow {
        packets: sums[slot],
        bytes: sums[slot + 1],
    };
    Traffic {
        polling: TransportTraffic {
            received: flow(0),
            sent: flow(2),
        },
        websocket: TransportTraffic {
            received: flow(4),
            sent: flow(6),
        },
    }
}

/// Sessions open now.
pub fn sessions() -> Sessions {
    Sessions {
        polling: POLLING_SESSIONS.load(Ordering::Relaxed),
        websocket: WEBSOCKET_SESSIONS.load(Ordering::Relaxed),
    }
}

/// Counts a packet refused because its socket's queue was full. Out of line: it sits on the
/// failure path of every send to a socket, which should stay as small as it was.
#[cold]
#[inline(never)]
pub(crate) fn queue_full() {
    DROPPED_QUEUE_FULL.fetch_add(1, Ordering::Relaxed);
}

/// Packets refused because their socket's queue (`max_buffer_size`) was full, since the
/// process started.
pub fn dropped_queue_full() -> u64 {
    DROPPED_QUEUE_FULL.load(Ordering::Relaxed)
}

/// What a socket is counted as among open sessions (`Socket::counted_as`).
pub(crate) const NOT_COUNTED: u8 = u8::MAX;

fn sessions_of(transport: u8) -> Option<&'static AtomicU64> {
    match transport {
        t if t == TransportType::Polling as u8 => Some(&POLLING_SESSIONS),
        t if t == TransportType::Websocket as u8 => Some(&WEBSOCKET_SESSIONS),
        _ => None,
    }
}

/// Counts a session opened on `transport`.
pub(crate) fn session_opened(transport: TransportType) {
    if let Some(count) = sessions_of(transport as u8) {
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Moves a session from the count of `from` to that of `to`.
pub(crate) fn session_moved(from: TransportType, to: TransportType) {
    if let (Some(from), Some(to)) = (sessions_of(from as u8), sessions_of(to as u8)) {
        from.fetch_sub(1, Ordering::Relaxed);
        to.fetch_add(1, Ordering::Relaxed);
    }
}

/// Uncounts a session that was counted as `counted_as` (`NOT_COUNTED`: nothing to do).
pub(crate) fn session_closed(counted_as: u8) {
    if let Some(count) = sessions_of(counted_as) {
        count.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_add_up() {
        let before = traffic();
        // More threads than shards: the last ones share a shard and must not lose counts.
        let threads: Vec<_> = (0..SHARDS + 8)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..1000 {
                        record(TransportType::Websocket, Direction::Out, 2, 10);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let after = traffic();
        // Other tests of the crate may count at the same time: at least ours are there.
        let threads = (SHARDS + 8) as u64;
        assert!(after.websocket.sent.packets - before.websocket.sent.packets >= threads * 2000);
        assert!(after.websocket.sent.bytes - before.websocket.sent.bytes >= threads * 10_000);
    }
}
