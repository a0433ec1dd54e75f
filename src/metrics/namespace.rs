//! [`NamespaceMetrics`]: the counters of one namespace, resolved once so that counting an
//! event is one atomic add.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::labels::{
    self, EventLabel, NamespaceEvent, NamespaceOnly, NamespaceReason, NamespaceTransport,
    TransportLabel,
};
use super::sharded::ShardedCounter;

/// Disconnect reasons, as [`labels::disconnect_reason`] names them.
const REASONS: [&str; 8] = [
    "transport_close",
    "transport_error",
    "parse_error",
    "ping_timeout",
    "client_namespace_disconnect",
    "server_namespace_disconnect",
    "server_shutting_down",
    "other",
];

/// One namespace's handles; a client keeps those of its namespace.
#[derive(Debug)]
pub struct NamespaceMetrics {
    name: String,
    connects: [Counter; TransportLabel::ALL.len()],
    disconnects: [Counter; REASONS.len()],
    /// Moved by every event: sharded, so that worker threads do not contend on it.
    events: [ShardedCounter; EventLabel::ALL.len()],
    rate_limited: Counter,
}

impl NamespaceMetrics {
    /// The handles of namespace `name` in each family, created at zero so that every series
    /// exists from the first scrape.
    pub(super) fn resolve(
        name: &str,
        connects: &Family<NamespaceTransport, Counter>,
        disconnects: &Family<NamespaceReason, Counter>,
        events: &Family<NamespaceEvent, ShardedCounter>,
        rate_limited: &Family<NamespaceOnly, Counter>,
    ) -> Self {
        let namespace = || name.to_owned();
        NamespaceMetrics {
            name: name.to_owned(),
            connects: TransportLabel::ALL.map(|transport| {
                connects
                    .get_or_create(&NamespaceTransport {
                        namespace: namespace(),
                        transport: transport.name(),
                    })
                    .clone()
            }),
            disconnects: REASONS.map(|reason| {
                disconnects
                    .get_or_create(&NamespaceReason {
                        namespace: namespace(),
                        reason,
                    })
                    .clone()
            }),
            events: EventLabel::ALL.map(|event| {
                events
                    .get_or_create(&NamespaceEvent {
                        namespace: namespace(),
                        event: event.name(),
                    })
                    .clone()
            }),
            rate_limited: rate_limited
                .get_or_create(&NamespaceOnly {
                    namespace: namespace(),
                })
                .clone(),
        }
    }

    /// The namespace label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counts a socket that joined the namespace over `transport`.
    pub fn connected(&self, transport: TransportLabel) {
        self.connects[transport as usize].inc();
    }

    /// Counts a socket that left, for the reason Node socket.io names `reason`.
    pub fn disconnected(&self, reason: &str) {
        let label = labels::disconnect_reason(reason);
        let index = REASONS
            .iter()
            .position(|known| *known == label)
            .unwrap_or(REASONS.len() - 1);
        self.disconnects[index].inc();
    }

    /// Counts an event received.
    pub fn received(&self, event: EventLabel) {
        self.events[event as usize].inc();
    }

    /// Counts an event refused by the rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    pub(super) fn connects_total(&self) -> u64 {
        self.connects.iter().map(Counter::get).sum()
    }

    pub(super) fn disconnects_total(&self) -> u64 {
        self.disconnects.iter().map(Counter::get).sum()
    }

    pub(super) fn events_received_total(&self) -> u64 {
        self.events.iter().map(ShardedCounter::get).sum()
    }

    pub(super) fn rate_limited_total(&self) -> u64 {
        self.rate_limited.get()
    }
}
