//! What a node counts, for `GET /metrics` (Prometheus) and the Admin UI.
//!
//! Counting is always on, so it must cost the hot path next to nothing: every handle a packet
//! or an event touches is resolved once (at startup, or when a client connects and keeps its
//! namespace's [`NamespaceMetrics`]), and counts are relaxed atomics. Numbers that already
//! exist elsewhere are read when scraped instead of counted twice: Engine.IO traffic from
//! engineioxide's per-thread counters, sockets connected from the live sockets, the Redis link
//! from its status, TCP refusals from the connection gate. Engine.IO traffic, queue drops and
//! broadcast sizes are counted by the vendored engineioxide and socketioxide for the whole
//! process (one node per process in production; several test servers in one process share
//! them).
//!
//! - [`labels`]: the closed sets of label values;
//! - [`namespace`]: the handles of one namespace;
//! - [`sharded`]: counters each thread adds to on its own cache line;
//! - [`webhook`]: the webhook's calls, failures and latency;
//! - [`traffic`], [`census`], [`refusals`], [`process`], [`redis`]: what is read when scraped.
//!
//! This module sits below [`crate::relay`] and imports nothing above it.

pub(crate) mod census;
pub(crate) mod labels;
pub(crate) mod namespace;
pub(crate) mod process;
pub(crate) mod redis;
pub(crate) mod refusals;
pub(crate) mod sharded;
pub(crate) mod traffic;
pub(crate) mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use census::SocketCensus;
pub use labels::{EventLabel, RefusalCause, TransportLabel};
pub use namespace::NamespaceMetrics;
pub use redis::RedisLinkSource;
pub use refusals::TcpRefusals;
pub use traffic::Traffic;
pub use webhook::{WebhookCallLabel, WebhookFailure, WebhookMetrics};

use labels::{NamespaceEvent, NamespaceOnly, NamespaceReason, NamespaceTransport};

/// The namespace label of sockets on a namespace that is not known at startup.
const OTHER_NAMESPACE: &str = "other";

/// Buckets of `iorelay_broadcast_fanout`: recipients of one broadcast.
const FANOUT_BUCKETS: [f64; 10] = [
    1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0,
];

/// Buckets of the latency histograms, in seconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `iorelay_broadcast_fanout`: one histogram for the process, which socketioxide's hook
/// (a plain function) can reach.
static FANOUT: LazyLock<Histogram> = LazyLock::new(|| Histogram::new(FANOUT_BUCKETS));

/// Records a broadcast to `recipients` local clients; one that reaches nobody on this node (a
/// room whose members are all elsewhere) is not a broadcast here.
fn observe_fanout(recipients: usize) {
    if recipients > 0 {
        FANOUT.observe(recipients as f64);
    }
}

/// A node's counters and the registry that exposes them.
pub struct Metrics {
    registry: Registry,
    namespaces: Vec<Arc<NamespaceMetrics>>,
    /// The handles of namespaces not known at startup (also among `namespaces`).
    other: Arc<NamespaceMetrics>,
    refused: [Counter; RefusalCause::ALL.len()],
    /// Plain WebSocket frames dropped on full queues (Engine.IO's are counted in engineioxide).
    plain_dropped: Arc<AtomicU64>,
    handshake: Histogram,
    webhook: WebhookMetrics,
    plain: Arc<sharded::PlainTraffic>,
    /// The namespace labels known at startup, `other` included.
    names: Vec<String>,
    census: Arc<Mutex<census::Tally>>,
    redis: Arc<OnceLock<Box<dyn RedisLinkSource>>>,
    tcp: Arc<OnceLock<Box<dyn TcpRefusals>>>,
    recovery_failures: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespaces", &self.namespaces.len())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics of a node serving `namespaces` (any other namespace is labelled `other`).
    pub fn new<'a>(namespaces: impl IntoIterator<Item = &'a str>) -> Self {
        let mut registry = Registry::default();
        let connects = Family::<NamespaceTransport, Counter>::default();
        let disconnects = Family::<NamespaceReason, Counter>::default();
        let events = Family::<NamespaceEvent, sharded::ShardedCounter>::default();
        let rate_limited = Family::<NamespaceOnly, Counter>::default();
        let mut names: Vec<&str> = Vec::new();
        for name in namespaces.into_iter().chain([OTHER_NAMESPACE]) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let namespaces: Vec<_> = names
            .iter()
            .map(|name| {
                Arc::new(NamespaceMetrics::resolve(
                    name,
                    &connects,
                    &disconnects,
                    &events,
                    &rate_limited,
                ))
            })
            .collect();
        let other = namespaces
            .iter()
            .find(|ns| ns.name() == OTHER_NAMESPACE)
            .cloned()
            .unwrap_or_else(|| {
                Arc::new(NamespaceMetrics::resolve(
                    OTHER_NAMESPACE,
                    &connects,
                    &disconnects,
                    &events,
                    &rate_limited,
                ))
            });
        registry.register(
            "iorelay_connects",
            "Sockets that joined a namespace",
            connects,
        );
        registry.register(
            "iorelay_disconnects",
            "Sockets that left a namespace, by reason",
            disconnects,
        );
        registry.register(
            "iorelay_events_received",
            "Events received from clients, by built-in event (webhook: forwarded to the app)",
            events,
        );
        registry.register(
            "iorelay_events_rate_limited",
            "Events refused by the per-client rate limit",
            rate_limited,
        );

        let refused: [Counter; RefusalCause::ALL.len()] = Default::default();
        let tcp = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(refusals::RefusalCollector {
            counters: refused.clone(),
            tcp: tcp.clone(),
        }));

        let plain_dropped = Arc::new(AtomicU64::new(0));
        registry.register_collector(Box::new(traffic::DroppedCollector {
            plain: plain_dropped.clone(),
        }));

        // socketioxide tells of its broadcasts through a process-wide hook, so the histogram is
        // the process's; it is set once, whichever node of the process comes first.
        socketioxide::observe_broadcasts(observe_fanout);
        registry.register(
            "iorelay_broadcast_fanout",
            "Recipients on this node of one broadcast (Socket.IO and plain WebSocket)",
            FANOUT.clone(),
        );
        let handshake = Histogram::new(LATENCY_BUCKETS);
        registry.register(
            "iorelay_handshake_duration_seconds",
            "Time to admit or refuse a client joining a namespace (credentials, the app's connect webhook)",
            handshake.clone(),
        );

        let webhook = WebhookMetrics::register(&mut registry, LATENCY_BUCKETS);

        let build = Family::<labels::Version, Gauge>::default();
        build
            .get_or_create(&labels::Version {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("iorelay_build_info", "The iorelay version running", build);

        let plain = Arc::new(sharded::PlainTraffic::default());
        registry.register_collector(Box::new(traffic::TrafficCollector {
            plain: plain.clone(),
        }));
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let census = Arc::new(Mutex::new(census::tally(&names, None)));
        registry.register_collector(Box::new(census::CensusCollector {
            tally: census.clone(),
        }));
        let redis = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(redis::RedisCollector {
            source: redis.clone(),
        }));
        registry.register_collector(Box::new(process::ProcessCollector));
        let recovery_failures = Counter::default();
        registry.register(
            "iorelay_recovery_store_failures",
            "Connection state recovery writes or reads Redis did not take; the clients concerned get a fresh session",
            recovery_failures.clone(),
        );

        Metrics {
            registry,
            namespaces,
            other,
            refused,
            plain_dropped,
            handshake,
            webhook,
            plain,
            names,
            census,
            redis,
            tcp,
            recovery_failures,
        }
    }

    /// The counter of connection state recovery's failed Redis writes and reads.
    pub fn recovery_failures(&self) -> Counter {
        self.recovery_failures.clone()
    }

    /// The handles of the namespace at `path`; those of `other` for a namespace not known at
    /// startup. Resolve once per client, not per event.
    pub fn namespace(&self, path: &str) -> Arc<NamespaceMetrics> {
        self.namespaces
            .iter()
            .find(|ns| ns.name() == path)
            .unwrap_or(&self.other)
            .clone()
    }

    /// Counts a handshake refused for `cause`.
    pub fn handshake_refused(&self, cause: RefusalCause) {
        self.refused[cause as usize].inc();
    }

    /// Records how long a client waited to be admitted or refused.
    pub fn handshake_took(&self, duration: Duration) {
        self.handshake.observe(duration.as_secs_f64());
    }

    /// Records one broadcast of plain WebSocket frames to `recipients` clients of this node
    /// (socketioxide tells of its own).
    pub fn broadcast(&self, recipients: usize) {
        observe_fanout(recipients);
    }

    /// Counts a plain WebSocket frame dropped because its client's queue was full (Engine.IO
    /// counts its own).
    pub fn dropped_queue_full(&self) {
        self.plain_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Packets and frames dropped on full queues since startup (Engine.IO's process-wide).
    pub fn dropped_queue_full_total(&self) -> u64 {
        traffic::dropped_total(&self.plain_dropped)
    }

    /// The webhook's handles.
    pub fn webhook(&self) -> &WebhookMetrics {
        &self.webhook
    }

    /// Counts a plain WebSocket frame read (`bytes` long).
    pub fn plain_received(&self, bytes: usize) {
        self.plain.received(bytes);
    }

    /// Counts plain WebSocket frames written: `frames` of `bytes` in all.
    pub fn plain_sent(&self, frames: usize, bytes: usize) {
        self.plain.sent(frames, bytes);
    }

    /// Sets where TCP connections refused for capacity (descriptor budget, per-address limit)
    /// are read from; they count as `capacity` refusals.
    pub fn watch_tcp(&self, source: Box<dyn TcpRefusals>) {
        let _first = self.tcp.set(source);
    }

    /// Sets the Redis link whose state is exposed; without one the Redis families are absent.
    pub fn watch_redis(&self, link: Box<dyn RedisLinkSource>) {
        let _first = self.redis.set(link);
    }

    /// Every family in Prometheus's text format (version 0.0.4), the sockets connected now
    /// counted from `census`.
    pub fn encode(&self, census: Option<&dyn SocketCensus>) -> Result<String, std::fmt::Error> {
        let tally = census::tally(&self.names, census);
        *self.census.lock().unwrap_or_else(PoisonError::into_inner) = tally;
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// Engine.IO packets and bytes (polling and WebSocket, every Engine.IO service of the
    /// process) plus plain WebSocket frames, since startup.
    pub fn traffic(&self) -> Traffic {
        traffic::totals(&self.plain)
    }

    /// Engine.IO sessions open now, as Node's `engine.clientsCount` (process-wide).
    pub fn clients_count(&self) -> u64 {
        let sessions = engineioxide::traffic::sessions();
        sessions.polling + sessions.websocket
    }

    /// Engine.IO sessions open now still on long-polling (process-wide).
    pub fn polling_clients_count(&self) -> u64 {
        engineioxide::traffic::sessions().polling
    }

    /// Sockets that joined a namespace since startup, over every namespace and transport.
    pub fn connects_total(&self) -> u64 {
        self.namespaces.iter().map(|ns| ns.connects_total()).sum()
    }

    /// Sockets that left a namespace since startup, over every namespace and reason.
    pub fn disconnects_total(&self) -> u64 {
        self.namespaces
            .iter()
            .map(|ns| ns.disconnects_total())
            .sum()
    }

    /// Events received since startup, over every namespace.
    pub fn events_received_total(&self) -> u64 {
        self.namespaces
            .iter()
            .map(|ns| ns.events_received_total())
            .sum()
    }

    /// Events refused by the rate limit since startup, over every namespace.
    pub fn rate_limited_total(&self) -> u64 {
        self.namespaces
            .iter()
            .map(|ns| ns.rate_limited_total())
            .sum()
    }
}

#[cfg(test)]
mod tests;
