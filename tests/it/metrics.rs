//! `GET /metrics`: counters that move as a session connects, joins, chats, floods and leaves;
//! the bearer token, `--no-metrics` and `--metrics-listen`.
//!
//! Engine.IO traffic and broadcast sizes are counted per process (every server of this test
//! binary adds to them), so those are checked to grow, the others exactly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::SioClient;
use crate::helpers::spawn_app;

/// Series (name and labels, as printed) and their values.
type Scrape = HashMap<String, f64>;

async fn scrape_at(base: &str) -> Scrape {
    let response = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    parse(&response.text().await.expect("body"))
}

fn parse(text: &str) -> Scrape {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(scrape: &Scrape, series: &str) -> f64 {
    *scrape
        .get(series)
        .unwrap_or_else(|| panic!("no series {series}"))
}

/// Scrapes until `series` reaches `want` (counts that move after a disconnect is handled).
async fn until(base: &str, series: &str, want: f64) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let scrape = scrape_at(base).await;
        if value(&scrape, series) == want {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "{series} stayed at {}, want {want}",
            value(&scrape, series)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn counters_follow_a_session_that_joins_chats_floods_and_leaves() {
    let app = spawn_app(&["--max-events-per-second", "5"]).await;
    let base = app.url();
    let before = scrape_at(&base).await;
    let connects = r#"iorelay_connects_total{namespace="/chat",transport="websocket"}"#;
    let connected = r#"iorelay_sockets_connected{namespace="/chat",transport="websocket"}"#;
    assert_eq!(value(&before, connects), 0.0);
    assert_eq!(value(&before, connected), 0.0);
    assert!(before.contains_key("process_resident_memory_bytes"));
    assert!(before.contains_key("process_open_fds"));
    assert!(
        !before.contains_key("iorelay_redis_up"),
        "no Redis, no Redis families"
    );

    let mut client = SioClient::connect(app.address, "/chat").await;
    let ack = client.emit_with_ack("join", &[json!("lobby")]).await;
    assert_eq!(ack[0]["size"], 1);
    let ack = client
        .emit_with_ack("chat", &[json!({ "room": "lobby", "text": "hi" })])
        .await;
    assert_eq!(ack[0]["ok"], true);
    let during = scrape_at(&base).await;
    assert_eq!(value(&during, connects), 1.0);
    assert_eq!(value(&during, connected), 1.0);
    let joins = r#"iorelay_events_received_total{namespace="/chat",event="join"}"#;
    let chats = r#"iorelay_events_received_total{namespace="/chat",event="chat"}"#;
    assert_eq!(value(&during, joins), 1.0);
    assert_eq!(value(&during, chats), 1.0);
    for series in [
        r#"iorelay_packets_received_total{transport="websocket"}"#,
        r#"iorelay_bytes_received_total{transport="websocket"}"#,
        r#"iorelay_packets_sent_total{transport="websocket"}"#,
        r#"iorelay_bytes_sent_total{transport="websocket"}"#,
        "iorelay_broadcast_fanout_count",
    ] {
        assert!(
            value(&during, series) > value(&before, series),
            "{series} did not grow"
        );
    }
    let handshakes = "iorelay_handshake_duration_seconds_count";
    assert_eq!(value(&during, handshakes), value(&before, handshakes) + 1.0);

    // Past the budget of 5 per second: the last ones are refused (how many depends on where
    // the one-second window falls), and still counted as received.
    for _ in 0..7 {
        client.emit("join", &[json!("lobby")]).await;
    }
    let flooded = until(&base, joins, 8.0).await;
    let limited = value(
        &flooded,
        r#"iorelay_events_rate_limited_total{namespace="/chat"}"#,
    );
    assert!(limited >= 1.0, "{limited} events rate-limited");
    let health: serde_json::Value = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json");
    assert_eq!(
        health["rate_limited_events"].as_f64(),
        Some(limited),
        "/healthz reads the same count"
    );

    client.close().await;
    let left =
        r#"iorelay_disconnects_total{namespace="/chat",reason="client_namespace_disconnect"}"#;
    let after = until(&base, connected, 0.0).await;
    let disconnects: f64 = after
        .iter()
        .filter(|(series, _)| series.starts_with(r#"iorelay_disconnects_total{namespace="/chat""#))
        .map(|(_, value)| value)
        .sum();
    assert_eq!(
        disconnects, 1.0,
        "one disconnect, whatever its reason ({left})"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn refused_handshakes_are_counted_by_cause() {
    let app = spawn_app(&[
        "--auth-token",
        "letmein",
        "--cors-origin",
        "https://good.example",
    ])
    .await;
    let base = app.url();
    let refused = |cause: &str| format!(r#"iorelay_handshakes_refused_total{{cause="{cause}"}}"#);
    let before = scrape_at(&base).await;
    let denied = SioClient::try_connect(app.address, "/").await;
    assert!(denied.is_err(), "no token, no namespace");
    let client = reqwest::Client::new();
    let foreign = client
        .get(format!("{base}/socket.io/?EIO=4&transport=polling"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("handshake");
    assert_eq!(foreign.status(), 403);
    let bogus = client
        .get(format!("{base}/socket.io/?EIO=4&transport=carrier-pigeon"))
        .send()
        .await
        .expect("handshake");
    assert_eq!(bogus.status(), 400);
    let after = scrape_at(&base).await;
    for cause in ["auth", "origin", "bad_request"] {
        assert_eq!(
            value(&after, &refused(cause)),
            value(&before, &refused(cause)) + 1.0,
            "{cause}"
        );
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_token_guards_the_route() {
    let app = spawn_app(&["--metrics-token", "s3cret"]).await;
    let url = format!("{}/metrics", app.url());
    let client = reqwest::Client::new();
    let without = client.get(&url).send().await.expect("scrape");
    assert_eq!(without.status(), 401);
    let wrong = client
        .get(&url)
        .bearer_auth("guess")
        .send()
        .await
        .expect("scrape");
    assert_eq!(wrong.status(), 401);
    let right = client
        .get(&url)
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("scrape");
    assert_eq!(right.status(), 200);
    let text = right.text().await.expect("body");
    assert!(text.contains("iorelay_build_info{version="));
    assert!(!text.contains("s3cret"));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn no_metrics_turns_the_route_off() {
    let app = spawn_app(&["--no-metrics"]).await;
    let response = reqwest::get(format!("{}/metrics", app.url()))
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn metrics_listen_moves_the_route_off_the_public_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let metrics = SocketAddr::from(([127, 0, 0, 1], port));
    let app = spawn_app(&["--metrics-listen", &metrics.to_string()]).await;
    let public = reqwest::get(format!("{}/metrics", app.url()))
        .await
        .expect("request");
    assert_eq!(public.status(), 404);
    let deadline = Instant::now() + Duration::from_secs(5);
    let own = loop {
        match reqwest::get(format!("http://{metrics}/metrics")).await {
            Ok(response) => break response,
            Err(error) => {
                assert!(Instant::now() < deadline, "metrics listener: {error}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(own.status(), 200);
    let scrape = parse(&own.text().await.expect("body"));
    assert!(scrape.contains_key(r#"iorelay_sockets_connected{namespace="/",transport="polling"}"#));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_full_node_counts_capacity_refusals() {
    let app = spawn_app(&["--max-connections", "1"]).await;
    let base = app.url();
    let capacity = r#"iorelay_handshakes_refused_total{cause="capacity"}"#;
    let before = scrape_at(&base).await;
    let _only = SioClient::connect(app.address, "/").await;
    let refused = reqwest::get(format!("{base}/socket.io/?EIO=4&transport=polling"))
        .await
        .expect("handshake");
    assert_eq!(refused.status(), 503);
    let after = scrape_at(&base).await;
    assert_eq!(value(&after, capacity), value(&before, capacity) + 1.0);
    app.stop().await.expect("clean stop");
}
