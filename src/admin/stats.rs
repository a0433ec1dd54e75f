//! `server_stats`, which every node broadcasts to the admin namespace every 2 s: who it is, its
//! clients, its namespaces and what happened since the last one (the UI's charts).

use std::time::Instant;

use serde::Serialize;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use crate::metrics::Traffic;
use crate::relay::Relay;
use crate::relay::payload::now_ms;

/// One of the Node package's `NamespaceEvent`s: a count of one kind of event in one second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregatedEvent {
    /// The second, in Unix milliseconds.
    pub timestamp: u64,
    /// `rawConnection`, `rawDisconnection`, `packetsIn`, `packetsOut`, `bytesIn` or `bytesOut`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The disconnection's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<&'static str>,
    /// How many.
    pub count: u64,
}

/// A namespace and its sockets on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceDetails {
    /// Its path.
    pub name: String,
    /// Its sockets connected to this node.
    pub sockets_count: usize,
}

/// The `server_stats` payload.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStats<'a> {
    server_id: &'a str,
    hostname: &'a str,
    pid: u32,
    uptime: f64,
    clients_count: u64,
    polling_clients_count: u64,
    aggregated_events: Vec<AggregatedEvent>,
    namespaces: Vec<NamespaceDetails>,
}

/// What a node keeps between two `server_stats`.
pub struct StatsSource {
    server_id: String,
    hostname: String,
    started: Instant,
    traffic: Traffic,
}

impl StatsSource {
    /// Starts counting now; `server_id` defaults to the host name.
    pub fn new(server_id: Option<String>, relay: &Relay) -> Self {
        let hostname = hostname();
        StatsSource {
            server_id: server_id.unwrap_or_else(|| hostname.clone()),
            hostname,
            started: Instant::now(),
            traffic: relay.metrics.traffic(),
        }
    }

    /// The next `server_stats`: counts since the last call.
    pub fn next<A: Adapter>(&mut self, io: &SocketIo<A>, relay: &Relay) -> ServerStats<'_> {
        // Node stamps each event with its second; here everything since the last call falls in
        // the current second, which the UI's 10-second buckets do not tell apart.
        let now = now_ms();
        let timestamp = now - now % 1000;
        let event = |kind, sub_type, count| AggregatedEvent {
            timestamp,
            kind,
            sub_type,
            count,
        };
        let mut events = Vec::new();
        if let Some(admin) = &relay.admin {
            let turnover = admin.take_turnover();
            if turnover.connections > 0 {
                events.push(event("rawConnection", None, turnover.connections));
            }
            for (reason, count) in turnover.disconnections {
                events.push(event("rawDisconnection", Some(reason), count));
            }
        }
        let traffic = relay.metrics.traffic();
        for (kind, now, before) in [
            ("packetsIn", traffic.packets_in, self.traffic.packets_in),
            ("packetsOut", traffic.packets_out, self.traffic.packets_out),
            ("bytesIn", traffic.bytes_in, self.traffic.bytes_in),
            ("bytesOut", traffic.bytes_out, self.traffic.bytes_out),
        ] {
            let count = now.saturating_sub(before);
            if count > 0 {
                events.push(event(kind, None, count));
            }
        }
        self.traffic = traffic;
        let namespaces = io
            .nsps()
            .into_iter()
            .map(|namespace| NamespaceDetails {
                name: namespace.ns_path().to_owned(),
                sockets_count: namespace.local().sockets().len(),
            })
            .collect();
        ServerStats {
            server_id: &self.server_id,
            hostname: &self.hostname,
            pid: std::process::id(),
            uptime: self.started.elapsed().as_secs_f64(),
            clients_count: relay.metrics.clients_count(),
            polling_clients_count: relay.metrics.polling_clients_count(),
            aggregated_events: events,
            namespaces,
        }
    }
}

/// This machine's host name, as Node's `os.hostname()`.
fn hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return "localhost".to_owned();
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_the_ui_reads_them() {
        let connection = AggregatedEvent {
            timestamp: 1000,
            kind: "rawDisconnection",
            sub_type: Some("transport close"),
            count: 2,
        };
        assert_eq!(
            serde_json::to_value(&connection).expect("json"),
            serde_json::json!({ "timestamp": 1000, "type": "rawDisconnection", "subType": "transport close", "count": 2 })
        );
        assert!(!hostname().is_empty());
    }
}
