//! One log line per connect and per disconnect, with who, where and how.

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::DisconnectReason;

/// Logs a socket that has joined its namespace from `remote`.
pub fn connected<A: Adapter>(socket: &SocketRef<A>, remote: &str) {
    tracing::info!(
        sid = %socket.id,
        ns = socket.ns(),
        transport = ?socket.transport_type(),
        protocol = ?socket.protocol(),
        remote = %remote,
        "socket connected"
    );
}

/// Logs a socket from `remote` that has left its namespace, with the reason.
pub fn disconnected<A: Adapter>(socket: &SocketRef<A>, remote: &str, reason: DisconnectReason) {
    tracing::info!(
        sid = %socket.id,
        ns = socket.ns(),
        transport = ?socket.transport_type(),
        remote = %remote,
        %reason,
        "socket disconnected"
    );
}
