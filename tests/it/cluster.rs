//! Several nodes sharing rooms through a real Redis, and what happens when Redis goes away.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::SioClient;
use crate::helpers::{TestApp, spawn_app};
use crate::redis_server::RedisServer;

const QUIET: Duration = Duration::from_millis(400);

async fn nodes(redis: &RedisServer, count: usize, extra: &[&str]) -> Vec<TestApp> {
    let url = redis.url();
    let mut nodes = Vec::new();
    for _ in 0..count {
        let mut flags = vec!["--redis-url", url.as_str()];
        flags.extend_from_slice(extra);
        nodes.push(spawn_app(&flags).await);
    }
    nodes
}

async fn health(node: &TestApp) -> Value {
    reqwest::get(format!("{}/healthz", node.url()))
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json")
}

/// Polls `/healthz` until `check` holds, returning how long it took.
async fn wait_for_health(
    node: &TestApp,
    limit: Duration,
    check: impl Fn(&Value) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let body = health(node).await;
        if check(&body) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "health never matched within {limit:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads every `chat` a client gets within the quiet period.
async fn chats(client: &mut SioClient) -> Vec<Value> {
    let mut received = Vec::new();
    while let Some(args) = client.maybe_event("chat", QUIET).await {
        received.push(args[0].clone());
    }
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_broadcasts_reach_members_on_every_node_exactly_once() {
    let redis = RedisServer::start();
    let nodes = nodes(&redis, 3, &[]).await;
    let mut members = Vec::new();
    for node in &nodes {
        let mut member = SioClient::connect(node.address, "/").await;
        member.emit_with_ack("join", &[json!("room-a")]).await;
        members.push(member);
    }
    let mut outsider = SioClient::connect(nodes[1].address, "/").await;
    outsider.emit_with_ack("join", &[json!("room-b")]).await;

    // The join ack counts members across the cluster.
    let mut late = SioClient::connect(nodes[2].address, "/").await;
    let ack = late.emit_with_ack("join", &[json!("room-a")]).await;
    assert_eq!(ack, [json!({"room": "room-a", "size": 4})]);
    members.push(late);

    members[0]
        .emit_with_ack("chat", &[json!({"room": "room-a", "text": "across"})])
        .await;
    for (i, member) in members.iter_mut().enumerate() {
        let got = chats(member).await;
        assert_eq!(got.len(), 1, "member {i} got {got:?}");
        assert_eq!(got[0]["text"], "across");
    }
    assert_eq!(chats(&mut outsider).await, Vec::<Value>::new());

    // Namespace-wide chat: everyone once, wherever they are connected.
    outsider
        .emit_with_ack("chat", &[json!({"text": "all"})])
        .await;
    for member in members.iter_mut().chain(std::iter::once(&mut outsider)) {
        let got = chats(member).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["room"], Value::Null);
    }
    for node in nodes {
        assert_eq!(health(&node).await["adapter"], "redis");
        node.stop().await.expect("clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lists_members_of_every_node() {
    let redis = RedisServer::start();
    let nodes = nodes(&redis, 3, &[]).await;
    let mut clients = Vec::new();
    for node in &nodes {
        clients.push(SioClient::connect(node.address, "/chat").await);
    }
    for client in &mut clients {
        client.emit_with_ack("join", &[json!("lobby")]).await;
    }
    let mut all: Vec<String> = clients.iter().map(|c| c.sid.clone()).collect();
    all.sort();
    // The last presence each member sees lists all three.
    let expected = json!({"room": "lobby", "members": all});
    for client in &mut clients {
        let mut last = Value::Null;
        while let Some(args) = client.maybe_event("presence", QUIET).await {
            last = args[0].clone();
        }
        assert_eq!(last, expected);
    }
    let leaving = clients.remove(0);
    let gone = leaving.sid.clone();
    leaving.close().await;
    let remaining: Vec<String> = all.into_iter().filter(|sid| *sid != gone).collect();
    for client in &mut clients {
        let update = client.expect_event("presence").await;
        assert_eq!(update[0]["members"], json!(remaining));
    }
    for node in nodes {
        node.stop().await.expect("clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_ticks_only_its_own_sockets() {
    let redis = RedisServer::start();
    let nodes = nodes(&redis, 3, &["--tick-interval-ms", "200"]).await;
    let mut client = SioClient::connect(nodes[0].address, "/").await;
    let started = Instant::now();
    let mut ticks = 0;
    while started.elapsed() < Duration::from_millis(1_100) {
        if let Some(args) = client
            .maybe_event("message", Duration::from_millis(100))
            .await
        {
            ticks += usize::from(args[0].is_u64());
        }
    }
    // Five ticks in 1.1 s from one node; three nodes through the adapter would give ~15.
    assert!((3..=7).contains(&ticks), "got {ticks} ticks");
    for node in nodes {
        node.stop().await.expect("clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_keeps_local_delivery_and_recovers() {
    let mut redis = RedisServer::start();
    let nodes = nodes(&redis, 2, &[]).await;
    let mut here_a = SioClient::connect(nodes[0].address, "/").await;
    let mut here_b = SioClient::connect(nodes[0].address, "/").await;
    let mut there = SioClient::connect(nodes[1].address, "/").await;
    for client in [&mut here_a, &mut here_b, &mut there] {
        client.emit_with_ack("join", &[json!("r")]).await;
    }
    assert_eq!(health(&nodes[0]).await["redis"]["reachable"], true);

    redis.stop();
    wait_for_health(&nodes[0], Duration::from_secs(5), |h| {
        h["status"] == "degraded"
    })
    .await;
    let body = health(&nodes[0]).await;
    assert_eq!(body["redis"]["reachable"], false);

    // Same-node members still get room broadcasts; the other node's member gets nothing.
    let ack = here_a
        .emit_with_ack("chat", &[json!({"room": "r", "text": "during"})])
        .await;
    assert_eq!(ack, [json!({"ok": true})]);
    assert_eq!(chats(&mut here_a).await.len(), 1);
    assert_eq!(chats(&mut here_b).await.len(), 1);
    assert_eq!(chats(&mut there).await, Vec::<Value>::new());
    let dropped = health(&nodes[0]).await["redis"]["dropped_messages"]
        .as_u64()
        .expect("count");
    assert!(
        dropped >= 1,
        "the dropped cross-node message must be counted"
    );

    redis.restart();
    let recovery =
        wait_for_health(&nodes[0], Duration::from_secs(5), |h| h["status"] == "ok").await;
    wait_for_health(&nodes[1], Duration::from_secs(5), |h| h["status"] == "ok").await;
    eprintln!("recovered {recovery:?} after Redis accepted connections again");

    here_a
        .emit_with_ack("chat", &[json!({"room": "r", "text": "after"})])
        .await;
    for client in [&mut here_a, &mut here_b, &mut there] {
        let got = chats(client).await;
        assert_eq!(got.len(), 1, "exactly once after recovery: {got:?}");
        assert_eq!(got[0]["text"], "after");
    }
    for node in nodes {
        node.stop().await.expect("clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_redis_starts_degraded_and_joins_when_redis_appears() {
    let mut redis = RedisServer::start();
    redis.stop();
    let url = redis.url();
    let node = spawn_app(&["--redis-url", &url, "--redis-optional"]).await;
    let body = health(&node).await;
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["redis"]["reachable"], false);
    // The node serves its own sockets meanwhile.
    let mut client = SioClient::connect(node.address, "/").await;
    assert_eq!(
        client.emit_with_ack("join", &[json!("solo")]).await[0]["size"],
        1
    );
    redis.restart();
    wait_for_health(&node, Duration::from_secs(5), |h| h["status"] == "ok").await;
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_carries_room_broadcasts_over_sharded_pub_sub() {
    let cluster = crate::redis_server::RedisCluster::start();
    let url = cluster.url();
    let first = spawn_app(&["--redis-url", &url]).await;
    let second = spawn_app(&["--redis-url", &url]).await;
    let mut a = SioClient::connect(first.address, "/").await;
    let mut b = SioClient::connect(second.address, "/").await;
    a.emit_with_ack("join", &[json!("sharded")]).await;
    let ack = b.emit_with_ack("join", &[json!("sharded")]).await;
    assert_eq!(ack, [json!({"room": "sharded", "size": 2})]);
    a.emit_with_ack("chat", &[json!({"room": "sharded", "text": "via cluster"})])
        .await;
    for client in [&mut a, &mut b] {
        let got = chats(client).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["text"], "via cluster");
    }
    let body = health(&first).await;
    assert_eq!(body["adapter"], "redis");
    assert_eq!(body["redis"]["reachable"], true);
    first.stop().await.expect("clean stop");
    second.stop().await.expect("clean stop");
}

/// Connection state recovery over a Redis Cluster: a client that leaves one node comes back to
/// another with its session id and last offset, and gets its id and the chats it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_recovers_on_another_node_over_a_redis_cluster() {
    let cluster = crate::redis_server::RedisCluster::start();
    let url = cluster.url();
    let flags = [
        "--redis-url",
        url.as_str(),
        "--connection-state-recovery",
        "--tick-interval-ms",
        "0",
    ];
    let first = spawn_app(&flags).await;
    let second = spawn_app(&flags).await;
    let mut leaving = SioClient::connect(first.address, "/").await;
    let pid = leaving
        .pid
        .clone()
        .expect("a session id in the CONNECT answer");
    let mut sender = SioClient::connect(second.address, "/").await;
    leaving.emit_with_ack("join", &[json!("kept")]).await;
    sender.emit_with_ack("join", &[json!("kept")]).await;
    sender
        .emit_with_ack("chat", &[json!({"room": "kept", "text": "seen"})])
        .await;
    let seen = leaving.expect_event("chat").await;
    let offset = seen
        .last()
        .and_then(Value::as_str)
        .expect("an offset after the chat")
        .to_owned();
    let id = leaving.sid.clone();
    leaving.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for text in ["one", "two", "three"] {
        sender
            .emit_with_ack("chat", &[json!({"room": "kept", "text": text})])
            .await;
    }
    let auth = json!({ "pid": pid, "offset": offset });
    let mut back = SioClient::connect_with_auth(second.address, "/", Some(auth))
        .await
        .expect("recovered");
    assert_eq!(back.sid, id, "the same socket id on the other node");
    let missed: Vec<Value> = chats(&mut back)
        .await
        .into_iter()
        .map(|chat| chat["text"].clone())
        .collect();
    assert_eq!(missed, ["one", "two", "three"]);
    first.stop().await.expect("clean stop");
    second.stop().await.expect("clean stop");
}
