//! `--profile conformance` where the official protocol suites race the server: a long-poll the
//! client gives up, over real TCP connections.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app};

/// Sends a long-poll on its own connection and closes the connection `after` the request.
async fn give_up_poll(app: &TestApp, path: &str, sid: &str, after: Duration) {
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    let request = format!(
        "GET {path}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {}\r\n\r\n",
        app.address
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write the poll");
    tokio::time::sleep(after).await;
    drop(stream);
}

/// A client that closes the connection of its pending long-poll ends its session, as with
/// Node's engine.io: the next poll gets 400. The profile's first ping comes 300 ms after the
/// handshake, so a session still open would answer the next poll with it, 200.
///
/// The connection is closed both while the poll waits and right after the request is written,
/// when the request and the close reach the server together.
#[tokio::test]
async fn a_poll_given_up_ends_the_session() {
    let app = spawn_app(&["--profile", "conformance"]).await;
    let client = reqwest::Client::new();
    for path in ["/engine.io/", "/socket.io/"] {
        for after in [Duration::ZERO, Duration::from_millis(20)] {
            let sid = app.polling_sid(&client, path).await;
            give_up_poll(&app, path, &sid, after).await;
            // Leave the server time to see the close, so that the next poll is not refused
            // only for overlapping the first one.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let next = client
                .get(format!(
                    "{}{path}?EIO=4&transport=polling&sid={sid}",
                    app.url()
                ))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .expect("next poll");
            assert_eq!(
                next.status(),
                400,
                "{path}: poll closed {after:?} after its request"
            );
        }
    }
    app.stop().await.expect("clean stop");
}
