//! `GET /healthz`: liveness and a few numbers for load balancers and people.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

/// Body of `GET /healthz`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok`, or `degraded` while a dependency is down (the node still serves its sockets).
    pub status: &'static str,
    /// Sockets connected to this node, over all namespaces.
    pub connections: usize,
    /// iorelay version.
    pub version: &'static str,
    /// Which adapter shares rooms: `memory` on a single node.
    pub adapter: &'static str,
}

/// The health route, reading live numbers from `io`.
pub fn router<A: Adapter>(io: SocketIo<A>) -> Router {
    Router::new()
        .route("/healthz", get(health::<A>))
        .with_state(io)
}

async fn health<A: Adapter>(State(io): State<SocketIo<A>>) -> Json<Health> {
    let connections = io.nsps().into_iter().map(|ns| ns.sockets().len()).sum();
    Json(Health {
        status: "ok",
        connections,
        version: env!("CARGO_PKG_VERSION"),
        adapter: "memory",
    })
}
