//! `--worker-threads`: the binary runs the threads it is given, and serves on a single one.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use crate::client::SioClient;
use crate::helpers::ServerProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_the_worker_threads_it_is_given() {
    // The main thread drives the single-threaded scheduler; a multi-threaded one adds its
    // workers beside the main thread.
    for (flag, threads) in [("1", 1), ("3", 4)] {
        let server = ServerProcess::start(&["--worker-threads", flag]).await;
        assert_eq!(server.threads(), threads, "--worker-threads {flag}");
    }
}

/// On one thread, a room broadcast reaches every member and acks still come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_thread_serves_rooms_and_acks() {
    let server = ServerProcess::start(&["--worker-threads", "1"]).await;
    let mut members = join_all((0..200).map(|_| SioClient::connect(server.address, "/"))).await;
    for member in &mut members {
        let ack = member.emit_with_ack("join", &[json!("lobby")]).await;
        assert!(ack[0]["size"].as_u64().is_some(), "join acked: {ack:?}");
    }
    let mut publisher = SioClient::connect(server.address, "/").await;
    for n in 0..20 {
        let ack = publisher
            .emit_with_ack("chat", &[json!({"room": "lobby", "text": n.to_string()})])
            .await;
        assert_eq!(ack, [json!({"ok": true})]);
    }
    let received = join_all(members.iter_mut().map(|member| async move {
        let mut texts = Vec::new();
        for _ in 0..20 {
            texts.push(member.expect_event("chat").await[0]["text"].clone());
        }
        texts
    }))
    .await;
    let sent: Vec<_> = (0..20).map(|n| json!(n.to_string())).collect();
    for texts in received {
        assert_eq!(texts, sent, "every member gets every message, in order");
    }
    assert_eq!(
        publisher
            .maybe_event("chat", Duration::from_millis(200))
            .await,
        None,
        "the publisher is not in the room"
    );
    assert_eq!(server.threads(), 1);
    for member in members {
        member.close().await;
    }
    publisher.close().await;
}
