//! Authentication, per-node and per-socket limits, and per-socket event order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::client::{Packet, SioClient};
use crate::helpers::spawn_app;

fn jwt(secret: &str, sub: &str, valid_for_secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": sub, "exp": now + valid_for_secs }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode token")
}

fn refusal(message: &str) -> Result<(), Packet> {
    Err(Packet::ConnectError(json!({ "message": message })))
}

async fn connect_result(address: std::net::SocketAddr, auth: Option<Value>) -> Result<(), Packet> {
    SioClient::connect_with_auth(address, "/", auth)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_shared_token_is_required_when_configured() {
    let app = spawn_app(&["--auth-token", "let-me-in"]).await;
    assert_eq!(
        connect_result(app.address, None).await,
        refusal("unauthorized: token missing")
    );
    let wrong = Some(json!({ "token": "let-me-out" }));
    assert_eq!(
        connect_result(app.address, wrong).await,
        refusal("unauthorized: invalid token")
    );
    let right = Some(json!({ "token": "let-me-in" }));
    let mut client = SioClient::connect_with_auth(app.address, "/", right)
        .await
        .expect("accepted");
    assert_eq!(client.emit_with_ack("echo", &[json!(1)]).await, [json!(1)]);
    // /chat is guarded the same way.
    let chat = SioClient::connect_with_auth(app.address, "/chat", None)
        .await
        .map(|_| ());
    assert_eq!(chat, refusal("unauthorized: token missing"));
    client.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_jwt_names_the_user_and_expired_ones_are_told_so() {
    let app = spawn_app(&["--auth-secret", "jwt-secret"]).await;
    let expired = Some(json!({ "token": jwt("jwt-secret", "alice", -3_600) }));
    assert_eq!(
        connect_result(app.address, expired).await,
        refusal("unauthorized: token expired")
    );
    let forged = Some(json!({ "token": jwt("other-secret", "alice", 3_600) }));
    assert_eq!(
        connect_result(app.address, forged).await,
        refusal("unauthorized: invalid token")
    );

    let good = Some(json!({ "token": jwt("jwt-secret", "alice", 3_600) }));
    let mut alice = SioClient::connect_with_auth(app.address, "/", good)
        .await
        .expect("accepted");
    alice.emit_with_ack("join", &[json!("r")]).await;
    alice
        .emit_with_ack("chat", &[json!({ "room": "r", "text": "hi" })])
        .await;
    let chat = alice.expect_event("chat").await;
    assert_eq!(chat[0]["user"], "alice");
    assert_eq!(chat[0]["from"], alice.sid.as_str());
    alice.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn handshakes_past_the_connection_limit_get_503_while_others_carry_on() {
    let app = spawn_app(&["--max-connections", "3"]).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(SioClient::connect(app.address, "/").await);
    }
    let handshake = format!("{}/socket.io/?EIO=4&transport=polling", app.url());
    let refused = reqwest::get(&handshake).await.expect("request");
    assert_eq!(refused.status(), 503);
    let upgrade = tokio_tungstenite::connect_async(format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        app.address
    ))
    .await;
    assert!(upgrade.is_err(), "a WebSocket handshake is refused too");
    for client in &mut clients {
        assert_eq!(
            client.emit_with_ack("echo", &[json!("still here")]).await,
            [json!("still here")]
        );
    }
    // A slot frees up when a client leaves.
    clients.pop().expect("a client").close().await;
    let mut admitted = false;
    for _ in 0..50 {
        if reqwest::get(&handshake).await.expect("request").status() == 200 {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        admitted,
        "a handshake is admitted again once a connection closed"
    );
    for client in clients {
        client.close().await;
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn rooms_per_socket_and_room_name_length_are_bounded() {
    let app = spawn_app(&["--max-rooms-per-socket", "2", "--max-room-name-length", "8"]).await;
    let mut client = SioClient::connect(app.address, "/").await;
    assert_eq!(
        client.emit_with_ack("join", &[json!("a")]).await[0]["size"],
        1
    );
    assert_eq!(
        client.emit_with_ack("join", &[json!("b")]).await[0]["size"],
        1
    );
    let third = client.emit_with_ack("join", &[json!("c")]).await;
    assert_eq!(
        third[0]["error"],
        "too many rooms: a socket may be in at most 2"
    );
    // Joining a room it is already in is not a new room.
    assert_eq!(
        client.emit_with_ack("join", &[json!("a")]).await[0]["size"],
        1
    );
    client.emit_with_ack("leave", &[json!("b")]).await;
    assert_eq!(
        client.emit_with_ack("join", &[json!("c")]).await[0]["size"],
        1
    );
    let long = client.emit_with_ack("leave", &[json!("123456789")]).await;
    assert_eq!(
        long[0]["error"],
        "the room name must be at most 8 characters"
    );
    client.close().await;
    app.stop().await.expect("clean stop");
}

/// An event over the rate limit is answered, never left hanging: its ack carries the error.
#[tokio::test]
async fn events_past_the_rate_get_an_error_ack_and_a_flooder_is_disconnected() {
    let app = spawn_app(&["--max-events-per-second", "20"]).await;
    let mut flooder = SioClient::connect(app.address, "/").await;
    let mut control = SioClient::connect(app.address, "/").await;
    for i in 0..100 {
        flooder.send_raw(format!("42{i}[\"echo\",{i}]")).await;
    }
    let limited = json!({ "error": "rate limited: more than 20 events per second" });
    let (mut echoed, mut refused) = (0, 0);
    while let Some(args) = flooder.maybe_ack(Duration::from_millis(300)).await {
        if args == [limited.clone()] {
            refused += 1;
        } else {
            echoed += 1;
        }
    }
    assert!(
        (20..=40).contains(&echoed),
        "{echoed} of 100 burst events acknowledged with a limit of 20/s"
    );
    assert_eq!(echoed + refused, 100, "every event with an ack is answered");
    // Keep flooding for a few seconds: the server hangs up.
    let mut closed = false;
    for _ in 0..50 {
        for i in 0..50 {
            flooder.send_raw(format!("42[\"echo\",{i}]")).await;
        }
        if flooder.closed_within(Duration::from_millis(100)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "a socket that keeps flooding is disconnected");
    assert_eq!(
        control.emit_with_ack("echo", &[json!("ok")]).await,
        [json!("ok")]
    );
    control.close().await;
    app.stop().await.expect("clean stop");
}

/// Events without an ack that are over the limit are dropped, and counted where operators see.
#[tokio::test]
async fn unacknowledged_events_past_the_rate_are_dropped_and_counted() {
    let app = spawn_app(&["--max-events-per-second", "20", "--tick-interval-ms", "0"]).await;
    let mut sender = SioClient::connect(app.address, "/").await;
    sender.expect_event("message").await;
    for i in 0..50 {
        sender.send_raw(format!("42[\"message\",{i}]")).await;
    }
    let mut echoed = 0;
    while sender
        .maybe_event("message", Duration::from_millis(300))
        .await
        .is_some()
    {
        echoed += 1;
    }
    assert_eq!(echoed, 20, "the first 20 of the burst are handled");
    let health: serde_json::Value = reqwest::get(format!("{}/healthz", app.url()))
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json");
    assert_eq!(health["rate_limited_events"], 30);
    // One window over the limit is forgiven: the socket stays connected.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(sender.emit_with_ack("echo", &[json!(1)]).await, [json!(1)]);
    sender.close().await;
    app.stop().await.expect("clean stop");
}

/// A chat burst from one sender arrives in the order it was sent, as with Node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_senders_messages_keep_their_order() {
    let app = spawn_app(&[]).await;
    let mut sender = SioClient::connect(app.address, "/").await;
    let mut reader = SioClient::connect(app.address, "/").await;
    sender.emit_with_ack("join", &[json!("ordered")]).await;
    reader.emit_with_ack("join", &[json!("ordered")]).await;
    for i in 0..300 {
        sender
            .emit(
                "chat",
                &[json!({ "room": "ordered", "text": i.to_string() })],
            )
            .await;
    }
    let mut received = Vec::new();
    while received.len() < 300 {
        let chat = reader.expect_event("chat").await;
        received.push(
            chat[0]["text"]
                .as_str()
                .unwrap_or_default()
                .parse::<u32>()
                .unwrap_or(u32::MAX),
        );
    }
    let expected: Vec<u32> = (0..300).collect();
    assert_eq!(received, expected);
    sender.close().await;
    reader.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_size_limit_is_exact_on_both_transports() {
    const LIMIT: usize = 1_000;
    let app = spawn_app(&["--max-http-buffer-size", &LIMIT.to_string()]).await;
    // An event packet of exactly `len` bytes: 42["message","xxx…"]
    let packet = |len: usize| {
        let overhead = r#"42["message",""]"#.len();
        format!(r#"42["message","{}"]"#, "x".repeat(len - overhead))
    };

    let mut at_limit = SioClient::connect(app.address, "/").await;
    at_limit.expect_event("message").await; // welcome
    at_limit.send_raw(packet(LIMIT)).await;
    let echoed = at_limit.expect_event("message").await;
    assert_eq!(
        echoed[0].as_str().map(str::len),
        Some(LIMIT - r#"42["message",""]"#.len())
    );

    let mut over = SioClient::connect(app.address, "/").await;
    over.send_raw(packet(LIMIT + 1)).await;
    // Close code 1009 (Message Too Big), as Node's `ws` answers it.
    assert_eq!(
        over.close_code_within(Duration::from_secs(5)).await,
        Some(1009),
        "one byte over closes the WebSocket"
    );

    let client = reqwest::Client::new();
    let session = app.open_polling_session(&client).await;
    assert_eq!(
        client
            .post(&session)
            .body("40")
            .send()
            .await
            .expect("post")
            .status(),
        200
    );
    let fits = client
        .post(&session)
        .body(packet(LIMIT))
        .send()
        .await
        .expect("post");
    assert_eq!(fits.status(), 200, "exactly the limit passes over polling");
    let too_big = client
        .post(&session)
        .body(packet(LIMIT + 1))
        .send()
        .await
        .expect("post");
    assert_eq!(
        too_big.status(),
        413,
        "one byte over is refused over polling"
    );
    at_limit.close().await;
    app.stop().await.expect("clean stop");
}
