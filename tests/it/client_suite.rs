//! `--profile client-suite`: the fixture servers of socket.io-client's and engine.io-client's
//! own test suites, checked on the wire (the suites themselves run from a copy of the socket.io
//! repository, see docs/client-suites.md).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::timeout;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Packet, SioClient, WAIT, close_code_within};
use crate::helpers::spawn_app;

const PROFILE: [&str; 2] = ["--profile", "client-suite"];

#[tokio::test]
async fn custom_namespace_refuses_with_the_fixture_text() {
    let app = spawn_app(&PROFILE).await;
    let refusal = SioClient::try_connect(app.address, "/no").await.err();
    assert_eq!(
        refusal,
        Some(Packet::ConnectError(
            json!({ "message": "Auth failed (custom namespace)" })
        ))
    );
    let unknown = SioClient::try_connect(app.address, "/unknown").await.err();
    assert_eq!(
        unknown,
        Some(Packet::ConnectError(
            json!({ "message": "Invalid namespace" })
        ))
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn main_namespace_refuses_a_handshake_whose_query_has_fail() {
    let app = spawn_app(&PROFILE).await;
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket&fail=true",
        app.address
    );
    let (mut ws, _) = connect_async(url).await.expect("websocket handshake");
    let open = next_text(&mut ws).await;
    assert!(open.starts_with('0'), "{open}");
    ws.send(Message::text("40")).await.expect("send CONNECT");
    assert_eq!(
        next_text(&mut ws).await,
        r#"44{"message":"Auth failed (main namespace)"}"#
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn events_are_answered_as_the_fixture_answers_them() {
    let app = spawn_app(&PROFILE).await;
    let mut client = SioClient::connect(app.address, "/").await;
    let arg = json!({ "nested": [1, "two", null] });
    assert_eq!(
        client
            .emit_with_ack("echo", std::slice::from_ref(&arg))
            .await,
        [arg]
    );
    assert_eq!(
        client.emit_with_ack("getId", &[]).await,
        [json!(client.sid)]
    );
    client.emit("hi", &[]).await;
    assert_eq!(
        recorded(client.expect_event("hi").await),
        Vec::<Value>::new()
    );
    client.emit("false", &[]).await;
    assert_eq!(recorded(client.expect_event("false").await), [json!(false)]);
    client.emit("getUtf8", &[]).await;
    for text in [
        "てすと",
        "Я Б Г Д Ж Й",
        "Ä ä Ü ü ß",
        "utf8 — string",
        "utf8 — string",
    ] {
        assert_eq!(
            recorded(client.expect_event("takeUtf8").await),
            [json!(text)]
        );
    }
    // A JavaScript Date, as JSON writes it.
    let date = client
        .emit_with_ack("getAckDate", &[json!({ "test": true })])
        .await;
    let date = date[0].as_str().expect("a date string");
    assert!(
        date.len() == 24 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
        "{date}"
    );
    client.close().await;
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn ack_event_asks_the_client_and_answers_got_it() {
    let app = spawn_app(&PROFILE).await;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.address);
    let (mut ws, _) = connect_async(url).await.expect("websocket handshake");
    next_text(&mut ws).await; // open
    ws.send(Message::text("40")).await.expect("send CONNECT");
    // Recovery is on, as in the fixture: the CONNECT answer carries the private session id.
    let connect = next_text(&mut ws).await;
    let connect: Value = serde_json::from_str(connect.strip_prefix("40").expect("CONNECT"))
        .expect("CONNECT payload");
    assert!(connect["pid"].is_string(), "{connect}");
    ws.send(Message::text(r#"42["ack"]"#))
        .await
        .expect("send ack");
    // The server emits `ack` with an acknowledgement id: `42<id>["ack"]`.
    let ask = next_text(&mut ws).await;
    let id = ask
        .strip_prefix("42")
        .and_then(|rest| rest.strip_suffix(r#"["ack"]"#))
        .unwrap_or_else(|| panic!("expected an ack request, got {ask}"));
    assert!(id.parse::<u64>().is_ok(), "{ask}");
    ws.send(Message::text(format!(r#"43{id}[5,{{"test":true}}]"#)))
        .await
        .expect("send acknowledgement");
    let got_it = next_text(&mut ws).await;
    let got_it: Value =
        serde_json::from_str(got_it.strip_prefix("42").expect("an event")).expect("event payload");
    assert_eq!(got_it[0], "got it");
    assert_eq!(
        recorded(got_it.as_array().expect("args")[1..].to_vec()).len(),
        0
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn abc_emits_the_handshake_as_node_builds_it() {
    let app = spawn_app(&PROFILE).await;
    let mut client = SioClient::connect_with_auth(app.address, "/abc", Some(json!({ "a": "b" })))
        .await
        .expect("connected");
    let args = client.expect_event("handshake").await;
    let handshake = &args[0];
    assert_eq!(handshake["auth"], json!({ "a": "b" }));
    assert_eq!(handshake["query"]["EIO"], "4");
    assert_eq!(handshake["query"]["transport"], "websocket");
    assert_eq!(handshake["address"], "127.0.0.1");
    assert_eq!(handshake["secure"], false);
    assert_eq!(handshake["xdomain"], false);
    assert_eq!(handshake["headers"]["host"], app.address.to_string());
    assert!(
        handshake["url"]
            .as_str()
            .is_some_and(|url| url.starts_with("/socket.io/?EIO=4"))
    );
    assert!(handshake["issued"].as_u64().is_some());
    assert!(
        handshake["time"]
            .as_str()
            .is_some_and(|time| time.ends_with("GMT+0000 (Coordinated Universal Time)")),
        "{handshake}"
    );
    // Node's nine fields.
    let keys: Vec<&str> = handshake
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 9, "{keys:?}");
    client.close().await;
    app.stop().await.expect("clean stop");
}

// Several worker threads, as the server runs: one thread would run the handlers' tasks in the
// order they were spawned whatever the server did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_come_back_in_the_order_asked() {
    let app = spawn_app(&PROFILE).await;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.address);
    let (mut ws, _) = connect_async(url).await.expect("websocket handshake");
    next_text(&mut ws).await; // open
    ws.send(Message::text("40")).await.expect("send CONNECT");
    next_text(&mut ws).await; // CONNECT
    const COUNT: u64 = 200;
    for id in 0..COUNT {
        ws.send(Message::text(format!(r#"42{id}["echo",{id}]"#)))
            .await
            .expect("send echo");
    }
    for id in 0..COUNT {
        assert_eq!(next_text(&mut ws).await, format!("43{id}[{id}]"));
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_new_session_is_answered_after_the_fixture_delay() {
    let app = spawn_app(&PROFILE).await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let session = app.open_polling_session(&client).await;
    assert!(
        started.elapsed() >= Duration::from_millis(10),
        "{:?}",
        started.elapsed()
    );
    // The session's own requests are served as usual.
    let answer = client.post(&session).body("40").send().await.expect("post");
    assert_eq!(answer.status(), 200);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn engine_io_fixture_greets_echoes_and_sets_the_handshake_cookies() {
    let app = spawn_app(&PROFILE).await;
    let client = reqwest::Client::new();
    let base = format!("{}/engine.io/?EIO=4&transport=polling", app.url());
    let handshake = client.get(&base).send().await.expect("handshake");
    assert_eq!(handshake.status(), 200);
    let cookies: Vec<&str> = handshake
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    assert_eq!(cookies.len(), 4, "{cookies:?}");
    assert_eq!(cookies[0], "1=1; Max-Age=86400");
    assert_eq!(cookies[1], "2=2; Path=/; HttpOnly; Secure; SameSite=Strict");
    assert!(cookies[3].starts_with("4=4; Expires="), "{cookies:?}");
    let open = handshake.text().await.expect("open packet");
    let open: Value = serde_json::from_str(&open[1..]).expect("open payload");
    assert_eq!(open["pingInterval"], 500);
    assert_eq!(open["maxPayload"], 100);
    let session = format!("{base}&sid={}", open["sid"].as_str().expect("sid"));
    let poll = |url: String| {
        let client = client.clone();
        async move {
            let body = client.get(url).send().await.expect("poll");
            body.text().await.expect("poll body")
        }
    };
    assert_eq!(poll(session.clone()).await, "4hi");
    // Node's `socket.transport.dataReq.headers`: the headers of the POST carrying the message.
    let post = client
        .post(&session)
        .header("cookie", "1=1")
        .header("cookie", "2=2")
        .body("4sendHeaders")
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), 200);
    let headers = poll(session.clone()).await;
    let headers: Value = serde_json::from_str(&headers[1..]).expect("headers as JSON");
    assert_eq!(headers["cookie"], "1=1; 2=2");
    client
        .post(&session)
        .body("4give utf8")
        .send()
        .await
        .expect("post");
    assert_eq!(
        poll(session.clone()).await,
        "4пойду спать всем спокойной ночи"
    );
    client
        .post(&session)
        .body("4give binary")
        .send()
        .await
        .expect("post");
    // Binary over long-polling is base64 text: the bytes 0 to 4.
    assert_eq!(poll(session.clone()).await, "bAAECAwQ=");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn engine_io_fixture_refuses_a_handshake_that_asks_for_it() {
    let app = spawn_app(&PROFILE).await;
    let client = reqwest::Client::new();
    let denied = client
        .get(format!(
            "{}/engine.io/?EIO=4&transport=polling&deny=1",
            app.url()
        ))
        .send()
        .await
        .expect("handshake");
    assert_eq!(denied.status(), 403);
    assert!(denied.headers().get("set-cookie").is_none());
    assert_eq!(
        denied.text().await.expect("body"),
        r#"{"code":4,"message":"Forbidden"}"#
    );
    // A body over the fixture's maxHttpBufferSize (100 bytes) is refused.
    let session = app.open_polling_session_on(&client, "/engine.io/").await;
    let too_long = client
        .post(&session)
        .body(format!("4{}", "a".repeat(101)))
        .send()
        .await
        .expect("post");
    assert_eq!(too_long.status(), 413);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn engine_io_fixture_over_websocket_reads_base64_binary_and_closes_too_big_with_1009() {
    let app = spawn_app(&PROFILE).await;
    let url = format!("ws://{}/engine.io/?EIO=4&transport=websocket", app.address);
    let (mut ws, _) = connect_async(&url).await.expect("websocket");
    let mut next = async || loop {
        match timeout(WAIT, ws.next()).await.expect("a frame in time") {
            Some(Ok(Message::Text(text))) if text.as_str().starts_with('0') => continue,
            Some(Ok(frame)) => return frame,
            other => panic!("connection ended: {other:?}"),
        }
    };
    assert_eq!(next().await, Message::text("4hi"));
    // A client with `forceBase64` sends binary as base64 text: the bytes 0 to 4, echoed as a
    // binary frame.
    ws.send(Message::text("bAAECAwQ=")).await.expect("send");
    let echoed = loop {
        match timeout(WAIT, ws.next()).await.expect("a frame in time") {
            Some(Ok(Message::Binary(data))) => break data,
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    };
    assert_eq!(&echoed[..], &[0, 1, 2, 3, 4]);
    // Over the fixture's maxHttpBufferSize (100 bytes): close code 1009, as Node's `ws` sends.
    ws.send(Message::text(format!("4{}", "a".repeat(200))))
        .await
        .expect("send");
    assert_eq!(close_code_within(&mut ws, WAIT).await, Some(1009));
    app.stop().await.expect("clean stop");
}

/// As in Node, a socket's id is its own in each namespace, neither the Engine.IO session's nor
/// another namespace's, events reach the socket by it, and a socket that leaves and comes
/// back gets a new one.
#[tokio::test]
async fn each_namespace_gives_its_socket_an_id_of_its_own() {
    let app = spawn_app(&PROFILE).await;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.address);
    let (mut ws, _) = connect_async(&url).await.expect("websocket");
    let open = next_text(&mut ws).await;
    let open: Value =
        serde_json::from_str(open.strip_prefix('0').expect("open packet")).expect("open payload");
    let session = open["sid"].as_str().expect("session id").to_owned();

    async fn connected<S>(ws: &mut S, prefix: &str) -> String
    where
        S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + SinkExt<Message>
            + Unpin,
    {
        let _ = ws.send(Message::text(format!("40{prefix}"))).await;
        let answer = next_text(ws).await;
        let body = answer
            .strip_prefix(&format!("40{prefix}"))
            .unwrap_or_else(|| panic!("expected a CONNECT answer, got {answer}"));
        let payload: Value = serde_json::from_str(body).expect("connect payload");
        payload["sid"].as_str().expect("socket id").to_owned()
    }
    async fn asked_id<S>(ws: &mut S, prefix: &str, ack: u32) -> String
    where
        S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + SinkExt<Message>
            + Unpin,
    {
        let _ = ws
            .send(Message::text(format!("42{prefix}{ack}[\"getId\"]")))
            .await;
        let answer = next_text(ws).await;
        let body = answer
            .strip_prefix(&format!("43{prefix}{ack}"))
            .unwrap_or_else(|| panic!("expected the ack, got {answer}"));
        let args: Vec<String> = serde_json::from_str(body).expect("ack arguments");
        args.into_iter().next().expect("one argument")
    }

    let main = connected(&mut ws, "").await;
    let foo = connected(&mut ws, "/foo,").await;
    assert_ne!(main, session);
    assert_ne!(foo, session);
    assert_ne!(main, foo);
    assert_eq!(asked_id(&mut ws, "", 1).await, main);
    assert_eq!(asked_id(&mut ws, "/foo,", 2).await, foo);

    ws.send(Message::text("41/foo,")).await.expect("send");
    let again = connected(&mut ws, "/foo,").await;
    assert_ne!(again, foo);
    assert_ne!(again, session);
    assert_eq!(asked_id(&mut ws, "/foo,", 3).await, again);
    assert_eq!(asked_id(&mut ws, "", 4).await, main);
    app.stop().await.expect("clean stop");
}

/// The arguments of an event sent with recovery on, without the offset the server appends (as
/// Node does) for the client to give back when it reconnects.
fn recorded(mut args: Vec<Value>) -> Vec<Value> {
    let offset = args.pop();
    assert!(
        offset.as_ref().is_some_and(Value::is_string),
        "no offset after {args:?}"
    );
    args
}

/// The next text frame, answering Engine.IO pings.
async fn next_text<S>(ws: &mut S) -> String
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + SinkExt<Message>
        + Unpin,
{
    timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                    let _ = ws.send(Message::text("3")).await;
                }
                Some(Ok(Message::Text(text))) => return text.to_string(),
                Some(Ok(_)) => {}
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a frame in time")
}
