//! The router on its own, without a listening server: requests go in through
//! `tower::ServiceExt::oneshot`, as the axum testing example drives an app.

use std::path::PathBuf;

use axum::Router;
use axum::body::{Body, to_bytes};
use clap::Parser;
use http::{Request, Response, StatusCode, header};
use iorelay::Config;
use iorelay::app::memory_router;
use serde_json::{Value, json};
use tower::ServiceExt;

fn router(flags: &[&str]) -> Router {
    let args = ["iorelay", "--tick-interval-ms", "0"]
        .into_iter()
        .chain(flags.iter().copied());
    memory_router(Config::parse_from(args).validated().expect("valid config")).expect("router")
}

async fn send(router: Router, request: Request<Body>) -> Response<Body> {
    router.oneshot(request).await.expect("infallible service")
}

async fn get(router: Router, uri: &str) -> Response<Body> {
    send(
        router,
        Request::get(uri).body(Body::empty()).expect("request"),
    )
    .await
}

async fn text(response: Response<Body>) -> String {
    let bytes = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// A page build of one file, in a folder of its own.
fn page_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iorelay-router-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("page dir");
    std::fs::write(dir.join("index.html"), "<!doctype html><title>page</title>").expect("index");
    dir
}

#[tokio::test]
async fn health_is_served_without_a_server() {
    let response = get(router(&["--tick-interval-ms", "250"]), "/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = serde_json::from_str(&text(response).await).expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["adapter"], "memory");
    assert_eq!(body["connections"], 0);
    assert_eq!(body["tick_interval_ms"], 250);
    assert_eq!(body["rate_limited_events"], 0);
    assert!(
        body.get("tcp").is_none(),
        "TCP connections are counted by a server, and there is none: {body}"
    );
}

#[tokio::test]
async fn the_page_and_its_client_routes_are_served() {
    let dir = page_dir("page");
    let static_dir = dir.to_str().expect("utf-8 path");
    let page = router(&["--static-dir", static_dir]);
    let response = get(page.clone(), "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(text(response).await.contains("<title>page</title>"));
    let response = get(page, "/rooms/lobby").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "client routes fall back to the page"
    );
    assert!(text(response).await.contains("<title>page</title>"));
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[tokio::test]
async fn unlisted_origins_are_refused_by_the_guard() {
    let request = Request::get("/socket.io/?EIO=4&transport=polling")
        .header(header::ORIGIN, "http://evil.example")
        .body(Body::empty())
        .expect("request");
    let response = send(
        router(&["--cors-origin", "http://allowed.example"]),
        request,
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = serde_json::from_str(&text(response).await).expect("json");
    assert_eq!(body, json!({ "code": 4, "message": "Forbidden" }));
}

#[tokio::test]
async fn plain_http_on_the_websocket_path_is_told_to_upgrade() {
    let response = get(router(&[]), "/ws").await;
    assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(response.headers()[header::UPGRADE], "websocket");
}

#[tokio::test]
async fn a_polling_handshake_opens_a_session() {
    let response = get(router(&[]), "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = text(response).await;
    let open: Value = serde_json::from_str(body.strip_prefix('0').expect("an OPEN packet"))
        .expect("handshake json");
    assert!(open["sid"].is_string(), "{body}");
}
