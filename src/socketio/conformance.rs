//! The behaviour the official Socket.IO v5 protocol test suite expects of the server under test.

use std::convert::Infallible;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide_core::adapter::DefinedAdapter;

use super::request::send_ack;
use crate::relay::payload::EventArgs;

/// Namespaces the test suite connects to.
pub const NAMESPACES: [&str; 2] = ["/", "/custom"];

/// Registers the test suite's namespaces on `io`, returning their adapter initialisations.
pub fn register<A: DefinedAdapter + Adapter>(io: &SocketIo<A>) -> Vec<A::InitRes> {
    use socketioxide::handler::ConnectHandler;
    NAMESPACES
        .into_iter()
        .map(|namespace| io.ns(namespace, on_connect::<A>.with(attach_handlers::<A>)))
        .collect()
}

async fn attach_handlers<A: Adapter>(socket: SocketRef<A>) -> Result<(), Infallible> {
    socket.on("message", on_message::<A>);
    socket.on("message-with-ack", on_message_with_ack::<A>);
    Ok(())
}

/// Emits `auth` with the payload of the CONNECT packet.
async fn on_connect<A: Adapter>(socket: SocketRef<A>, Data(auth): Data<serde_json::Value>) {
    if let Err(error) = socket.emit("auth", &auth) {
        tracing::debug!(sid = %socket.id, %error, "auth not sent");
    }
}

async fn on_message<A: Adapter>(socket: SocketRef<A>, Data(args): Data<EventArgs>) {
    if let Err(error) = socket.emit("message-back", &args) {
        tracing::debug!(sid = %socket.id, %error, "message-back not sent");
    }
}

async fn on_message_with_ack<A: Adapter>(
    socket: SocketRef<A>,
    Data(args): Data<EventArgs>,
    ack: AckSender<A>,
) {
    send_ack(&socket, ack, &args);
}
