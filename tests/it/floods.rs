//! Floods of idle and half-finished TCP connections: the node keeps its descriptors, closes
//! what does not send a request in time, limits each address, and keeps serving the others.
//!
//! The full-size floods (thousands of connections against a 20 000-descriptor limit) are
//! measured by hand; here the server process gets a limit of a few hundred descriptors, or a
//! per-address limit of a few connections, so each test opens hundreds at most.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::client::SioClient;
use crate::helpers::{ServerProcess, spawn_app};

/// How long `/healthz` may take to answer while a flood goes on.
const HEALTH_LIMIT: Duration = Duration::from_millis(100);

/// An HTTP client that opens a new connection for every request, as a health probe does.
fn probe_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// `/healthz`, asserting that it answers 200 within [`HEALTH_LIMIT`].
async fn quick_health(client: &reqwest::Client, base: &str) -> Value {
    let started = Instant::now();
    let response = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let took = started.elapsed();
    assert!(took < HEALTH_LIMIT, "/healthz took {took:?}");
    body
}

/// A TCP connection to `to` from the loopback address `source`.
async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source");
    socket.connect(to).await.expect("connect")
}

/// Reads until the server closes `stream`; what it sent and when it closed, or `None` if it
/// is still open after `limit`.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return (received, Some(started.elapsed())),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => return (received, None),
        }
    }
}

/// Checks that the control client still gets its echo back.
async fn echoes(control: &mut SioClient, text: &str) {
    let ack = control.emit_with_ack("echo", &[json!(text)]).await;
    assert_eq!(ack, vec![json!(text)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_past_the_budget_cannot_take_the_node_down() {
    // 256 descriptors leave a budget of about 180 TCP connections.
    let server = ServerProcess::start_with_descriptor_limit(256, &[]).await;
    let base = server.url();
    let probe = probe_client();
    let mut control = SioClient::connect(server.address, "/").await;
    echoes(&mut control, "before").await;

    let mut idle = Vec::new();
    for i in 0..400 {
        idle.push(TcpStream::connect(server.address).await.expect("connect"));
        if i % 50 == 49 {
            quick_health(&probe, &base).await;
        }
    }
    echoes(&mut control, "during").await;
    let mut newcomer = SioClient::connect(server.address, "/").await;
    echoes(&mut newcomer, "newcomer").await;

    // The oldest idle connections made room for the newer ones and for the clients.
    let watchers: Vec<_> = idle
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                until_closed(&mut stream, Duration::from_secs(1))
                    .await
                    .1
                    .is_some()
            })
        })
        .collect();
    let mut closed = 0;
    for watcher in watchers {
        closed += usize::from(watcher.await.expect("watcher"));
    }
    let health = quick_health(&probe, &base).await;
    let tcp = &health["tcp"];
    let evicted = tcp["closed"]["evicted"].as_u64().expect("evicted");
    assert!(
        closed >= 200 && evicted >= 200,
        "{closed} closed, {evicted} evicted: {tcp}"
    );
    assert!(tcp["open"].as_u64().expect("open") < 256, "{tcp}");

    // A budget full of clients that did send a request: the next connection gets a 503.
    let mut clients = Vec::new();
    let refusal = loop {
        assert!(clients.len() < 300, "no refusal before 300 connections");
        match tokio_tungstenite::connect_async(format!("ws://{}/ws", server.address)).await {
            Ok((ws, _)) => clients.push(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => break response,
            Err(error) => panic!("unexpected failure: {error}"),
        }
    };
    assert_eq!(refusal.status(), 503);
    assert_eq!(refusal.headers()["retry-after"], "5");
    echoes(&mut control, "at the budget").await;
    drop(clients);
    let health = eventually_health(&probe, &base, |h| h["tcp"]["refused"]["budget"] == 1).await;
    assert_eq!(health["status"], "ok");
    echoes(&mut control, "after").await;
}

/// `/healthz` once `check` holds, within 5 s.
async fn eventually_health(
    probe: &reqwest::Client,
    base: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(response) = probe.get(format!("{base}/healthz")).send().await
            && let Ok(health) = response.json::<Value>().await
            && (check(&health) || Instant::now() > deadline)
        {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn half_sent_heads_and_silent_connections_are_closed_at_the_header_timeout() {
    let app = spawn_app(&["--http-header-timeout-ms", "500"]).await;
    let probe = probe_client();
    let mut control = SioClient::connect(app.address, "/").await;
    let mut flood = Vec::new();
    for i in 0..100 {
        let mut stream = TcpStream::connect(app.address).await.expect("connect");
        if i % 2 == 0 {
            stream
                .write_all(
                    b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Slow: ",
                )
                .await
                .expect("half a head");
        }
        flood.push((Instant::now(), stream));
    }
    quick_health(&probe, &app.url()).await;
    let watchers: Vec<_> = flood
        .into_iter()
        .map(|(opened, mut stream)| {
            tokio::spawn(async move {
                let (received, closed) = until_closed(&mut stream, Duration::from_secs(3)).await;
                assert!(
                    received.is_empty(),
                    "nothing is answered to an incomplete head"
                );
                closed.map(|_| opened.elapsed())
            })
        })
        .collect();
    for watcher in watchers {
        let lived = watcher.await.expect("watcher").expect("closed within 3 s");
        assert!(
            lived >= Duration::from_millis(450) && lived < Duration::from_millis(2_000),
            "closed after {lived:?}"
        );
    }
    // The WebSocket, open for longer than the timeout, is not cut.
    echoes(&mut control, "still here").await;
    let health = quick_health(&probe, &app.url()).await;
    assert_eq!(health["tcp"]["closed"]["header_timeout"], 100, "{health}");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_per_ip_limit_refuses_one_address_and_not_another() {
    let app = spawn_app(&["--max-connections-per-ip", "5"]).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from([127, 0, 0, 2], app.address).await);
    }
    let mut sixth = connect_from([127, 0, 0, 2], app.address).await;
    let (answer, closed) = until_closed(&mut sixth, Duration::from_secs(2)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(closed.is_some(), "the sixth connection is closed at once");
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("Retry-After: 5"),
        "{answer}"
    );

    // Another address connects, with a WebSocket or anything else.
    let stream = connect_from([127, 0, 0, 3], app.address).await;
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", app.address), stream)
        .await
        .expect("another address gets in");
    drop(ws);
    let health = quick_health(&probe_client(), &app.url()).await;
    assert_eq!(health["tcp"]["refused"]["per_ip"], 1, "{health}");

    // A slot given back is free again.
    held.pop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = connect_from([127, 0, 0, 2], app.address).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let (answer, _) = until_closed(&mut again, Duration::from_secs(2)).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_limited_by_their_forwarded_address() {
    let app = spawn_app(&[
        "--max-connections-per-ip",
        "2",
        "--trust-proxy",
        "127.0.0.1",
    ])
    .await;
    let upgrade = |client: &'static str| {
        let mut request = format!("ws://{}/ws", app.address)
            .into_client_request()
            .expect("request");
        request
            .headers_mut()
            .insert("x-forwarded-for", client.parse().expect("header"));
        tokio_tungstenite::connect_async(request)
    };
    // The proxy's own connections are not limited per address.
    let first = upgrade("203.0.113.7").await.expect("first");
    let second = upgrade("6.6.6.6, 203.0.113.7").await.expect("second");
    match upgrade("203.0.113.7").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("a third WebSocket of one client: {:?}", other.map(|_| ())),
    }
    let other = upgrade("203.0.113.8").await.expect("another client");
    drop((first, second, other));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_polling_body_that_trickles_is_cut_off_at_the_timeout() {
    let app = spawn_app(&["--http-header-timeout-ms", "500"]).await;
    let session = app.open_polling_session(&reqwest::Client::new()).await;
    let path = session.trim_start_matches(&app.url()).to_owned();
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n40"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let sent = Instant::now();
    let trickle = async {
        for _ in 0..98 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    let (_, closed) = until_closed(&mut stream, Duration::from_secs(1)).await;
    assert!(closed.is_some(), "the connection is closed");
    let health = quick_health(&probe_client(), &app.url()).await;
    assert_eq!(health["tcp"]["closed"]["body_timeout"], 1, "{health}");
    assert!(sent.elapsed() < Duration::from_secs(4));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn kept_alive_connections_are_closed_when_idle() {
    let app = spawn_app(&["--keep-alive-timeout-ms", "300"]).await;
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buffer = [0u8; 4096];
    for _ in 0..3 {
        // Requests within the idle timeout keep the connection.
        stream.write_all(request).await.expect("request");
        let n = stream.read(&mut buffer).await.expect("response");
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (_, closed) = until_closed(&mut stream, Duration::from_secs(2)).await;
    let closed = closed.expect("closed when idle");
    assert!(
        closed >= Duration::from_millis(100) && closed < Duration::from_millis(1_300),
        "closed after {closed:?} more"
    );
    let health = quick_health(&probe_client(), &app.url()).await;
    assert!(health["tcp"]["closed"]["idle_timeout"].as_u64() >= Some(1));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn websockets_and_waiting_long_polls_outlive_the_timeouts() {
    let app = spawn_app(&[
        "--http-header-timeout-ms",
        "300",
        "--keep-alive-timeout-ms",
        "300",
        "--ping-interval-ms",
        "1500",
    ])
    .await;
    let mut socket = SioClient::connect(app.address, "/").await;
    let http = reqwest::Client::new();
    let session = app.open_polling_session(&http).await;
    let connect = http
        .post(&session)
        .body("40")
        .send()
        .await
        .expect("connect");
    assert_eq!(connect.status(), 200);
    // Polls until the ping comes: the poll that carries it waited for it, past both timeouts.
    let mut waited = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let body = http
            .get(&session)
            .send()
            .await
            .expect("poll")
            .text()
            .await
            .expect("body");
        if body.split('\x1e').any(|packet| packet == "2") {
            waited = started.elapsed();
            break;
        }
    }
    assert!(
        waited > Duration::from_millis(600),
        "the ping came after {waited:?}"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    echoes(&mut socket, "still open").await;
    app.stop().await.expect("clean stop");
}
