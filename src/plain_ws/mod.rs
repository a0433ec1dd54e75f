//! Plain WebSocket clients (`new WebSocket(url)`, Node's `ws`, `nodejs-websocket`, `websocket`)
//! on the same port as Socket.IO, sharing the rooms of namespace `/`.
//!
//! - [`handshake`]: origin, subprotocol, token and capacity, checked before the upgrade;
//! - `session`: one connection: frames in, requests answered, heartbeat;
//! - `wire`: frames out, and close codes;
//! - [`frames`]: the JSON frames of the event contract;
//!
//! The clients' rooms, queues and cross-node delivery are the relay's
//! ([`crate::relay::plain_members`], [`crate::relay::bridge`]).

mod forward;
pub mod frames;
pub mod handshake;
mod session;
mod wire;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use self::handshake::Refusal;
use crate::config::Config;
use crate::metrics::RefusalCause;
use crate::relay::Relay;
use crate::relay::auth::UserId;
use crate::relay::handshake::handshake;
use crate::relay::webhook::Handshake;

/// Everything a plain WebSocket connection needs from the node.
pub struct PlainEndpoint<A: Adapter> {
    /// The Socket.IO side, for rooms of `/` and their members.
    pub io: SocketIo<A>,
    /// Members, authentication, limits and delivery, shared with Socket.IO.
    pub relay: Arc<Relay>,
    /// Endpoint, subprotocols, heartbeat and sizes.
    pub config: Arc<Config>,
}

impl<A: Adapter> Clone for PlainEndpoint<A> {
    fn clone(&self) -> Self {
        PlainEndpoint {
            io: self.io.clone(),
            relay: self.relay.clone(),
            config: self.config.clone(),
        }
    }
}

/// What the handshake learned about a client.
#[derive(Debug)]
struct Peer {
    protocol: Option<String>,
    user: Option<UserId>,
    handshake: Handshake,
    /// When its upgrade request arrived, for the handshake's duration.
    requested: Instant,
}

/// Adds the plain WebSocket endpoint at `--ws-path`, and takes WebSocket upgrades at `/`
/// (what `new WebSocket("ws://host:3000")` opens); every other request goes on to `router`,
/// so `GET /` still serves the page.
pub fn serve_beside<A: Adapter>(router: Router, endpoint: PlainEndpoint<A>) -> Router {
    let path = endpoint.config.ws_path.clone();
    router
        .route(
            &path,
            any(upgrade_at_path::<A>).with_state(endpoint.clone()),
        )
        .layer(middleware::from_fn_with_state(
            endpoint,
            upgrade_at_root::<A>,
        ))
}

async fn upgrade_at_path<A: Adapter>(
    State(endpoint): State<PlainEndpoint<A>>,
    request: Request,
) -> Response {
    if !handshake::wants_websocket(request.headers()) {
        // What Node's `ws` server answers to plain HTTP on its path.
        return (
            StatusCode::UPGRADE_REQUIRED,
            [(header::UPGRADE, "websocket")],
            "this endpoint speaks WebSocket only",
        )
            .into_response();
    }
    accept(endpoint, request).await
}

async fn upgrade_at_root<A: Adapter>(
    State(endpoint): State<PlainEndpoint<A>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/" && handshake::wants_websocket(request.headers()) {
        accept(endpoint, request).await
    } else {
        next.run(request).await
    }
}

async fn accept<A: Adapter>(endpoint: PlainEndpoint<A>, request: Request) -> Response {
    let requested = Instant::now();
    let (mut parts, _body) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            endpoint
                .relay
                .metrics
                .handshake_refused(RefusalCause::BadRequest);
            return rejection.into_response();
        }
    };
    let peer = match endpoint.admit(&parts, requested) {
        Ok(peer) => peer,
        Err(refusal) => {
            endpoint.relay.metrics.handshake_refused(refusal.cause());
            tracing::info!(
                path = parts.uri.path(),
                origin = ?parts.headers.get(header::ORIGIN),
                %refusal,
                "plain WebSocket refused"
            );
            return refusal.into_response();
        }
    };
    let max_message = usize::try_from(endpoint.config.max_http_buffer_size).unwrap_or(usize::MAX);
    let mut upgrade = upgrade
        .max_message_size(max_message)
        .max_frame_size(max_message);
    if let Some(protocol) = peer
        .protocol
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        upgrade.set_selected_protocol(protocol);
    }
    let relay = endpoint.relay.clone();
    upgrade
        .on_failed_upgrade(move |error| {
            relay.admissions.settle();
            tracing::debug!(%error, "plain WebSocket upgrade failed");
        })
        .on_upgrade(move |socket| session::run(socket, endpoint, peer))
}

impl<A: Adapter> PlainEndpoint<A> {
    /// Applies the same rules as to Socket.IO handshakes, in the same order: origin, then
    /// credentials, then the connection limit (which reserves a place).
    fn admit(&self, parts: &Parts, requested: Instant) -> Result<Peer, Refusal> {
        if !self
            .config
            .origin_allowed(parts.headers.get(header::ORIGIN))
        {
            return Err(Refusal::Origin);
        }
        let offered = handshake::offered_protocols(&parts.headers);
        let protocol = handshake::select_protocol(&offered, &self.config.ws_protocols)?;
        let token = handshake::token(&parts.uri, &offered);
        let user = self
            .relay
            .auth
            .verify(&serde_json::json!({ "token": token }))?;
        if !self.relay.try_admit(requested) {
            return Err(Refusal::AtCapacity);
        }
        Ok(Peer {
            protocol: protocol.map(str::to_owned),
            user,
            // The token stays out of what the app is shown; Node has no `auth` for plain clients.
            handshake: handshake(
                parts,
                serde_json::Value::Object(Default::default()),
                self.relay.id_rooms,
            ),
            requested,
        })
    }
}
