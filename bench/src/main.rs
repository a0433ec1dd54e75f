//! iorelay-bench: load generator for Socket.IO servers that follow iorelay's event contract.
//!
//! It speaks Engine.IO v4 / Socket.IO v5 over WebSocket itself ([`client`]) so that it costs
//! less than the server it measures. Each scenario prints one JSON line on stdout and a table on
//! stderr; `report` turns the JSON lines of a run into the comparison table.
//!
//! - `connect`: clients connect and stay (in several processes when one process's file limit
//!   is not enough); connect rate, handshake latency, failures, server memory per connection,
//!   and disconnects while held.
//! - `fanout`: members join one room and a publisher sends `chat` to it at a fixed rate or as
//!   fast as the server acknowledges; delivered messages per second, latency, undelivered.
//! - `echo`: clients in a closed loop of `echo` acknowledgements; acks per second, latency.
//! - `webhook`: clients in a closed loop of `work` acknowledgements, which the server has the
//!   app answer (iorelay through its event webhook); events per second, latency, and what the
//!   app adds to the server's own `echo`.
//! - `api-emit`: members join one room, and a few kept-alive HTTP connections emit to it
//!   through the server API (`POST /api/emit`) in a closed loop; requests per second, delivered
//!   messages per second, latency, undelivered.
//!
//! A scenario that lost anything (undelivered messages, acknowledgements never answered or
//! answered with an error, connections that failed or broke) says so in red and exits with
//! code 3 ([`losses`]); one that could not run exits with code 1.
//!
//! Traffic only ever goes to loopback addresses, and every scenario ends by itself.

mod api_emit;
mod client;
mod connect;
mod echo;
mod fanout;
mod histogram;
mod http;
mod losses;
mod polling;
mod report;
mod webhook;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::client::Endpoint;
use crate::losses::Losses;

#[derive(Parser)]
#[command(
    name = "iorelay-bench",
    version,
    about = "Load generator for iorelay and its references"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Clients connect and stay connected.
    Connect(connect::ConnectArgs),
    /// Members of one room receive `chat` from a publisher.
    Fanout(fanout::FanoutArgs),
    /// Clients in a closed loop of `echo` acknowledgements.
    Echo(echo::EchoArgs),
    /// Clients in a closed loop of `work` acknowledgements answered by the app.
    Webhook(webhook::WebhookArgs),
    /// Members of one room receive `tick` emitted through `POST /api/emit`.
    ApiEmit(api_emit::ApiEmitArgs),
    /// Waits until the server accepts a Socket.IO client.
    Wait(WaitArgs),
    /// Prints the comparison table of a run's JSON lines.
    Report(report::ReportArgs),
    /// One process's share of `connect` (started by `connect` itself).
    #[command(hide = true)]
    ConnectWorker(connect::WorkerArgs),
}

/// Options every load scenario shares.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// Server address; must be on loopback (127.0.0.0/8).
    #[arg(long, default_value = "127.0.0.1:3000")]
    target: SocketAddrV4,
    /// Socket.IO path.
    #[arg(long, default_value = "/socket.io/")]
    path: String,
    /// Name of the server in the results.
    #[arg(long, default_value = "server")]
    label: String,
    /// Server process to read memory from (`/proc/PID/status`).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Number of source addresses, 127.0.0.2 upwards, that clients connect from.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=250))]
    sources: u8,
    /// Connections being opened at the same time.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Time one client may take to connect, in seconds.
    #[arg(long, default_value_t = 10)]
    connect_timeout_s: u64,
}

impl Common {
    fn endpoint(&self) -> Endpoint {
        Endpoint {
            target: self.target,
            path: self.path.clone(),
        }
    }

    fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_s)
    }

    /// The source address of the `index`-th client.
    fn source(&self, index: usize) -> Ipv4Addr {
        source_address(self.sources, index)
    }

    fn check(&self) -> Result<(), String> {
        if !self.target.ip().is_loopback() {
            return Err(format!(
                "--target {} is not a loopback address: load is only ever sent to 127.0.0.0/8",
                self.target
            ));
        }
        if self.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        Ok(())
    }
}

/// 127.0.0.2, 127.0.0.3, ... in turn.
pub fn source_address(sources: u8, index: usize) -> Ipv4Addr {
    let offset = (index % usize::from(sources)) as u8;
    Ipv4Addr::new(127, 0, 0, 2 + offset)
}

#[derive(Args)]
struct WaitArgs {
    #[command(flatten)]
    common: Common,
    /// Gives up after this many seconds.
    #[arg(long, default_value_t = 20)]
    timeout_s: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Report(args) = &cli.command {
        return exit(report::run(args).map(|()| Losses::default()));
    }
    let files = raise_file_limit();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return exit(Err(format!("cannot start the runtime: {error}"))),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Connect(args) => connect::run(args, files).await,
            Command::ConnectWorker(args) => connect::worker(args).await.map(|()| Losses::default()),
            Command::Fanout(args) => fanout::run(args, files).await,
            Command::Echo(args) => echo::run(args, files).await,
            Command::Webhook(args) => webhook::run(args, files).await,
            Command::ApiEmit(args) => api_emit::run(args, files).await,
            Command::Wait(args) => wait(args).await.map(|()| Losses::default()),
            Command::Report(_) => unreachable!("handled before the runtime starts"),
        }
    });
    exit(result)
}

fn exit(result: Result<Losses, String>) -> ExitCode {
    match result {
        Ok(losses) if losses.is_empty() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(losses::EXIT_CODE),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn wait(args: WaitArgs) -> Result<(), String> {
    args.common.check()?;
    let endpoint = args.common.endpoint();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout_s);
    let mut last_error = String::from("no attempt");
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(
            Duration::from_secs(2),
            client::Client::connect(&endpoint, Ipv4Addr::LOCALHOST),
        )
        .await
        {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) => last_error = error.to_string(),
            Err(_) => last_error = "timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "{} did not accept a client within {} s: {last_error}",
        args.common.target, args.timeout_s
    ))
}

/// Raises the soft open-file limit to the hard one; returns the limit now in force.
fn raise_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid resource and a pointer to a live rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine, so a timestamp
/// written by one process can be compared by another.
pub fn now_ns() -> u64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) };
    (time.tv_sec as u64) * 1_000_000_000 + time.tv_nsec as u64
}

/// Resident memory of a process in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time used so far by a process (user + system), in clock ticks, from `/proc/PID/stat`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after it are space-separated.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// Share of one CPU a process used between two [`cpu_ticks`] readings `elapsed` apart.
pub fn cpu_percent(before: Option<u64>, after: Option<u64>, elapsed: Duration) -> Option<f64> {
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let (before, after) = (before?, after?);
    if ticks_per_second <= 0 || elapsed.is_zero() {
        return None;
    }
    let used = (after.saturating_sub(before)) as f64 / ticks_per_second as f64;
    Some((used / elapsed.as_secs_f64() * 100.0).round())
}

/// A CPU share for tables.
pub fn percent(value: Option<f64>) -> String {
    value.map_or("unknown".into(), |value| format!("{value:.0} %"))
}

/// The server's and the load generator's CPU shares for tables.
pub fn cpu_line(server: Option<f64>, own: Option<f64>) -> String {
    format!(
        "server {}, load generator {}",
        percent(server),
        percent(own)
    )
}

/// Prints a scenario's JSON line on stdout, and its table and what it lost on stderr.
pub fn emit(result: &serde_json::Value, table: &[(&str, String)], losses: &Losses) {
    println!("{result}");
    let width = table.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, value) in table {
        eprintln!("  {name:<width$}  {value}");
    }
    losses.print();
}

/// A path argument that must exist.
pub fn existing_file(value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{value} is not a file"))
    }
}
