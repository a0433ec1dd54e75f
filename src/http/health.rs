//! `GET /healthz`: liveness and a few numbers for load balancers and people.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use crate::adapter::RedisStatus;

/// Body of `GET /healthz`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok`, or `degraded` while a dependency is down (the node still serves its sockets).
    pub status: &'static str,
    /// Sockets connected to this node, over all namespaces.
    pub connections: usize,
    /// iorelay version.
    pub version: &'static str,
    /// Which adapter shares rooms: `memory` on a single node, `redis` across nodes.
    pub adapter: &'static str,
    /// The Redis link, when rooms are shared through Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisHealth>,
}

/// The Redis part of `GET /healthz`.
#[derive(Debug, Serialize)]
pub struct RedisHealth {
    /// Whether Redis is connected right now.
    pub reachable: bool,
    /// Cross-node messages dropped while Redis was unreachable, since startup.
    pub dropped_messages: u64,
}

struct HealthSources<A: Adapter> {
    io: SocketIo<A>,
    redis: Option<RedisStatus>,
}

impl<A: Adapter> Clone for HealthSources<A> {
    fn clone(&self) -> Self {
        Self {
            io: self.io.clone(),
            redis: self.redis.clone(),
        }
    }
}

/// The health route, reading live numbers from `io` and the Redis link, if any.
pub fn router<A: Adapter>(io: SocketIo<A>, redis: Option<RedisStatus>) -> Router {
    Router::new()
        .route("/healthz", get(health::<A>))
        .with_state(HealthSources { io, redis })
}

async fn health<A: Adapter>(State(sources): State<HealthSources<A>>) -> Json<Health> {
    let connections = sources
        .io
        .nsps()
        .into_iter()
        .map(|ns| ns.sockets().len())
        .sum();
    let redis = sources.redis.as_ref().map(|status| RedisHealth {
        reachable: status.reachable(),
        dropped_messages: status.dropped_messages(),
    });
    let degraded = redis.as_ref().is_some_and(|redis| !redis.reachable);
    Json(Health {
        status: if degraded { "degraded" } else { "ok" },
        connections,
        version: env!("CARGO_PKG_VERSION"),
        adapter: if redis.is_some() { "redis" } else { "memory" },
        redis,
    })
}
