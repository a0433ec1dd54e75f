//! `iorelay_handshakes_refused_total{cause}`: the refusals counted where a handshake is
//! refused, plus, under `capacity`, the TCP connections the connection gate turned away before
//! any request (read from the gate when scraped).

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};

use super::labels::{Cause, RefusalCause};

/// What the TCP connection gate tells of the connections it refused.
pub trait TcpRefusals: Send + Sync + 'static {
    /// Connections refused for the descriptor budget or the per-address limit, since startup.
    fn refused(&self) -> u64;
}

impl<T: TcpRefusals> TcpRefusals for Arc<T> {
    fn refused(&self) -> u64 {
        self.as_ref().refused()
    }
}

/// Encodes the refusals, every cause included.
pub(super) struct RefusalCollector {
    pub counters: [Counter; RefusalCause::ALL.len()],
    pub tcp: Arc<OnceLock<Box<dyn TcpRefusals>>>,
}

impl std::fmt::Debug for RefusalCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalCollector")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Collector for RefusalCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "iorelay_handshakes_refused",
            "Handshakes refused before a session existed or before it joined its namespace, by cause",
            None,
            MetricType::Counter,
        )?;
        let tcp = self.tcp.get().map_or(0, |gate| gate.refused());
        for cause in RefusalCause::ALL {
            let mut count = self.counters[cause as usize].get();
            if cause == RefusalCause::Capacity {
                count += tcp;
            }
            let labels = Cause {
                cause: cause.name(),
            };
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
