//! The standard `process_*` families, read from `/proc/self` when scraped (Linux; elsewhere
//! they are absent).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What `/proc` says of this process.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ProcessState {
    resident_bytes: u64,
    cpu_seconds: f64,
    start_time_seconds: f64,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

/// Encodes the `process_*` families.
#[derive(Debug)]
pub(super) struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(state) = read() else {
            return Ok(());
        };
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                Some(state.resident_bytes as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds",
                Some(state.start_time_seconds),
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                state.open_fds.map(|n| n as f64),
            ),
            (
                "process_max_fds",
                "The limit of open file descriptors (RLIMIT_NOFILE)",
                state.max_fds.map(|n| n as f64),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                ConstGauge::new(value).encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    MetricType::Gauge,
                )?)?;
            }
        }
        ConstCounter::new(state.cpu_seconds).encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            None,
            MetricType::Counter,
        )?)?;
        Ok(())
    }
}

fn read() -> Option<ProcessState> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| boot_time(&stat));
    parse(&stat, boot_time, clock_ticks(), page_size()).map(|mut state| {
        state.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64);
        state.max_fds = max_fds();
        state
    })
}

/// Reads `/proc/self/stat`: CPU time, start time and resident pages.
fn parse(stat: &str, boot_time: Option<u64>, ticks: f64, page: u64) -> Option<ProcessState> {
    // The command name (field 2) is in parentheses and may hold spaces: fields count from
    // after its closing parenthesis, where field 3 (`state`) is the first.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    let cpu_ticks = field(14)? + field(15)?;
    let start_ticks = field(22)?;
    let resident_pages = field(24)?;
    Some(ProcessState {
        resident_bytes: resident_pages * page,
        cpu_seconds: cpu_ticks as f64 / ticks,
        start_time_seconds: boot_time.map_or(0.0, |boot| boot as f64 + start_ticks as f64 / ticks),
        open_fds: None,
        max_fds: None,
    })
}

/// The `btime` line of `/proc/stat`: when the system booted, in seconds since the epoch.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

fn max_fds() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    let result = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (result == 0).then_some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_stat_line_whose_name_has_spaces_and_parentheses() {
        let stat = "4242 (io (relay) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 \
                    9 0 12345 1000000 2500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0";
        let state = parse(stat, Some(1_000_000), 100.0, 4096).expect("parsed");
        assert_eq!(state.cpu_seconds, 2.0);
        assert_eq!(state.resident_bytes, 2500 * 4096);
        assert_eq!(state.start_time_seconds, 1_000_000.0 + 123.45);
    }

    #[test]
    fn reads_this_process() {
        let state = read().expect("/proc is there on Linux");
        assert!(state.resident_bytes > 0);
        assert!(state.open_fds.is_some_and(|fds| fds > 0));
    }

    #[test]
    fn finds_the_boot_time() {
        assert_eq!(
            boot_time("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
    }
}
