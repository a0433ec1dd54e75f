//! The `/chat` namespace: rooms and chat as on `/`, plus `presence` member lists.

use std::convert::Infallible;
use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};
use socketioxide::socket::DisconnectReason;

use super::arguments::Args;
use super::connection_log;
use super::ordering::{self, InOrder};
use super::payload::Presence;
use super::policy::{self, RelayPolicy};
use super::room_events::{self, on_chat, on_unknown_event, room_members};

/// Registers the event handlers before the namespace CONNECT is acknowledged (see `default_ns`).
pub async fn attach_handlers<A: Adapter>(socket: SocketRef<A>) -> Result<(), Infallible> {
    ordering::install(&socket);
    policy::install_seat(&socket);
    socket.on("join", on_join::<A>);
    socket.on("leave", on_leave::<A>);
    socket.on("chat", on_chat::<A>);
    socket.on_fallback(on_unknown_event::<A>);
    socket.on_disconnect(on_disconnect::<A>);
    Ok(())
}

/// Logs the connection; `/chat` sends no welcome.
pub async fn on_connect<A: Adapter>(socket: SocketRef<A>, State(policy): State<Arc<RelayPolicy>>) {
    policy.socket_connected(&socket);
    connection_log::connected(&socket);
}

async fn on_join<A: Adapter>(
    socket: SocketRef<A>,
    args: Args,
    ack: AckSender<A>,
    State(policy): State<Arc<RelayPolicy>>,
    turn: InOrder,
) {
    let Some(args) = args.accept(&turn, &socket, &policy).await else {
        return;
    };
    if let Some(room) = room_events::join(&socket, &args, ack, &policy).await {
        announce(&socket, room.as_str(), Audience::Everyone).await;
    }
}

async fn on_leave<A: Adapter>(
    socket: SocketRef<A>,
    args: Args,
    ack: AckSender<A>,
    State(policy): State<Arc<RelayPolicy>>,
    turn: InOrder,
) {
    let Some(args) = args.accept(&turn, &socket, &policy).await else {
        return;
    };
    if let Some(room) = room_events::leave(&socket, &args, ack, &policy).await {
        announce(&socket, room.as_str(), Audience::Everyone).await;
    }
}

async fn on_disconnect<A: Adapter>(
    socket: SocketRef<A>,
    reason: DisconnectReason,
    State(policy): State<Arc<RelayPolicy>>,
) {
    policy.socket_disconnected(&socket);
    connection_log::disconnected(&socket, reason);
    for room in socket.rooms() {
        announce(&socket, &room, Audience::OthersOnly).await;
    }
}

/// Who receives a presence update.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// Every member, the socket that changed included.
    Everyone,
    /// The other members: the socket is on its way out and may still be listed.
    OthersOnly,
}

async fn announce<A: Adapter>(socket: &SocketRef<A>, room: &str, audience: Audience) {
    let mut members = room_members(socket, room).await;
    let operators = match audience {
        Audience::Everyone => socket.within(room.to_owned()),
        Audience::OthersOnly => {
            members.retain(|m| m != socket.id.as_str());
            socket.to(room.to_owned())
        }
    };
    let presence = Presence { room, members };
    if let Err(error) = operators.emit("presence", &presence).await {
        tracing::warn!(sid = %socket.id, room, %error, "presence not delivered");
    }
}
