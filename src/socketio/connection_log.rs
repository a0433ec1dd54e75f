//! One log line per connect and per disconnect, with who, where and how.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::DisconnectReason;

/// Logs a socket that has joined its namespace.
pub fn connected<A: Adapter>(socket: &SocketRef<A>) {
    tracing::info!(
        sid = %socket.id,
        ns = socket.ns(),
        transport = ?socket.transport_type(),
        protocol = ?socket.protocol(),
        remote = %remote_address(socket),
        "socket connected"
    );
}

/// Logs a socket that has left its namespace, with the reason.
pub fn disconnected<A: Adapter>(socket: &SocketRef<A>, reason: DisconnectReason) {
    tracing::info!(
        sid = %socket.id,
        ns = socket.ns(),
        transport = ?socket.transport_type(),
        remote = %remote_address(socket),
        %reason,
        "socket disconnected"
    );
}

/// The client's address: the first `X-Forwarded-For` hop behind a proxy, else the TCP peer.
fn remote_address<A: Adapter>(socket: &SocketRef<A>) -> String {
    let parts = socket.req_parts();
    if let Some(forwarded) = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
    {
        return forwarded.trim().to_owned();
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |info| info.0.to_string())
}
