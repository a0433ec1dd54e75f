//! A socket's way into a namespace of the default profile, and out of it.

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::{Data, SocketRef, State};
use socketioxide::socket::DisconnectReason;

use super::connection_log;
use super::handlers::{self, Audience};
use crate::relay::Relay;
use crate::relay::auth::AuthError;
use crate::relay::client::{ClientState, Transport};
use crate::relay::events::{self, BuiltinEvent};
use crate::relay::payload::Welcome;

/// Connect middleware: checks the handshake's credentials, creates the socket's state and
/// registers its namespace's handlers from the event table, all before the namespace CONNECT
/// is acknowledged.
///
/// socketioxide acknowledges CONNECT before the connect handler runs, so a client that emits
/// right on `connect` would race a registration made there. A refusal reaches the client as
/// `connect_error` with the reason.
pub async fn admit<A: Adapter>(
    socket: SocketRef<A>,
    Data(auth): Data<serde_json::Value>,
    State(relay): State<Arc<Relay>>,
) -> Result<(), AuthError> {
    let user = relay.auth.verify(&auth).inspect_err(|error| {
        tracing::info!(sid = %socket.id, ns = socket.ns(), %error, "connection refused");
    })?;
    let namespace = events::namespace(socket.ns());
    socket.extensions.insert(Arc::new(ClientState::new(
        Transport::SocketIo,
        namespace,
        user,
    )));
    for event in namespace.map_or(&[][..], |ns| ns.events) {
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

/// Counts the socket as live and, where the namespace greets, sends the welcome `message`.
pub async fn on_connect<A: Adapter>(socket: SocketRef<A>, State(relay): State<Arc<Relay>>) {
    let Some(client) = socket.extensions.get::<Arc<ClientState>>() else {
        return;
    };
    relay.socket_connected(&client);
    connection_log::connected(&socket);
    if client.namespace.is_some_and(|ns| ns.welcome) {
        let welcome = Welcome {
            text: "Welcome to iorelay",
            id: socket.id.as_str(),
        };
        if let Err(error) = socket.emit("message", &welcome) {
            tracing::debug!(sid = %socket.id, %error, "welcome not sent");
        }
    }
}

async fn on_disconnect<A: Adapter>(
    socket: SocketRef<A>,
    reason: DisconnectReason,
    State(relay): State<Arc<Relay>>,
) {
    let Some(client) = socket.extensions.get::<Arc<ClientState>>() else {
        return;
    };
    relay.socket_disconnected(&client);
    connection_log::disconnected(&socket, reason);
    if client.namespace.is_some_and(|ns| ns.presence) {
        for room in socket.rooms() {
            handlers::announce(&socket, &room, Audience::OthersOnly).await;
        }
    }
}
