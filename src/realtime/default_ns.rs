//! The default namespace `/`: welcome, `message` echo, `echo` acks and rooms.

use std::convert::Infallible;
use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};
use socketioxide::socket::DisconnectReason;

use super::arguments::Args;
use super::connection_log;
use super::ordering::{self, InOrder};
use super::payload::Welcome;
use super::policy::{self, RelayPolicy};
use super::room_events::{on_chat, on_join, on_leave, on_unknown_event, send_ack};
use crate::plain_ws::PlainHub;

/// Registers the event handlers before the namespace CONNECT is acknowledged.
///
/// socketioxide acknowledges CONNECT before the connect handler runs, so a client that emits
/// right on `connect` would race the handler registration. A connect middleware runs before the
/// acknowledgement, so handlers registered here never miss an event.
pub async fn attach_handlers<A: Adapter>(
    socket: SocketRef<A>,
    State(plain): State<Arc<PlainHub>>,
) -> Result<(), Infallible> {
    ordering::install(&socket);
    policy::install_seat(&socket);
    // The rooms of `/` are shared with plain WebSocket clients: `chat` and `join` reach them.
    socket.extensions.insert(plain);
    socket.on("message", on_message::<A>);
    socket.on("echo", on_echo::<A>);
    socket.on("join", on_join::<A>);
    socket.on("leave", on_leave::<A>);
    socket.on("chat", on_chat::<A>);
    socket.on_fallback(on_unknown_event::<A>);
    socket.on_disconnect(on_disconnect::<A>);
    Ok(())
}

/// Greets a socket once the client knows it is connected.
pub async fn on_connect<A: Adapter>(socket: SocketRef<A>, State(policy): State<Arc<RelayPolicy>>) {
    policy.socket_connected(&socket);
    connection_log::connected(&socket);
    let welcome = Welcome {
        text: "Welcome to iorelay",
        id: socket.id.as_str(),
    };
    if let Err(error) = socket.emit("message", &welcome) {
        tracing::debug!(sid = %socket.id, %error, "welcome not sent");
    }
}

/// Sends every argument back to the sender as `message`.
async fn on_message<A: Adapter>(
    socket: SocketRef<A>,
    args: Args,
    State(policy): State<Arc<RelayPolicy>>,
    turn: InOrder,
) {
    let Some(args) = args.accept(&turn, &socket, &policy).await else {
        return;
    };
    tracing::info!(sid = %socket.id, args = args.0.len(), "message received");
    if let Err(error) = socket.emit("message", &args) {
        tracing::debug!(sid = %socket.id, %error, "message echo not sent");
    }
}

/// Acknowledges with every argument it was sent.
async fn on_echo<A: Adapter>(
    socket: SocketRef<A>,
    args: Args,
    ack: AckSender<A>,
    State(policy): State<Arc<RelayPolicy>>,
    turn: InOrder,
) {
    let Some(args) = args.accept(&turn, &socket, &policy).await else {
        return;
    };
    send_ack(&socket, ack, &args);
}

async fn on_disconnect<A: Adapter>(
    socket: SocketRef<A>,
    reason: DisconnectReason,
    State(policy): State<Arc<RelayPolicy>>,
) {
    policy.socket_disconnected(&socket);
    connection_log::disconnected(&socket, reason);
}
