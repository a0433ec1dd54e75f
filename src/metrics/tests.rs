use super::*;

fn scrape(metrics: &Metrics) -> String {
    metrics.encode(None).expect("encodes")
}

/// The value of the series whose line starts with `series ` (name and labels as printed).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[test]
fn label_orders_match_their_handles() {
    for (index, transport) in TransportLabel::ALL.iter().enumerate() {
        assert_eq!(*transport as usize, index);
    }
    for (index, event) in EventLabel::ALL.iter().enumerate() {
        assert_eq!(*event as usize, index);
    }
    for (index, cause) in RefusalCause::ALL.iter().enumerate() {
        assert_eq!(*cause as usize, index);
    }
}

#[test]
fn every_series_exists_at_zero_and_counts() {
    let metrics = Metrics::new(["/", "/chat"]);
    let text = scrape(&metrics);
    let connects = r#"iorelay_connects_total{namespace="/chat",transport="websocket"}"#;
    assert_eq!(value(&text, connects), Some(0.0));
    let chat = metrics.namespace("/chat");
    chat.connected(TransportLabel::Websocket);
    chat.received(EventLabel::Join);
    chat.disconnected("ping timeout");
    metrics.handshake_refused(RefusalCause::Origin);
    let text = scrape(&metrics);
    assert_eq!(value(&text, connects), Some(1.0));
    let joins = r#"iorelay_events_received_total{namespace="/chat",event="join"}"#;
    assert_eq!(value(&text, joins), Some(1.0));
    let timeouts = r#"iorelay_disconnects_total{namespace="/chat",reason="ping_timeout"}"#;
    assert_eq!(value(&text, timeouts), Some(1.0));
    let origin = r#"iorelay_handshakes_refused_total{cause="origin"}"#;
    assert_eq!(value(&text, origin), Some(1.0));
    assert_eq!(metrics.connects_total(), 1);
    assert_eq!(metrics.disconnects_total(), 1);
    assert_eq!(metrics.events_received_total(), 1);
}

#[test]
fn tcp_refusals_count_as_capacity() {
    struct Gate;
    impl TcpRefusals for Gate {
        fn refused(&self) -> u64 {
            4
        }
    }
    let metrics = Metrics::new(["/"]);
    metrics.handshake_refused(RefusalCause::Capacity);
    metrics.watch_tcp(Box::new(Gate));
    let text = scrape(&metrics);
    let capacity = r#"iorelay_handshakes_refused_total{cause="capacity"}"#;
    assert_eq!(value(&text, capacity), Some(5.0));
}

#[test]
fn unknown_namespaces_share_one_label() {
    let metrics = Metrics::new(["/"]);
    metrics.namespace("/a").connected(TransportLabel::Polling);
    metrics.namespace("/b").connected(TransportLabel::Polling);
    let text = scrape(&metrics);
    let other = r#"iorelay_connects_total{namespace="other",transport="polling"}"#;
    assert_eq!(value(&text, other), Some(2.0));
    assert!(!text.contains(r#"namespace="/a""#));
}

#[test]
fn plain_traffic_adds_up_across_threads() {
    let metrics = Arc::new(Metrics::new(["/"]));
    let before = metrics.traffic();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let metrics = metrics.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    metrics.plain_received(10);
                    metrics.plain_sent(2, 30);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread ran");
    }
    let after = metrics.traffic();
    // Engine.IO's counters are process-wide and other tests may move them: at least ours.
    assert!(after.packets_in - before.packets_in >= 400);
    assert!(after.bytes_out - before.bytes_out >= 12_000);
    let text = scrape(&metrics);
    let plain_in = r#"iorelay_packets_received_total{transport="plain"}"#;
    assert_eq!(value(&text, plain_in), Some(400.0));
}

#[test]
fn redis_families_appear_with_a_link() {
    struct Link;
    impl RedisLinkSource for Link {
        fn up(&self) -> bool {
            true
        }
        fn reconnects(&self) -> u64 {
            2
        }
        fn dropped_messages(&self) -> u64 {
            3
        }
    }
    let metrics = Metrics::new(["/"]);
    assert!(!scrape(&metrics).contains("iorelay_redis_up"));
    metrics.watch_redis(Box::new(Link));
    let text = scrape(&metrics);
    assert_eq!(value(&text, "iorelay_redis_up"), Some(1.0));
    assert_eq!(value(&text, "iorelay_redis_reconnects_total"), Some(2.0));
    assert_eq!(
        value(&text, "iorelay_redis_dropped_messages_total"),
        Some(3.0)
    );
}

#[test]
fn census_counts_sockets_where_they_are() {
    struct Sockets;
    impl SocketCensus for Sockets {
        fn count(&self, count: &mut dyn FnMut(&str, TransportLabel, u64)) {
            count("/", TransportLabel::Websocket, 3);
            count("/x", TransportLabel::Polling, 1);
        }
    }
    let metrics = Metrics::new(["/"]);
    let text = metrics.encode(Some(&Sockets)).expect("encodes");
    let ws = r#"iorelay_sockets_connected{namespace="/",transport="websocket"}"#;
    assert_eq!(value(&text, ws), Some(3.0));
    let other = r#"iorelay_sockets_connected{namespace="other",transport="polling"}"#;
    assert_eq!(value(&text, other), Some(1.0));
    let plain = r#"iorelay_sockets_connected{namespace="/",transport="plain"}"#;
    assert_eq!(value(&text, plain), Some(0.0));
}
