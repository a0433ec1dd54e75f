//! The Admin UI's namespace, driven as `@socket.io/admin-ui` drives it: login refused and
//! accepted, a session reused, the socket list and its live updates, `server_stats`, and the
//! actions' effect on a real client. The UI's files at `/admin/`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{Packet, SioClient, WAIT};
use crate::helpers::{TestApp, spawn_app};
use crate::redis_server::RedisServer;

const PASSWORD: &str = "correct horse";

/// A node with the Admin UI behind a password (bcrypt at its lowest cost, to keep tests fast).
async fn admin_app(extra: &[&str]) -> TestApp {
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt hash");
    let mut flags = vec!["--admin-ui", "--admin-ui-password-hash", hash.as_str()];
    flags.extend_from_slice(extra);
    spawn_app(&flags).await
}

async fn log_in(app: &TestApp, auth: Value) -> Result<SioClient, Packet> {
    SioClient::connect_with_auth(app.address, "/admin", Some(auth)).await
}

/// The next `event` about socket `id` (the UI's own socket shows up in the updates too); the
/// `server_stats` every 2 s must not keep a missing one waiting forever.
async fn expect_about(admin: &mut SioClient, event: &str, id: &str) -> Vec<Value> {
    let about = async {
        loop {
            let args = admin.expect_event(event).await;
            if args.iter().any(|arg| arg == id || arg["id"] == id) {
                return args;
            }
        }
    };
    tokio::time::timeout(WAIT, about)
        .await
        .unwrap_or_else(|_| panic!("no {event} about {id}"))
}

fn password_login() -> Value {
    json!({ "username": "admin", "password": PASSWORD })
}

#[tokio::test]
async fn wrong_credentials_are_refused_as_node_refuses_them() {
    let app = admin_app(&[]).await;
    for auth in [
        json!({ "username": "admin", "password": "wrong" }),
        json!({ "username": "root", "password": PASSWORD }),
        json!({ "sessionId": "0123456789abcdef" }),
        json!({}),
    ] {
        let refusal = log_in(&app, auth.clone()).await.err();
        assert_eq!(
            refusal,
            Some(Packet::ConnectError(
                json!({ "message": "invalid credentials" })
            )),
            "{auth}"
        );
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_login_opens_a_session_the_ui_reconnects_with() {
    let app = admin_app(&[]).await;
    let mut admin = log_in(&app, password_login()).await.expect("accepted");
    let session = admin.expect_event("session").await;
    let id = session[0].as_str().expect("session id").to_owned();
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let config = admin.expect_event("config").await;
    assert_eq!(
        config[0]["supportedFeatures"],
        json!([
            "EMIT",
            "JOIN",
            "LEAVE",
            "DISCONNECT",
            "MJOIN",
            "MLEAVE",
            "MDISCONNECT",
            "AGGREGATED_EVENTS",
            "ALL_EVENTS"
        ])
    );
    let sockets = admin.expect_event("all_sockets").await;
    let listed = sockets[0].as_array().expect("a list");
    let me = listed
        .iter()
        .find(|socket| socket["id"] == admin.sid.as_str())
        .expect("the admin socket is listed, as in Node");
    assert_eq!(me["nsp"], "/admin");
    assert_eq!(me["transport"], "websocket");
    assert_eq!(me["handshake"]["query"]["EIO"], "4");

    let mut again = log_in(&app, json!({ "sessionId": id }))
        .await
        .expect("the session lets the UI back in");
    again.expect_event("config").await;
    assert!(
        again
            .maybe_event("session", Duration::from_millis(300))
            .await
            .is_none(),
        "no new session for a session login"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_ui_sees_sockets_come_and_go_and_their_events() {
    let app = admin_app(&[]).await;
    let mut admin = log_in(&app, password_login()).await.expect("accepted");
    admin.expect_event("all_sockets").await;

    let mut client = SioClient::connect(app.address, "/").await;
    let sid = client.sid.clone();
    let connected = expect_about(&mut admin, "socket_connected", &client.sid).await;
    assert_eq!(connected[0]["nsp"], "/");
    assert!(
        connected[1]
            .as_str()
            .is_some_and(|date| date.ends_with('Z'))
    );

    client.emit_with_ack("join", &[json!("lobby")]).await;
    let joined = expect_about(&mut admin, "room_joined", &sid).await;
    assert_eq!(
        &joined[..3],
        &[json!("/"), json!("lobby"), json!(client.sid)]
    );
    let received = expect_about(&mut admin, "event_received", &sid).await;
    assert_eq!(
        &received[..3],
        &[json!("/"), json!(client.sid), json!(["join", "lobby"])]
    );

    client.close().await;
    let disconnected = expect_about(&mut admin, "socket_disconnected", &sid).await;
    assert_eq!(
        &disconnected[..3],
        &[json!("/"), json!(sid), json!("transport close")]
    );
    // It leaves every room, its own included, as Node's adapter announces.
    let mut left = Vec::new();
    for _ in 0..2 {
        left.push(expect_about(&mut admin, "room_left", &sid).await[1].clone());
    }
    left.sort_by_key(|room| room != "lobby");
    assert_eq!(left, [json!("lobby"), json!(sid)]);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn server_stats_describe_the_node() {
    let app = admin_app(&["--admin-ui-server-id", "node-a"]).await;
    let _client = SioClient::connect(app.address, "/chat").await;
    let mut admin = log_in(&app, password_login()).await.expect("accepted");
    let stats = admin.expect_event("server_stats").await;
    let stats = &stats[0];
    assert_eq!(stats["serverId"], "node-a");
    assert!(stats["hostname"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(stats["pid"], std::process::id());
    assert!(stats["uptime"].as_f64().is_some());
    assert!(stats["clientsCount"].as_u64().is_some());
    assert!(stats["pollingClientsCount"].as_u64().is_some());
    let namespaces = stats["namespaces"].as_array().expect("namespaces");
    let chat = namespaces
        .iter()
        .find(|namespace| namespace["name"] == "/chat")
        .expect("/chat listed");
    assert_eq!(chat["socketsCount"], 1);
    let events = stats["aggregatedEvents"].as_array().expect("events");
    assert!(
        events
            .iter()
            .all(|event| event["timestamp"].as_u64().is_some_and(|t| t % 1000 == 0)),
        "{events:?}"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn actions_reach_the_clients() {
    let app = admin_app(&[]).await;
    let mut admin = log_in(&app, password_login()).await.expect("accepted");
    admin.expect_event("all_sockets").await;
    let mut client = SioClient::connect(app.address, "/").await;
    let sid = client.sid.clone();

    admin
        .emit("join", &[json!("/"), json!("vip"), json!(sid)])
        .await;
    let joined = expect_about(&mut admin, "room_joined", &sid).await;
    assert_eq!(&joined[..3], &[json!("/"), json!("vip"), json!(sid)]);

    admin
        .emit(
            "emit",
            &[
                json!("/"),
                json!("vip"),
                json!("notice"),
                json!({ "n": 1 }),
                json!(2),
            ],
        )
        .await;
    assert_eq!(
        client.expect_event("notice").await,
        [json!({ "n": 1 }), json!(2)]
    );

    // Malformed actions are ignored, and the namespace keeps working.
    admin.emit("join", &[json!(7)]).await;
    admin.emit("emit", &[]).await;

    admin
        .emit("leave", &[json!("/"), json!("vip"), Value::Null])
        .await;
    let left = expect_about(&mut admin, "room_left", &sid).await;
    assert_eq!(&left[..3], &[json!("/"), json!("vip"), json!(sid)]);

    admin
        .emit("_disconnect", &[json!("/"), json!(false), json!(sid)])
        .await;
    client.expect_disconnect().await;
    let disconnected = expect_about(&mut admin, "socket_disconnected", &sid).await;
    assert_eq!(
        &disconnected[..3],
        &[json!("/"), json!(sid), json!("server namespace disconnect")]
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn production_mode_sends_statistics_only() {
    let app = admin_app(&["--admin-ui-mode", "production"]).await;
    let mut admin = log_in(&app, password_login()).await.expect("accepted");
    let config = admin.expect_event("config").await;
    assert!(
        !config[0]["supportedFeatures"]
            .as_array()
            .expect("features")
            .contains(&json!("ALL_EVENTS"))
    );
    let _client = SioClient::connect(app.address, "/").await;
    admin.expect_event("server_stats").await;
    assert!(
        admin
            .maybe_event("socket_connected", Duration::from_millis(300))
            .await
            .is_none()
    );
    assert!(
        admin
            .maybe_event("all_sockets", Duration::from_millis(10))
            .await
            .is_none()
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_ui_is_served_at_admin_only_with_the_flag() {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let app = admin_app(&[]).await;
    let redirect = http
        .get(format!("{}/admin", app.url()))
        .send()
        .await
        .expect("response");
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/admin/");
    // The test site holds no UI build: the page says how to build it.
    let page = http
        .get(format!("{}/admin/", app.url()))
        .send()
        .await
        .expect("response");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("body").contains("Admin UI"));
    app.stop().await.expect("clean stop");

    let app = spawn_app(&[]).await;
    for path in ["/admin", "/admin/", "/admin/index.html"] {
        let off = http
            .get(format!("{}{path}", app.url()))
            .send()
            .await
            .expect("response");
        assert_eq!(off.status(), 404, "{path}");
    }
    assert!(
        SioClient::try_connect(app.address, "/admin").await.is_err(),
        "no admin namespace without the flag"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn with_redis_the_ui_sees_every_node_and_keeps_its_session() {
    let redis = RedisServer::start();
    let url = redis.url();
    let node_a = admin_app(&["--redis-url", &url, "--admin-ui-server-id", "a"]).await;
    let node_b = admin_app(&["--redis-url", &url, "--admin-ui-server-id", "b"]).await;

    let mut first = log_in(&node_a, password_login()).await.expect("accepted");
    let session = first.expect_event("session").await;
    let mut admin = log_in(&node_b, json!({ "sessionId": session[0] }))
        .await
        .expect("a session opened on one node lets the UI in on another");

    let servers = async {
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 2 {
            let stats = admin.expect_event("server_stats").await;
            seen.insert(stats[0]["serverId"].as_str().unwrap_or_default().to_owned());
        }
        seen
    };
    let seen = tokio::time::timeout(Duration::from_secs(10), servers)
        .await
        .expect("both nodes' statistics");
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);

    let mut client = SioClient::connect(node_a.address, "/").await;
    let sid = client.sid.clone();
    let connected = expect_about(&mut admin, "socket_connected", &sid).await;
    assert_eq!(connected[0]["nsp"], "/");

    admin
        .emit("join", &[json!("/"), json!("vip"), json!(sid)])
        .await;
    expect_about(&mut admin, "room_joined", &sid).await;
    admin
        .emit(
            "emit",
            &[json!("/"), json!("vip"), json!("notice"), json!("from b")],
        )
        .await;
    let notice = tokio::time::timeout(WAIT, client.expect_event("notice"));
    assert_eq!(notice.await.expect("notice in time"), [json!("from b")]);

    let mut again = log_in(&node_b, json!({ "sessionId": session[0] }))
        .await
        .expect("accepted");
    let listed = again.expect_event("all_sockets").await;
    let remote = listed[0]
        .as_array()
        .expect("a list")
        .iter()
        .find(|socket| socket["id"] == sid.as_str())
        .cloned()
        .expect("a socket of the other node is listed");
    let rooms = remote["rooms"].as_array().expect("rooms");
    assert!(rooms.contains(&json!("vip")), "{remote}");
    for node in [node_a, node_b] {
        node.stop().await.expect("clean stop");
    }
}
