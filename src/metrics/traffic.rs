//! Packets and bytes, read when scraped: Engine.IO's from engineioxide's per-thread counters
//! (vendor/engineioxide, `traffic`), plain WebSocket frames from [`PlainTraffic`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use engineioxide::traffic::{Flow, TransportTraffic};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

use super::labels::{Reason, Transport, TransportLabel};
use super::sharded::{FrameCount, PlainTraffic};

/// Packets and bytes both ways, since startup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Packets received from clients.
    pub packets_in: u64,
    /// Packets sent to clients.
    pub packets_out: u64,
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes sent to clients.
    pub bytes_out: u64,
}

/// Engine.IO's counts and the plain endpoint's, per transport.
fn per_transport(plain: &PlainTraffic) -> [(TransportLabel, TransportTraffic); 3] {
    let engine = engineioxide::traffic::traffic();
    let flow = |count: FrameCount| Flow {
        packets: count.frames,
        bytes: count.bytes,
    };
    [
        (TransportLabel::Polling, engine.polling),
        (TransportLabel::Websocket, engine.websocket),
        (
            TransportLabel::Plain,
            TransportTraffic {
                received: flow(plain.total_received()),
                sent: flow(plain.total_sent()),
            },
        ),
    ]
}

/// Totals over every transport.
pub(super) fn totals(plain: &PlainTraffic) -> Traffic {
    per_transport(plain)
        .iter()
        .fold(Traffic::default(), |sum, (_, traffic)| Traffic {
            packets_in: sum.packets_in + traffic.received.packets,
            packets_out: sum.packets_out + traffic.sent.packets,
            bytes_in: sum.bytes_in + traffic.received.bytes,
            bytes_out: sum.bytes_out + traffic.sent.bytes,
        })
}

/// A traffic family: its name, its help and its number of one transport's traffic.
type Family = (&'static str, &'static str, fn(&TransportTraffic) -> u64);

/// Encodes `iorelay_{packets,bytes}_{sent,received}_total{transport}`.
#[derive(Debug)]
pub(super) struct TrafficCollector {
    pub plain: Arc<PlainTraffic>,
}

impl Collector for TrafficCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let transports = per_transport(&self.plain);
        let families: [Family; 4] = [
            (
                "iorelay_packets_sent",
                "Engine.IO packets (plain: frames) written to clients",
                |t| t.sent.packets,
            ),
            (
                "iorelay_bytes_sent",
                "Bytes written to clients, as the transport carried them",
                |t| t.sent.bytes,
            ),
            (
                "iorelay_packets_received",
                "Engine.IO packets (plain: frames) read from clients",
                |t| t.received.packets,
            ),
            (
                "iorelay_bytes_received",
                "Bytes read from clients, as the transport carried them",
                |t| t.received.bytes,
            ),
        ];
        for (name, help, value) in families {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (transport, traffic) in &transports {
                let counter = ConstCounter::new(value(traffic));
                let labels = Transport {
                    transport: transport.name(),
                };
                counter.encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// Engine.IO packets (process-wide) and plain frames (`plain`) dropped on full queues.
pub(super) fn dropped_total(plain: &AtomicU64) -> u64 {
    engineioxide::traffic::dropped_queue_full() + plain.load(Ordering::Relaxed)
}

/// Encodes `iorelay_packets_dropped_total{reason}`.
#[derive(Debug)]
pub(super) struct DroppedCollector {
    pub plain: Arc<AtomicU64>,
}

impl Collector for DroppedCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "iorelay_packets_dropped",
            "Packets not delivered to a client, by reason (queue_full: its outgoing queue was full)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        let counter = ConstCounter::new(dropped_total(&self.plain));
        counter.encode(family.encode_family(&Reason {
            reason: "queue_full",
        })?)
    }
}
