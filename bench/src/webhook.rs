//! `webhook`: clients in a closed loop of an event the server hands to the app, `work` with a
//! small object and an ack; the app acknowledges with the event's arguments.
//!
//! For iorelay the app is a separate process reached through its event webhook
//! (`tests/bench/webhook-app.mjs`); for Node socket.io it is a handler in the server process.
//! The same clients first run the built-in `echo` for `--baseline-s` seconds, so that each result
//! carries the server's own round trip next to the one through the app: the difference is what
//! the webhook adds. Error acks, acks without the event's own arguments, events never
//! acknowledged, failed connects and lost connections are the run's [`Losses`].

use std::time::Duration;

use clap::Args;
use tokio::time::Instant;

use crate::client::Client;
use crate::echo::{LoopTotals, ack_loop, connect_clients, echo_request, join_loops};
use crate::histogram::{Histogram, ms};
use crate::losses::Losses;
use crate::{Common, cpu_percent, cpu_ticks, emit, percent};

#[derive(Args, Debug)]
pub struct WebhookArgs {
    #[command(flatten)]
    common: Common,
    /// Number of clients, each with one event in flight.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Seconds of `work` events.
    #[arg(long, default_value_t = 5)]
    duration_s: u64,
    /// Seconds of `echo` before, for the server's own round trip; 0 skips it.
    #[arg(long, default_value_t = 2)]
    baseline_s: u64,
    /// The app's process, when it is not the server, for its CPU share.
    #[arg(long)]
    app_pid: Option<u32>,
}

/// The event: an object of about 60 bytes, its send time as a string so that it comes back
/// unchanged whatever the app does with numbers.
fn work_request(ack_id: u64, sent_at: u64) -> String {
    format!("42{ack_id}[\"work\",{{\"job\":{ack_id},\"kind\":\"resize\",\"ts\":\"{sent_at}\"}}]")
}

/// CPU shares of the processes involved over one phase.
struct CpuShares {
    server: Option<f64>,
    app: Option<f64>,
    load: Option<f64>,
}

pub async fn run(args: WebhookArgs, files: u64) -> Result<Losses, String> {
    args.common.check()?;
    if args.clients == 0 || args.clients as u64 + 64 > files {
        return Err(format!(
            "--clients must be between 1 and the file limit ({files}) less 64"
        ));
    }
    if args.duration_s == 0 {
        return Err("--duration-s must be at least 1".into());
    }
    let (clients, failures) = connect_clients(&args.common, args.clients).await;
    if clients.is_empty() {
        return Err("no client could connect".into());
    }

    let (clients, baseline) = if args.baseline_s > 0 {
        let (clients, totals, _, _) = phase(clients, echo_request, args.baseline_s, &args).await;
        (clients, Some(totals))
    } else {
        (clients, None)
    };
    let survivors = clients.len();
    let (_, work, elapsed, cpu) = phase(clients, work_request, args.duration_s, &args).await;

    let events = work.latency.count();
    let rate = events as f64 / elapsed.as_secs_f64();
    let p99 = ms(work.latency.quantile(0.99));
    let baseline_latency = baseline.as_ref().map(|totals| &totals.latency);
    let baseline_p50 = baseline_latency.map(|latency| ms(latency.quantile(0.5)));
    let baseline_p99 = baseline_latency.map(|latency| ms(latency.quantile(0.99)));
    let added_p50 = baseline_p50.map(|b| ms(work.latency.quantile(0.5)) - b);
    let added_p99 = baseline_p99.map(|b| p99 - b);

    let mut losses = Losses::default();
    losses.count(failures, |n| {
        format!("{n} of {} clients could not connect", args.clients)
    });
    for (name, totals) in [("echoes", baseline.as_ref()), ("work events", Some(&work))] {
        let Some(totals) = totals else { continue };
        losses.count(totals.error_acks, |n| match &totals.first_error {
            Some(error) => format!("{n} {name} answered with an error, the first: {error}"),
            None => format!("{n} {name} answered with an error"),
        });
        losses.count(totals.mismatched, |n| {
            format!("{n} {name} acknowledged without their own arguments")
        });
        losses.count(totals.unanswered, |n| {
            format!("{n} {name} never acknowledged")
        });
    }
    let lost = baseline.as_ref().map_or(0, |totals| totals.lost) + work.lost;
    losses.count(lost, |n| format!("{n} clients lost their connection"));
    let round = |value: Option<f64>| value.map(|v| (v * 1000.0).round() / 1000.0);
    let result = serde_json::json!({
        "scenario": "webhook",
        "server": args.common.label,
        "clients": args.clients,
        "duration_s": args.duration_s,
        "baseline_s": args.baseline_s,
        "connect_failures": failures,
        "events": events,
        "events_per_s": rate.round(),
        "latency_ms": work.latency.summary_ms(),
        "echo_latency_ms": baseline_latency.map(Histogram::summary_ms),
        "added_p50_ms": round(added_p50),
        "added_p99_ms": round(added_p99),
        "error_acks": work.error_acks,
        "first_error": work.first_error,
        "mismatched": work.mismatched,
        "unanswered": work.unanswered,
        "lost_connections": lost,
        "server_cpu_pct": cpu.server,
        "app_cpu_pct": cpu.app,
        "loadgen_cpu_pct": cpu.load,
        "losses": losses.to_json(),
    });
    let opt_ms = |value: Option<f64>| value.map_or("–".to_owned(), |v| format!("{v:.3}"));
    emit(
        &result,
        &[
            ("server", args.common.label.clone()),
            (
                "clients",
                format!(
                    "{} ({failures} failed to connect, {survivors} after the echo phase)",
                    args.clients
                ),
            ),
            (
                "work events",
                format!(
                    "{events} in {:.1} s = {rate:.0}/s; {} errors, {} unanswered",
                    elapsed.as_secs_f64(),
                    work.error_acks,
                    work.unanswered
                ),
            ),
            (
                "latency p50 / p99 / max",
                format!(
                    "{:.3} / {p99:.3} / {:.3} ms",
                    ms(work.latency.quantile(0.5)),
                    ms(work.latency.max())
                ),
            ),
            (
                "echo before: p50 / p99",
                format!("{} / {} ms", opt_ms(baseline_p50), opt_ms(baseline_p99)),
            ),
            (
                "added by the app: p50 / p99",
                format!("{} / {} ms", opt_ms(added_p50), opt_ms(added_p99)),
            ),
            (
                "CPU",
                format!(
                    "server {}, app {}, load generator {}",
                    percent(cpu.server),
                    if args.app_pid.is_some() {
                        percent(cpu.app)
                    } else {
                        "in the server".to_owned()
                    },
                    percent(cpu.load)
                ),
            ),
            ("lost connections", lost.to_string()),
        ],
        &losses,
    );
    if events == 0 {
        return Err("no work event was acknowledged".into());
    }
    Ok(losses)
}

/// Every client runs `request` in a closed loop for `seconds`; returns the clients still
/// connected, the totals, the time taken and the CPU shares over it.
async fn phase(
    clients: Vec<Client>,
    request: fn(u64, u64) -> String,
    seconds: u64,
    args: &WebhookArgs,
) -> (Vec<Client>, LoopTotals, Duration, CpuShares) {
    let own_pid = std::process::id();
    let server_before = args.common.server_pid.and_then(cpu_ticks);
    let app_before = args.app_pid.and_then(cpu_ticks);
    let load_before = cpu_ticks(own_pid);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let tasks = clients
        .into_iter()
        .map(|client| tokio::spawn(ack_loop(client, request, deadline)))
        .collect();
    let (clients, totals) = join_loops(tasks).await;
    let elapsed = start.elapsed();
    let cpu = CpuShares {
        server: cpu_percent(
            server_before,
            args.common.server_pid.and_then(cpu_ticks),
            elapsed,
        ),
        app: cpu_percent(app_before, args.app_pid.and_then(cpu_ticks), elapsed),
        load: cpu_percent(load_before, cpu_ticks(own_pid), elapsed),
    };
    (clients, totals, elapsed, cpu)
}
