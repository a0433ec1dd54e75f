//! A raw Engine.IO echo endpoint, for the official Engine.IO v4 protocol test suite.

use std::sync::Arc;

use bytes::Bytes;
use engineioxide::Str;
use engineioxide::handler::EngineIoHandler;
use engineioxide::socket::{DisconnectReason, Socket};

/// Path the Engine.IO test suite connects to.
pub const PATH: &str = "/engine.io/";

/// Sends every message back to the socket that sent it.
#[derive(Debug, Default, Clone)]
pub struct EchoHandler;

impl EngineIoHandler for EchoHandler {
    type Data = ();

    fn on_connect(self: Arc<Self>, socket: Arc<Socket<()>>) {
        tracing::debug!(sid = %socket.id, "engine.io echo socket connected");
    }

    fn on_disconnect(&self, socket: Arc<Socket<()>>, reason: DisconnectReason) {
        tracing::debug!(sid = %socket.id, ?reason, "engine.io echo socket disconnected");
    }

    fn on_message(self: &Arc<Self>, msg: Str, socket: Arc<Socket<()>>) {
        if let Err(error) = socket.emit(msg) {
            tracing::debug!(sid = %socket.id, %error, "echo not sent");
        }
    }

    fn on_binary(self: &Arc<Self>, data: Bytes, socket: Arc<Socket<()>>) {
        if let Err(error) = socket.emit_binary(data) {
            tracing::debug!(sid = %socket.id, %error, "binary echo not sent");
        }
    }
}
