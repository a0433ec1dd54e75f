//! Checks made on realtime requests before a session exists: origin and protocol version.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Config;

/// What the guard needs to know, shared by every request.
#[derive(Debug, Clone)]
pub struct RealtimeGuard {
    config: Arc<Config>,
    paths: Arc<[String]>,
}

/// Engine.IO's error codes, as Node socket.io sends them in its JSON error bodies.
#[derive(Debug, Clone, Copy)]
enum EngineError {
    /// Code 4: the request is not allowed.
    Forbidden,
    /// Code 5: the `EIO` version is not served.
    UnsupportedProtocolVersion,
}

impl IntoResponse for EngineError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            EngineError::Forbidden => (StatusCode::FORBIDDEN, 4, "Forbidden"),
            EngineError::UnsupportedProtocolVersion => {
                (StatusCode::BAD_REQUEST, 5, "Unsupported protocol version")
            }
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
    pub fn new(config: Arc<Config>, paths: Vec<String>) -> Self {
        Self {
            config,
            paths: paths.into(),
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
    let origin = request.headers().get(header::ORIGIN);
    if !guard.config.origin_allowed(origin) {
        tracing::info!(origin = ?origin, path = request.uri().path(), "refused request from an unlisted origin");
        return EngineError::Forbidden.into_response();
    }
    if !guard.config.allow_eio3 && requests_eio3(request.uri().query()) {
        return EngineError::UnsupportedProtocolVersion.into_response();
    }
    next.run(request).await
}

fn requests_eio3(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair == "EIO=3"))
}

#[cfg(test)]
mod tests {
    use super::requests_eio3;

    #[test]
    fn finds_the_eio_version() {
        assert!(requests_eio3(Some("EIO=3&transport=polling")));
        assert!(requests_eio3(Some("transport=polling&EIO=3")));
        assert!(!requests_eio3(Some("EIO=4&transport=polling")));
        assert!(!requests_eio3(Some("EIO=30")));
        assert!(!requests_eio3(None));
    }
}
