//! Tests for disconnect reasons
//! Test are made on polling and websocket transports:
//! * Heartbeat timeout
//! * Transport close
//! * Multiple http polling
//! * Packet parsing

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use engineioxide::{
    Str,
    config::EngineIoConfig,
    handler::EngineIoHandler,
    service::EngineIoService,
    socket::{DisconnectReason, Socket},
};
use futures_util::SinkExt;
use tokio::sync::mpsc;

mod fixture;

use fixture::{create_server, create_ws_connection, send_req};
use tokio_tungstenite::tungstenite::Message;

use crate::fixture::{create_polling_connection, create_ws_upgrade_connection};

#[derive(Debug, Clone)]
struct MyHandler {
    disconnect_tx: mpsc::Sender<DisconnectReason>,
}

impl EngineIoHandler for MyHandler {
    type Data = ();

    fn on_connect(self: Arc<Self>, socket: Arc<Socket<()>>) {
        println!("socket connect {}", socket.id);
    }
    fn on_disconnect(&self, socket: Arc<Socket<()>>, reason: DisconnectReason) {
        println!("socket disconnect {}: {:?}", socket.id, reason);
        self.disconnect_tx.try_send(reason).unwrap();
    }

    fn on_message(self: &Arc<Self>, msg: Str, socket: Arc<Socket<()>>) {
        println!("Ping pong message {msg:?}");
        socket.emit(msg).ok();
    }

    fn on_binary(self: &Arc<Self>, data: Bytes, socket: Arc<Socket<()>>) {
        println!("Ping pong binary message {data:?}");
        socket.emit_binary(data).ok();
    }
}

/// A handler that forwards every connected socket to the test so it can drive its lifecycle.
#[derive(Debug, Clone)]
struct CloseHandler {
    socket_tx: mpsc::Sender<Arc<Socket<()>>>,
}

impl EngineIoHandler for CloseHandler {
    type Data = ();

    fn on_connect(self: Arc<Self>, socket: Arc<Socket<()>>) {
        self.socket_tx.try_send(socket).unwrap();
    }
    fn on_disconnect(&self, _socket: Arc<Socket<()>>, _reason: DisconnectReason) {}
    fn on_message(self: &Arc<Self>, _msg: Str, _socket: Arc<Socket<()>>) {}
    fn on_binary(self: &Arc<Self>, _data: Bytes, _socket: Arc<Socket<()>>) {}
}

/// Closing a websocket session should resolve [`Socket::closed`].
#[tokio::test]
pub async fn ws_server_closing() {
    let (socket_tx, mut socket_rx) = mpsc::channel(1);
    let mut svc = create_server(CloseHandler { socket_tx }).await;
    let _stream = create_ws_connection(&mut svc).await;

    let socket = socket_rx.recv().await.unwrap();
    socket.close(DisconnectReason::ClosingServer);

    tokio::time::timeout(Duration::from_millis(100), socket.closed())
        .await
        .expect("timeout: ws session did not close while the forward task held the channel lock");
    assert!(socket.is_closed());
}

/// Same as [`ws_server_closing`] but for polling with a long-poll request in-flight.
#[tokio::test]
pub async fn polling_server_closing_pending_poll() {
    let (socket_tx, mut socket_rx) = mpsc::channel(1);
    let mut svc = create_server(CloseHandler { socket_tx }).await;
    let sid = create_polling_connection(&mut svc).await;
    let socket = socket_rx.recv().await.unwrap();

    // Drain the first buffered ping so the next poll actually blocks.
    send_req(
        &mut svc,
        format!("transport=polling&sid={sid}"),
        http::Method::GET,
        None,
    )
    .await;

    // Start a long-poll: the buffer is empty so it blocks waiting for the next packet while holding
    // the internal channel lock.
    let poll = tokio::spawn(send_req(
        &mut svc,
        format!("transport=polling&sid={sid}"),
        http::Method::GET,
        None,
    ));
    // Give the poll time to acquire the internal channel lock before closing.
    tokio::time::sleep(Duration::from_millis(10)).await;

    socket.close(DisconnectReason::ClosingServer);

    tokio::time::timeout(Duration::from_millis(100), socket.closed())
        .await
        .expect("timeout: polling session did not close while a poll held the channel lock");
    assert!(socket.is_closed());

    // The pending poll should return rather than hang.
    tokio::time::timeout(Duration::from_millis(100), poll)
        .await
        .expect("timeout: the pending poll never returned")
        .unwrap();
}

#[tokio::test]
pub async fn polling_heartbeat_timeout() {
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let mut svc = create_server(MyHandler { disconnect_tx }).await;
    create_polling_connection(&mut svc).await;

    // The first ping leaves one interval (300 ms) after the handshake, so the timeout comes
    // 500 ms in.
    let data = tokio::time::timeout(Duration::from_millis(1000), rx.recv())
        .await
        .expect("timeout waiting for DisconnectReason::HeartbeatTimeout")
        .unwrap();

    assert_eq!(data, DisconnectReason::HeartbeatTimeout);
}

#[tokio::test]
pub async fn ws_heartbeat_timeout() {
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let mut svc = create_server(MyHandler { disconnect_tx }).await;
    let _stream = create_ws_connection(&mut svc).await;

    // The first ping leaves one interval (300 ms) after the handshake, so the timeout comes
    // 500 ms in.
    let data = tokio::time::timeout(Duration::from_millis(1000), rx.recv())
        .await
        .expect("timeout waiting for DisconnectReason::HeartbeatTimeout")
        .unwrap();

    assert_eq!(data, DisconnectReason::HeartbeatTimeout);
}

#[tokio::test]
pub async fn ws_upgrade_abandoned_timeout() {
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    // Long heartbeat so it cannot mask the leak during the test window, and a short upgrade
    // timeout so an abandoned upgrade is reclaimed quickly.
    let config = EngineIoConfig::builder()
        .ping_interval(Duration::from_secs(60))
        .ping_timeout(Duration::from_secs(60))
        .upgrade_timeout(Duration::from_millis(200))
        .build();
    let mut svc = EngineIoService::with_config(Arc::new(MyHandler { disconnect_tx }), config);

    // Establish a polling session, then open a websocket upgrade for it that never completes the
    // probe handshake while keeping the connection open (mimics a proxy that forwards the upgrade
    // as a pooled request and never relays the `101`). The heartbeat is paused while upgrading, so
    // without an upgrade timeout the session — and its underlying connection — would leak forever.
    let sid = create_polling_connection(&mut svc).await.parse().unwrap();
    let _stream = create_ws_upgrade_connection(&mut svc, sid).await;

    let data = tokio::time::timeout(Duration::from_secs(1), rx.recv())
        .await
        .expect("session was not reclaimed after an abandoned ws upgrade (leak)")
        .unwrap();

    assert_eq!(data, DisconnectReason::TransportError);
}

#[tokio::test]
pub async fn ws_upgrade_abandoned_parked_heartbeat_timeout() {
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    // Long heartbeat so that, once parked between pings, it cannot reclaim the session on its own
    // within the test window; short upgrade timeout so the fix reclaims quickly.
    let config = EngineIoConfig::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
        .upgrade_timeout(Duration::from_millis(200))
        .build();
    let mut svc = EngineIoService::with_config(Arc::new(MyHandler { disconnect_tx }), config);

    // The heartbeat parks until its first ping, one interval after the handshake.
    let sid = create_polling_connection(&mut svc).await;
    let _stream = create_ws_upgrade_connection(&mut svc, sid.parse().unwrap()).await;

    let data = tokio::time::timeout(Duration::from_secs(1), rx.recv())
        .await
        .expect("parked-heartbeat abandoned ws upgrade was not reclaimed (permanent leak)")
        .unwrap();

    assert_eq!(data, DisconnectReason::TransportError);
}

#[tokio::test]
pub async fn polling_transport_closed() {
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let mut svc = create_server(MyHandler { disconnect_tx }).await;
    let sid = create_polling_connection(&mut svc).await;

    send_req(
        &mut svc,
        format!("transport=polling&sid={sid}"),
        http::Method::POST,
        Some("1".into()),
    )
    .await;

    let data = tokio::time::timeout(Duration::from_millis(10), rx.recv())
        .await
        .expect("timeout waiting for DisconnectReason::TransportClose")
        .unwrap();

    assert_eq!(data, DisconnectReason::TransportClose);
}

#[tokio::test]
pub async fn ws_transport_closed() {
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let mut svc = create_server(MyHandler { disconnect_tx }).await;
    let mut stream = create_ws_connection(&mut svc).await;

    stream.send(Message::Text("1".into())).await.unwrap();

    let data = tokio::time::timeout(Duration::from_millis(1), rx.recv())
        .await
        .expect("timeout waiting for DisconnectReason::TransportClose")
        .unwrap();

    assert_eq!(data, DisconnectReason::TransportClose);
}

#[tokio::test]
pub async fn multiple_http_polling() {
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let mut svc = create_server(MyHandler { disconnect_tx }).await;
    let sid = create_polling_connection(&mut svc).await;
    send_req(
        &mut svc,
        format!("transport=polling&sid={sid}"),
        http::Method::GET,
        None,
    )
    .await; // we eat the first ping from the server.

    tokio::spawn(futures_util::future::join_all(vec![
        send_req(
            &mut svc,
            format!("transport=polling&sid={sid}"),
            http::Method::GET,
            None,
        ),
        send_req(
            &mut svc,
            format!("transport=polling&sid={sid}"),
            http::Method::GET,
            None,
        ),
    ]));

    let data = tokio::time::timeout(Duration::from_millis(10), rx.recv())
        .await
        .expect("timeout waiting for DisconnectReason::DisconnectError::MultipleHttpPolling")
        .unwrap();

    assert_eq!(data, DisconnectReason::MultipleHttpPollingError);
}

#[tokio::test]
pub async fn polling_packet_parsing() {
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let mut svc = create_server(MyHandler { disconnect_tx }).await;
    let sid = create_polling_connection(&mut svc).await;
    send_req(
        &mut svc,
        format!("transport=polling&sid={sid}"),
        http::Method::POST,
        Some("aizdunazidaubdiz".into()),
    )
    .await;

    let data = tokio::time::timeout(Duration::from_millis(1), rx.recv())
        .await
        .expect("timeout waiting for DisconnectReason::PacketParsingError")
        .unwrap();

    assert_eq!(data, DisconnectReason::PacketParsingError);
}

#[tokio::test]
pub async fn ws_packet_parsing() {
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let mut svc = create_server(MyHandler { disconnect_tx }).await;
    let mut stream = create_ws_connection(&mut svc).await;
    stream
        .send(Message::Text("aizdunazidaubdiz".into()))
        .await
        .unwrap();

    let data = tokio::time::timeout(Duration::from_millis(1), rx.recv())
        .await
        .expect("timeout waiting for DisconnectReason::TransportError::PacketParsing")
        .unwrap();

    assert_eq!(data, DisconnectReason::PacketParsingError);
}

/// The status of a request to the service, its body left unread.
async fn status<H: EngineIoHandler>(
    svc: &mut EngineIoService<H>,
    params: String,
    method: http::Method,
    body: Option<&'static str>,
) -> http::StatusCode {
    use tower_service::Service;
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1/engine.io/?EIO=4&{params}"))
        .body(http_body_util::Full::new(Bytes::from_static(
            body.unwrap_or_default().as_bytes(),
        )))
        .unwrap();
    svc.call(req).await.unwrap().status()
}

/// A server whose first ping comes long after the test, so that a poll waits until it is
/// answered or given up.
fn quiet_server(disconnect_tx: mpsc::Sender<DisconnectReason>) -> EngineIoService<MyHandler> {
    let config = EngineIoConfig::builder()
        .ping_interval(Duration::from_secs(60))
        .ping_timeout(Duration::from_secs(60))
        .build();
    EngineIoService::with_config(Arc::new(MyHandler { disconnect_tx }), config)
}

/// A client that gives up its pending poll (the HTTP server drops the request when its
/// connection closes) ends the session, as in Node's engine.io: the next poll with that sid
/// gets 400.
#[tokio::test]
pub async fn polling_cancelled_poll() {
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let mut svc = quiet_server(disconnect_tx);
    let sid = create_polling_connection(&mut svc).await;

    let poll = send_req(
        &mut svc,
        format!("transport=polling&sid={sid}"),
        http::Method::GET,
        None,
    );
    tokio::time::timeout(Duration::from_millis(20), poll)
        .await
        .expect_err("the poll should wait for a packet");

    let reason = tokio::time::timeout(Duration::from_millis(100), rx.recv())
        .await
        .expect("timeout waiting for DisconnectReason::TransportError")
        .unwrap();
    assert_eq!(reason, DisconnectReason::TransportError);

    let next = status(
        &mut svc,
        format!("transport=polling&sid={sid}"),
        http::Method::GET,
        None,
    );
    assert_eq!(next.await, http::StatusCode::BAD_REQUEST);
}

/// A poll answered with packets keeps the session, even when its body is never read.
#[tokio::test]
pub async fn polling_answered_poll_keeps_the_session() {
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let mut svc = quiet_server(disconnect_tx);
    let sid = create_polling_connection(&mut svc).await;
    let params = format!("transport=polling&sid={sid}");

    let sent = status(&mut svc, params.clone(), http::Method::POST, Some("4hello"));
    assert_eq!(sent.await, http::StatusCode::OK);
    // The echo is waiting: the poll is answered at once, and its response dropped unread.
    let answered = status(&mut svc, params.clone(), http::Method::GET, None);
    assert_eq!(answered.await, http::StatusCode::OK);

    let sent = status(&mut svc, params.clone(), http::Method::POST, Some("4again"));
    assert_eq!(sent.await, http::StatusCode::OK);
    let echo = send_req(&mut svc, params, http::Method::GET, None).await;
    assert_eq!(echo, "again");
    assert!(rx.try_recv().is_err(), "the session should still be open");
}

/// A poll pending when the client upgrades to a websocket is answered with a `Noop`, and the
/// session goes on over the websocket.
#[tokio::test]
pub async fn polling_pending_poll_answered_by_an_upgrade() {
    use futures_util::StreamExt;

    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let mut svc = quiet_server(disconnect_tx);
    let sid = create_polling_connection(&mut svc).await;

    let poll = tokio::spawn(send_req(
        &mut svc,
        format!("transport=polling&sid={sid}"),
        http::Method::GET,
        None,
    ));
    tokio::time::sleep(Duration::from_millis(10)).await;

    let mut ws = create_ws_upgrade_connection(&mut svc, sid.parse().unwrap()).await;
    ws.send(Message::Text("2probe".into())).await.unwrap();
    let probe = tokio::time::timeout(Duration::from_millis(500), ws.next())
        .await
        .expect("timeout waiting for 3probe")
        .unwrap()
        .unwrap();
    assert_eq!(probe, Message::Text("3probe".into()));

    // `send_req` strips the packet type: a `Noop` ("6") leaves nothing.
    let noop = tokio::time::timeout(Duration::from_millis(500), poll)
        .await
        .expect("the pending poll should be answered")
        .unwrap();
    assert_eq!(noop, "");

    ws.send(Message::Text("5".into())).await.unwrap();
    ws.send(Message::Text("4hello".into())).await.unwrap();
    let echo = tokio::time::timeout(Duration::from_millis(500), ws.next())
        .await
        .expect("timeout waiting for the echo")
        .unwrap()
        .unwrap();
    assert_eq!(echo, Message::Text("4hello".into()));
    assert!(rx.try_recv().is_err(), "the session should still be open");
}

/// As in Node's engine.io, the websocket's arrival and probe leave a pending poll waiting; it
/// gets its `Noop` from the upgrade's 100 ms check, not at once, so the first packets of a
/// session that upgrades are not preceded by a stray `Noop`.
#[tokio::test]
pub async fn polling_pending_poll_kept_until_the_upgrade_check() {
    use futures_util::StreamExt;

    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let mut svc = quiet_server(disconnect_tx);
    let sid = create_polling_connection(&mut svc).await;

    let poll = tokio::spawn(send_req(
        &mut svc,
        format!("transport=polling&sid={sid}"),
        http::Method::GET,
        None,
    ));
    tokio::time::sleep(Duration::from_millis(10)).await;

    let mut ws = create_ws_upgrade_connection(&mut svc, sid.parse().unwrap()).await;
    ws.send(Message::Text("2probe".into())).await.unwrap();
    let probe = tokio::time::timeout(Duration::from_millis(500), ws.next())
        .await
        .expect("timeout waiting for 3probe")
        .unwrap()
        .unwrap();
    assert_eq!(probe, Message::Text("3probe".into()));
    let probed = std::time::Instant::now();

    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(
        !poll.is_finished(),
        "the poll was answered before the check"
    );
    let noop = tokio::time::timeout(Duration::from_millis(500), poll)
        .await
        .expect("the check should answer the pending poll")
        .unwrap();
    assert_eq!(noop, "");
    assert!(probed.elapsed() >= Duration::from_millis(80));

    ws.send(Message::Text("5".into())).await.unwrap();
    ws.send(Message::Text("4hello".into())).await.unwrap();
    let echo = tokio::time::timeout(Duration::from_millis(500), ws.next())
        .await
        .expect("timeout waiting for the echo")
        .unwrap()
        .unwrap();
    assert_eq!(echo, Message::Text("4hello".into()));
    assert!(rx.try_recv().is_err(), "the session should still be open");
}

/// The heartbeat's clock starts at the handshake: the ping timeout closes the session
/// `ping_interval + ping_timeout` after the handshake's answer, even when the heartbeat task
/// first runs later (here the test holds the only runtime thread for most of the interval).
#[tokio::test(flavor = "current_thread")]
pub async fn polling_heartbeat_timeout_counts_from_the_handshake() {
    const INTERVAL: Duration = Duration::from_millis(200);
    const TIMEOUT: Duration = Duration::from_millis(50);
    const HELD: Duration = Duration::from_millis(150);
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let config = EngineIoConfig::builder()
        .ping_interval(INTERVAL)
        .ping_timeout(TIMEOUT)
        .build();
    let mut svc = EngineIoService::with_config(Arc::new(MyHandler { disconnect_tx }), config);

    create_polling_connection(&mut svc).await;
    let answered = std::time::Instant::now();
    std::thread::sleep(HELD);

    let reason = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("timeout waiting for DisconnectReason::HeartbeatTimeout")
        .unwrap();
    let elapsed = answered.elapsed();
    assert_eq!(reason, DisconnectReason::HeartbeatTimeout);
    // A clock started by the task would close at 150 + 200 + 50 ms.
    assert!(
        elapsed >= INTERVAL + TIMEOUT - Duration::from_millis(5)
            && elapsed < INTERVAL + TIMEOUT + Duration::from_millis(100),
        "closed {elapsed:?} after the handshake, expected {:?}",
        INTERVAL + TIMEOUT
    );
}

/// A poll that comes after the heartbeat's deadline finds the session closed, even when the
/// heartbeat task has not run yet to close it (here the test holds the only runtime thread
/// past the deadline, then polls before yielding).
#[tokio::test(flavor = "current_thread")]
pub async fn polling_request_after_the_heartbeat_deadline() {
    const INTERVAL: Duration = Duration::from_millis(50);
    const TIMEOUT: Duration = Duration::from_millis(50);
    let (disconnect_tx, mut rx) = mpsc::channel(10);
    let config = EngineIoConfig::builder()
        .ping_interval(INTERVAL)
        .ping_timeout(TIMEOUT)
        .build();
    let mut svc = EngineIoService::with_config(Arc::new(MyHandler { disconnect_tx }), config);
    let sid = create_polling_connection(&mut svc).await;
    let params = format!("transport=polling&sid={sid}");

    let ping = tokio::time::timeout(
        Duration::from_secs(1),
        send_req(&mut svc, params.clone(), http::Method::GET, None),
    )
    .await
    .expect("timeout waiting for the first ping");
    assert_eq!(ping, "");
    std::thread::sleep(TIMEOUT + Duration::from_millis(20));

    let late = status(&mut svc, params, http::Method::GET, None).await;
    assert_eq!(late, http::StatusCode::BAD_REQUEST);
    let reason = tokio::time::timeout(Duration::from_millis(100), rx.recv())
        .await
        .expect("timeout waiting for DisconnectReason::HeartbeatTimeout")
        .unwrap();
    assert_eq!(reason, DisconnectReason::HeartbeatTimeout);
}
