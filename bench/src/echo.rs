//! `echo`: each client sends `echo` with an ack, waits for it, and sends the next one.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep_until, timeout};

use crate::client::Client;
use crate::histogram::{Histogram, ms};
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

struct ClientResult {
    latency: Histogram,
    /// The connection broke before the end.
    lost: bool,
}

pub async fn run(args: EchoArgs, files: u64) -> Result<(), String> {
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
    for task in tasks {
        match task.await {
            Ok(result) => {
                latency.merge(&result.latency);
                lost += u64::from(result.lost);
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
    let result = serde_json::json!({
        "scenario": "echo",
        "server": args.common.label,
        "clients": args.clients,
        "duration_s": args.duration_s,
        "connect_failures": failures,
        "acks": acks,
        "acks_per_s": rate.round(),
        "latency_ms": latency.summary_ms(),
        "lost_connections": lost,
        "server_cpu_pct": server_cpu,
        "loadgen_cpu_pct": own_cpu,
    });
    emit(
        &result,
        &[
            ("server", args.common.label.clone()),
            (
                "clients",
                format!("{} ({failures} failed to connect)", args.clients),
            ),
            ("acks", format!("{acks} in {elapsed:.1} s = {rate:.0}/s")),
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
    );
    Ok(())
}

async fn echo_loop(mut client: Client, deadline: Instant) -> ClientResult {
    let mut latency = Histogram::default();
    let mut ack_id: u64 = 0;
    let mut sent_at;
    loop {
        if Instant::now() >= deadline {
            return ClientResult {
                latency,
                lost: false,
            };
        }
        ack_id += 1;
        sent_at = now_ns();
        let request = format!("42{ack_id}[\"echo\",\"{sent_at}\"]");
        client.queue_text(request.as_bytes());
        if client.flush().await.is_err() {
            return ClientResult {
                latency,
                lost: true,
            };
        }
        let expected = format!("43{ack_id}[");
        let mut answered = false;
        // The ack of the last request may arrive after the deadline: wait a little for it.
        let grace = deadline + Duration::from_secs(2);
        while !answered {
            tokio::select! {
                read = client.fill() => {
                    if !read.is_ok_and(|n| n > 0) {
                        return ClientResult { latency, lost: true };
                    }
                    client.drain(|text, _| {
                        if text.starts_with(expected.as_bytes()) {
                            answered = true;
                        }
                    });
                    if client.flush().await.is_err() || client.is_closed() {
                        return ClientResult { latency, lost: true };
                    }
                }
                () = sleep_until(grace) => return ClientResult { latency, lost: false },
            }
        }
        latency.record(now_ns() - sent_at);
    }
}
