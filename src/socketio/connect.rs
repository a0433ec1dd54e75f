//! A socket's way into a namespace of the default profile, and out of it.

use std::sync::Arc;
use std::time::Instant;

use socketioxide::adapter::Adapter;
use socketioxide::extract::{Data, SocketRef, State};
use socketioxide::socket::DisconnectReason;
use socketioxide::{SocketIo, TransportType};

use super::admin_events;
use super::connection_log;
use super::forward::{self, AppRefusal};
use super::handlers::{self, Audience};
use crate::metrics::{RefusalCause, TransportLabel};
use crate::relay::Relay;
use crate::relay::auth::AuthError;
use crate::relay::binary;
use crate::relay::client::{ClientState, Transport};
use crate::relay::events::{self, BuiltinEvent};
use crate::relay::handshake::handshake;
use crate::relay::payload::Welcome;
use crate::relay::recovery;

/// Connect middleware: checks the handshake's credentials, creates the socket's state and
/// registers its namespace's handlers from the event table, all before the namespace CONNECT
/// is acknowledged.
///
/// socketioxide acknowledges CONNECT before the connect handler runs, so a client that emits
/// right on `connect` would race a registration made there. A refusal reaches the client as
/// `connect_error` with the reason.
pub async fn admit<A: Adapter>(
    socket: SocketRef<A>,
    Data(auth): Data<rmpv::Value>,
    State(relay): State<Arc<Relay>>,
) -> Result<(), Refusal> {
    // Read as any value first: with `--parser msgpack` it may hold binary, a `Date` or
    // `undefined`, which become JSON as the default parser would have carried them. No auth at
    // all (nil with `--parser msgpack`) is `{}`, as Node's `Object.assign({}, auth)` makes it.
    let auth = match binary::to_json(&auth) {
        serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
        auth => auth,
    };
    let started = Instant::now();
    let refused = |error: &dyn std::fmt::Display, cause: RefusalCause| {
        relay.metrics.handshake_refused(cause);
        relay.metrics.handshake_took(started.elapsed());
        tracing::info!(sid = %socket.id, ns = socket.ns(), %error, "connection refused");
    };
    // Connection state recovery: the user and `socket.data` of the session the socket came
    // back to; with `--recovery-skip-middlewares` (the default) the checks are not run again.
    let recovered = recovery::recovered_identity(&socket);
    let skip_checks = recovered.is_some() && relay.recovery.is_some_and(|r| r.skip_checks);
    let user = match &recovered {
        Some(identity) if skip_checks => identity.user.clone(),
        _ => relay
            .auth
            .verify(&auth)
            .inspect_err(|e| refused(e, RefusalCause::Auth))?,
    };
    let namespace = events::namespace(socket.ns());
    let handshake = handshake(socket.req_parts(), auth, relay.id_rooms);
    let client = Arc::new(ClientState::new(
        Transport::SocketIo,
        namespace,
        user,
        handshake,
        relay.id_rooms,
        relay.metrics.namespace(socket.ns()),
    ));
    if let Some(identity) = recovered {
        client.merge_data(identity.data);
    }
    if !skip_checks {
        forward::admit(&socket, &relay, &client)
            .await
            .inspect_err(|e| refused(e, RefusalCause::App))?;
    }
    // What a recovered socket gets back (no effect without recovery).
    socket.set_session_state(client.clone());
    relay.metrics.handshake_took(started.elapsed());
    if relay.id_rooms {
        // As in Node, a socket id is a room: the app and the API address sockets by it.
        socket.join(socket.id.to_string());
    }
    socket.extensions.insert(client);
    let builtin = namespace.map_or(&[][..], |ns| ns.events);
    for event in builtin.iter().filter(|event| relay.events.is_on(**event)) {
        match event {
            BuiltinEvent::Message => socket.on(event.name(), handlers::on_message::<A>),
            BuiltinEvent::Echo => socket.on(event.name(), handlers::on_echo::<A>),
            BuiltinEvent::Join => socket.on(event.name(), handlers::on_join::<A>),
            BuiltinEvent::Leave => socket.on(event.name(), handlers::on_leave::<A>),
            BuiltinEvent::Chat => socket.on(event.name(), handlers::on_chat::<A>),
        }
    }
    socket.on_fallback(handlers::on_unhandled::<A>);
    socket.on_disconnect(on_disconnect::<A>);
    Ok(())
}

/// Why a socket may not join a namespace; the client reads the text in `connect_error`.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Its credentials.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The app's connect webhook.
    #[error(transparent)]
    App(#[from] AppRefusal),
}

/// Counts the socket as live and, where the namespace greets, sends the welcome `message`.
pub async fn on_connect<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    State(relay): State<Arc<Relay>>,
) {
    let Some(client) = socket.extensions.get::<Arc<ClientState>>() else {
        return;
    };
    relay.socket_connected(&client);
    client.metrics.connected(transport_label(&socket));
    if let Some(admin) = &relay.admin {
        admin.socket_connected(&socket, client.data());
    }
    connection_log::connected(&socket, &client.address);
    if client.namespace.is_some_and(|ns| ns.welcome) {
        let welcome = Welcome {
            text: "Welcome to iorelay",
            id: socket.id.as_str(),
        };
        match socket.emit("message", &welcome) {
            Ok(()) => admin_events::sent(&relay, &socket, "message", || {
                rmpv::ext::to_value(&welcome).into_iter().collect()
            }),
            Err(error) => tracing::debug!(sid = %socket.id, %error, "welcome not sent"),
        }
    }
    forward::after_connect(&socket, &io, &relay, &client).await;
}

async fn on_disconnect<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    reason: DisconnectReason,
    State(relay): State<Arc<Relay>>,
) {
    let Some(client) = socket.extensions.get::<Arc<ClientState>>() else {
        return;
    };
    relay.socket_disconnected(&client);
    client.metrics.disconnected(forward::reason_name(reason));
    if let Some(admin) = &relay.admin {
        admin.socket_disconnected(&socket, forward::reason_name(reason));
    }
    connection_log::disconnected(&socket, &client.address, reason);
    forward::disconnected(&socket, &io, &relay, &client, reason);
    if client.namespace.is_some_and(|ns| ns.presence) {
        let own_room = socket.id.as_str();
        for room in socket.rooms().iter().filter(|room| *room != own_room) {
            handlers::announce(&socket, room, Audience::OthersOnly).await;
        }
    }
}

/// The `transport` label of a Socket.IO socket: where its session is now.
fn transport_label<A: Adapter>(socket: &SocketRef<A>) -> TransportLabel {
    match socket.transport_type() {
        TransportType::Polling => TransportLabel::Polling,
        TransportType::Websocket => TransportLabel::Websocket,
    }
}
