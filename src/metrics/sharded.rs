//! Counters each thread adds to on its own cache line, summed when read: for the counts that
//! move with every frame or event, which a shared atomic would make the worker threads contend
//! on. Each of the first [`SHARDS`] threads that count owns a shard index, the same in every
//! counter, and is the only writer of its shards: it adds with a plain load and store instead of
//! a locked read-modify-write. Later threads share one more shard and add atomically.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Threads that own a shard; those beyond share the last one.
const SHARDS: usize = 16;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's shard index, assigned on first use: below [`SHARDS`] it is the thread's
/// own, [`SHARDS`] is the shared one.
fn shard_index() -> usize {
    SHARD.with(|shard| {
        let mut index = shard.get();
        if index == usize::MAX {
            index = NEXT_SHARD.fetch_add(1, Ordering::Relaxed).min(SHARDS);
            shard.set(index);
        }
        index
    })
}

/// Adds `n` to `counter` of shard `index`: a load and a store in a shard its thread owns.
fn add(counter: &AtomicU64, n: u64, index: usize) {
    if index < SHARDS {
        counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    } else {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// One thread's counts: frames and bytes received, frames and bytes sent.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard([AtomicU64; 4]);

/// Plain WebSocket frames and bytes, both ways.
#[derive(Debug, Default)]
pub struct PlainTraffic {
    shards: [Shard; SHARDS + 1],
}

/// Frames and bytes one way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCount {
    /// Frames.
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl PlainTraffic {
    fn add(&self, slot: usize, frames: usize, bytes: usize) {
        let index = shard_index();
        let shard = &self.shards[index];
        add(&shard.0[slot], frames as u64, index);
        add(&shard.0[slot + 1], bytes as u64, index);
    }

    /// Counts a frame read.
    pub fn received(&self, bytes: usize) {
        self.add(0, 1, bytes);
    }

    /// Counts frames written.
    pub fn sent(&self, frames: usize, bytes: usize) {
        self.add(2, frames, bytes);
    }

    fn sum(&self, slot: usize) -> FrameCount {
        let mut count = FrameCount::default();
        for shard in &self.shards {
            count.frames += shard.0[slot].load(Ordering::Relaxed);
            count.bytes += shard.0[slot + 1].load(Ordering::Relaxed);
        }
        count
    }

    /// Frames read since startup.
    pub fn total_received(&self) -> FrameCount {
        self.sum(0)
    }

    /// Frames written since startup.
    pub fn total_sent(&self) -> FrameCount {
        self.sum(2)
    }
}

/// One counter alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// A Prometheus counter each thread adds to on its own cache line: for the counts every event
/// moves, which worker threads would otherwise take turns owning.
#[derive(Debug, Clone, Default)]
pub struct ShardedCounter(Arc<[Padded; SHARDS + 1]>);

impl ShardedCounter {
    /// Adds one.
    pub fn inc(&self) {
        let index = shard_index();
        add(&self.0[index].0, 1, index);
    }

    /// The sum of every thread's count.
    pub fn get(&self) -> u64 {
        self.0
            .iter()
            .map(|shard| shard.0.load(Ordering::Relaxed))
            .sum()
    }
}

impl TypedMetric for ShardedCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for ShardedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_count_is_lost_with_more_threads_than_shards() {
        let counter = ShardedCounter::default();
        let threads: Vec<_> = (0..SHARDS + 8)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counter.inc();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread ran");
        }
        assert_eq!(counter.get(), (SHARDS as u64 + 8) * 1000);
    }
}
