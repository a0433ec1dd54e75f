//! `GET /metrics`: the node's counters in Prometheus's text format, on the public port or on
//! a listener of its own (`--metrics-listen`), behind a bearer token when `--metrics-token` is
//! set. Labels carry no socket ids, rooms, users or secrets.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use socketioxide::adapter::Adapter;
use socketioxide::{SocketIo, TransportType};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::metrics::{SocketCensus, TransportLabel};
use crate::relay::Relay;
use crate::relay::plain_members::PlainMembers;

/// The path Prometheus scrapes.
pub const PATH: &str = "/metrics";

struct Scrape<A: Adapter> {
    io: SocketIo<A>,
    relay: Arc<Relay>,
    token: Option<Arc<[u8]>>,
}

impl<A: Adapter> Clone for Scrape<A> {
    fn clone(&self) -> Self {
        Self {
            io: self.io.clone(),
            relay: self.relay.clone(),
            token: self.token.clone(),
        }
    }
}

/// The `/metrics` route, whichever listener serves it.
pub fn router<A: Adapter>(config: &Config, io: SocketIo<A>, relay: Arc<Relay>) -> Router {
    let token = config
        .metrics_token
        .as_ref()
        .map(|token| token.expose().as_bytes().into());
    Router::new()
        .route(PATH, get(scrape::<A>))
        .with_state(Scrape { io, relay, token })
}

async fn scrape<A: Adapter>(State(scrape): State<Scrape<A>>, headers: HeaderMap) -> Response {
    if let Some(token) = &scrape.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "));
        if !presented.is_some_and(|presented| bool::from(presented.ct_eq(token))) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a bearer token is required",
            )
                .into_response();
        }
    }
    let census = LiveSockets {
        io: &scrape.io,
        plain: &scrape.relay.plain,
    };
    match scrape.relay.metrics.encode(Some(&census)) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::warn!(%error, "metrics not encoded");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// This node's Socket.IO sockets, by namespace and the transport each is on now, and its plain
/// WebSocket clients (on `/`).
struct LiveSockets<'a, A: Adapter> {
    io: &'a SocketIo<A>,
    plain: &'a PlainMembers,
}

impl<A: Adapter> SocketCensus for LiveSockets<'_, A> {
    fn count(&self, count: &mut dyn FnMut(&str, TransportLabel, u64)) {
        for namespace in self.io.nsps() {
            for socket in namespace.sockets() {
                let transport = match socket.transport_type() {
                    TransportType::Polling => TransportLabel::Polling,
                    TransportType::Websocket => TransportLabel::Websocket,
                };
                count(socket.ns(), transport, 1);
            }
        }
        count("/", TransportLabel::Plain, self.plain.len() as u64);
    }
}
