//! The HTTP server API, in Socket.IO's words: an express route or a job worker calls
//! `POST /api/emit` where it called `io.to(room).emit(...)`. Enabled by `--api-key`; every
//! request carries `Authorization: Bearer <key>`. With Redis, every call acts on the cluster.

mod error;
mod sockets;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use http::header;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json_, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use subtle::ConstantTimeEq;

pub use self::error::ApiError;
use crate::config::Config;
use crate::relay::Relay;
use crate::relay::binary;
use crate::relay::delivery::Targets;
use crate::relay::payload::EventArgs;

/// What every API handler needs.
pub(crate) struct ApiState<A: Adapter> {
    io: SocketIo<A>,
    relay: Arc<Relay>,
}

impl<A: Adapter> Clone for ApiState<A> {
    fn clone(&self) -> Self {
        ApiState {
            io: self.io.clone(),
            relay: self.relay.clone(),
        }
    }
}

/// The `/api/*` routes: the server API with `--api-key`, a 404 for every path without it.
pub fn router<A: Adapter>(config: &Config, io: SocketIo<A>, relay: Arc<Relay>) -> Router {
    let Some(key) = &config.api_key else {
        // Without a key the API does not exist; say so rather than serve the page.
        let not_found = any(|| async {
            ApiError::NotFound("no server API: iorelay runs without --api-key".into())
        });
        return Router::new()
            .route("/api", not_found.clone())
            .route("/api/{*rest}", not_found);
    };
    let key: Arc<[u8]> = key.expose().as_bytes().into();
    let limit = usize::try_from(config.max_http_buffer_size).unwrap_or(usize::MAX);
    Router::new()
        .route("/api/emit", post(emit::<A>))
        .route("/api/sockets", get(sockets::list::<A>))
        .route("/api/sockets/join", post(sockets::join::<A>))
        .route("/api/sockets/leave", post(sockets::leave::<A>))
        .route("/api/sockets/disconnect", post(sockets::disconnect::<A>))
        .route("/api/rooms", get(sockets::rooms::<A>))
        .route(
            "/api/{*rest}",
            any(|| async { ApiError::NotFound("no such API route".into()) }),
        )
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(key, authorize))
        .with_state(ApiState { io, relay })
}

/// Refuses requests without the right bearer key, comparing in constant time.
async fn authorize(State(key): State<Arc<[u8]>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "));
    match presented {
        Some(presented) if bool::from(presented.ct_eq(&key)) => next.run(request).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}

/// `Json<T>`, with a refused body answered as `400 { "error": reason }` (413 when too large).
pub(crate) fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value).map_err(ApiError::from)
}

fn root() -> String {
    "/".to_owned()
}

/// `POST /api/emit`: `io.of(namespace).to(to).except(except).emit(event, ...args)`, or with
/// `timeout_ms`, `io.timeout(ms).to(...).emitWithAck(...)`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmitRequest {
    #[serde(default = "root")]
    namespace: String,
    event: String,
    #[serde(default)]
    args: Vec<Json_>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    timeout_ms: Option<u64>,
}

/// One socket's acknowledgement of an emit with ack.
#[derive(Debug, Serialize)]
struct SocketAck {
    socket: String,
    args: Vec<Json_>,
}

async fn emit<A: Adapter>(
    State(api): State<ApiState<A>>,
    request: Result<Json<EmitRequest>, JsonRejection>,
) -> Result<Json<Json_>, ApiError> {
    let request = body(request)?;
    let args = EventArgs(
        binary::args_from_json(&request.args).map_err(|e| ApiError::BadRequest(e.to_string()))?,
    );
    let Some(sockets) = api.io.of(&request.namespace) else {
        return Err(ApiError::UnknownNamespace(request.namespace));
    };
    let Some(timeout_ms) = request.timeout_ms else {
        api.relay
            .emit(
                &api.io,
                &request.namespace,
                &request.event,
                &args,
                Targets {
                    to: &request.to,
                    except: &request.except,
                    skip: None,
                },
            )
            .await
            .or_else(error::partial_delivery)?;
        return Ok(Json(json!({ "ok": true })));
    };
    let mut sockets = sockets.timeout(Duration::from_millis(timeout_ms));
    if !request.to.is_empty() {
        sockets = sockets.to(request.to);
    }
    if !request.except.is_empty() {
        sockets = sockets.except(request.except);
    }
    let acks = sockets
        .emit_with_ack::<_, EventArgs>(&request.event, &args)
        .await
        .map_err(|error| ApiError::Unavailable(error.to_string()))?;
    let (acks, missing) = acks
        .fold(
            (Vec::new(), 0usize),
            |(mut acks, mut missing), (sid, ack)| async move {
                match ack {
                    Ok(args) => acks.push(SocketAck {
                        socket: sid.to_string(),
                        args: binary::args_to_json(&args.0),
                    }),
                    Err(_) => missing += 1,
                }
                (acks, missing)
            },
        )
        .await;
    Ok(Json(
        json!({ "ok": true, "acks": acks, "missing": missing }),
    ))
}
