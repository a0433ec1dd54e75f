//! `connect`: clients connect, stay connected answering heartbeats, and are released together.
//!
//! The clients are spread over worker processes (this same binary, `connect-worker`), because
//! one process may not hold more files than its limit allows. Each worker reports once all its
//! clients are connected, holds them until the parent releases it, then reports again; the
//! parent reads the server's memory while every client is connected.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::error::Elapsed;
use tokio::time::timeout;

use crate::client::{Client, ConnectError};
use crate::histogram::{Histogram, SparseHistogram, ms};
use crate::losses::Losses;
use crate::polling::PollingClient;
use crate::{Common, emit, now_ns, rss_kib};

/// Files a worker keeps for itself besides its clients.
const SPARE_FILES: u64 = 64;
/// Clients per worker when the file limit allows more (keeps each worker's start-up short).
const CLIENTS_PER_WORKER: usize = 10_000;

#[derive(Args, Debug)]
pub struct ConnectArgs {
    #[command(flatten)]
    common: Common,
    /// Number of clients.
    #[arg(long, default_value_t = 1_000)]
    clients: usize,
    /// Seconds every client stays connected once all are, heartbeats included.
    #[arg(long, default_value_t = 2)]
    hold_s: u64,
    /// Milliseconds between the last connection and the memory reading.
    #[arg(long, default_value_t = 1_000)]
    settle_ms: u64,
    /// Worker processes; 0 picks enough for the file limit.
    #[arg(long, default_value_t = 0)]
    procs: usize,
    /// How the clients stay connected.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    transport: Transport,
}

/// The Engine.IO transport a client connects and stays on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// A WebSocket from the start (`transports: ["websocket"]`).
    Websocket,
    /// HTTP long-polling for the whole session (`transports: ["polling"]`).
    Polling,
}

impl Transport {
    /// The name on the command line and in the results.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Websocket => "websocket",
            Transport::Polling => "polling",
        }
    }
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    common: Common,
    /// Number of clients of this worker.
    #[arg(long)]
    clients: usize,
    /// Index of this worker's first client, for spreading source addresses.
    #[arg(long, default_value_t = 0)]
    first_index: usize,
    /// Releases the clients by itself after this many seconds, whatever the parent does.
    #[arg(long)]
    max_hold_s: u64,
    /// How the clients stay connected.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    transport: Transport,
}

/// A worker's first report: its clients are connected (or failed).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Connected {
    connected: u64,
    failures: BTreeMap<String, u64>,
    first_start_ns: u64,
    last_connected_ns: u64,
    handshake: SparseHistogram,
}

/// A worker's last report: how its clients fared while held.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Held {
    /// Clients the server disconnected while they were held.
    disconnects: u64,
    /// Engine.IO pings answered.
    pings: u64,
}

enum Outcome {
    Connected { start: u64, end: u64 },
    Failed(&'static str),
}

pub async fn run(args: ConnectArgs, files: u64) -> Result<Losses, String> {
    args.common.check()?;
    if args.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let per_process = usize::try_from(files.saturating_sub(SPARE_FILES))
        .unwrap_or(usize::MAX)
        .clamp(1, CLIENTS_PER_WORKER);
    let procs = if args.procs == 0 {
        args.clients.div_ceil(per_process)
    } else {
        args.procs
    };
    if args.clients.div_ceil(procs) as u64 + SPARE_FILES > files {
        return Err(format!(
            "{} clients in {procs} processes exceed the open-file limit of {files} per process; \
             use more --procs",
            args.clients
        ));
    }
    let phase_timeout = args.common.connect_timeout() * 2 + Duration::from_secs(120);
    let rss_before = args.common.server_pid.and_then(rss_kib);

    let mut workers = Vec::with_capacity(procs);
    let mut first_index = 0;
    for worker in 0..procs {
        let clients = args.clients / procs + usize::from(worker < args.clients % procs);
        workers.push(Worker::spawn(&args, clients, first_index, phase_timeout)?);
        first_index += clients;
    }

    let mut connected = Connected::default();
    let mut handshake = Histogram::default();
    connected.first_start_ns = u64::MAX;
    for worker in &mut workers {
        let report: Connected = worker.read_report(phase_timeout).await?;
        connected.connected += report.connected;
        for (kind, count) in report.failures {
            *connected.failures.entry(kind).or_default() += count;
        }
        connected.first_start_ns = connected.first_start_ns.min(report.first_start_ns);
        connected.last_connected_ns = connected.last_connected_ns.max(report.last_connected_ns);
        handshake.merge_sparse(&report.handshake);
    }
    let settle = Duration::from_millis(args.settle_ms);
    tokio::time::sleep(settle).await;
    let rss_after = args.common.server_pid.and_then(rss_kib);
    tokio::time::sleep(Duration::from_secs(args.hold_s).saturating_sub(settle)).await;

    let mut held = Held::default();
    for worker in &mut workers {
        worker.release().await;
    }
    for worker in &mut workers {
        let report: Held = worker.read_report(Duration::from_secs(30)).await?;
        held.disconnects += report.disconnects;
        held.pings += report.pings;
    }
    for worker in workers {
        worker.finish().await;
    }

    let elapsed_ns = connected
        .last_connected_ns
        .saturating_sub(connected.first_start_ns)
        .max(1);
    let rate = connected.connected as f64 * 1e9 / elapsed_ns as f64;
    let kib_per_connection = match (rss_before, rss_after) {
        (Some(before), Some(after)) if connected.connected > 0 => {
            Some(after.saturating_sub(before) as f64 / connected.connected as f64)
        }
        _ => None,
    };
    let failures: u64 = connected.failures.values().sum();
    let mut losses = Losses::default();
    losses.count(failures, |n| {
        let kinds: Vec<String> = connected
            .failures
            .iter()
            .map(|(kind, count)| format!("{count} {kind}"))
            .collect();
        format!(
            "{n} of {} clients could not connect ({})",
            args.clients,
            kinds.join(", ")
        )
    });
    losses.count(held.disconnects, |n| {
        format!("{n} clients were disconnected while held")
    });
    let result = serde_json::json!({
        "scenario": "connect",
        "server": args.common.label,
        "transport": args.transport.name(),
        "clients": args.clients,
        "procs": procs,
        "hold_s": args.hold_s,
        "connected": connected.connected,
        "failures": failures,
        "failure_kinds": connected.failures,
        "connect_per_s": rate.round(),
        "handshake_ms": {
            "p50": ms(handshake.quantile(0.5)),
            "p99": ms(handshake.quantile(0.99)),
            "max": ms(handshake.max()),
        },
        "server_rss_kib_before": rss_before,
        "server_rss_kib_after": rss_after,
        "kib_per_connection": kib_per_connection.map(|kib| (kib * 100.0).round() / 100.0),
        "disconnects": held.disconnects,
        "pings": held.pings,
        "losses": losses.to_json(),
    });
    emit(
        &result,
        &[
            ("server", args.common.label.clone()),
            (
                "clients",
                format!(
                    "{} in {procs} process(es), on {}",
                    args.clients,
                    args.transport.name()
                ),
            ),
            (
                "connected",
                format!("{} ({failures} failed)", connected.connected),
            ),
            ("connect rate", format!("{rate:.0}/s")),
            (
                "handshake p50 / p99",
                format!(
                    "{:.2} / {:.2} ms",
                    ms(handshake.quantile(0.5)),
                    ms(handshake.quantile(0.99))
                ),
            ),
            (
                "server memory",
                kib_per_connection.map_or("unknown (no --server-pid)".into(), |kib| {
                    format!("{kib:.2} KiB per connection")
                }),
            ),
            (
                "held",
                format!(
                    "{} s, {} disconnects, {} pings answered",
                    args.hold_s, held.disconnects, held.pings
                ),
            ),
        ],
        &losses,
    );
    if connected.connected == 0 {
        return Err("no client could connect".into());
    }
    Ok(losses)
}

/// One worker process and its pipes.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(
        args: &ConnectArgs,
        clients: usize,
        first_index: usize,
        phase_timeout: Duration,
    ) -> Result<Worker, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
        let common = &args.common;
        let max_hold = phase_timeout.as_secs() + args.hold_s + 30;
        let mut child = Command::new(exe)
            .arg("connect-worker")
            .args(["--target", &common.target.to_string()])
            .args(["--path", &common.path])
            .args(["--label", &common.label])
            .args(["--sources", &common.sources.to_string()])
            .args(["--concurrency", &common.concurrency.to_string()])
            .args(["--connect-timeout-s", &common.connect_timeout_s.to_string()])
            .args(["--clients", &clients.to_string()])
            .args(["--first-index", &first_index.to_string()])
            .args(["--max-hold-s", &max_hold.to_string()])
            .args(["--transport", args.transport.name()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("worker has no stdout")?;
        Ok(Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    async fn read_report<T: for<'de> Deserialize<'de>>(
        &mut self,
        limit: Duration,
    ) -> Result<T, String> {
        let mut line = String::new();
        match timeout(limit, self.stdout.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 => {
                serde_json::from_str(&line).map_err(|e| format!("bad worker report {line:?}: {e}"))
            }
            Ok(Ok(_)) => Err("a worker exited before reporting".into()),
            Ok(Err(error)) => Err(format!("cannot read a worker's report: {error}")),
            Err(_) => Err(format!("a worker did not report within {limit:?}")),
        }
    }

    async fn release(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            // A worker that is already gone has released its clients anyway.
            let _ = stdin.write_all(b"release\n").await;
        }
    }

    async fn finish(mut self) {
        if timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// One worker: connects its clients, reports, holds them until released, reports again.
pub async fn worker(args: WorkerArgs) -> Result<(), String> {
    args.common.check()?;
    let endpoint = Arc::new(args.common.endpoint());
    let connect_timeout = args.common.connect_timeout();
    let slots = Arc::new(Semaphore::new(args.common.concurrency));
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let (release_tx, release_rx) = watch::channel(false);
    let mut tasks = Vec::with_capacity(args.clients);
    for index in 0..args.clients {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let endpoint = endpoint.clone();
        let outcomes_tx = outcomes_tx.clone();
        let mut release = release_rx.clone();
        let source = args.common.source(args.first_index + index);
        let transport = args.transport;
        tasks.push(tokio::spawn(async move {
            let start = now_ns();
            match transport {
                Transport::Polling => {
                    let attempt =
                        timeout(connect_timeout, PollingClient::connect(&endpoint, source)).await;
                    drop(slot);
                    let Some(mut client) = outcome_of(attempt, start, &outcomes_tx) else {
                        return Held::default();
                    };
                    hold_polling(&mut client, &mut release).await
                }
                Transport::Websocket => {
                    let attempt =
                        timeout(connect_timeout, Client::connect(&endpoint, source)).await;
                    drop(slot);
                    let Some(mut client) = outcome_of(attempt, start, &outcomes_tx) else {
                        return Held::default();
                    };
                    hold(&mut client, &mut release).await
                }
            }
        }));
    }
    drop(outcomes_tx);

    let mut report = Connected {
        first_start_ns: u64::MAX,
        ..Connected::default()
    };
    let mut handshake = Histogram::default();
    // Each task reports exactly once, then keeps its sender while it holds its client.
    for _ in 0..tasks.len() {
        let Some(outcome) = outcomes.recv().await else {
            break;
        };
        match outcome {
            Outcome::Connected { start, end } => {
                report.connected += 1;
                report.first_start_ns = report.first_start_ns.min(start);
                report.last_connected_ns = report.last_connected_ns.max(end);
                handshake.record(end - start);
            }
            Outcome::Failed(kind) => *report.failures.entry(kind.to_owned()).or_default() += 1,
        }
    }
    if report.first_start_ns == u64::MAX {
        report.first_start_ns = now_ns();
        report.last_connected_ns = report.first_start_ns;
    }
    report.handshake = handshake.to_sparse();
    print_line(&report)?;

    // Released by the parent, or by the deadline if the parent is gone.
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    let _ = timeout(
        Duration::from_secs(args.max_hold_s),
        stdin.read_line(&mut line),
    )
    .await;
    let _ = release_tx.send(true);

    let mut held = Held::default();
    for task in tasks {
        if let Ok(result) = task.await {
            held.disconnects += result.disconnects;
            held.pings += result.pings;
        }
    }
    print_line(&held)
}

/// Keeps a client connected, answering heartbeats, until released.
async fn hold(client: &mut Client, release: &mut watch::Receiver<bool>) -> Held {
    loop {
        tokio::select! {
            read = client.fill() => {
                let open = read.is_ok_and(|n| n > 0);
                client.drain(|_, _| {});
                if !open || client.is_closed() || client.flush().await.is_err() {
                    return Held { disconnects: 1, pings: client.pings };
                }
            }
            _ = release.changed() => return Held { disconnects: 0, pings: client.pings },
        }
    }
}

/// Reports how a connection attempt started at `start` ended, and hands back the client.
fn outcome_of<C>(
    attempt: Result<Result<C, ConnectError>, Elapsed>,
    start: u64,
    outcomes: &mpsc::UnboundedSender<Outcome>,
) -> Option<C> {
    let (outcome, client) = match attempt {
        Ok(Ok(client)) => (
            Outcome::Connected {
                start,
                end: now_ns(),
            },
            Some(client),
        ),
        Ok(Err(error)) => (Outcome::Failed(error.kind()), None),
        Err(_) => (Outcome::Failed("timeout"), None),
    };
    let _ = outcomes.send(outcome);
    client
}

/// Keeps a polling client connected, one long-poll after another, until released.
async fn hold_polling(client: &mut PollingClient, release: &mut watch::Receiver<bool>) -> Held {
    loop {
        tokio::select! {
            polled = client.poll(|_| {}) => {
                if !polled.is_ok_and(|polled| !polled.closed) {
                    return Held { disconnects: 1, pings: client.pings };
                }
            }
            _ = release.changed() => return Held { disconnects: 0, pings: client.pings },
        }
    }
}

fn print_line<T: Serialize>(value: &T) -> Result<(), String> {
    let line = serde_json::to_string(value).map_err(|e| e.to_string())?;
    println!("{line}");
    Ok(())
}
