//! The Redis link's families, read from the link's own status when scraped; absent on a node
//! without Redis.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What the Redis link tells of itself.
pub trait RedisLinkSource: Send + Sync + 'static {
    /// Whether Redis is connected right now.
    fn up(&self) -> bool;
    /// Times the link came back after being lost, since startup.
    fn reconnects(&self) -> u64;
    /// Cross-node messages dropped because Redis was unreachable, since startup.
    fn dropped_messages(&self) -> u64;
}

/// Encodes `iorelay_redis_up`, `iorelay_redis_reconnects_total` and
/// `iorelay_redis_dropped_messages_total` once a link is set.
pub(super) struct RedisCollector {
    pub source: Arc<OnceLock<Box<dyn RedisLinkSource>>>,
}

impl std::fmt::Debug for RedisCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCollector")
            .field("linked", &self.source.get().is_some())
            .finish()
    }
}

impl Collector for RedisCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(link) = self.source.get() else {
            return Ok(());
        };
        let up = ConstGauge::new(i64::from(link.up()));
        up.encode(encoder.encode_descriptor(
            "iorelay_redis_up",
            "Whether the Redis link is connected (1) or not (0)",
            None,
            MetricType::Gauge,
        )?)?;
        let reconnects = ConstCounter::new(link.reconnects());
        reconnects.encode(encoder.encode_descriptor(
            "iorelay_redis_reconnects",
            "Times the Redis link came back after being lost",
            None,
            MetricType::Counter,
        )?)?;
        let dropped = ConstCounter::new(link.dropped_messages());
        dropped.encode(encoder.encode_descriptor(
            "iorelay_redis_dropped_messages",
            "Cross-node messages dropped because Redis was unreachable",
            None,
            MetricType::Counter,
        )?)?;
        Ok(())
    }
}
