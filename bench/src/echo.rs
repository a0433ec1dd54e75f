//! `echo`: each client sends `echo` with an ack, waits for it, and sends the next one.
//!
//! Acks that carry an error (`{ "error": ... }`, such as the rate limit's) are not counted as
//! echoes; they, acks without the echo's own argument, a last echo never answered, failed
//! connects and lost connections are the run's [`Losses`]. The closed loop itself
//! ([`ack_loop`]) serves the `webhook` scenario too, with another event.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep_until, timeout};

use crate::client::{Client, find};
use crate::histogram::{Histogram, ms};
use crate::losses::{Losses, ack_error};
use crate::{Common, cpu_line, cpu_percent, cpu_ticks, emit, now_ns};

#[derive(Args, Debug)]
pub struct EchoArgs {
    #[command(flatten)]
    common: Common,
    /// Number of clients, each with one request in flight.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Seconds of measurement.
    #[arg(long, default_value_t = 5)]
    duration_s: u64,
}

/// What one client's closed loop did, and, merged, what all of them did.
#[derive(Default)]
pub struct LoopTotals {
    /// Of the requests answered without an error.
    pub latency: Histogram,
    /// Acks that carried an error.
    pub error_acks: u64,
    /// The error of the first of them.
    pub first_error: Option<String>,
    /// Acks without the request's timestamp: the answer to some other request.
    pub mismatched: u64,
    /// Loops whose last request was still unanswered when the time was up.
    pub unanswered: u64,
    /// Connections that broke before the end.
    pub lost: u64,
}

impl LoopTotals {
    fn merge(&mut self, other: LoopTotals) {
        self.latency.merge(&other.latency);
        self.error_acks += other.error_acks;
        self.first_error = self.first_error.take().or(other.first_error);
        self.mismatched += other.mismatched;
        self.unanswered += other.unanswered;
        self.lost += other.lost;
    }
}

pub async fn run(args: EchoArgs, files: u64) -> Result<Losses, String> {
    args.common.check()?;
    if args.clients == 0 || args.clients as u64 + 64 > files {
        return Err(format!(
            "--clients must be between 1 and the file limit ({files}) less 64"
        ));
    }
    let (clients, failures) = connect_clients(&args.common, args.clients).await;
    if clients.is_empty() {
        return Err("no client could connect".into());
    }

    let server_cpu_before = args.common.server_pid.and_then(cpu_ticks);
    let own_cpu_before = cpu_ticks(std::process::id());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.duration_s);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(ack_loop(client, echo_request, deadline)))
        .collect();
    let (_, totals) = join_loops(tasks).await;
    let LoopTotals {
        latency,
        error_acks,
        first_error,
        mismatched,
        unanswered,
        lost,
    } = totals;
    let server_cpu = cpu_percent(
        server_cpu_before,
        args.common.server_pid.and_then(cpu_ticks),
        start.elapsed(),
    );
    let own_cpu = cpu_percent(
        own_cpu_before,
        cpu_ticks(std::process::id()),
        start.elapsed(),
    );
    let elapsed = start.elapsed().as_secs_f64();
    let acks = latency.count();
    let rate = acks as f64 / elapsed;
    let mut losses = Losses::default();
    losses.count(failures, |n| {
        format!("{n} of {} clients could not connect", args.clients)
    });
    losses.count(error_acks, |n| match &first_error {
        Some(error) => format!("{n} echoes answered with an error, the first: {error}"),
        None => format!("{n} echoes answered with an error"),
    });
    losses.count(mismatched, |n| {
        format!("{n} echoes acknowledged without their own argument")
    });
    losses.count(unanswered, |n| format!("{n} echoes never acknowledged"));
    losses.count(lost, |n| format!("{n} clients lost their connection"));
    let result = serde_json::json!({
        "scenario": "echo",
        "server": args.common.label,
        "clients": args.clients,
        "duration_s": args.duration_s,
        "connect_failures": failures,
        "acks": acks,
        "acks_per_s": rate.round(),
        "latency_ms": latency.summary_ms(),
        "error_acks": error_acks,
        "first_error": first_error,
        "mismatched": mismatched,
        "unanswered": unanswered,
        "lost_connections": lost,
        "server_cpu_pct": server_cpu,
        "loadgen_cpu_pct": own_cpu,
        "losses": losses.to_json(),
    });
    emit(
        &result,
        &[
            ("server", args.common.label.clone()),
            (
                "clients",
                format!("{} ({failures} failed to connect)", args.clients),
            ),
            (
                "acks",
                format!(
                    "{acks} in {elapsed:.1} s = {rate:.0}/s; {error_acks} errors, \
                     {unanswered} unanswered"
                ),
            ),
            (
                "latency p50 / p99 / max",
                format!(
                    "{:.3} / {:.3} / {:.3} ms",
                    ms(latency.quantile(0.5)),
                    ms(latency.quantile(0.99)),
                    ms(latency.max())
                ),
            ),
            ("CPU", cpu_line(server_cpu, own_cpu)),
            ("lost connections", lost.to_string()),
        ],
        &losses,
    );
    Ok(losses)
}

/// `echo` with the send time as its one argument; the ack carries it back.
pub fn echo_request(ack_id: u64, sent_at: u64) -> String {
    format!("42{ack_id}[\"echo\",\"{sent_at}\"]")
}

/// Connects `count` clients, at most `--concurrency` at a time; returns them and the failures.
pub async fn connect_clients(common: &Common, count: usize) -> (Vec<Client>, u64) {
    let endpoint = Arc::new(common.endpoint());
    let connect_timeout = common.connect_timeout();
    let slots = Arc::new(Semaphore::new(common.concurrency));
    let mut pending = Vec::with_capacity(count);
    for index in 0..count {
        let endpoint = endpoint.clone();
        let slots = slots.clone();
        let source = common.source(index);
        pending.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.ok()?;
            timeout(connect_timeout, Client::connect(&endpoint, source))
                .await
                .ok()?
                .ok()
        }));
    }
    let mut clients = Vec::with_capacity(count);
    let mut failures = 0;
    for task in pending {
        match task.await {
            Ok(Some(client)) => clients.push(client),
            _ => failures += 1,
        }
    }
    (clients, failures)
}

/// Waits for the loops of [`ack_loop`]; returns the clients still connected and the totals.
pub async fn join_loops(
    tasks: Vec<tokio::task::JoinHandle<(Option<Client>, LoopTotals)>>,
) -> (Vec<Client>, LoopTotals) {
    let mut clients = Vec::with_capacity(tasks.len());
    let mut totals = LoopTotals::default();
    for task in tasks {
        match task.await {
            Ok((client, result)) => {
                clients.extend(client);
                totals.merge(result);
            }
            Err(_) => totals.lost += 1,
        }
    }
    (clients, totals)
}

/// Sends `request(ack_id, sent_at)`, waits for its ack, and sends the next one until
/// `deadline`. The ack must carry `sent_at` back, as a string somewhere in its arguments.
/// Returns the client unless its connection broke, so that a later phase can reuse it.
pub async fn ack_loop(
    mut client: Client,
    request: fn(u64, u64) -> String,
    deadline: Instant,
) -> (Option<Client>, LoopTotals) {
    let mut result = LoopTotals::default();
    let mut ack_id: u64 = 0;
    // The ack of the last request may arrive after the deadline: wait a little for it.
    let grace = deadline + Duration::from_secs(2);
    while Instant::now() < deadline {
        ack_id += 1;
        let sent_at = now_ns();
        client.queue_text(request(ack_id, sent_at).as_bytes());
        if client.flush().await.is_err() {
            result.lost = 1;
            return (None, result);
        }
        let expected = format!("43{ack_id}[");
        let stamp = format!("\"{sent_at}\"");
        let mut answer = None;
        while answer.is_none() {
            tokio::select! {
                read = client.fill() => {
                    if !read.is_ok_and(|n| n > 0) {
                        result.lost = 1;
                        return (None, result);
                    }
                    client.drain(|text, _| {
                        if text.starts_with(expected.as_bytes()) {
                            let matches = find(text, stamp.as_bytes()).is_some();
                            answer = Some((ack_error(text), matches));
                        }
                    });
                    if client.flush().await.is_err() || client.is_closed() {
                        result.lost = 1;
                        return (None, result);
                    }
                }
                () = sleep_until(grace) => {
                    result.unanswered = 1;
                    return (Some(client), result);
                }
            }
        }
        match answer {
            Some((Some(error), _)) => {
                result.error_acks += 1;
                result.first_error.get_or_insert(error);
            }
            Some((None, false)) => result.mismatched += 1,
            Some((None, true)) | None => result.latency.record(now_ns() - sent_at),
        }
    }
    (Some(client), result)
}
