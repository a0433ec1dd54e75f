//! Plain WebSocket clients on the Socket.IO port: echo, ticker, JSON requests, shared rooms,
//! handshake rules, heartbeat, close codes, limits and cross-node delivery.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::client::SioClient;
use crate::helpers::spawn_app;
use crate::redis_server::RedisServer;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

/// A plain WebSocket client, as `new WebSocket(url)` or Node's `ws` would be.
struct PlainClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server chose.
    protocol: Option<String>,
}

/// How a handshake went: the client, or the HTTP status of the refusal.
async fn try_open(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<PlainClient, u16> {
    let mut request = format!("ws://{address}{path}")
        .into_client_request()
        .expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            value.parse().expect("header value"),
        );
    }
    match connect_async(request).await {
        Ok((ws, response)) => Ok(PlainClient {
            ws,
            protocol: response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().expect("ascii").to_owned()),
        }),
        Err(Error::Http(response)) => Err(response.status().as_u16()),
        Err(error) => panic!("handshake failed: {error}"),
    }
}

impl PlainClient {
    async fn open(address: SocketAddr) -> Self {
        try_open(address, "/ws", &[]).await.expect("accepted")
    }

    async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    /// The next data frame; control frames are skipped (tungstenite answers pings).
    async fn try_next(&mut self) -> Option<Message> {
        while let Some(frame) = self.ws.next().await {
            match frame {
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(message) => return Some(message),
                Err(_) => return None,
            }
        }
        None
    }

    async fn next(&mut self) -> Message {
        timeout(WAIT, self.try_next())
            .await
            .expect("no frame in time")
            .expect("connection closed")
    }

    async fn next_text(&mut self) -> String {
        match self.next().await {
            Message::Text(text) => text.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    async fn next_json(&mut self) -> Value {
        let text = self.next_text().await;
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    }

    /// Sends a request and returns the `ack` frame for its id, skipping other frames.
    async fn request(&mut self, mut frame: Value, id: u64) -> Value {
        frame["id"] = json!(id);
        self.send_json(frame).await;
        loop {
            let answer = self.next_json().await;
            if answer["event"] == "ack" && answer["id"] == id {
                return answer["data"].clone();
            }
        }
    }

    /// Every text frame received within [`QUIET`].
    async fn quiet(&mut self) -> Vec<String> {
        let mut frames = Vec::new();
        while let Ok(Some(Message::Text(text))) = timeout(QUIET, self.try_next()).await {
            frames.push(text.to_string());
        }
        frames
    }

    /// The close frame's code and reason, reading (and dropping) data frames before it.
    async fn close_code(&mut self) -> Option<(u16, String)> {
        timeout(WAIT, async {
            while let Some(frame) = self.ws.next().await {
                if let Ok(Message::Close(frame)) = frame {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                if frame.is_err() {
                    return None;
                }
            }
            None
        })
        .await
        .expect("the server closed the connection in time")
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[tokio::test]
async fn frames_are_echoed_on_both_paths_and_the_page_still_loads() {
    let app = spawn_app(&[]).await;
    for path in ["/ws", "/"] {
        let mut client = try_open(app.address, path, &[]).await.expect("accepted");
        client.send_text("hello").await;
        assert_eq!(client.next_text().await, "hello");
        client
            .ws
            .send(Message::binary(vec![0u8, 1, 2, 255]))
            .await
            .expect("send");
        assert_eq!(
            client.next().await,
            Message::binary(vec![0u8, 1, 2, 255]),
            "binary stays binary"
        );
        // A JSON object without "event" is just text.
        client.send_text(r#"{"type":"hello"}"#).await;
        assert_eq!(client.next_text().await, r#"{"type":"hello"}"#);
    }
    let page = reqwest::get(app.url()).await.expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("body").contains("<html"));
    let plain_get = reqwest::get(format!("{}/ws", app.url()))
        .await
        .expect("get");
    assert_eq!(
        plain_get.status(),
        426,
        "the endpoint speaks WebSocket only"
    );
    let health = reqwest::get(format!("{}/healthz", app.url()))
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_ticker_pushes_the_time_as_text() {
    let app = spawn_app(&["--tick-interval-ms", "100"]).await;
    let mut client = PlainClient::open(app.address).await;
    for _ in 0..2 {
        let tick: u64 = client.next_text().await.parse().expect("a number");
        assert!(
            now_ms().abs_diff(tick) < 5_000,
            "tick {tick} is the server's time"
        );
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn json_requests_follow_the_event_contract() {
    let app = spawn_app(&["--max-rooms-per-socket", "1"]).await;
    let mut client = PlainClient::open(app.address).await;
    let joined = client
        .request(json!({"event": "join", "room": "r1"}), 1)
        .await;
    assert_eq!(joined, json!({"room": "r1", "size": 1}));

    client
        .send_json(json!({"event": "chat", "room": "r1", "text": "hi", "id": 2}))
        .await;
    let chat = client.next_json().await;
    assert_eq!(chat["event"], "chat");
    assert_eq!(
        (chat["room"].clone(), chat["text"].clone()),
        (json!("r1"), json!("hi"))
    );
    let from = chat["from"].as_str().expect("from");
    assert_eq!(from.len(), 16, "ids look like Socket.IO's: {from}");
    assert!(chat["ts"].as_u64().is_some());
    assert_eq!(
        client.next_json().await,
        json!({"event": "ack", "id": 2, "data": {"ok": true}})
    );

    let echoed = client
        .request(
            json!({"event": "echo", "data": [1, "two", {"three": 3}]}),
            3,
        )
        .await;
    assert_eq!(echoed, json!([1, "two", {"three": 3}]));

    // Refusals: in the ack when there is an id, as an error frame otherwise.
    let too_many = client
        .request(json!({"event": "join", "room": "r2"}), 4)
        .await;
    assert_eq!(
        too_many,
        json!({"error": "too many rooms: a socket may be in at most 1"})
    );
    client.send_json(json!({"event": "join", "room": ""})).await;
    assert_eq!(
        client.next_json().await,
        json!({"event": "error", "message": "the room name must not be empty"})
    );
    let bad_chat = client.request(json!({"event": "chat", "text": 3}), 5).await;
    assert_eq!(bad_chat, json!({"error": "chat text must be a string"}));

    client.send_text("{not json").await;
    let error = client.next_json().await;
    assert_eq!(error["event"], "error");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .starts_with("invalid JSON")
    );
    client.send_json(json!({"event": "dance", "id": 6})).await;
    let unknown = client.next_json().await;
    assert_eq!(
        (unknown["event"].clone(), unknown["id"].clone()),
        (json!("error"), json!(6))
    );

    let left = client
        .request(json!({"event": "leave", "room": "r1"}), 7)
        .await;
    assert_eq!(left, json!({"room": "r1", "size": 0}));
    // Still connected after all that.
    client.send_text("still here").await;
    assert_eq!(client.next_text().await, "still here");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_room_is_shared_with_socket_io_clients_both_ways() {
    let app = spawn_app(&[]).await;
    let mut sio = SioClient::connect(app.address, "/").await;
    assert_eq!(
        sio.emit_with_ack("join", &[json!("mixed")]).await,
        [json!({"room": "mixed", "size": 1})]
    );
    let mut plain = PlainClient::open(app.address).await;
    let joined = plain
        .request(json!({"event": "join", "room": "mixed"}), 1)
        .await;
    assert_eq!(
        joined,
        json!({"room": "mixed", "size": 2}),
        "both kinds count"
    );
    let mut outsider = PlainClient::open(app.address).await;
    outsider
        .request(json!({"event": "join", "room": "elsewhere"}), 1)
        .await;

    // Plain → Socket.IO.
    plain
        .send_json(json!({"event": "chat", "room": "mixed", "text": "from plain"}))
        .await;
    let own = plain.next_json().await;
    let plain_id = own["from"].as_str().expect("from").to_owned();
    let got = sio.expect_event("chat").await;
    assert_eq!(got[0]["text"], "from plain");
    assert_eq!(got[0]["room"], "mixed");
    assert_eq!(got[0]["from"], plain_id.as_str());

    // Socket.IO → plain, fields at the top level.
    sio.emit(
        "chat",
        &[json!({"room": "mixed", "text": "from socket.io"})],
    )
    .await;
    let chat = plain.next_json().await;
    assert_eq!(chat["event"], "chat");
    assert_eq!(chat["text"], "from socket.io");
    assert_eq!(chat["from"], sio.sid.as_str());
    assert_eq!(sio.expect_event("chat").await[0]["text"], "from socket.io");
    assert!(
        outsider.quiet().await.is_empty(),
        "outsiders see no room traffic"
    );

    // A room-less chat reaches everyone of `/`, plain or not.
    sio.emit("chat", &[json!({"text": "all"})]).await;
    for client in [&mut plain, &mut outsider] {
        let chat = client.next_json().await;
        assert_eq!(
            (chat["text"].clone(), chat["room"].clone()),
            (json!("all"), Value::Null)
        );
    }
    // A Socket.IO socket joining now counts the plain member too.
    let mut late = SioClient::connect(app.address, "/").await;
    assert_eq!(
        late.emit_with_ack("join", &[json!("mixed")]).await,
        [json!({"room": "mixed", "size": 3})]
    );
    // `/chat` rooms are not shared.
    let mut other_ns = SioClient::connect(app.address, "/chat").await;
    other_ns.emit_with_ack("join", &[json!("mixed")]).await;
    other_ns
        .emit("chat", &[json!({"room": "mixed", "text": "chat ns"})])
        .await;
    assert!(
        plain.quiet().await.is_empty(),
        "namespace /chat stays apart"
    );
    sio.close().await;
    late.close().await;
    other_ns.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn origins_subprotocols_and_tokens_are_checked_in_the_handshake() {
    let app = spawn_app(&[
        "--cors-origin",
        "https://good.example",
        "--auth-token",
        "let-me-in",
    ])
    .await;
    let good = ("origin", "https://good.example");
    assert_eq!(
        try_open(
            app.address,
            "/ws?token=let-me-in",
            &[("origin", "https://evil.example")]
        )
        .await
        .err(),
        Some(403)
    );
    assert_eq!(try_open(app.address, "/ws", &[good]).await.err(), Some(401));
    assert_eq!(
        try_open(app.address, "/ws?token=nope", &[good]).await.err(),
        Some(401)
    );
    let by_query = try_open(app.address, "/ws?token=let-me-in", &[good])
        .await
        .expect("a token in the query is accepted");
    assert_eq!(by_query.protocol, None);

    let protocols = ("sec-websocket-protocol", "echo-protocol, token.let-me-in");
    let mut by_protocol = try_open(app.address, "/", &[good, protocols])
        .await
        .expect("a token entry in the subprotocols is accepted");
    assert_eq!(by_protocol.protocol.as_deref(), Some("echo-protocol"));
    by_protocol.send_text("hi").await;
    assert_eq!(by_protocol.next_text().await, "hi");

    let unknown = ("sec-websocket-protocol", "graphql-ws");
    assert_eq!(
        try_open(app.address, "/ws?token=let-me-in", &[unknown])
            .await
            .err(),
        Some(400),
        "only unknown subprotocols: refused"
    );
    let mixed = ("sec-websocket-protocol", "graphql-ws, echo-protocol");
    let chosen = try_open(app.address, "/ws?token=let-me-in", &[mixed])
        .await
        .expect("one known subprotocol is enough");
    assert_eq!(chosen.protocol.as_deref(), Some("echo-protocol"));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn subprotocols_come_from_the_configured_list() {
    let app = spawn_app(&["--ws-protocol", "chat-v2", "--ws-path", "/live"]).await;
    let chat = ("sec-websocket-protocol", "echo-protocol, chat-v2");
    let client = try_open(app.address, "/live", &[chat])
        .await
        .expect("accepted");
    assert_eq!(client.protocol.as_deref(), Some("chat-v2"));
    let echo = ("sec-websocket-protocol", "echo-protocol");
    assert_eq!(
        try_open(app.address, "/live", &[echo]).await.err(),
        Some(400)
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_silent_peer_is_closed_by_the_heartbeat() {
    let app = spawn_app(&["--ping-interval-ms", "200", "--ping-timeout-ms", "200"]).await;
    let mut answering = PlainClient::open(app.address).await;
    let mut silent = PlainClient::open(app.address).await;
    // The silent client reads nothing, so its pongs never go out; the other one keeps reading.
    let quiet_for = tokio::time::Instant::now() + Duration::from_millis(1_000);
    while tokio::time::Instant::now() < quiet_for {
        assert!(answering.quiet().await.is_empty());
    }
    assert_eq!(
        silent.close_code().await,
        Some((1001, "ping timeout".to_owned()))
    );
    answering.send_text("alive").await;
    assert_eq!(
        answering.next_text().await,
        "alive",
        "a peer that answers stays"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn bad_frames_get_their_close_codes() {
    let app = spawn_app(&["--max-http-buffer-size", "1000"]).await;
    let mut client = PlainClient::open(app.address).await;
    client.send_text(&"x".repeat(1_000)).await;
    assert_eq!(
        client.next_text().await.len(),
        1_000,
        "exactly the limit passes"
    );
    client.send_text(&"x".repeat(1_001)).await;
    assert_eq!(
        client.close_code().await,
        Some((1009, "message too big".to_owned()))
    );

    let mut client = PlainClient::open(app.address).await;
    let invalid = Frame::message(
        vec![0x66u8, 0x6f, 0xff, 0xfe],
        OpCode::Data(Data::Text),
        true,
    );
    client.ws.send(Message::Frame(invalid)).await.expect("send");
    assert_eq!(
        client.close_code().await,
        Some((1007, "invalid UTF-8".to_owned()))
    );
    // The server is still there.
    let mut next = PlainClient::open(app.address).await;
    next.send_text("ok").await;
    assert_eq!(next.next_text().await, "ok");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn plain_clients_count_against_the_connection_limit() {
    let app = spawn_app(&["--max-connections", "1"]).await;
    let _first = PlainClient::open(app.address).await;
    assert_eq!(try_open(app.address, "/ws", &[]).await.err(), Some(503));
    let handshake = reqwest::get(format!("{}/socket.io/?EIO=4&transport=polling", app.url()))
        .await
        .expect("handshake");
    assert_eq!(
        handshake.status(),
        503,
        "Socket.IO sees the plain client too"
    );
    app.stop().await.expect("clean stop");
}

/// A request over the rate limit is answered in its ack, as a Socket.IO client's would be.
#[tokio::test]
async fn requests_past_the_rate_get_an_error_ack() {
    let app = spawn_app(&["--max-events-per-second", "5", "--tick-interval-ms", "0"]).await;
    let mut client = PlainClient::open(app.address).await;
    for id in 0..8 {
        client
            .ws
            .send(Message::text(
                json!({ "event": "echo", "id": id, "data": id }).to_string(),
            ))
            .await
            .expect("send");
    }
    let mut answers = Vec::new();
    while answers.len() < 8 {
        let frame = timeout(Duration::from_secs(2), client.ws.next())
            .await
            .expect("an answer for every request")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = frame {
            answers.push(serde_json::from_str::<Value>(text.as_str()).expect("json"));
        }
    }
    for (id, answer) in answers.iter().enumerate().take(5) {
        assert_eq!(answer, &json!({ "event": "ack", "id": id, "data": id }));
    }
    for (id, answer) in answers.iter().enumerate().skip(5) {
        assert_eq!(
            answer,
            &json!({
                "event": "ack",
                "id": id,
                "data": { "error": "rate limited: more than 5 events per second" }
            })
        );
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_flooding_client_is_cut_off() {
    let app = spawn_app(&["--max-events-per-second", "5"]).await;
    let mut client = PlainClient::open(app.address).await;
    let closed = timeout(Duration::from_secs(6), async {
        loop {
            for _ in 0..10 {
                if client.ws.send(Message::text("x")).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            while let Ok(Some(frame)) = timeout(Duration::from_millis(1), client.ws.next()).await {
                if let Ok(Message::Close(frame)) = frame {
                    let frame = frame.expect("a close code");
                    assert_eq!(u16::from(frame.code), 1008);
                    assert_eq!(frame.reason.as_str(), "rate limit exceeded");
                    return;
                }
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "closed within three windows of flooding");
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_reading_never_slows_the_room() {
    let app = spawn_app(&["--max-buffer-size", "16"]).await;
    let mut reader = PlainClient::open(app.address).await;
    let mut stalled = PlainClient::open(app.address).await;
    for client in [&mut reader, &mut stalled] {
        client
            .request(json!({"event": "join", "room": "busy"}), 1)
            .await;
    }
    let mut publisher = SioClient::connect(app.address, "/").await;
    const MESSAGES: usize = 1_000;
    // Chats the publisher may be ahead of the reading member: fewer than its queue holds, so
    // only a member that stops reading can overflow its queue, whatever the machine's speed.
    const AHEAD: usize = 8;
    let text = "x".repeat(4 * 1024);
    let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reading = tokio::spawn({
        let read = read.clone();
        async move {
            for _ in 0..MESSAGES {
                assert_eq!(reader.next_json().await["event"], "chat");
                read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    for i in 0..MESSAGES {
        let chat = json!({ "room": "busy", "text": format!("{i}{text}") });
        publisher.emit("chat", &[chat]).await;
        let paced = timeout(Duration::from_secs(10), async {
            while read.load(std::sync::atomic::Ordering::Relaxed) + AHEAD <= i {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert!(paced.is_ok(), "the reading member fell behind at chat {i}");
    }
    timeout(Duration::from_secs(20), reading)
        .await
        .expect("the reading member got every message in time")
        .expect("reader");
    // The stalled member was cut off: reading now ends with a close or a dropped connection.
    let ended = timeout(Duration::from_secs(10), async {
        while let Some(frame) = stalled.ws.next().await {
            if let Ok(Message::Close(frame)) = frame {
                return frame.map(|f| u16::from(f.code));
            }
            if frame.is_err() {
                return None;
            }
        }
        None
    })
    .await
    .expect("the stalled member's connection ends");
    assert!(matches!(ended, None | Some(1008 | 1001)), "{ended:?}");
    publisher.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn shutdown_closes_plain_clients_as_going_away() {
    let app = spawn_app(&[]).await;
    let mut client = PlainClient::open(app.address).await;
    let stopping = tokio::spawn(app.stop());
    assert_eq!(
        client.close_code().await,
        Some((1001, "server shutting down".to_owned()))
    );
    stopping.await.expect("task").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_cross_nodes_through_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    let a = spawn_app(&["--redis-url", &url]).await;
    let b = spawn_app(&["--redis-url", &url]).await;
    let mut plain_a = PlainClient::open(a.address).await;
    let mut plain_b = PlainClient::open(b.address).await;
    let mut sio_b = SioClient::connect(b.address, "/").await;
    sio_b.emit_with_ack("join", &[json!("far")]).await;
    let joined = plain_a
        .request(json!({"event": "join", "room": "far"}), 1)
        .await;
    assert_eq!(joined["size"], 2, "Socket.IO members on other nodes count");
    plain_b
        .request(json!({"event": "join", "room": "far"}), 1)
        .await;

    plain_a
        .send_json(json!({"event": "chat", "room": "far", "text": "from a"}))
        .await;
    assert_eq!(sio_b.expect_event("chat").await[0]["text"], "from a");
    let frames = plain_b.quiet().await;
    assert_eq!(
        frames.len(),
        1,
        "exactly once on the other node: {frames:?}"
    );
    assert!(frames[0].contains(r#""text":"from a""#));
    assert_eq!(
        plain_a.quiet().await.len(),
        1,
        "exactly once on the sender's node"
    );

    sio_b
        .emit("chat", &[json!({"room": "far", "text": "from b"})])
        .await;
    let frames = plain_a.quiet().await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(frames[0].contains(r#""text":"from b""#));

    plain_b
        .send_json(json!({"event": "chat", "text": "everyone"}))
        .await;
    let frames = plain_a.quiet().await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(frames[0].contains(r#""room":null"#));
    sio_b.close().await;
    a.stop().await.expect("clean stop");
    b.stop().await.expect("clean stop");
}
