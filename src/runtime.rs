//! The async runtime the server runs on, sized by `--worker-threads`.
//!
//! With one thread, the single-threaded scheduler serves every connection. The multi-threaded
//! one with a single worker keeps a local run queue of 256 tasks; a broadcast to a large room
//! wakes one writer per member, and the wakes beyond 256 overflow to its shared queue, which
//! it polls only now and then. Members whose writers landed there got the message tens of ms
//! after the others, and the hand-over cost throughput. The single-threaded scheduler runs
//! woken tasks in the order they were woken.

use std::io;
use std::num::NonZeroUsize;

use tokio::runtime::{Builder, Runtime};

/// Threads to run: `configured`, or one per CPU this process may use when it is 0.
pub fn worker_threads(configured: u16) -> usize {
    if configured > 0 {
        return usize::from(configured);
    }
    // Counts the CPUs in the process's affinity mask and its cgroup quota, as a container
    // or `taskset` sets them.
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Builds the runtime for `threads` worker threads (see [`worker_threads`]).
pub fn build(threads: usize) -> io::Result<Runtime> {
    let mut builder = if threads <= 1 {
        Builder::new_current_thread()
    } else {
        let mut builder = Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all().thread_name("iorelay-worker").build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn zero_means_one_thread_per_available_cpu() {
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(worker_threads(0), cpus);
        assert_eq!(worker_threads(3), 3);
    }

    #[test]
    fn one_thread_runs_the_single_threaded_scheduler() {
        let single = build(1).expect("runtime");
        assert_eq!(
            single.handle().runtime_flavor(),
            RuntimeFlavor::CurrentThread
        );
        let multi = build(2).expect("runtime");
        assert_eq!(multi.handle().runtime_flavor(), RuntimeFlavor::MultiThread);
        assert_eq!(multi.metrics().num_workers(), 2);
    }
}
