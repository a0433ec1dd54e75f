//! `fanout`: members join one room, a publisher (not a member) sends `chat` to it.
//!
//! The chat text is the publisher's CLOCK_MONOTONIC time in nanoseconds, so each member
//! measures the latency of every delivery. Publishing is either at a fixed rate, or as fast as
//! the server acknowledges with a fixed number of chats awaiting their ack. After publishing
//! stops, the members get a bounded time to receive the rest; whatever has not arrived by then
//! is undelivered (chats the server refused with an error ack are not expected). Undelivered chats, chats whose ack never came or carried an error, members
//! that could not join and lost connections are the run's [`Losses`].

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, MissedTickBehavior, sleep, sleep_until, timeout};

use crate::client::{Client, Endpoint, Outbox, find};
use crate::connect::Transport;
use crate::histogram::Histogram;
use crate::losses::{Losses, ack_error};
use crate::polling::PollingClient;
use crate::{Common, cpu_line, cpu_percent, cpu_ticks, emit, now_ns};

#[derive(Args, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// Members of the room.
    #[arg(long, default_value_t = 1_000)]
    members: usize,
    /// Chats per second from the publisher; 0 sends as fast as the server acknowledges.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Chats awaiting their ack at once when --rate is 0.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 5)]
    duration_s: u64,
    /// Longest wait, in seconds, for the last deliveries once publishing stops.
    #[arg(long, default_value_t = 10)]
    drain_s: u64,
    /// Room name.
    #[arg(long, default_value = "bench")]
    room: String,
    /// Another node of the same cluster (loopback): members are spread in turn over --target
    /// and each of these, while the publisher stays on --target. May be given several times.
    #[arg(long = "member-target")]
    member_targets: Vec<SocketAddrV4>,
    /// How the members stay connected; the publisher is on WebSocket either way.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    member_transport: Transport,
    /// Process of another node, whose CPU counts into the server's.
    #[arg(long = "peer-pid")]
    peer_pids: Vec<u32>,
}

/// What one member saw.
#[derive(Default)]
pub struct MemberResult {
    /// Long-polls answered (polling members only).
    pub polls: u64,
    pub received: u64,
    pub last_received_ns: u64,
    pub latency: Histogram,
    pub lost: bool,
}

/// What the publisher did.
#[derive(Default)]
struct Published {
    sent: u64,
    /// Acks with `"ok": true`.
    acked: u64,
    /// Acks without it, such as `{ "error": "rate limited: ..." }`.
    refused: u64,
    /// The error of the first refusal.
    first_error: Option<String>,
    first_sent_ns: u64,
    last_sent_ns: u64,
    lost: bool,
}

pub async fn run(args: FanoutArgs, files: u64) -> Result<Losses, String> {
    args.common.check()?;
    if args.members == 0 || args.members as u64 + 64 > files {
        return Err(format!(
            "--members must be between 1 and the file limit ({files}) less 64"
        ));
    }
    if args.rate == 0 && args.window == 0 {
        return Err("--window must be at least 1 when --rate is 0".into());
    }
    if let Some(target) = args.member_targets.iter().find(|t| !t.ip().is_loopback()) {
        return Err(format!(
            "--member-target {target} is not a loopback address: load is only ever sent to 127.0.0.0/8"
        ));
    }
    let room_json = serde_json::to_string(&args.room).map_err(|e| e.to_string())?;
    let endpoint = Arc::new(args.common.endpoint());
    let mut member_endpoints = vec![endpoint.clone()];
    member_endpoints.extend(args.member_targets.iter().map(|target| {
        Arc::new(Endpoint {
            target: *target,
            path: endpoint.path.clone(),
        })
    }));
    let nodes = member_endpoints.len();

    let join_started = Instant::now();
    let (members, join_failures) = connect_members(
        &args.common,
        args.members,
        &member_endpoints,
        &room_json,
        args.member_transport,
    )
    .await;
    if members.is_empty() {
        return Err("no member could connect and join".into());
    }
    let join_time = join_started.elapsed();
    let publisher = timeout(
        args.common.connect_timeout(),
        Client::connect(&endpoint, args.common.source(args.members)),
    )
    .await
    .map_err(|_| "the publisher timed out connecting".to_owned())?
    .map_err(|e| format!("the publisher could not connect: {e}"))?;

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
                chat_timestamp,
            ))
        })
        .collect();

    let server_pids: Vec<u32> = args
        .common
        .server_pid
        .iter()
        .chain(&args.peer_pids)
        .copied()
        .collect();
    let own_pid = std::process::id();
    let cpu_start = Instant::now();
    let server_cpu_before = cluster_cpu_ticks(&server_pids);
    let own_cpu_before = cpu_ticks(own_pid);
    let publish_end = Instant::now() + Duration::from_secs(args.duration_s);
    let drain_end = publish_end + Duration::from_secs(args.drain_s);
    let chat_prefix = format!("[\"chat\",{{\"room\":{room_json},\"text\":\"");
    let published = tokio::spawn(publish(
        publisher,
        chat_prefix,
        args.rate,
        args.window,
        publish_end,
        drain_end,
    ))
    .await
    .map_err(|e| format!("the publisher failed: {e}"))?;

    let cpu_elapsed = cpu_start.elapsed();
    let server_cpu = cpu_percent(
        server_cpu_before,
        cluster_cpu_ticks(&server_pids),
        cpu_elapsed,
    );
    let own_cpu = cpu_percent(own_cpu_before, cpu_ticks(own_pid), cpu_elapsed);
    // Drain: until everything sent has arrived everywhere, or the drain time is up.
    // Chats the server refused are not expected anywhere: they are losses of their own.
    let expected = published.sent.saturating_sub(published.refused) * member_count;
    while received_total.load(Ordering::Relaxed) < expected && Instant::now() < drain_end {
        sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    let mut latency = Histogram::default();
    let mut received = 0;
    let mut last_received_ns = 0;
    let mut lost_members = 0;
    let mut polls = 0;
    for task in member_tasks {
        match task.await {
            Ok(result) => {
                polls += result.polls;
                received += result.received;
                last_received_ns = last_received_ns.max(result.last_received_ns);
                latency.merge(&result.latency);
                lost_members += u64::from(result.lost);
            }
            Err(_) => lost_members += 1,
        }
    }

    let undelivered = expected.saturating_sub(received);
    let unacked = published
        .sent
        .saturating_sub(published.acked + published.refused);
    let mut losses = Losses::default();
    losses.count(join_failures, |n| {
        format!("{n} of {} members could not join the room", args.members)
    });
    losses.count(undelivered, |n| {
        format!("{n} of {expected} deliveries of accepted chats never arrived")
    });
    losses.count(unacked, |n| {
        format!("{n} of {} chats never acknowledged", published.sent)
    });
    losses.count(published.refused, |n| match &published.first_error {
        Some(error) => format!("{n} chats answered with an error, the first: {error}"),
        None => format!("{n} chats answered without \"ok\": true"),
    });
    losses.count(lost_members, |n| {
        format!("{n} members lost their connection")
    });
    losses.note(published.lost, "the publisher lost its connection");
    let delivery_window_ns = last_received_ns
        .saturating_sub(published.first_sent_ns)
        .max(1);
    let delivered_per_s = received as f64 * 1e9 / delivery_window_ns as f64;
    let publish_window_ns = published
        .last_sent_ns
        .saturating_sub(published.first_sent_ns)
        .max(1);
    let published_per_s = published.sent as f64 * 1e9 / publish_window_ns as f64;
    let mode = if args.rate == 0 {
        format!("max (window {})", args.window)
    } else {
        format!("{} msg/s", args.rate)
    };
    let result = serde_json::json!({
        "scenario": "fanout",
        "server": args.common.label,
        "members": args.members,
        "nodes": nodes,
        "rate": args.rate,
        "window": args.window,
        "duration_s": args.duration_s,
        "joined": member_count,
        "join_failures": join_failures,
        "join_s": (join_time.as_secs_f64() * 1000.0).round() / 1000.0,
        "sent": published.sent,
        "acked": published.acked,
        "refused": published.refused,
        "unacked": unacked,
        "first_error": published.first_error,
        "published_per_s": published_per_s.round(),
        "expected": expected,
        "received": received,
        "undelivered": undelivered,
        "delivered_per_s": delivered_per_s.round(),
        "latency_ms": latency.summary_ms(),
        "member_transport": args.member_transport.name(),
        "polls": polls,
        "deliveries_per_poll": (polls > 0).then(|| (received as f64 / polls as f64 * 100.0).round() / 100.0),
        "lost_members": lost_members,
        "publisher_lost": published.lost,
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
                    "{member_count} joined ({join_failures} failed) in {:.1} s, over {nodes} node(s), on {}",
                    join_time.as_secs_f64(),
                    args.member_transport.name()
                ),
            ),
            ("publishing", format!("{mode} for {} s", args.duration_s)),
            (
                "published",
                format!(
                    "{} chats ({published_per_s:.0}/s), {} acked, {} refused, {unacked} unanswered",
                    published.sent, published.acked, published.refused
                ),
            ),
            (
                "delivered",
                format!("{received} ({delivered_per_s:.0} msg/s)"),
            ),
            (
                "chats per poll answer",
                if polls > 0 {
                    format!("{:.2} ({polls} polls)", received as f64 / polls as f64)
                } else {
                    "n/a (WebSocket)".to_owned()
                },
            ),
            (
                "undelivered",
                format!(
                    "{undelivered} of {expected} after a {} s drain",
                    args.drain_s
                ),
            ),
            ("latency p50 / p90 / p99 / max", latency.spread_ms()),
            ("CPU while publishing", cpu_line(server_cpu, own_cpu)),
            (
                "lost connections",
                format!(
                    "{lost_members} members, publisher {}",
                    if published.lost { "lost" } else { "kept" }
                ),
            ),
        ],
        &losses,
    );
    if published.sent == 0 {
        return Err("the publisher sent nothing".into());
    }
    Ok(losses)
}

/// CPU ticks of all the processes of a cluster; none when one of them cannot be read.
fn cluster_cpu_ticks(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|pid| cpu_ticks(*pid)).sum()
}

/// Connects `count` members, spread in turn over `endpoints`, and has each join the room
/// (`room_json`, the name as JSON); returns those that did and the failures.
pub async fn connect_members(
    common: &Common,
    count: usize,
    endpoints: &[Arc<Endpoint>],
    room_json: &str,
    transport: Transport,
) -> (Vec<Member>, u64) {
    let slots = Arc::new(Semaphore::new(common.concurrency));
    let connect_timeout = common.connect_timeout();
    let join = Arc::new(format!("420[\"join\",{room_json}]"));
    let mut pending = Vec::with_capacity(count);
    for index in 0..count {
        let endpoint = endpoints[index % endpoints.len()].clone();
        let slots = slots.clone();
        let join = join.clone();
        let source = common.source(index);
        pending.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.ok()?;
            if transport == Transport::Polling {
                let joining = join_polling(&endpoint, source, &join);
                return timeout(connect_timeout, joining).await.ok()?;
            }
            let joining = async {
                let mut client = Client::connect(&endpoint, source).await.ok()?;
                client.queue_text(join.as_bytes());
                client.flush().await.ok()?;
                let mut joined = false;
                let mut refused = false;
                while !joined {
                    let open = client
                        .pump(|text, _| {
                            if text.starts_with(b"430[") {
                                refused = find(text, b"\"error\"").is_some();
                                joined = !refused;
                            }
                        })
                        .await
                        .ok()?;
                    if refused || (!open && !joined) {
                        return None;
                    }
                }
                Some(Member::Socket(client))
            };
            timeout(connect_timeout, joining).await.ok()?
        }));
    }
    let mut members = Vec::with_capacity(count);
    let mut failures = 0;
    for task in pending {
        match task.await {
            Ok(Some(client)) => members.push(client),
            _ => failures += 1,
        }
    }
    (members, failures)
}

impl MemberResult {
    /// Counts the deliveries sent at `sent` (nanoseconds) that arrived `now`.
    fn arrived(&mut self, sent: &[u64], now: u64, received_total: &AtomicU64) {
        for sent in sent {
            self.latency.record(now.saturating_sub(*sent));
        }
        let batch = sent.len() as u64;
        if batch > 0 {
            self.received += batch;
            self.last_received_ns = now;
            received_total.fetch_add(batch, Ordering::Relaxed);
        }
    }
}

/// A member of the room, on either transport.
pub enum Member {
    /// On WebSocket.
    Socket(Client),
    /// On long-polling.
    Polling(PollingClient),
}

/// Connects one polling member and has it join the room (`join`, the event packet with ack
/// id 0); `None` when it could not.
async fn join_polling(endpoint: &Endpoint, source: Ipv4Addr, join: &str) -> Option<Member> {
    let mut client = PollingClient::connect(endpoint, source).await.ok()?;
    client.send(join.as_bytes()).await.ok()?;
    loop {
        let mut joined = false;
        let mut refused = false;
        let polled = client
            .poll(|packet| {
                if packet.starts_with(b"430[") {
                    refused = find(packet, b"\"error\"").is_some();
                    joined = !refused;
                }
            })
            .await
            .ok()?;
        if joined {
            return Some(Member::Polling(client));
        }
        if refused || polled.closed {
            return None;
        }
    }
}

/// Counts deliveries (packets `timestamp` finds a send time in) and their latency until told
/// to stop.
pub async fn member_loop(
    member: Member,
    stop: watch::Receiver<bool>,
    received_total: Arc<AtomicU64>,
    timestamp: fn(&[u8]) -> Option<u64>,
) -> MemberResult {
    match member {
        Member::Socket(client) => socket_loop(client, stop, received_total, timestamp).await,
        Member::Polling(client) => polling_loop(client, stop, received_total, timestamp).await,
    }
}

/// [`member_loop`] on long-polling: one poll after another.
async fn polling_loop(
    mut client: PollingClient,
    mut stop: watch::Receiver<bool>,
    received_total: Arc<AtomicU64>,
    timestamp: fn(&[u8]) -> Option<u64>,
) -> MemberResult {
    let mut result = MemberResult::default();
    let mut arrived = Vec::new();
    loop {
        arrived.clear();
        tokio::select! {
            polled = client.poll(|packet| arrived.extend(timestamp(packet))) => {
                let Ok(polled) = polled else {
                    result.lost = true;
                    return result;
                };
                result.polls += 1;
                result.arrived(&arrived, now_ns(), &received_total);
                if polled.closed {
                    result.lost = true;
                    return result;
                }
            }
            _ = stop.changed() => return result,
        }
    }
}

/// [`member_loop`] on WebSocket.
async fn socket_loop(
    mut client: Client,
    mut stop: watch::Receiver<bool>,
    received_total: Arc<AtomicU64>,
    timestamp: fn(&[u8]) -> Option<u64>,
) -> MemberResult {
    let mut result = MemberResult::default();
    let mut arrived = Vec::new();
    loop {
        tokio::select! {
            read = client.fill() => {
                if !read.is_ok_and(|n| n > 0) {
                    result.lost = true;
                    return result;
                }
                arrived.clear();
                client.drain(|text, _| arrived.extend(timestamp(text)));
                result.arrived(&arrived, now_ns(), &received_total);
                if client.flush().await.is_err() || client.is_closed() {
                    result.lost = true;
                    return result;
                }
            }
            _ = stop.changed() => return result,
        }
    }
}

/// The send time carried in a relayed `chat`'s text.
fn chat_timestamp(text: &[u8]) -> Option<u64> {
    if !text.starts_with(b"42[\"chat\",") {
        return None;
    }
    let start = find(text, b"\"text\":\"")? + 8;
    let digits = text[start..].iter().take_while(|b| b.is_ascii_digit());
    let mut value: u64 = 0;
    let mut any = false;
    for digit in digits {
        value = value * 10 + u64::from(digit - b'0');
        any = true;
    }
    any.then_some(value)
}

/// Sends chats until `publish_end`, then waits for the outstanding acks until `drain_end`.
async fn publish(
    mut client: Client,
    chat_prefix: String,
    rate: u64,
    window: usize,
    publish_end: Instant,
    drain_end: Instant,
) -> Published {
    let mut published = Published::default();
    let mut next_id: u64 = 0;
    let mut queue_chat = |published: &mut Published, out: &mut dyn FnMut(&[u8])| {
        next_id += 1;
        let now = now_ns();
        if published.sent == 0 {
            published.first_sent_ns = now;
        }
        published.last_sent_ns = now;
        published.sent += 1;
        let packet = format!("42{next_id}{chat_prefix}{now}\"}}]");
        out(packet.as_bytes());
    };
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    if rate == 0 {
        for _ in 0..window {
            queue_chat(&mut published, &mut |packet| client.queue_text(packet));
        }
        if client.flush().await.is_err() {
            published.lost = true;
            return published;
        }
    }
    loop {
        let publishing = Instant::now() < publish_end;
        if !publishing && published.acked + published.refused >= published.sent {
            return published;
        }
        tokio::select! {
            read = client.fill() => {
                if !read.is_ok_and(|n| n > 0) {
                    published.lost = true;
                    return published;
                }
                let publishing = Instant::now() < publish_end;
                client.drain(|text, out: &mut Outbox<'_>| {
                    if !text.starts_with(b"43") {
                        return;
                    }
                    if find(text, b"\"ok\":true").is_some() {
                        published.acked += 1;
                    } else {
                        published.refused += 1;
                        if published.first_error.is_none() {
                            published.first_error = ack_error(text);
                        }
                    }
                    if rate == 0 && publishing {
                        queue_chat(&mut published, &mut |packet| out.text(packet));
                    }
                });
                if client.flush().await.is_err() || client.is_closed() {
                    published.lost = true;
                    return published;
                }
            }
            _ = tick.tick(), if rate > 0 && publishing => {
                let elapsed = started.elapsed().as_nanos();
                let due = u64::try_from(elapsed * u128::from(rate) / 1_000_000_000).unwrap_or(u64::MAX);
                while published.sent < due && Instant::now() < publish_end {
                    queue_chat(&mut published, &mut |packet| client.queue_text(packet));
                }
                if client.flush().await.is_err() {
                    published.lost = true;
                    return published;
                }
            }
            () = sleep_until(publish_end), if publishing => {}
            () = sleep_until(drain_end) => return published,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::chat_timestamp;

    #[test]
    fn reads_the_timestamp_of_a_relayed_chat() {
        let chat = br#"42["chat",{"room":"bench","text":"123456789","from":"abc","ts":1}]"#;
        assert_eq!(chat_timestamp(chat), Some(123_456_789));
        assert_eq!(chat_timestamp(br#"42["message",{"text":"1"}]"#), None);
        assert_eq!(
            chat_timestamp(br#"42["chat",{"room":"r","text":"hi"}]"#),
            None
        );
    }
}
