//! Checks made on realtime requests before a session exists: origin and protocol version.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::{Config, Transport};
use crate::metrics::RefusalCause;
use crate::relay::Relay;

/// What the guard needs to know, shared by every request.
#[derive(Debug, Clone)]
pub struct RealtimeGuard {
    config: Arc<Config>,
    paths: Arc<[String]>,
    relay: Arc<Relay>,
}

/// Engine.IO's error codes, as Node socket.io sends them in its JSON error bodies.
#[derive(Debug, Clone, Copy)]
enum EngineError {
    /// Code 4: the request is not allowed.
    Forbidden,
    /// Code 5: the `EIO` version is not served.
    UnsupportedProtocolVersion,
    /// The node holds its maximum number of connections (HTTP 503; clients retry later).
    AtCapacity,
}

impl IntoResponse for EngineError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            EngineError::Forbidden => (StatusCode::FORBIDDEN, 4, "Forbidden"),
            EngineError::UnsupportedProtocolVersion => {
                (StatusCode::BAD_REQUEST, 5, "Unsupported protocol version")
            }
            EngineError::AtCapacity => (StatusCode::SERVICE_UNAVAILABLE, 3, "Server at capacity"),
        };
        let body = serde_json::json!({ "code": code, "message": message });
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl RealtimeGuard {
    /// Guards requests under any of `paths` with the rules of `config`.
    pub fn new(config: Arc<Config>, paths: Vec<String>, relay: Arc<Relay>) -> Self {
        Self {
            config,
            paths: paths.into(),
            relay,
        }
    }

    fn covers(&self, path: &str) -> bool {
        self.paths.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// Refuses unlisted origins with 403 and, unless allowed, Engine.IO v3 with 400.
///
/// Node socket.io answers an unlisted origin's polling handshake with 400 and lets its
/// WebSocket through; iorelay refuses both with 403 so no session is ever created for it.
pub async fn check(State(guard): State<RealtimeGuard>, request: Request, next: Next) -> Response {
    if !guard.covers(request.uri().path()) {
        return next.run(request).await;
    }
    let query = request.uri().query();
    let handshake = opens_session(query);
    let metrics = &guard.relay.metrics;
    // Only handshakes count as refused: a session's later requests are not new clients.
    let refused = |cause| {
        if handshake {
            metrics.handshake_refused(cause);
        }
    };
    let origin = request.headers().get(header::ORIGIN);
    if !guard.config.origin_allowed(origin) {
        tracing::info!(origin = ?origin, path = request.uri().path(), "refused request from an unlisted origin");
        refused(RefusalCause::Origin);
        return EngineError::Forbidden.into_response();
    }
    if !guard.config.allow_eio3 && requests_eio3(query) {
        refused(RefusalCause::BadRequest);
        return EngineError::UnsupportedProtocolVersion.into_response();
    }
    if handshake && !guard.relay.try_admit(std::time::Instant::now()) {
        tracing::warn!(
            max = guard.config.max_connections,
            "connection refused: node at capacity"
        );
        refused(RefusalCause::Capacity);
        return EngineError::AtCapacity.into_response();
    }
    let opens_polling_session = is_eio4_polling_handshake(query);
    let response = next.run(request).await;
    if response.status() == StatusCode::BAD_REQUEST {
        // Engine.IO refused the handshake itself (unknown transport, malformed request).
        refused(RefusalCause::BadRequest);
        return rewrite_body(response, numeric_error_code).await;
    }
    if opens_polling_session && !guard.config.allows(Transport::Websocket) {
        return rewrite_body(response, without_upgrades).await;
    }
    response
}

/// Replaces a small response body with `rewrite(body)`.
async fn rewrite_body(response: Response, rewrite: fn(&str) -> String) -> Response {
    // Open packets and error bodies are a few dozen bytes.
    const SMALL_BODY_LIMIT: usize = 4096;
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    match axum::body::to_bytes(body, SMALL_BODY_LIMIT).await {
        Ok(bytes) => {
            Response::from_parts(parts, Body::from(rewrite(&String::from_utf8_lossy(&bytes))))
        }
        Err(error) => {
            tracing::warn!(%error, "could not read an Engine.IO response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// socketioxide offers the WebSocket upgrade in every polling handshake, even when WebSocket is
/// not served; Node offers none, so clients do not try an upgrade that must fail.
fn without_upgrades(open_packet: &str) -> String {
    open_packet.replace(r#""upgrades":["websocket"]"#, r#""upgrades":[]"#)
}

/// socketioxide sends Engine.IO error codes as strings (`"code":"1"`); Node sends numbers.
fn numeric_error_code(body: &str) -> String {
    let Ok(mut error) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.to_owned();
    };
    if let Some(code) = error
        .get("code")
        .and_then(|c| c.as_str())
        .and_then(|c| c.parse::<u8>().ok())
    {
        error["code"] = code.into();
    }
    error.to_string()
}

/// A request that opens an Engine.IO session: a handshake carries no `sid` yet.
fn opens_session(query: Option<&str>) -> bool {
    !query.is_some_and(|q| q.split('&').any(|pair| pair.starts_with("sid=")))
}

/// A polling request that opens an Engine.IO v4 session (no `sid` yet).
fn is_eio4_polling_handshake(query: Option<&str>) -> bool {
    let Some(query) = query else { return false };
    let mut pairs = query.split('&');
    let (mut eio4, mut polling, mut sid) = (false, false, false);
    for pair in &mut pairs {
        eio4 |= pair == "EIO=4";
        polling |= pair == "transport=polling";
        sid |= pair.starts_with("sid=");
    }
    eio4 && polling && !sid
}

fn requests_eio3(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair == "EIO=3"))
}

#[cfg(test)]
mod tests {
    use super::{is_eio4_polling_handshake, numeric_error_code, requests_eio3, without_upgrades};

    #[test]
    fn error_codes_become_numbers() {
        assert_eq!(
            numeric_error_code(r#"{"code":"1","message":"Session ID unknown"}"#),
            r#"{"code":1,"message":"Session ID unknown"}"#
        );
        assert_eq!(numeric_error_code("not json"), "not json");
        assert_eq!(numeric_error_code(""), "");
    }

    #[test]
    fn upgrades_are_removed_from_the_open_packet() {
        assert_eq!(
            without_upgrades(r#"0{"sid":"a","upgrades":["websocket"],"pingInterval":1}"#),
            r#"0{"sid":"a","upgrades":[],"pingInterval":1}"#
        );
    }

    #[test]
    fn finds_polling_handshakes() {
        assert!(is_eio4_polling_handshake(Some(
            "EIO=4&transport=polling&t=abc"
        )));
        assert!(!is_eio4_polling_handshake(Some(
            "EIO=4&transport=polling&sid=x"
        )));
        assert!(!is_eio4_polling_handshake(Some(
            "EIO=4&transport=websocket"
        )));
        assert!(!is_eio4_polling_handshake(Some("EIO=3&transport=polling")));
        assert!(!is_eio4_polling_handshake(None));
    }

    #[test]
    fn finds_the_eio_version() {
        assert!(requests_eio3(Some("EIO=3&transport=polling")));
        assert!(requests_eio3(Some("transport=polling&EIO=3")));
        assert!(!requests_eio3(Some("EIO=4&transport=polling")));
        assert!(!requests_eio3(Some("EIO=30")));
        assert!(!requests_eio3(None));
    }
}
