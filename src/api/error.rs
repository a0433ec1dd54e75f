//! How the server API says no: a status and `{ "error": "..." }`, never internals.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;
use socketioxide_core::adapter::errors::BroadcastError;

use crate::relay::membership::MembershipError;

/// A refused or failed API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No bearer key, or the wrong one (401).
    #[error("unauthorized")]
    Unauthorized,
    /// No such route, or the API is off (404).
    #[error("{0}")]
    NotFound(String),
    /// The namespace is not served (404).
    #[error("unknown namespace \"{0}\"")]
    UnknownNamespace(String),
    /// The body is not what the route takes (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than `--max-http-buffer-size` (413).
    #[error("{0}")]
    TooLarge(String),
    /// Other nodes could not be reached (503).
    #[error("{0}")]
    Unavailable(String),
}

impl From<MembershipError> for ApiError {
    fn from(error: MembershipError) -> Self {
        match error {
            MembershipError::UnknownNamespace(namespace) => ApiError::UnknownNamespace(namespace),
            MembershipError::Unavailable(reason) => ApiError::Unavailable(reason),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(rejection.body_text())
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) | ApiError::UnknownNamespace(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// A broadcast that reached every member but those whose queue was full is a success, as
/// Node's `emit` is; those members are logged, and the heartbeat drops the ones that stopped
/// reading.
pub fn partial_delivery(error: BroadcastError) -> Result<(), ApiError> {
    match error {
        BroadcastError::Socket(failures) => {
            tracing::warn!(
                undelivered = failures.len(),
                "API emit not delivered to members that are not keeping up"
            );
            Ok(())
        }
        other => Err(ApiError::Unavailable(other.to_string())),
    }
}
