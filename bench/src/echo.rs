//! `echo`: each client sends `echo` with an ack, waits for it, and sends the next one.
//!
//! Acks that carry an error (`{ "error": ... }`, such as the rate limit's) are not counted as
//! echoes; they, a last echo never answered, failed connects and lost connections are the
//! run's [`Losses`].

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep_until, timeout};

use crate::client::Client;
use crate::histogram::{Histogram, ms};
use crate::losses::{Losses, ack_error};
use crate::{Common, cpu_percent, cpu_ticks, emit, now_ns, percent};

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

#[derive(Default)]
struct ClientResult {
    /// Of the echoes answered without an error.
    latency: Histogram,
    /// Acks that carried an error.
    error_acks: u64,
    /// The error of the first of them.
    first_error: Option<String>,
    /// The last echo was still unanswered when the time was up.
    unanswered: bool,
    /// The connection broke before the end.
    lost: bool,
}

pub async fn run(args: EchoArgs, files: u64) -> Result<Losses, String> {
    args.common.check()?;
    if args.clients == 0 || args.clients as u64 + 64 > files {
        return Err(format!(
            "--clients must be between 1 and the file limit ({files}) less 64"
        ));
    }
    let endpoint = Arc::new(args.common.endpoint());
    let connect_timeout = args.common.connect_timeout();
    let slots = Arc::new(Semaphore::new(args.common.concurrency));
    let mut clients = Vec::with_capacity(args.clients);
    let mut failures = 0;
    let mut pending = Vec::with_capacity(args.clients);
    for index in 0..args.clients {
        let endpoint = endpoint.clone();
        let slots = slots.clone();
        let source = args.common.source(index);
        pending.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.ok()?;
            timeout(connect_timeout, Client::connect(&endpoint, source))
                .await
                .ok()?
                .ok()
        }));
    }
    for task in pending {
        match task.await {
            Ok(Some(client)) => clients.push(client),
            _ => failures += 1,
        }
    }
    if clients.is_empty() {
        return Err("no client could connect".into());
    }

    let server_cpu_before = args.common.server_pid.and_then(cpu_ticks);
    let own_cpu_before = cpu_ticks(std::process::id());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.duration_s);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(echo_loop(client, deadline)))
        .collect();
    let mut latency = Histogram::default();
    let mut lost = 0;
    let mut error_acks = 0;
    let mut first_error = None;
    let mut unanswered = 0;
    for task in tasks {
        match task.await {
            Ok(result) => {
                latency.merge(&result.latency);
                lost += u64::from(result.lost);
                error_acks += result.error_acks;
                first_error = first_error.or(result.first_error);
                unanswered += u64::from(result.unanswered);
            }
            Err(_) => lost += 1,
        }
    }
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
            (
                "CPU",
                format!(
                    "server {}, load generator {}",
                    percent(server_cpu),
                    percent(own_cpu)
                ),
            ),
            ("lost connections", lost.to_string()),
        ],
        &losses,
    );
    Ok(losses)
}

async fn echo_loop(mut client: Client, deadline: Instant) -> ClientResult {
    let mut result = ClientResult::default();
    let mut ack_id: u64 = 0;
    // The ack of the last request may arrive after the deadline: wait a little for it.
    let grace = deadline + Duration::from_secs(2);
    while Instant::now() < deadline {
        ack_id += 1;
        let sent_at = now_ns();
        let request = format!("42{ack_id}[\"echo\",\"{sent_at}\"]");
        client.queue_text(request.as_bytes());
        if client.flush().await.is_err() {
            result.lost = true;
            return result;
        }
        let expected = format!("43{ack_id}[");
        let mut answer = None;
        while answer.is_none() {
            tokio::select! {
                read = client.fill() => {
                    if !read.is_ok_and(|n| n > 0) {
                        result.lost = true;
                        return result;
                    }
                    client.drain(|text, _| {
                        if text.starts_with(expected.as_bytes()) {
                            answer = Some(ack_error(text));
                        }
                    });
                    if client.flush().await.is_err() || client.is_closed() {
                        result.lost = true;
                        return result;
                    }
                }
                () = sleep_until(grace) => {
                    result.unanswered = true;
                    return result;
                }
            }
        }
        match answer.flatten() {
            None => result.latency.record(now_ns() - sent_at),
            Some(error) => {
                result.error_acks += 1;
                result.first_error.get_or_insert(error);
            }
        }
    }
    result
}
