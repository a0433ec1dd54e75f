//! Every row of the event contract, checked on the wire.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::client::{Packet, SioClient};
use crate::helpers::spawn_app;

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn welcome_carries_the_socket_id() {
    let app = spawn_app(&[]).await;
    let mut client = SioClient::connect(app.address, "/").await;
    let welcome = client.expect_event("message").await;
    assert_eq!(welcome[0]["id"], client.sid.as_str());
    assert_eq!(welcome[0]["text"], "Welcome to iorelay");
    client.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn ticker_sends_the_time_in_milliseconds() {
    let app = spawn_app(&["--tick-interval-ms", "100"]).await;
    let mut client = SioClient::connect(app.address, "/").await;
    let mut ticks = Vec::new();
    while ticks.len() < 2 {
        let args = client.expect_event("message").await;
        if let Some(ms) = args[0].as_u64() {
            ticks.push(ms);
        }
    }
    let now = iorelay::relay::payload::now_ms();
    assert!(
        now.abs_diff(ticks[1]) < 5_000,
        "tick {} is not the current time {now}",
        ticks[1]
    );
    assert!(ticks[1] > ticks[0]);
    client.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn message_and_echo_return_every_argument() {
    let app = spawn_app(&[]).await;
    let mut client = SioClient::connect(app.address, "/").await;
    client.expect_event("message").await; // welcome
    let args = [
        json!("text"),
        json!(42),
        json!({"nested": [1, 2]}),
        Value::Null,
    ];
    client.emit("message", &args).await;
    assert_eq!(client.expect_event("message").await, args);
    assert_eq!(client.emit_with_ack("echo", &args).await, args);
    assert_eq!(client.emit_with_ack("echo", &[]).await, Vec::<Value>::new());
    client.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn join_and_leave_acknowledge_room_sizes() {
    let app = spawn_app(&[]).await;
    let mut a = SioClient::connect(app.address, "/").await;
    let mut b = SioClient::connect(app.address, "/").await;
    assert_eq!(
        a.emit_with_ack("join", &[json!("r1")]).await,
        [json!({"room": "r1", "size": 1})]
    );
    assert_eq!(
        b.emit_with_ack("join", &[json!("r1")]).await,
        [json!({"room": "r1", "size": 2})]
    );
    assert_eq!(
        b.emit_with_ack("leave", &[json!("r1")]).await,
        [json!({"room": "r1", "size": 1})]
    );
    a.close().await;
    b.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn invalid_room_names_change_nothing() {
    let app = spawn_app(&[]).await;
    let mut client = SioClient::connect(app.address, "/").await;
    client.expect_event("message").await; // welcome
    let too_long = "x".repeat(129);
    for bad in [json!(""), json!(7), json!(too_long), json!(null)] {
        let ack = client
            .emit_with_ack("join", std::slice::from_ref(&bad))
            .await;
        assert!(
            ack[0]["error"].is_string(),
            "join {bad} should be refused: {ack:?}"
        );
    }
    let ack = client.emit_with_ack("join", &[]).await;
    assert_eq!(ack[0]["error"], "a room name is required");
    let ack = client.emit_with_ack("leave", &[json!("")]).await;
    assert!(ack[0]["error"].is_string());
    // 128 characters is still a valid name.
    let longest = "y".repeat(128);
    assert_eq!(
        client.emit_with_ack("join", &[json!(longest)]).await[0]["size"],
        1
    );
    client.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn room_chat_reaches_members_only() {
    let app = spawn_app(&[]).await;
    let mut a = SioClient::connect(app.address, "/").await;
    let mut b = SioClient::connect(app.address, "/").await;
    let mut outsider = SioClient::connect(app.address, "/").await;
    a.emit_with_ack("join", &[json!("r1")]).await;
    b.emit_with_ack("join", &[json!("r1")]).await;
    outsider.emit_with_ack("join", &[json!("r2")]).await;

    let ack = a
        .emit_with_ack("chat", &[json!({"room": "r1", "text": "hello"})])
        .await;
    assert_eq!(ack, [json!({"ok": true})]);
    for member in [&mut a, &mut b] {
        let chat = member.expect_event("chat").await;
        assert_eq!(chat[0]["room"], "r1");
        assert_eq!(chat[0]["text"], "hello");
        assert_eq!(chat[0]["from"], a_sid(&chat));
        assert!(chat[0]["ts"].as_u64().is_some_and(|ts| ts > 0));
    }
    assert_eq!(outsider.maybe_event("chat", QUIET).await, None);
    for client in [a, b, outsider] {
        client.close().await;
    }
    app.stop().await.expect("clean stop");
}

fn a_sid(chat: &[Value]) -> Value {
    chat[0]["from"].clone()
}

#[tokio::test]
async fn chat_without_room_reaches_the_whole_namespace() {
    let app = spawn_app(&[]).await;
    let mut a = SioClient::connect(app.address, "/").await;
    let mut b = SioClient::connect(app.address, "/").await;
    let mut elsewhere = SioClient::connect(app.address, "/chat").await;
    a.emit_with_ack("chat", &[json!({"text": "everyone"})])
        .await;
    for client in [&mut a, &mut b] {
        let chat = client.expect_event("chat").await;
        assert_eq!(chat[0]["room"], Value::Null);
        assert_eq!(chat[0]["text"], "everyone");
    }
    assert_eq!(
        elsewhere.maybe_event("chat", QUIET).await,
        None,
        "other namespaces hear nothing"
    );
    let bad = a.emit_with_ack("chat", &[json!({"text": 5})]).await;
    assert!(bad[0]["error"].is_string());
    let bad = a.emit_with_ack("chat", &[json!("just text")]).await;
    assert!(bad[0]["error"].is_string());
    for client in [a, b, elsewhere] {
        client.close().await;
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn chat_namespace_announces_presence() {
    let app = spawn_app(&[]).await;
    let mut a = SioClient::connect(app.address, "/chat").await;
    let mut b = SioClient::connect(app.address, "/chat").await;
    a.emit_with_ack("join", &[json!("lobby")]).await;
    assert_eq!(
        a.expect_event("presence").await,
        [json!({"room": "lobby", "members": [a.sid]})]
    );
    b.emit_with_ack("join", &[json!("lobby")]).await;
    let mut both = vec![a.sid.clone(), b.sid.clone()];
    both.sort();
    let expected = [json!({"room": "lobby", "members": both})];
    assert_eq!(a.expect_event("presence").await, expected);
    assert_eq!(b.expect_event("presence").await, expected);

    b.emit_with_ack("leave", &[json!("lobby")]).await;
    assert_eq!(
        a.expect_event("presence").await,
        [json!({"room": "lobby", "members": [a.sid]})]
    );

    b.emit_with_ack("join", &[json!("lobby")]).await;
    assert_eq!(a.expect_event("presence").await, expected);
    assert_eq!(b.expect_event("presence").await, expected);
    let a_sid = a.sid.clone();
    a.close().await;
    assert_eq!(
        b.expect_event("presence").await,
        [json!({"room": "lobby", "members": [b.sid]})]
    );
    assert_ne!(a_sid, b.sid);
    b.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn unknown_namespaces_are_refused() {
    let app = spawn_app(&[]).await;
    let refusal = SioClient::try_connect(app.address, "/nope").await.err();
    assert_eq!(
        refusal,
        Some(Packet::ConnectError(
            json!({"message": "Invalid namespace"})
        ))
    );
    app.stop().await.expect("clean stop");
}

/// Clients that emit `join` the instant their namespace CONNECT is acknowledged must not lose it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_sent_with_the_connect_packet_are_never_lost() {
    let app = spawn_app(&[]).await;
    let address = app.address;
    for batch in 0..4 {
        let clients = (0..250).map(|i| async move {
            let url = format!("ws://{address}/socket.io/?EIO=4&transport=websocket");
            let (mut ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("handshake");
            use futures_util::{SinkExt, StreamExt};
            use tokio_tungstenite::tungstenite::Message;
            let _open = ws.next().await;
            ws.send(Message::text("40")).await.expect("send");
            // Like socket.io-client's `connect` handler: join the instant the CONNECT ack arrives.
            while let Some(Ok(frame)) = ws.next().await {
                if frame.to_text().is_ok_and(|text| text.starts_with("40")) {
                    break;
                }
            }
            ws.send(Message::text(format!(
                "420[\"join\",\"early-{batch}-{i}\"]"
            )))
            .await
            .expect("send");
            let deadline = tokio::time::sleep(crate::client::WAIT);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    frame = ws.next() => match frame {
                        Some(Ok(Message::Text(text))) if text.starts_with("430") => {
                            let _ = ws.close(None).await;
                            return text.to_string();
                        }
                        Some(Ok(_)) => {}
                        _ => return String::new(),
                    },
                    () = &mut deadline => return String::new(),
                }
            }
        });
        let acks = join_all(clients).await;
        for (i, ack) in acks.iter().enumerate() {
            let expected = format!("430[{{\"room\":\"early-{batch}-{i}\",\"size\":1}}]");
            assert_eq!(ack, &expected, "client {i} of batch {batch} lost its join");
        }
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn oversized_websocket_messages_close_only_the_sender() {
    let app = spawn_app(&["--max-http-buffer-size", "1000"]).await;
    let mut control = SioClient::connect(app.address, "/").await;
    let mut sender = SioClient::connect(app.address, "/").await;
    sender.emit("message", &[json!("x".repeat(2_000))]).await;
    assert!(
        sender.closed_within(Duration::from_secs(5)).await,
        "oversized message must close the connection"
    );
    let fits = "y".repeat(900);
    assert_eq!(
        control.emit_with_ack("echo", &[json!(fits)]).await,
        [json!(fits)]
    );
    control.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn malformed_packets_close_only_their_connection() {
    let app = spawn_app(&[]).await;
    let mut control = SioClient::connect(app.address, "/").await;
    for garbage in [
        "4{",
        "42[",
        "42[\"message\"",
        "9",
        "42{\"not\":\"an array\"}",
        "45-1[]",
        "4x",
    ] {
        let mut attacker = SioClient::connect(app.address, "/").await;
        attacker.send_raw(garbage.to_owned()).await;
        // Either closed, or still answering: the server decides; it must not fall over.
        let _ = attacker.closed_within(Duration::from_millis(200)).await;
        let probe = json!(garbage);
        assert_eq!(
            control
                .emit_with_ack("echo", std::slice::from_ref(&probe))
                .await,
            [probe],
            "after {garbage:?}"
        );
    }
    control.close().await;
    app.stop().await.expect("clean stop");
}

/// Like Node's `io.close()`, shutdown closes every transport, so clients see `transport close`
/// and reconnect (to this node once it is back, or to another one).
#[tokio::test]
async fn shutdown_closes_every_connection() {
    let app = spawn_app(&[]).await;
    let mut root = SioClient::connect(app.address, "/").await;
    let mut chat = SioClient::connect(app.address, "/chat").await;
    root.expect_event("message").await; // welcome
    let stopping = tokio::spawn(app.stop());
    assert!(root.closed_within(Duration::from_secs(5)).await);
    assert!(chat.closed_within(Duration::from_secs(5)).await);
    stopping.await.expect("join").expect("clean stop");
}
