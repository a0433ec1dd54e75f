//! `GET /healthz`: liveness and a few numbers for load balancers and people.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use super::connections::{ConnectionGate, TcpHealth};
use crate::adapter::RedisStatus;
use crate::relay::Relay;
use crate::relay::webhook::{Webhook, WebhookHealth};

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
    /// The ticker's interval in milliseconds, `null` when the ticker is off; pages use it to say
    /// when the next tick is due.
    pub tick_interval_ms: Option<u64>,
    /// Events refused by the per-client rate limit since startup, on both transports.
    pub rate_limited_events: u64,
    /// TCP connections: open now, and refused or closed early since startup. Absent when the
    /// router is driven without a server (tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpHealth>,
    /// The app's event webhook, when one is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookHealth>,
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
    relay: Arc<Relay>,
    tick_interval: Option<Duration>,
}

impl<A: Adapter> Clone for HealthSources<A> {
    fn clone(&self) -> Self {
        Self {
            io: self.io.clone(),
            redis: self.redis.clone(),
            relay: self.relay.clone(),
            tick_interval: self.tick_interval,
        }
    }
}

/// The health route, reading live numbers from `io`, the relay and the Redis link, if any.
pub fn router<A: Adapter>(
    io: SocketIo<A>,
    relay: Arc<Relay>,
    redis: Option<RedisStatus>,
    tick_interval: Option<Duration>,
) -> Router {
    Router::new()
        .route("/healthz", get(health::<A>))
        .with_state(HealthSources {
            io,
            redis,
            relay,
            tick_interval,
        })
}

async fn health<A: Adapter>(
    State(sources): State<HealthSources<A>>,
    gate: Option<Extension<Arc<ConnectionGate>>>,
) -> Json<Health> {
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
    let webhook = sources.relay.webhook.as_ref().map(Webhook::health);
    let degraded = redis.as_ref().is_some_and(|redis| !redis.reachable)
        || webhook.is_some_and(|webhook| !webhook.reachable);
    Json(Health {
        status: if degraded { "degraded" } else { "ok" },
        connections,
        version: env!("CARGO_PKG_VERSION"),
        adapter: if redis.is_some() { "redis" } else { "memory" },
        tick_interval_ms: sources
            .tick_interval
            .map(|interval| u64::try_from(interval.as_millis()).unwrap_or(u64::MAX)),
        rate_limited_events: sources.relay.metrics.rate_limited_total(),
        tcp: gate.map(|Extension(gate)| gate.health()),
        webhook,
        redis,
    })
}
