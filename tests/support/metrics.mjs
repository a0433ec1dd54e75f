// The metric families iorelay exposes at /metrics, with the type Prometheus sees for each:
// the suites and the Grafana dashboard's check hold the server to this list.

/** Every family iorelay exposes without Redis, with the type Prometheus sees. */
export const FAMILIES = {
  iorelay_sockets_connected: "GAUGE",
  iorelay_connects_total: "COUNTER",
  iorelay_disconnects_total: "COUNTER",
  iorelay_handshakes_refused_total: "COUNTER",
  iorelay_events_received_total: "COUNTER",
  iorelay_packets_sent_total: "COUNTER",
  iorelay_bytes_sent_total: "COUNTER",
  iorelay_packets_received_total: "COUNTER",
  iorelay_bytes_received_total: "COUNTER",
  iorelay_broadcast_fanout: "HISTOGRAM",
  iorelay_packets_dropped_total: "COUNTER",
  iorelay_events_rate_limited_total: "COUNTER",
  iorelay_handshake_duration_seconds: "HISTOGRAM",
  iorelay_webhook_requests_total: "COUNTER",
  iorelay_webhook_failures_total: "COUNTER",
  iorelay_webhook_duration_seconds: "HISTOGRAM",
  iorelay_build_info: "GAUGE",
  process_resident_memory_bytes: "GAUGE",
  process_open_fds: "GAUGE",
  process_max_fds: "GAUGE",
  process_cpu_seconds_total: "COUNTER",
  process_start_time_seconds: "GAUGE",
};
/** The families a node with --redis-url adds. */
export const REDIS_FAMILIES = {
  iorelay_redis_up: "GAUGE",
  iorelay_redis_reconnects_total: "COUNTER",
  iorelay_redis_dropped_messages_total: "COUNTER",
};
