//! Plain HTTP on the Socket.IO port: health, the page, the client bundle, handshake rules.

use serde_json::Value;

use crate::helpers::spawn_app;

async fn get(url: String) -> reqwest::Response {
    reqwest::get(url).await.expect("request")
}

#[tokio::test]
async fn health_reports_ok_and_the_adapter() {
    let app = spawn_app(&[]).await;
    let response = get(format!("{}/healthz", app.url())).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["connections"], 0);
    assert_eq!(body["adapter"], "memory");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn handshake_carries_the_configured_values() {
    let app = spawn_app(&["--ping-interval-ms", "1234", "--ping-timeout-ms", "567"]).await;
    let body = get(format!("{}/socket.io/?EIO=4&transport=polling", app.url()))
        .await
        .text()
        .await
        .expect("body");
    let open: Value =
        serde_json::from_str(body.strip_prefix('0').expect("open packet")).expect("json");
    assert_eq!(open["pingInterval"], 1234);
    assert_eq!(open["pingTimeout"], 567);
    assert_eq!(open["maxPayload"], 1_000_000);
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(open["sid"].as_str().map(str::len), Some(16));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_first_ping_leaves_one_interval_after_the_handshake() {
    let app = spawn_app(&["--ping-interval-ms", "1000", "--ping-timeout-ms", "5000"]).await;
    let client = reqwest::Client::new();
    let session = app.open_polling_session(&client).await;
    let started = std::time::Instant::now();
    let poll = client.get(&session).send().await.expect("poll");
    assert_eq!(poll.text().await.expect("body"), "2");
    // Node's engine.io waits pingInterval before the first ping; the margin absorbs timer slack.
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(800),
        "first ping after {waited:?}"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn polling_only_offers_no_upgrade() {
    let app = spawn_app(&["--transports", "polling"]).await;
    let body = get(format!("{}/socket.io/?EIO=4&transport=polling", app.url()))
        .await
        .text()
        .await
        .expect("body");
    let open: Value = serde_json::from_str(&body[1..]).expect("json");
    assert_eq!(open["upgrades"], serde_json::json!([]));
    let ws = get(format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        app.url()
    ))
    .await;
    assert_eq!(ws.status(), 400);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn unknown_sid_and_bad_versions_are_refused() {
    let app = spawn_app(&[]).await;
    let unknown = get(format!(
        "{}/socket.io/?EIO=4&transport=polling&sid=doesnotexist",
        app.url()
    ))
    .await;
    assert_eq!(unknown.status(), 400);
    assert!(
        unknown
            .text()
            .await
            .expect("body")
            .contains("Session ID unknown")
    );
    for version in ["3", "5", "abc"] {
        let response = get(format!(
            "{}/socket.io/?EIO={version}&transport=polling",
            app.url()
        ))
        .await;
        assert_eq!(response.status(), 400, "EIO={version}");
        assert!(
            response
                .text()
                .await
                .expect("body")
                .contains("Unsupported protocol version")
        );
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn eio3_is_served_when_allowed() {
    let app = spawn_app(&["--allow-eio3"]).await;
    let response = get(format!("{}/socket.io/?EIO=3&transport=polling", app.url())).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    assert!(body.contains("\"sid\""), "EIO3 handshake: {body}");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn unlisted_origins_are_refused_before_a_session_exists() {
    let app = spawn_app(&["--cors-origin", "http://allowed.example"]).await;
    let client = reqwest::Client::new();
    let handshake = format!("{}/socket.io/?EIO=4&transport=polling", app.url());

    let allowed = client
        .get(&handshake)
        .header("origin", "http://allowed.example")
        .send()
        .await
        .expect("request");
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://allowed.example"
    );

    let refused = client
        .get(&handshake)
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let preflight = client
        .request(reqwest::Method::OPTIONS, &handshake)
        .header("origin", "http://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("request");
    assert_eq!(preflight.status(), 403);

    let no_origin = client.get(&handshake).send().await.expect("request");
    assert_eq!(no_origin.status(), 200);

    let health = client
        .get(format!("{}/healthz", app.url()))
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("request");
    assert_eq!(
        health.status(),
        200,
        "the origin rule covers the realtime path only"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn serves_the_page_with_a_client_route_fallback() {
    let app = spawn_app(&[]).await;
    let index = get(format!("{}/", app.url())).await;
    assert_eq!(index.status(), 200);
    assert!(index.text().await.expect("body").contains("fixture page"));
    let asset = get(format!("{}/style.css", app.url())).await;
    assert_eq!(asset.headers()["content-type"], "text/css");
    let client_route = get(format!("{}/rooms/lobby", app.url())).await;
    assert_eq!(client_route.status(), 200);
    assert!(
        client_route
            .text()
            .await
            .expect("body")
            .contains("fixture page")
    );
    let bundle = get(format!("{}/socket.io/socket.io.js", app.url())).await;
    assert_eq!(bundle.status(), 200);
    assert!(
        bundle.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .contains("javascript")
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn without_a_build_the_page_explains_how_to_build_it() {
    let app = spawn_app(&["--static-dir", "tests/it/fixtures/does-not-exist"]).await;
    let page = get(format!("{}/", app.url())).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("body").contains("npm run build"));
    app.stop().await.expect("clean stop");
}

/// Long-polling needs its session to outlive a request, whatever serves the other routes.
#[tokio::test]
async fn polling_sessions_span_requests_without_a_page_build() {
    let app = spawn_app(&["--static-dir", "tests/it/fixtures/does-not-exist"]).await;
    let client = reqwest::Client::new();
    let session = app.open_polling_session(&client).await;
    let posted = client.post(&session).body("40").send().await.expect("post");
    assert_eq!(posted.status(), 200);
    let polled = client
        .get(&session)
        .send()
        .await
        .expect("poll")
        .text()
        .await
        .expect("body");
    // Packets are separated by \x1e; the first heartbeat ping is a ping interval away.
    let first = polled.split('\u{1e}').next().unwrap_or_default();
    assert!(
        first.starts_with("40{\"sid\":"),
        "namespace CONNECT ack expected, got {polled}"
    );
    assert!(
        polled.contains("Welcome to iorelay"),
        "welcome expected, got {polled}"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn credentials_work_with_an_explicit_origin() {
    let app = spawn_app(&["--cors-origin", "https://app.example", "--cors-credentials"]).await;
    let preflight = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/socket.io/?EIO=4&transport=polling", app.url()),
        )
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status(), 200);
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .expect("ascii")
            .contains("POST")
    );
    app.stop().await.expect("clean stop");
}
