//! The server side of the official Socket.IO Admin UI (`@socket.io/admin-ui` 0.5), on the
//! `--admin-ui-namespace` (`/admin`), so that the unchanged UI, served at `/admin/`, shows this
//! node's sockets and acts on them. It follows the Node package's `instrument()`:
//!
//! - a connect middleware lets in a valid session or the configured credentials ([`login`],
//!   [`sessions`]), never the app's checks (tokens, webhooks);
//! - a socket that gets in is sent `session` (after a password login), `config` with the
//!   supported features and, in development mode, `all_sockets`; its `emit`, `join`, `leave`
//!   and `_disconnect` act on the sockets of any namespace ([`actions`]);
//! - every node broadcasts `server_stats` to the namespace every 2 s ([`stats`]), and in
//!   development mode the live updates the relay's hooks queue
//!   ([`crate::relay::admin_feed`]); with Redis the adapter carries both to the UI whatever
//!   node it is connected to.
//!
//! Without `--admin-ui` none of this is registered and the relay's hooks are `None`.

mod actions;
mod login;
mod sessions;
mod stats;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use futures_util::future::join_all;
use serde::Serialize;
use serde::ser::SerializeTuple;
use serde_json::{Map, Value as Json, json};
use socketioxide::SocketIo;
use socketioxide::TransportType;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::{DisconnectReason, Sid};
use socketioxide_core::adapter::DefinedAdapter;
use tokio::sync::mpsc;

use self::actions::Admin;
use self::login::{Admitted, InvalidCredentials, Login};
use self::stats::StatsSource;
use crate::config::{AdminUiMode, Config, ProxyNetwork};
use crate::http::connections::forwarded_client;
use crate::relay::Relay;
use crate::relay::admin_feed::{self, AdminUpdate};
use crate::relay::admission::Seat;
use crate::relay::client::ClientState;
use crate::relay::membership::RoomChange;
use crate::relay::payload::EventArgs;
use crate::socketio::reason_name;

/// Interval of `server_stats`, as in the Node package.
const STATS_INTERVAL: Duration = Duration::from_secs(2);
/// How often sockets still on long-polling are checked for their upgrade to WebSocket.
const UPGRADE_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// What every admin socket's handlers share.
struct AdminNamespace {
    relay: Arc<Relay>,
    login: Login,
    /// The features `config` announces.
    features: Vec<&'static str>,
    /// Development mode: the socket list and its live updates.
    live: bool,
    trust_proxy: Vec<ProxyNetwork>,
}

/// An admin socket's own state.
struct AdminClient {
    address: IpAddr,
    seat: Seat,
    /// The session opened by this socket's password login, to send as `session`.
    new_session: Option<String>,
}

/// Registers the admin namespace when `--admin-ui` is on and starts its broadcasts; returns
/// the namespace's adapter initialisation, which the caller drives with the others.
pub(crate) fn register<A: DefinedAdapter + Adapter>(
    io: &SocketIo<A>,
    config: &Config,
    relay: &Arc<Relay>,
) -> Option<A::InitRes> {
    if !config.admin_ui {
        return None;
    }
    let live = config.admin_ui_mode == AdminUiMode::Development;
    let mut features = vec![
        "EMIT",
        "JOIN",
        "LEAVE",
        "DISCONNECT",
        "MJOIN",
        "MLEAVE",
        "MDISCONNECT",
        "AGGREGATED_EVENTS",
    ];
    if live {
        features.push("ALL_EVENTS");
    }
    if config.admin_ui_no_auth {
        tracing::warn!("Admin UI authentication is off (--admin-ui-no-auth)");
    }
    let admin = Arc::new(AdminNamespace {
        relay: relay.clone(),
        login: Login::from_config(config),
        features,
        live,
        trust_proxy: config.trust_proxy.clone(),
    });
    let namespace = config.admin_ui_namespace.clone();
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let source = StatsSource::new(config.admin_ui_server_id.clone(), relay);
            runtime.spawn(broadcast_stats(
                io.clone(),
                relay.clone(),
                namespace.clone(),
                source,
            ));
            if let Some(updates) = relay.admin.as_ref().and_then(|feed| feed.take_updates()) {
                runtime.spawn(broadcast_updates(io.clone(), namespace.clone(), updates));
            }
        }
        Err(_) => tracing::error!("no runtime: the Admin UI gets no statistics or live updates"),
    }
    tracing::info!(namespace, mode = ?config.admin_ui_mode, "Admin UI enabled at /admin/");
    let middleware = {
        let admin = admin.clone();
        move |socket: SocketRef<A>, TryData(auth): TryData<Json>| {
            let admin = admin.clone();
            async move { authenticate(&admin, &socket, auth.unwrap_or(Json::Null)).await }
        }
    };
    let on_connect = move |socket: SocketRef<A>, io: SocketIo<A>| {
        let admin = admin.clone();
        async move { connected(&admin, socket, io).await }
    };
    Some(io.ns(namespace, on_connect.with(middleware)))
}

/// The connect middleware: lets in a valid session or the right credentials, and registers the
/// actions before the CONNECT is acknowledged (so an action sent right away finds them).
async fn authenticate<A: Adapter>(
    admin: &Arc<AdminNamespace>,
    socket: &SocketRef<A>,
    auth: Json,
) -> Result<(), InvalidCredentials> {
    let address = client_address(socket, &admin.trust_proxy);
    let admitted = admin.login.check(&auth, address).await?;
    let new_session = match admitted {
        Admitted::NewSession(id) => Some(id),
        Admitted::Open | Admitted::Session => None,
    };
    socket.extensions.insert(Arc::new(AdminClient {
        address,
        seat: Seat::default(),
        new_session,
    }));
    // As every Node socket, an admin socket is in the room named after its id.
    socket.join(socket.id.to_string());
    register_actions(admin, socket);
    socket.on_disconnect({
        let admin = admin.clone();
        move |socket: SocketRef<A>, reason: DisconnectReason| async move {
            if let Some(client) = socket.extensions.get::<Arc<AdminClient>>() {
                admin.relay.admissions.leave_seat(&client.seat);
            }
            if let Some(feed) = &admin.relay.admin {
                feed.socket_disconnected(&socket, reason_name(reason));
            }
        }
    });
    Ok(())
}

/// Registers the handlers of the UI's actions.
fn register_actions<A: Adapter>(admin: &Arc<AdminNamespace>, socket: &SocketRef<A>) {
    for action in ["emit", "join", "leave", "_disconnect"] {
        let admin = admin.clone();
        socket.on(
            action,
            move |socket: SocketRef<A>, io: SocketIo<A>, TryData(args): TryData<EventArgs>| async move {
                let Some(client) = socket.extensions.get::<Arc<AdminClient>>() else {
                    return;
                };
                let who = Admin {
                    sid: socket.id.as_str(),
                    address: client.address,
                };
                let Ok(args) = args else {
                    tracing::info!(admin = who.sid, address = %who.address, action, "Admin UI action with undecodable arguments ignored");
                    return;
                };
                let relay = &admin.relay;
                match action {
                    "emit" => actions::emit(relay, &io, who, args).await,
                    "join" => actions::change_rooms(relay, &io, who, args, RoomChange::Join).await,
                    "leave" => actions::change_rooms(relay, &io, who, args, RoomChange::Leave).await,
                    _ => actions::disconnect(relay, &io, who, args).await,
                }
            },
        );
    }
}

/// The connect handler: `session`, `config` and, in development mode, `all_sockets`.
async fn connected<A: Adapter>(admin: &AdminNamespace, socket: SocketRef<A>, io: SocketIo<A>) {
    let Some(client) = socket.extensions.get::<Arc<AdminClient>>() else {
        return;
    };
    admin.relay.admissions.take_seat(&client.seat);
    tracing::info!(sid = %socket.id, address = %client.address, "Admin UI connected");
    if let Some(feed) = &admin.relay.admin {
        feed.socket_connected(&socket, Map::new());
    }
    if let Some(id) = &client.new_session {
        send(&socket, "session", id);
    }
    send(
        &socket,
        "config",
        &json!({ "supportedFeatures": admin.features }),
    );
    if admin.live {
        let sockets = all_sockets(&io).await;
        send(&socket, "all_sockets", &sockets);
    }
}

fn send<A: Adapter, T: Serialize + ?Sized>(socket: &SocketRef<A>, event: &str, data: &T) {
    if let Err(error) = socket.emit(event, data) {
        tracing::debug!(sid = %socket.id, event, %error, "Admin UI message not sent");
    }
}

/// The sockets of every namespace on every node, as the UI lists them.
async fn all_sockets<A: Adapter>(io: &SocketIo<A>) -> Vec<Json> {
    let mut listed = Vec::new();
    for namespace in io.nsps() {
        let path = namespace.ns_path().to_owned();
        let sockets = match namespace.clone().fetch_sockets().await {
            Ok(sockets) => sockets,
            Err(error) => {
                // The other nodes did not all answer: list this node's sockets at least.
                tracing::warn!(ns = path, %error, "Admin UI socket list limited to this node");
                let local = namespace.local().sockets();
                listed.extend(local.iter().map(|socket| serialize_local(socket)));
                continue;
            }
        };
        let remote = sockets.into_iter().map(|socket| {
            let local = namespace.get_socket(socket.data().id);
            let path = path.clone();
            async move {
                match local {
                    Some(local) => serialize_local(&local),
                    None => {
                        let rooms = socket
                            .rooms()
                            .await
                            .map(|rooms| rooms.into_iter().map(|room| room.to_string()).collect())
                            .unwrap_or_default();
                        admin_feed::serialize_remote(socket.data().id.as_str(), &path, rooms)
                    }
                }
            }
        });
        listed.extend(join_all(remote).await);
    }
    listed
}

fn serialize_local<A: Adapter>(socket: &SocketRef<A>) -> Json {
    let data = socket
        .extensions
        .get::<Arc<ClientState>>()
        .map(|client| client.data())
        .unwrap_or_default();
    admin_feed::serialize_socket(socket, data)
}

/// The admin's address: the TCP peer, or the client a trusted proxy forwarded for.
fn client_address<A: Adapter>(socket: &SocketRef<A>, trust_proxy: &[ProxyNetwork]) -> IpAddr {
    let parts = socket.req_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |info| {
            info.0.ip().to_canonical()
        });
    if !trust_proxy.iter().any(|proxy| proxy.contains(peer)) {
        return peer;
    }
    let forwarded = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok());
    forwarded_client(forwarded, |ip| {
        trust_proxy.iter().any(|proxy| proxy.contains(ip))
    })
    .unwrap_or(peer)
}

/// Arguments of an event, each sent as its own argument (socketioxide sends a tuple so).
struct Arguments(Vec<Json>);

impl Serialize for Arguments {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            tuple.serialize_element(arg)?;
        }
        tuple.end()
    }
}

async fn emit_to_admins<A: Adapter>(
    io: &SocketIo<A>,
    namespace: &str,
    event: &str,
    args: &impl Serialize,
) {
    let Some(admins) = io.of(namespace) else {
        return;
    };
    if let Err(error) = admins.emit(event, args).await {
        tracing::debug!(event, %error, "Admin UI broadcast not delivered everywhere");
    }
}

/// Broadcasts `server_stats` now and every 2 s, as long as the server runs.
async fn broadcast_stats<A: Adapter>(
    io: SocketIo<A>,
    relay: Arc<Relay>,
    namespace: String,
    mut source: StatsSource,
) {
    let mut ticks = tokio::time::interval(STATS_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let stats = source.next(&io, &relay);
        emit_to_admins(&io, &namespace, "server_stats", &stats).await;
    }
}

/// Broadcasts the relay's live updates in order, and `socket_updated` when a socket that
/// connected on long-polling has upgraded (socketioxide tells no one, so it is looked for).
async fn broadcast_updates<A: Adapter>(
    io: SocketIo<A>,
    namespace: String,
    mut updates: mpsc::Receiver<AdminUpdate>,
) {
    let mut polling: HashSet<(String, Sid)> = HashSet::new();
    let mut checks = tokio::time::interval(UPGRADE_CHECK_INTERVAL);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            update = updates.recv() => {
                let Some(update) = update else { return };
                track_transport(&mut polling, &update);
                let event = update.event();
                emit_to_admins(&io, &namespace, event, &Arguments(update.into_args())).await;
            }
            _ = checks.tick(), if !polling.is_empty() => {
                for (path, id) in upgraded(&io, &mut polling) {
                    let socket = json!({ "id": id.as_str(), "nsp": path, "transport": "websocket" });
                    emit_to_admins(&io, &namespace, "socket_updated", &Arguments(vec![socket])).await;
                }
            }
        }
    }
}

/// Remembers sockets that connected on long-polling, and forgets those that left.
fn track_transport(polling: &mut HashSet<(String, Sid)>, update: &AdminUpdate) {
    match update {
        AdminUpdate::SocketConnected(socket, _) if socket["transport"] == "polling" => {
            let (Some(path), Some(id)) = (socket["nsp"].as_str(), socket["id"].as_str()) else {
                return;
            };
            if let Ok(id) = id.parse() {
                polling.insert((path.to_owned(), id));
            }
        }
        AdminUpdate::SocketDisconnected(path, id, ..) => {
            if let Ok(id) = id.parse() {
                polling.remove(&(path.clone(), id));
            }
        }
        _ => {}
    }
}

/// The tracked sockets now on WebSocket; they, and those gone, are no longer tracked.
fn upgraded<A: Adapter>(
    io: &SocketIo<A>,
    polling: &mut HashSet<(String, Sid)>,
) -> Vec<(String, Sid)> {
    let mut upgraded = Vec::new();
    polling.retain(|(path, id)| {
        let socket = io.of(path).and_then(|namespace| namespace.get_socket(*id));
        match socket.map(|socket| socket.transport_type()) {
            Some(TransportType::Polling) => true,
            Some(TransportType::Websocket) => {
                upgraded.push((path.clone(), *id));
                false
            }
            None => false,
        }
    });
    upgraded
}
