//! `api-emit`: members join one room, and the app emits `tick` to it through the server's HTTP
//! API, `POST /api/emit` with `{ "event": "tick", "args": [<ts>], "to": [room] }`, from a few
//! kept-alive connections each in a closed loop (the next request once the last is answered).
//!
//! `<ts>` is the sender's CLOCK_MONOTONIC time in nanoseconds, so each member measures the
//! latency of every delivery. After the requests stop, the members get a bounded time to receive
//! the rest; whatever has not arrived by then is undelivered. Undelivered ticks, requests
//! answered with anything but 2xx or not at all, members that could not join and lost
//! connections are the run's [`Losses`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};

use crate::connect::Transport;
use crate::fanout::{connect_members, member_loop};
use crate::histogram::{Histogram, ms};
use crate::http::HttpConnection;
use crate::losses::Losses;
use crate::{Common, cpu_line, cpu_percent, cpu_ticks, emit, now_ns};

#[derive(Args, Debug)]
pub struct ApiEmitArgs {
    #[command(flatten)]
    common: Common,
    /// Members of the room.
    #[arg(long, default_value_t = 1_000)]
    members: usize,
    /// Kept-alive HTTP connections, each with one request in flight.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Seconds of requests.
    #[arg(long, default_value_t = 5)]
    duration_s: u64,
    /// Longest wait, in seconds, for the last deliveries once the requests stop.
    #[arg(long, default_value_t = 10)]
    drain_s: u64,
    /// Room name.
    #[arg(long, default_value = "bench")]
    room: String,
    /// Path of the emit route.
    #[arg(long, default_value = "/api/emit")]
    api_path: String,
    /// Sent as `Authorization: Bearer <key>` when given.
    #[arg(long)]
    api_key: Option<String>,
    /// Longest wait for one answer, in seconds.
    #[arg(long, default_value_t = 10)]
    request_timeout_s: u64,
}

/// What one HTTP connection did.
#[derive(Default)]
struct Requests {
    sent: u64,
    /// Answered 2xx: their ticks are expected at every member.
    accepted: u64,
    /// Answered with another status.
    refused: u64,
    /// The first refusal: status and body.
    first_refusal: Option<String>,
    /// Sent, never answered (the connection broke or the answer took too long).
    unanswered: u64,
    /// Time from sending to the answer, of the accepted ones.
    latency: Histogram,
    first_sent_ns: u64,
    last_sent_ns: u64,
    /// The connection could not be opened or broke.
    broken: bool,
    error: Option<String>,
}

impl Requests {
    fn merge(&mut self, other: Requests) {
        self.sent += other.sent;
        self.accepted += other.accepted;
        self.refused += other.refused;
        self.first_refusal = self.first_refusal.take().or(other.first_refusal);
        self.unanswered += other.unanswered;
        self.latency.merge(&other.latency);
        self.first_sent_ns = match (self.first_sent_ns, other.first_sent_ns) {
            (0, other) => other,
            (mine, 0) => mine,
            (mine, other) => mine.min(other),
        };
        self.last_sent_ns = self.last_sent_ns.max(other.last_sent_ns);
        self.broken |= other.broken;
        self.error = self.error.take().or(other.error);
    }
}

pub async fn run(args: ApiEmitArgs, files: u64) -> Result<Losses, String> {
    args.common.check()?;
    if args.members == 0 || (args.members + args.connections) as u64 + 64 > files {
        return Err(format!(
            "--members and --connections must fit in the file limit ({files}) less 64"
        ));
    }
    if args.connections == 0 || args.duration_s == 0 {
        return Err("--connections and --duration-s must be at least 1".into());
    }
    let room_json = serde_json::to_string(&args.room).map_err(|e| e.to_string())?;
    let endpoint = Arc::new(args.common.endpoint());

    let join_started = Instant::now();
    let (members, join_failures) = connect_members(
        &args.common,
        args.members,
        std::slice::from_ref(&endpoint),
        &room_json,
        Transport::Websocket,
    )
    .await;
    if members.is_empty() {
        return Err("no member could connect and join".into());
    }
    let join_time = join_started.elapsed();
    let member_count = members.len() as u64;
    let received_total = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let member_tasks: Vec<_> = members
        .into_iter()
        .map(|client| {
            tokio::spawn(member_loop(
                client,
                stop_rx.clone(),
                received_total.clone(),
                tick_timestamp,
            ))
        })
        .collect();

    let headers = match &args.api_key {
        Some(key) => format!("Authorization: Bearer {key}\r\n"),
        None => String::new(),
    };
    let body_prefix = Arc::new(format!(
        "{{\"event\":\"tick\",\"to\":[{room_json}],\"args\":["
    ));
    let server_pid = args.common.server_pid;
    let own_pid = std::process::id();
    let cpu_start = Instant::now();
    let server_cpu_before = server_pid.and_then(cpu_ticks);
    let own_cpu_before = cpu_ticks(own_pid);
    let send_end = Instant::now() + Duration::from_secs(args.duration_s);
    let drain_end = send_end + Duration::from_secs(args.drain_s);
    let callers: Vec<_> = (0..args.connections)
        .map(|index| {
            tokio::spawn(call_loop(
                args.common.target,
                args.common.source(args.members + index),
                args.api_path.clone(),
                headers.clone(),
                body_prefix.clone(),
                send_end,
                Duration::from_secs(args.request_timeout_s),
            ))
        })
        .collect();
    let mut requests = Requests::default();
    for caller in callers {
        match caller.await {
            Ok(result) => requests.merge(result),
            Err(error) => {
                requests.broken = true;
                requests.error.get_or_insert(error.to_string());
            }
        }
    }
    let cpu_elapsed = cpu_start.elapsed();
    let server_cpu = cpu_percent(
        server_cpu_before,
        server_pid.and_then(cpu_ticks),
        cpu_elapsed,
    );
    let own_cpu = cpu_percent(own_cpu_before, cpu_ticks(own_pid), cpu_elapsed);

    let expected = requests.accepted * member_count;
    while received_total.load(Ordering::Relaxed) < expected && Instant::now() < drain_end {
        sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    let mut latency = Histogram::default();
    let mut received = 0;
    let mut last_received_ns = 0;
    let mut lost_members = 0;
    for task in member_tasks {
        match task.await {
            Ok(result) => {
                received += result.received;
                last_received_ns = last_received_ns.max(result.last_received_ns);
                latency.merge(&result.latency);
                lost_members += u64::from(result.lost);
            }
            Err(_) => lost_members += 1,
        }
    }

    let undelivered = expected.saturating_sub(received);
    let mut losses = Losses::default();
    losses.count(join_failures, |n| {
        format!("{n} of {} members could not join the room", args.members)
    });
    losses.count(undelivered, |n| {
        format!("{n} of {expected} deliveries of accepted API emits never arrived")
    });
    losses.count(requests.refused, |n| match &requests.first_refusal {
        Some(refusal) => format!("{n} API emits refused, the first: {refusal}"),
        None => format!("{n} API emits refused"),
    });
    losses.count(requests.unanswered, |n| {
        format!("{n} of {} API emits never answered", requests.sent)
    });
    losses.count(lost_members, |n| {
        format!("{n} members lost their connection")
    });
    if requests.broken {
        let error = requests.error.as_deref().unwrap_or("unknown error");
        losses.note(true, &format!("an HTTP connection broke: {error}"));
    }
    let send_window_s = send_window(&requests);
    let requests_per_s = requests.accepted as f64 / send_window_s;
    let delivery_window_ns = last_received_ns
        .saturating_sub(requests.first_sent_ns)
        .max(1);
    let delivered_per_s = received as f64 * 1e9 / delivery_window_ns as f64;
    let result = serde_json::json!({
        "scenario": "api-emit",
        "server": args.common.label,
        "members": args.members,
        "connections": args.connections,
        "duration_s": args.duration_s,
        "joined": member_count,
        "join_failures": join_failures,
        "join_s": (join_time.as_secs_f64() * 1000.0).round() / 1000.0,
        "requests": requests.sent,
        "accepted": requests.accepted,
        "refused": requests.refused,
        "first_refusal": requests.first_refusal,
        "unanswered": requests.unanswered,
        "requests_per_s": requests_per_s.round(),
        "request_latency_ms": requests.latency.summary_ms(),
        "expected": expected,
        "received": received,
        "undelivered": undelivered,
        "delivered_per_s": delivered_per_s.round(),
        "latency_ms": latency.summary_ms(),
        "lost_members": lost_members,
        "server_cpu_pct": server_cpu,
        "loadgen_cpu_pct": own_cpu,
        "losses": losses.to_json(),
    });
    emit(
        &result,
        &[
            ("server", args.common.label.clone()),
            (
                "members",
                format!(
                    "{member_count} joined ({join_failures} failed) in {:.1} s",
                    join_time.as_secs_f64()
                ),
            ),
            (
                "requests",
                format!(
                    "{} on {} connections in {send_window_s:.1} s: {} accepted \
                     ({requests_per_s:.0}/s), {} refused, {} unanswered",
                    requests.sent,
                    args.connections,
                    requests.accepted,
                    requests.refused,
                    requests.unanswered
                ),
            ),
            (
                "request p50 / p99",
                format!(
                    "{:.2} / {:.2} ms",
                    ms(requests.latency.quantile(0.5)),
                    ms(requests.latency.quantile(0.99))
                ),
            ),
            (
                "delivered",
                format!("{received} ({delivered_per_s:.0} msg/s)"),
            ),
            (
                "undelivered",
                format!(
                    "{undelivered} of {expected} after a {} s drain",
                    args.drain_s
                ),
            ),
            ("delivery p50 / p90 / p99 / max", latency.spread_ms()),
            ("CPU while sending", cpu_line(server_cpu, own_cpu)),
            ("lost connections", format!("{lost_members} members")),
        ],
        &losses,
    );
    if requests.accepted == 0 {
        return Err(match requests.first_refusal.or(requests.error) {
            Some(reason) => format!("no API emit was accepted: {reason}"),
            None => "no API emit was accepted".into(),
        });
    }
    Ok(losses)
}

/// Seconds from the first request sent to the last, at least a millisecond.
fn send_window(requests: &Requests) -> f64 {
    let window_ns = requests
        .last_sent_ns
        .saturating_sub(requests.first_sent_ns)
        .max(1_000_000);
    window_ns as f64 / 1e9
}

/// One connection's closed loop of emits until `send_end`.
async fn call_loop(
    target: std::net::SocketAddrV4,
    source: std::net::Ipv4Addr,
    path: String,
    headers: String,
    body_prefix: Arc<String>,
    send_end: Instant,
    request_timeout: Duration,
) -> Requests {
    let mut requests = Requests::default();
    let mut connection =
        match timeout(request_timeout, HttpConnection::connect(target, source)).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => {
                requests.broken = true;
                requests.error = Some(format!("connect: {error}"));
                return requests;
            }
            Err(_) => {
                requests.broken = true;
                requests.error = Some("connect: timed out".into());
                return requests;
            }
        };
    let mut body = String::with_capacity(body_prefix.len() + 24);
    while Instant::now() < send_end {
        let sent_at = now_ns();
        if requests.sent == 0 {
            requests.first_sent_ns = sent_at;
        }
        requests.last_sent_ns = sent_at;
        requests.sent += 1;
        body.clear();
        body.push_str(&body_prefix);
        body.push_str(&sent_at.to_string());
        body.push_str("]}");
        let answer = timeout(
            request_timeout,
            connection.post_json(&path, &headers, body.as_bytes()),
        )
        .await;
        match answer {
            Ok(Ok(response)) if (200..300).contains(&response.status) => {
                requests.accepted += 1;
                requests.latency.record(now_ns().saturating_sub(sent_at));
            }
            Ok(Ok(response)) => {
                requests.refused += 1;
                requests.first_refusal.get_or_insert_with(|| {
                    let body = String::from_utf8_lossy(&response.body);
                    format!("{} {}", response.status, &body[..body.len().min(120)])
                });
            }
            Ok(Err(error)) => {
                requests.unanswered += 1;
                requests.broken = true;
                requests.error = Some(error.to_string());
                return requests;
            }
            Err(_) => {
                requests.unanswered += 1;
                requests.broken = true;
                requests.error = Some("an answer timed out".into());
                return requests;
            }
        }
    }
    requests
}

/// The send time carried by a delivered `tick`: `42["tick",<ts>]`.
fn tick_timestamp(text: &[u8]) -> Option<u64> {
    let rest = text.strip_prefix(b"42[\"tick\",")?;
    let mut value: u64 = 0;
    let mut any = false;
    for digit in rest.iter().take_while(|b| b.is_ascii_digit()) {
        value = value * 10 + u64::from(digit - b'0');
        any = true;
    }
    any.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::tick_timestamp;

    #[test]
    fn reads_the_timestamp_of_a_delivered_tick() {
        assert_eq!(tick_timestamp(b"42[\"tick\",123456789]"), Some(123_456_789));
        assert_eq!(tick_timestamp(b"42[\"chat\",{\"text\":\"1\"}]"), None);
        assert_eq!(tick_timestamp(b"42[\"tick\",\"x\"]"), None);
    }
}
