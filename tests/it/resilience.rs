//! Slow and dead clients, abandoned sessions, shutdown and restart storms, against the binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::client::SioClient;
use crate::helpers::ServerProcess;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Like [`raw_member`], retrying with jittered backoff as socket.io-client's reconnection does
/// (`reconnectionDelay` 100 ms doubling to 1 s, `randomizationFactor` 0.5), up to `attempts`.
async fn raw_member_with_retries(address: SocketAddr, attempts: u32, seed: u64) -> Option<Ws> {
    let mut delay = 100u64;
    for attempt in 0..attempts {
        if let Some(ws) = raw_member(address).await {
            return Some(ws);
        }
        // A cheap deterministic jitter per client and attempt.
        let spread = (seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(u64::from(attempt))
            >> 33)
            % delay;
        tokio::time::sleep(Duration::from_millis(delay / 2 + spread)).await;
        delay = (delay * 2).min(1_000);
    }
    None
}

/// A WebSocket client that has joined `/`, answering nothing more unless driven.
async fn raw_member(address: SocketAddr) -> Option<Ws> {
    let url = format!("ws://{address}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = connect_async(url).await.ok()?;
    ws.next().await?.ok()?; // open packet
    ws.send(Message::text("40")).await.ok()?;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .ok()??
            .ok()?;
        if frame.to_text().is_ok_and(|t| t.starts_with("40")) {
            return Some(ws);
        }
    }
}

/// Waits for abandoned sessions to expire (no connection left), then up to 15 s for RSS to come
/// down to `limit_kib`; returns the last reading.
async fn rss_after_sessions_end(server: &ServerProcess, limit_kib: u64) -> u64 {
    eventually(Duration::from_secs(10), || async {
        server.connections().await == 0
    })
    .await;
    let mut rss = server.rss_kib();
    for _ in 0..60 {
        if rss <= limit_kib {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        rss = server.rss_kib();
    }
    rss
}

/// Polls `check` every 50 ms until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A member that stops reading is cut off; the others in its room get every message at full
/// rate and the server's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_never_slows_the_room() {
    let server = ServerProcess::start(&[
        "--ping-interval-ms",
        "500",
        "--ping-timeout-ms",
        "500",
        "--max-buffer-size",
        "256",
    ])
    .await;
    let baseline = server.rss_kib();
    let mut fast: Vec<SioClient> = Vec::new();
    for _ in 0..2 {
        let mut client = SioClient::connect(server.address, "/").await;
        client.emit_with_ack("join", &[json!("busy")]).await;
        fast.push(client);
    }
    let mut stalled = raw_member(server.address)
        .await
        .expect("stalled member connects");
    stalled
        .send(Message::text(r#"420["join","busy"]"#))
        .await
        .expect("join");
    // From here on the stalled member never reads again.
    let mut publisher = SioClient::connect(server.address, "/").await;
    const MESSAGES: usize = 2_000;
    let text = "x".repeat(4 * 1024);
    let readers: Vec<_> = fast
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut seen = 0;
                while seen < MESSAGES {
                    client.expect_event("chat").await;
                    seen += 1;
                }
                client.close().await;
                seen
            })
        })
        .collect();
    // A steady 2 000 messages per second: more than the stalled member's socket buffers hold
    // within its heartbeat, well within what a reading client takes.
    for i in 0..MESSAGES {
        publisher
            .emit(
                "chat",
                &[json!({ "room": "busy", "text": format!("{i}{text}") })],
            )
            .await;
        if i % 20 == 19 {
            // Reading answers the server's pings, as socket.io-client does between sends.
            let _ = publisher
                .maybe_event("none", Duration::from_millis(10))
                .await;
        }
    }
    for reader in readers {
        assert_eq!(
            reader.await.expect("reader"),
            MESSAGES,
            "a reading member missed messages"
        );
    }
    let cut_off = eventually(Duration::from_secs(5), || async {
        server.connections().await == 1
    })
    .await;
    assert!(
        cut_off,
        "the stalled member is disconnected; connections: {}",
        server.connections().await
    );
    let grown = server.rss_kib().saturating_sub(baseline);
    assert!(grown < 100 * 1024, "server memory grew by {grown} KiB");
    drop(stalled);
    publisher.close().await;
}

/// A peer that vanishes without closing is found by the heartbeat, and the room is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_peer_is_cleaned_up_within_the_heartbeat() {
    let server =
        ServerProcess::start(&["--ping-interval-ms", "300", "--ping-timeout-ms", "300"]).await;
    let mut alive = SioClient::connect(server.address, "/chat").await;
    alive.emit_with_ack("join", &[json!("lobby")]).await;
    let mut ghost = SioClient::connect(server.address, "/chat").await;
    ghost.emit_with_ack("join", &[json!("lobby")]).await;
    let both = eventually(Duration::from_secs(3), || async {
        server.connections().await == 2
    })
    .await;
    assert!(both);
    while alive.expect_event("presence").await[0]["members"]
        .as_array()
        .map_or(0, Vec::len)
        < 2
    {}
    // The ghost now answers no ping and reads nothing, like a peer whose network vanished.
    let started = Instant::now();
    let mut members = Vec::new();
    while started.elapsed() < Duration::from_secs(3) {
        if let Some(update) = alive
            .maybe_event("presence", Duration::from_millis(200))
            .await
        {
            members = update[0]["members"].as_array().cloned().unwrap_or_default();
            if members.len() == 1 {
                break;
            }
        }
    }
    assert_eq!(
        members,
        [json!(alive.sid)],
        "presence drops the vanished peer"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "found within ping interval + timeout"
    );
    assert_eq!(server.connections().await, 1);
    drop(ghost);
    alive.close().await;
}

/// Handshakes that never join a namespace, long-polls left hanging and upgrades abandoned
/// half-way are all reclaimed: after each burst of them, RSS comes back near its baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_sessions_and_upgrades_do_not_leak() {
    let server = ServerProcess::start(&[
        "--connect-timeout-ms",
        "500",
        "--ping-interval-ms",
        "500",
        "--ping-timeout-ms",
        "500",
    ])
    .await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let base = format!("{}/socket.io/?EIO=4&transport=polling", server.url());
    let abandon = |count: usize, upgrade_every: usize| {
        let http = http.clone();
        let base = base.clone();
        let address = server.address;
        async move {
            let next = Arc::new(AtomicUsize::new(0));
            let workers = (0..32).map(|_| {
                let (http, base, next) = (http.clone(), base.clone(), next.clone());
                async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return;
                        }
                        let Ok(open) = http.get(&base).send().await else {
                            continue;
                        };
                        let Ok(open) = open.text().await else {
                            continue;
                        };
                        let sid = serde_json::from_str::<serde_json::Value>(&open[1..])
                            .ok()
                            .and_then(|o| o["sid"].as_str().map(str::to_owned));
                        let Some(sid) = sid else { continue };
                        if i % upgrade_every == 0 {
                            // Start the upgrade, probe it, then walk away.
                            let url = format!(
                                "ws://{address}/socket.io/?EIO=4&transport=websocket&sid={sid}"
                            );
                            if let Ok((mut ws, _)) = connect_async(url).await {
                                let _ = ws.send(Message::text("2probe")).await;
                                let _ =
                                    tokio::time::timeout(Duration::from_secs(1), ws.next()).await;
                            }
                        } else if i % 2 == 0 {
                            // Leave a long-poll hanging and drop it.
                            let poll = http.get(format!("{base}&sid={sid}")).send();
                            let _ = tokio::time::timeout(Duration::from_millis(5), poll).await;
                        }
                    }
                }
            });
            join_all(workers).await;
        }
    };
    // The first burst of a given size grows the session tables to their high-water mark, and
    // those keep their capacity; the baseline is taken after one, so what is measured next is
    // only what a burst fails to give back.
    abandon(10_000, 10).await;
    let settled = eventually(Duration::from_secs(10), || async {
        server.connections().await == 0
    })
    .await;
    assert!(settled);
    // The unconnected sessions expire after the connect timeout, and the heap is trimmed at
    // the second look after handshakes stop (every 2 s).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let baseline = server.rss_kib();
    // Freed memory goes back to the system once the sessions are gone, burst after burst.
    let near_baseline = baseline + baseline / 4;
    let mut rounds = Vec::new();
    for _ in 0..3 {
        abandon(10_000, 10).await;
        rounds.push(rss_after_sessions_end(&server, near_baseline).await);
    }
    eprintln!("RSS baseline {baseline} KiB, after each burst of 10 000 sessions: {rounds:?} KiB");
    for rss in &rounds {
        assert!(
            *rss <= near_baseline,
            "RSS stayed at {rss} KiB after 10 000 abandoned sessions, from {baseline} KiB"
        );
    }
    // The node still works.
    let mut client = SioClient::connect(server.address, "/").await;
    assert_eq!(
        client.emit_with_ack("echo", &[json!("alive")]).await,
        [json!("alive")]
    );
    client.close().await;
}

/// SIGTERM with a thousand clients: every connection is closed and the process exits 0 in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_a_thousand_connections_and_exits_cleanly() {
    let mut server = ServerProcess::start(&["--shutdown-timeout-ms", "5000"]).await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        let batch = join_all((0..100).map(|_| raw_member(server.address))).await;
        clients.extend(batch.into_iter().map(|ws| ws.expect("client connects")));
    }
    assert_eq!(server.connections().await, 1_000);
    let started = Instant::now();
    let closed: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(10), async {
                    while let Some(Ok(frame)) = ws.next().await {
                        if frame.is_close() {
                            break;
                        }
                    }
                })
                .await
                .is_ok()
            })
        })
        .collect();
    let code = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(10)))
        .await
        .expect("terminate");
    assert_eq!(code, Some(0), "exit code after SIGTERM");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "exited within the shutdown timeout"
    );
    let mut all_closed = true;
    for task in closed {
        all_closed &= task.await.expect("watcher");
    }
    assert!(all_closed, "every client saw its connection close");
}

/// After a restart, 5 200 clients reconnect at once against a limit of 5 000: exactly 5 000 get
/// in, the rest are told 503, and the node never holds more than its limit.
///
/// Run against the release build (`IORELAY_BIN`, as CI does); a debug build gets a fifth of
/// the storm so that the test stays about the limit, not about debug-build speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_storm_is_absorbed_up_to_the_connection_limit() {
    let release = std::env::var("IORELAY_BIN").is_ok_and(|bin| bin.contains("release"));
    let (limit, clients) = if release {
        (5_000, 5_200)
    } else {
        (1_000, 1_040)
    };
    let mut server = ServerProcess::start(&["--max-connections", &limit.to_string()]).await;
    let code = server.terminate(Duration::from_secs(10));
    assert_eq!(code, Some(0));
    let server = server.restart().await;
    let address = server.address;
    let started = Instant::now();
    let peak = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let peak = peak.clone();
        let url = format!("{}/healthz", server.url());
        tokio::spawn(async move {
            while started.elapsed() < Duration::from_secs(30) {
                if let Ok(response) = reqwest::get(&url).await
                    && let Ok(health) = response.json::<serde_json::Value>().await
                {
                    let now = health["connections"].as_u64().unwrap_or(0) as usize;
                    peak.fetch_max(now, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // Everyone at once, as after a restart, each retrying a few times with jitter.
    let members =
        join_all((0..clients).map(|i| raw_member_with_retries(address, 4, i as u64))).await;
    let connected: Vec<Ws> = members.into_iter().flatten().collect();
    let elapsed = started.elapsed();
    assert_eq!(
        connected.len(),
        limit,
        "exactly the limit got in ({elapsed:?})"
    );
    let held = eventually(Duration::from_secs(5), || async {
        server.connections().await == limit as u64
    })
    .await;
    assert!(
        held,
        "healthz reports {} connections",
        server.connections().await
    );
    watcher.abort();
    assert!(
        peak.load(Ordering::Relaxed) <= limit,
        "peak {} over the limit",
        peak.load(Ordering::Relaxed)
    );
    let refused = reqwest::get(format!(
        "{}/socket.io/?EIO=4&transport=polling",
        server.url()
    ))
    .await
    .expect("request");
    assert_eq!(refused.status(), 503);
    drop(connected);
}
