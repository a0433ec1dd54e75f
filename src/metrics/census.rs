//! `iorelay_sockets_connected{namespace,transport}`, counted from the live sockets when
//! scraped: a socket that upgrades from polling to WebSocket is then counted where it is now,
//! and connecting costs no gauge update.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use super::OTHER_NAMESPACE;
use super::labels::{NamespaceTransport, TransportLabel};

/// Where the connected sockets are counted from (the Socket.IO server and the plain members).
pub trait SocketCensus {
    /// Calls `count` with `(namespace path, transport, sockets)`, as often as it likes.
    fn count(&self, count: &mut dyn FnMut(&str, TransportLabel, u64));
}

/// Sockets per `(namespace label, transport)`, as the last scrape counted them.
pub(super) type Tally = Vec<((String, TransportLabel), u64)>;

/// Counts `source`, every namespace of `namespaces` and transport included (at zero when
/// empty), namespaces not in it under `other`.
pub(super) fn tally(namespaces: &[String], source: Option<&dyn SocketCensus>) -> Tally {
    let mut counts: HashMap<(&str, TransportLabel), u64> = HashMap::new();
    for namespace in namespaces {
        for transport in TransportLabel::ALL {
            counts.insert((namespace.as_str(), transport), 0);
        }
    }
    if let Some(source) = source {
        source.count(&mut |path, transport, sockets| {
            let label = namespaces
                .iter()
                .find(|known| *known == path)
                .map_or(OTHER_NAMESPACE, String::as_str);
            *counts.entry((label, transport)).or_default() += sockets;
        });
    }
    counts
        .into_iter()
        .map(|((namespace, transport), sockets)| ((namespace.to_owned(), transport), sockets))
        .collect()
}

/// Encodes the tally the scrape left in `tally`. The census is taken by the scrape rather
/// than held here: what it reads (the Socket.IO server) holds the relay that holds this.
#[derive(Debug)]
pub(super) struct CensusCollector {
    pub tally: Arc<Mutex<Tally>>,
}

impl Collector for CensusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut series = self
            .tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        series.sort_unstable_by(|((a, at), _), ((b, bt), _)| (a, *at as u8).cmp(&(b, *bt as u8)));
        let mut family = encoder.encode_descriptor(
            "iorelay_sockets_connected",
            "Sockets connected now, by namespace and the transport they are on",
            None,
            MetricType::Gauge,
        )?;
        for ((namespace, transport), sockets) in series {
            let gauge = ConstGauge::new(i64::try_from(sockets).unwrap_or(i64::MAX));
            let labels = NamespaceTransport {
                namespace,
                transport: transport.name(),
            };
            gauge.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
